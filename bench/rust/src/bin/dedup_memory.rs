//! Bytes per entry of `oc2mqtt::dedup::Deduplicator`, measured with a
//! counting global allocator (core's `heap_bytes` is only an estimate),
//! and the check rate at a full table.
//!
//! `cargo run --release -p oc2mqtt-bench --bin dedup-memory [ENTRIES]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use oc2mqtt::dedup::{DedupKey, Deduplicator};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let now = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn key(i: u64) -> DedupKey {
    DedupKey::from_u128(u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
}

fn main() {
    let entries: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let cap = usize::try_from(entries).expect("fits");
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut d = Deduplicator::new(u64::MAX, cap);
    for i in 0..entries {
        d.check(key(i), 0);
    }
    let filled = LIVE.load(Ordering::Relaxed) - before;
    let fill_peak = PEAK.load(Ordering::Relaxed) - before;
    // Steady state: as many again, each evicting the oldest.
    let t = Instant::now();
    for i in entries..2 * entries {
        black_box(d.check(key(i), 0));
    }
    let rate = entries as f64 / t.elapsed().as_secs_f64();
    let steady = LIVE.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let per = |b: usize| b as f64 / entries as f64;
    println!(
        "{{\"entries\":{entries},\"len\":{},\"bytes_filled\":{filled},\"bytes_per_entry_filled\":{:.1},\
\"bytes_steady\":{steady},\"bytes_per_entry_steady\":{:.1},\"bytes_peak\":{peak},\"bytes_per_entry_peak\":{:.1},\
\"fill_peak_per_entry\":{:.1},\"heap_bytes_estimate\":{},\"heap_bytes_estimate_per_entry\":{:.1},\
\"checks_per_s_new_key_full_table\":{rate:.0}}}",
        d.len(),
        per(filled),
        per(steady),
        per(peak),
        per(fill_peak),
        d.heap_bytes(),
        per(d.heap_bytes()),
    );
}
