//! `oc2_dedup`: dropping duplicate messages (QoS 1 redelivery, one command
//! on several topics).

use std::ffi::c_char;

use oc2::dedup::{DEFAULT_CAPACITY, DEFAULT_WINDOW_MS, DedupKey, DedupOptions, Deduplicator};

use crate::error::{Failure, oc2_result};
use crate::ffi::{
    box_handle, free_box, guard, guard_free, to_c, try_mut, try_out, try_ref, try_slice, write,
    write_text,
};
use crate::message::oc2_message;

/// The default window of `oc2_dedup_new`: 60 000 ms.
pub const OC2_DEDUP_DEFAULT_WINDOW_MS: u64 = 60_000;
const _: () = assert!(
    OC2_DEDUP_DEFAULT_WINDOW_MS == DEFAULT_WINDOW_MS,
    "header constant follows core"
);
/// The default capacity of `oc2_dedup_new`: 100 000 entries.
pub const OC2_DEDUP_DEFAULT_CAPACITY: usize = 100_000;
const _: () = assert!(
    OC2_DEDUP_DEFAULT_CAPACITY == DEFAULT_CAPACITY,
    "header constant follows core"
);

/// Remembers messages seen within a time window, up to a capacity (oldest
/// forgotten first). Time is given by the caller in milliseconds, from any
/// clock that does not go backwards. Not thread-safe.
pub struct oc2_dedup {
    inner: Deduplicator,
}
box_handle!(oc2_dedup);

/// Counters of an `oc2_dedup`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct oc2_dedup_stats {
    /// Messages checked.
    pub checked: u64,
    /// Checks that found a duplicate.
    pub duplicates: u64,
    /// Entries forgotten because the capacity was reached.
    pub evicted: u64,
    /// Entries forgotten because the window passed.
    pub expired: u64,
}

/// Creates a deduplicator remembering messages for `window_ms` ms, at most
/// `capacity` of them (the oldest forgotten first). Use
/// `OC2_DEDUP_DEFAULT_WINDOW_MS` and `OC2_DEDUP_DEFAULT_CAPACITY` unless you
/// know better. `OC2_RESULT_CONFIG` for a capacity of 0, as in every
/// language: `oc2_dedup_options_check` says why ("capacity: must be at
/// least 1").
#[unsafe(no_mangle)]
pub extern "C" fn oc2_dedup_new(
    window_ms: u64,
    capacity: usize,
    out: *mut *mut oc2_dedup,
) -> oc2_result {
    guard(|| {
        let out = try_out(out)?;
        let inner = Deduplicator::with_options(DedupOptions {
            window_ms,
            capacity,
        })
        .map_err(|e| e.code())?;
        write(out, to_c(oc2_dedup { inner }));
        Ok(())
    })
}

/// Copies into `buf` why `oc2_dedup_new(window_ms, capacity, ...)` would
/// refuse them ("configuration: capacity: must be at least 1"), or the
/// empty string when they hold. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_dedup_options_check(
    window_ms: u64,
    capacity: usize,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| {
        let text = Deduplicator::with_options(DedupOptions {
            window_ms,
            capacity,
        })
        .err()
        .map(|e| e.to_string());
        write_text(text.as_deref().unwrap_or(""), buf, len, written)
    })
}

/// Frees a deduplicator; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_dedup_free(dedup: *mut oc2_dedup) {
    guard_free(|| free_box(dedup));
}

/// Records `message` (decoded from the `len` bytes at `payload`) at time
/// `now_ms`; `*is_new` is true the first time, false for a duplicate.
/// Commands are keyed by (from, request_id); responses also by status and
/// payload; messages without a request_id by their payload.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_dedup_check(
    dedup: *mut oc2_dedup,
    message: *const oc2_message,
    payload: *const u8,
    len: usize,
    now_ms: u64,
    is_new: *mut bool,
) -> oc2_result {
    guard(|| {
        let d = try_mut(dedup)?;
        let m = try_ref(message)?;
        let payload = try_slice(payload, len)?;
        let out = try_out(is_new)?;
        write(
            out,
            d.inner
                .check(DedupKey::of_message(&m.message, payload), now_ms),
        );
        Ok(())
    })
}

/// Records a payload that could not be decoded, keyed by its bytes; as `oc2_dedup_check`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_dedup_check_payload(
    dedup: *mut oc2_dedup,
    payload: *const u8,
    len: usize,
    now_ms: u64,
    is_new: *mut bool,
) -> oc2_result {
    guard(|| {
        let d = try_mut(dedup)?;
        let payload = try_slice(payload, len)?;
        let out = try_out(is_new)?;
        write(out, d.inner.check(DedupKey::payload(payload), now_ms));
        Ok(())
    })
}

/// The number of entries remembered now.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_dedup_len(dedup: *const oc2_dedup, out: *mut usize) -> oc2_result {
    guard(|| {
        let d = try_ref(dedup)?;
        let out = try_out(out)?;
        write(out, d.inner.len());
        Ok(())
    })
}

/// The counters so far.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_dedup_get_stats(
    dedup: *const oc2_dedup,
    out: *mut oc2_dedup_stats,
) -> oc2_result {
    guard(|| {
        let d = try_ref(dedup)?;
        let out = try_out(out)?;
        let s = d.inner.stats();
        write(
            out,
            oc2_dedup_stats {
                checked: s.checked,
                duplicates: s.duplicates,
                evicted: s.evicted,
                expired: s.expired,
            },
        );
        Ok(())
    })
}
