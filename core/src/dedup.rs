//! Duplicate detection for QoS 1 redelivery and for the same message
//! arriving on several topics.
//!
//! A [`Deduplicator`] remembers 128-bit keys for a time window and never more
//! than a capacity (oldest evicted first). Each check is O(1) amortised.
//! It reads no clock: the caller passes `now` in milliseconds.
//!
//! ```
//! use oc2mqtt::dedup::{DedupKey, Deduplicator};
//!
//! let mut d = Deduplicator::new(60_000, 100_000);
//! let key = DedupKey::command(Some("producer-1"), "5f0c-...");
//! assert!(d.check(key, 0));          // first sighting: process it
//! assert!(!d.check(key, 10));        // duplicate: drop it
//! assert!(d.check(key, 60_001));     // outside the window: new again
//! ```
//!
//! Sized from a user's values, a deduplicator is made by
//! [`Deduplicator::with_options`]: [`DedupOptions`] is a settings table
//! (`window_ms`, `capacity`: names, range, defaults, error texts), the one
//! every binding reads its arguments through.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use xxhash_rust::xxh3::xxh3_128;

use crate::error::Result;
use crate::message::{Body, Message};
use crate::settings::Settings;

/// Default window: 60 s.
pub const DEFAULT_WINDOW_MS: u64 = 60_000;
/// Default capacity: 100 000 keys.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// How long a [`Deduplicator`] remembers and how much: set by name
/// through [`Settings`] (its table is in `settings.rs`), or built in Rust
/// and checked by [`Deduplicator::with_options`]. A capacity of 0 is
/// refused: a deduplicator that remembers nothing drops nothing.
///
/// ```
/// use oc2mqtt::dedup::{DedupOptions, Deduplicator};
/// use oc2mqtt::settings::{Settings, Spelling, Value};
/// let mut o = DedupOptions::default();
/// o.set(Spelling::Snake, "window_ms", Value::Count(1000)).unwrap();
/// let e = o.set(Spelling::Snake, "capacity", Value::Count(0)).unwrap_err();
/// assert_eq!(e.to_string(), "configuration: capacity: must be at least 1");
/// let e = Deduplicator::with_options(DedupOptions { capacity: 0, ..o }).unwrap_err();
/// assert_eq!(e.to_string(), "configuration: capacity: must be at least 1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupOptions {
    /// How long a key is remembered, in milliseconds.
    pub window_ms: u64,
    /// The most keys remembered (the oldest forgotten first); at least 1.
    pub capacity: usize,
}

impl Default for DedupOptions {
    fn default() -> Self {
        Self {
            window_ms: DEFAULT_WINDOW_MS,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// A 128-bit identity of a message.
///
/// Stored as two `u64`s so that an entry is 8-byte aligned (a `u128` would
/// force 16-byte alignment and padding in the queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupKey(u64, u64);

impl Hash for DedupKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a uniform hash: feed one half straight through.
        state.write_u64(self.0);
    }
}

/// Appends a field, length-prefixed so that ("ab", "c") and ("a", "bc") differ.
fn field(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => buf.push(0),
        Some(b) => {
            buf.push(1);
            buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
            buf.extend_from_slice(b);
        }
    }
}

impl DedupKey {
    fn of_bytes(bytes: &[u8]) -> Self {
        // One-shot hashing: much cheaper than the streaming state for short keys.
        let v = xxh3_128(bytes);
        // Truncation to the two halves is the intent.
        Self((v >> 64) as u64, v as u64)
    }

    /// The key of a command: (`from`, `request_id`).
    pub fn command(from: Option<&str>, request_id: &str) -> Self {
        let mut buf = Vec::with_capacity(96);
        buf.extend_from_slice(b"cmd");
        field(&mut buf, from.map(str::as_bytes));
        field(&mut buf, Some(request_id.as_bytes()));
        Self::of_bytes(&buf)
    }

    /// The key of a command that carries `created`: (`from`, `request_id`,
    /// `created`). A replay has the same `created`; a script that reuses a
    /// request_id for a new command (the examples' `uuid_1`) does not.
    pub fn command_created(from: Option<&str>, request_id: &str, created: i64) -> Self {
        let mut buf = Vec::with_capacity(104);
        buf.extend_from_slice(b"cmt");
        field(&mut buf, from.map(str::as_bytes));
        field(&mut buf, Some(request_id.as_bytes()));
        buf.extend_from_slice(&created.to_le_bytes());
        Self::of_bytes(&buf)
    }

    /// The key of a response: (`from`, `request_id`, status, payload digest).
    pub fn response(from: Option<&str>, request_id: &str, status: u16, payload: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(b"rsp");
        field(&mut buf, from.map(str::as_bytes));
        field(&mut buf, Some(request_id.as_bytes()));
        buf.extend_from_slice(&status.to_le_bytes());
        buf.extend_from_slice(&xxh3_128(payload).to_le_bytes());
        Self::of_bytes(&buf)
    }

    /// The key of a message without a `request_id`: its payload digest.
    pub fn payload(payload: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(24);
        buf.extend_from_slice(b"raw");
        buf.extend_from_slice(&xxh3_128(payload).to_le_bytes());
        Self::of_bytes(&buf)
    }

    /// The key of a decoded message and the payload it came in.
    pub fn of_message(msg: &Message, payload: &[u8]) -> Self {
        let from = msg.headers.from.as_deref();
        match (&msg.body, msg.headers.request_id.as_deref()) {
            (Body::Request(_), Some(id)) => match msg.headers.created {
                Some(created) => Self::command_created(from, id, created),
                None => Self::command(from, id),
            },
            (Body::Response(r), Some(id)) => Self::response(from, id, r.status, payload),
            _ => Self::payload(payload),
        }
    }

    /// The key as one 128-bit number.
    pub fn as_u128(self) -> u128 {
        (u128::from(self.0) << 64) | u128::from(self.1)
    }

    /// A key from a 128-bit number.
    pub fn from_u128(v: u128) -> Self {
        Self((v >> 64) as u64, v as u64)
    }
}

#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if a caller hashes something other than a DedupKey.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Counters of a [`Deduplicator`]; bindings show them as their serde form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DedupStats {
    /// Checks made.
    pub checked: u64,
    /// Checks that found a duplicate.
    pub duplicates: u64,
    /// Keys dropped because the table was full (oldest first).
    pub evicted: u64,
    /// Keys dropped because their window passed.
    pub expired: u64,
}

/// Remembers recently seen keys; see the module documentation.
pub struct Deduplicator {
    window_ms: u64,
    capacity: usize,
    seen: HashSet<DedupKey, BuildHasherDefault<PassThrough>>,
    order: VecDeque<(DedupKey, u64)>,
    stats: DedupStats,
    /// When a key was last evicted before its window passed.
    last_evicted_at: Option<u64>,
}

impl Default for Deduplicator {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW_MS, DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for Deduplicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deduplicator")
            .field("window_ms", &self.window_ms)
            .field("capacity", &self.capacity)
            .field("len", &self.order.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Deduplicator {
    /// A deduplicator sized by `options`, once they hold (the checks of their
    /// settings table: a capacity of at least 1). Every binding makes its
    /// deduplicators here, so 0 means the same (an error) in every language.
    pub fn with_options(options: DedupOptions) -> Result<Self> {
        options.check_values()?;
        Ok(Self::new(options.window_ms, options.capacity))
    }

    /// How it was sized.
    pub fn options(&self) -> DedupOptions {
        DedupOptions {
            window_ms: self.window_ms,
            capacity: self.capacity,
        }
    }

    /// Keys are kept `window_ms` milliseconds, and at most `capacity` of
    /// them: for sizes written in the code. A capacity of 0 is taken as 1
    /// here; values from a user go through [`Deduplicator::with_options`],
    /// which refuses it.
    pub fn new(window_ms: u64, capacity: usize) -> Self {
        Self {
            window_ms,
            capacity: capacity.max(1),
            seen: HashSet::default(),
            order: VecDeque::new(),
            stats: DedupStats::default(),
            last_evicted_at: None,
        }
    }

    /// How far back, at `now`, every key seen is still remembered: the
    /// window, unless the capacity evicted keys younger than it (a rate the
    /// capacity cannot hold for the whole window), then the age of the
    /// oldest key kept.
    ///
    /// ```
    /// use oc2mqtt::dedup::{DedupKey, Deduplicator};
    /// let mut d = Deduplicator::new(60_000, 2);
    /// for (i, t) in [0_u64, 10, 20].into_iter().enumerate() {
    ///     d.check(DedupKey::payload(&[i as u8]), t);
    /// }
    /// assert_eq!(d.memory_ms(25), 15); // the key seen at 0 was evicted
    /// assert_eq!(d.memory_ms(60_021), 60_000); // that eviction is a window old
    /// ```
    pub fn memory_ms(&self, now: u64) -> u64 {
        match (self.last_evicted_at, self.order.front()) {
            (Some(t), Some(&(_, oldest))) if now.saturating_sub(t) < self.window_ms => {
                now.saturating_sub(oldest)
            }
            _ => self.window_ms,
        }
    }

    /// Returns `true` the first time `key` is seen within the window (process
    /// the message), `false` for a duplicate (drop it). `now` must not go back.
    pub fn check(&mut self, key: DedupKey, now: u64) -> bool {
        self.stats.checked += 1;
        while let Some(&(old, at)) = self.order.front() {
            if now.saturating_sub(at) < self.window_ms {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
            self.stats.expired += 1;
        }
        if !self.seen.insert(key) {
            self.stats.duplicates += 1;
            return false;
        }
        self.order.push_back((key, now));
        if self.order.len() > self.capacity {
            if let Some((old, _)) = self.order.pop_front() {
                self.seen.remove(&old);
                self.stats.evicted += 1;
                self.last_evicted_at = Some(now);
            }
        }
        true
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The counters so far.
    pub fn stats(&self) -> DedupStats {
        self.stats
    }

    /// Heap bytes held by the tables (for memory measurements).
    pub fn heap_bytes(&self) -> usize {
        let set = self.seen.capacity() * (std::mem::size_of::<DedupKey>() + 1);
        let queue = self.order.capacity() * std::mem::size_of::<(DedupKey, u64)>();
        set + queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_evicts_oldest_first() {
        let mut d = Deduplicator::new(u64::MAX, 3);
        let keys: Vec<_> = (0..4)
            .map(|i| DedupKey::command(None, &i.to_string()))
            .collect();
        for k in &keys {
            assert!(d.check(*k, 0));
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.stats().evicted, 1);
        assert!(
            d.check(keys[0], 0),
            "oldest was evicted, so it is new again"
        );
        assert!(!d.check(keys[3], 0), "newest is still remembered");
    }

    #[test]
    fn keys_distinguish_fields() {
        assert_ne!(
            DedupKey::command(Some("a"), "bc"),
            DedupKey::command(Some("ab"), "c")
        );
        assert_ne!(
            DedupKey::command(None, "x"),
            DedupKey::command(Some(""), "x")
        );
        assert_ne!(
            DedupKey::response(None, "x", 102, b"p"),
            DedupKey::response(None, "x", 200, b"p")
        );
        let k = DedupKey::payload(b"hello");
        assert_eq!(DedupKey::from_u128(k.as_u128()), k);
    }

    #[test]
    fn window_expires_old_keys() {
        let mut d = Deduplicator::new(1000, 100);
        let k = DedupKey::payload(b"x");
        assert!(d.check(k, 0));
        assert!(!d.check(k, 999));
        assert!(d.check(k, 1000));
        assert_eq!(d.stats().expired, 1);
        assert_eq!(d.stats().duplicates, 1);
    }

    #[test]
    fn a_capacity_of_zero_is_refused_with_the_settings_text() {
        let zero = DedupOptions {
            capacity: 0,
            ..DedupOptions::default()
        };
        assert_eq!(
            Deduplicator::with_options(zero).unwrap_err().to_string(),
            "configuration: capacity: must be at least 1"
        );
        let one = Deduplicator::with_options(DedupOptions {
            capacity: 1,
            window_ms: 5,
        })
        .expect("a capacity of 1 holds");
        assert_eq!(
            one.options(),
            DedupOptions {
                window_ms: 5,
                capacity: 1
            }
        );
    }

    #[test]
    fn entries_stay_under_64_bytes_at_100k() {
        let mut d = Deduplicator::default();
        for i in 0..100_000u64 {
            d.check(DedupKey::command(None, &i.to_string()), 0);
        }
        let per_entry = d.heap_bytes() / d.len();
        assert!(per_entry <= 64, "{per_entry} bytes per entry");
    }
}
