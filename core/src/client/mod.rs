//! The MQTT side: the `mqtt-protocol-core` engine (MQTT v5 and 3.1.1)
//! driven on tokio over TCP, TLS (rustls) or WebSocket, and the three roles
//! built on it: [`Producer`], [`Consumer`], [`Monitor`].
//!
//! Why this engine: it is sans-IO (packets, packet ids, QoS flows and
//! PINGREQ timing, no sockets or threads), speaks v5 and 3.1.1 from one
//! API, and lets the PINGREQ interval be set (MQTT-T 3.4: within 95 % of
//! the keep-alive). So the handshake, version fallback, refusals and
//! reconnects are ours to decide, as MQTT-T and real brokers need.
//! `bench/rust/RESULTS.md` records the comparison with rumqttc.
//!
//! Every role is `async`; bindings and blocking callers use the one shared
//! [`runtime()`].

mod config;
mod connection;
mod events;
mod outbox;
mod stats;
mod transport;

pub use config::{BROKER_SCHEMES, ClientConfig, MAX_KEEP_ALIVE_SECS, MqttVersion, QOS_LEVELS};
pub use connection::MAX_BACKOFF;
pub use events::{ConnectionEvent, ConnectionEvents, LogFn, LogLevel, LogRecord, set_logger};
pub use stats::Stats;

pub(crate) use connection::{Connection, Inbound, SharedProbe};
pub(crate) use stats::Counters;

pub use crate::consumer::{Consumer, ConsumerOptions, Incoming};
pub use crate::monitor::{Monitor, MonitorEvent};
pub use crate::producer::{
    Exchange, Producer, Reply, SendOptions, Settle, SharedExchange, Summary,
};

use std::sync::OnceLock;
use std::time::Instant;

/// Worker threads of [`runtime()`], unless the environment variable
/// `OC2MQTT_WORKER_THREADS` (1 to 256) says otherwise, read once.
///
/// With one worker every connection's task runs on the same thread, so a
/// message handed from task to task (connection → consumer → reply →
/// connection) wakes no second, parked thread: on the project's 2-core VM
/// a sequential exchange took 6.7 instead of 9.6 context switches and 132
/// instead of 191 µs of client CPU, p50 167 instead of 205 µs. But one
/// worker gets one thread's share of a busy machine: pipelined exchanges
/// (64 in flight) lost 12 % (`bench/rust/RESULTS.md`, session 11). So two
/// stay the default, and a process that sends one command at a time can
/// set 1.
const WORKER_THREADS: usize = 2;

/// The tokio runtime shared by every client in the process (two worker
/// threads, or `OC2MQTT_WORKER_THREADS`), for callers that are not async themselves.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let workers = worker_threads(std::env::var("OC2MQTT_WORKER_THREADS").ok().as_deref());
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            // Each `Consumer::serve` keeps a thread waiting for its next
            // command (leader and followers) besides its running handlers:
            // with tokio's default of 512, the 513th serving consumer of a
            // process would never run a command (the fleet bench: 1 000
            // consumers, 488 silent). Idle threads end after 10 s.
            .max_blocking_threads(8192)
            .thread_name("oc2mqtt")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime (out of threads or file descriptors?)")
    })
}

/// The worker threads for a value of `OC2MQTT_WORKER_THREADS`: 1 to 256,
/// else [`WORKER_THREADS`].
fn worker_threads(env: Option<&str>) -> usize {
    env.and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=256).contains(n))
        .unwrap_or(WORKER_THREADS)
}

pub(crate) use crate::lock;

/// What a caught panic said (its `&str` or `String` payload), for the error
/// or the `500` it becomes; bindings use it for panics of their own tasks.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Milliseconds on a monotonic clock, for the sans-IO parts.
pub(crate) fn monotonic_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_come_from_the_environment_within_1_to_256() {
        assert_eq!(worker_threads(None), WORKER_THREADS);
        assert_eq!(worker_threads(Some("1")), 1);
        assert_eq!(worker_threads(Some(" 4 ")), 4);
        assert_eq!(worker_threads(Some("0")), WORKER_THREADS);
        assert_eq!(worker_threads(Some("257")), WORKER_THREADS);
        assert_eq!(worker_threads(Some("two")), WORKER_THREADS);
    }
}
