//! What the producer, consumer and monitor handles share: blocking on the
//! one runtime with a timeout, thread-safe last errors, counters.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use oc2::client::{Stats, runtime};

use crate::config::{OC2_MQTT_AUTO, mqtt_version_to_c, oc2_mqtt_version};
use crate::error::{Failure, oc2_result};
use crate::ffi::LastError;

/// Pass as `timeout_ms` to wait without limit.
pub const OC2_WAIT_FOREVER: u32 = u32::MAX;

/// Runs `fut` to completion on the library's runtime, blocking this thread.
///
/// Never called from a runtime thread: C threads and the consumer's own
/// callback thread are not runtime threads.
pub(crate) fn block<F: Future>(fut: F) -> F::Output {
    runtime().block_on(fut)
}

/// Like [`block`], giving up after `timeout_ms` with `OC2_RESULT_TIMEOUT`
/// (`OC2_WAIT_FOREVER`: no limit; 0: only what is ready now).
pub(crate) fn block_for<F: Future>(timeout_ms: u32, fut: F) -> Result<F::Output, oc2_result> {
    if timeout_ms == OC2_WAIT_FOREVER {
        return Ok(block(fut));
    }
    let limit = Duration::from_millis(u64::from(timeout_ms));
    block(async move { tokio::time::timeout(limit, fut).await })
        .map_err(|_| oc2_result::OC2_RESULT_TIMEOUT)
}

/// The last error of a handle used from several threads.
#[derive(Default, Debug)]
pub(crate) struct SharedError(Mutex<LastError>);

impl SharedError {
    fn lock(&self) -> std::sync::MutexGuard<'_, LastError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Records `e`'s text and returns its code.
    pub(crate) fn fail(&self, e: &impl Failure) -> oc2_result {
        self.lock().fail(e)
    }

    pub(crate) fn set(&self, text: impl Into<String>) {
        self.lock().set(text);
    }

    pub(crate) fn text(&self) -> String {
        self.lock().text().to_owned()
    }
}

/// Counters of a producer, consumer or monitor.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct oc2_stats {
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
    /// Publishes the broker refused (each is also logged).
    pub publish_errors: u64,
    /// Commands not executed because they arrived retained or were older
    /// than the consumer's freshness window (each is also logged).
    pub stale: u64,
    /// The MQTT version spoken with the broker: `OC2_MQTT_V5` or
    /// `OC2_MQTT_V311`; `OC2_MQTT_AUTO` before the first connection.
    pub mqtt_version: oc2_mqtt_version,
    /// Publishes the client dropped itself, never refused by the broker:
    /// closed before they were sent or acknowledged, or too many waiting
    /// (each is also logged).
    pub discarded: u64,
}

impl From<Stats> for oc2_stats {
    fn from(s: Stats) -> Self {
        Self {
            published: s.published,
            received: s.received,
            duplicates: s.duplicates,
            decode_errors: s.decode_errors,
            unsolicited: s.unsolicited,
            reconnects: s.reconnects,
            publish_errors: s.publish_errors,
            stale: s.stale,
            mqtt_version: s.mqtt_version.map_or(OC2_MQTT_AUTO, mqtt_version_to_c),
            discarded: s.discarded,
        }
    }
}
