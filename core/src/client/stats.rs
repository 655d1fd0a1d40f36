//! Counters shared by every role.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a producer, consumer or monitor has seen so far.
///
/// Serializes to a map of the fields' names (the MQTT version as its text,
/// `"5"` or `"3.1.1"`, or none): how every binding hands it over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// The MQTT version spoken with the broker (`V5` or `V311`; `Auto`
    /// before the first connection).
    pub mqtt_version: Option<super::MqttVersion>,
    /// Messages published and acknowledged by the broker.
    pub published: u64,
    /// Messages received from the broker.
    pub received: u64,
    /// Received messages dropped as duplicates.
    pub duplicates: u64,
    /// Received payloads that could not be decoded.
    pub decode_errors: u64,
    /// Responses that matched no open exchange.
    pub unsolicited: u64,
    /// Automatic reconnections to the broker.
    pub reconnects: u64,
    /// Publishes the broker refused (an ACL denial, for one); each is also
    /// logged with its topic and reason.
    pub publish_errors: u64,
    /// Publishes the client dropped itself, never refused by the broker:
    /// the connection was closed before they went out or were
    /// acknowledged, or 100 000 already waited for the broker. Each is also
    /// logged.
    pub discarded: u64,
    /// Commands not executed because they arrived retained or were older
    /// than the consumer's freshness window; each is also logged.
    pub stale: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) unsolicited: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) publish_errors: AtomicU64,
    pub(crate) discarded: AtomicU64,
    pub(crate) stale: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            published: get(&self.published),
            received: get(&self.received),
            duplicates: get(&self.duplicates),
            decode_errors: get(&self.decode_errors),
            unsolicited: get(&self.unsolicited),
            reconnects: get(&self.reconnects),
            publish_errors: get(&self.publish_errors),
            discarded: get(&self.discarded),
            stale: get(&self.stale),
            mqtt_version: None,
        }
    }

    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}
