//! What a client reports besides messages: its connection state, as a
//! stream of [`ConnectionEvent`]s, and the core's log records, handed to a
//! callback (for bindings, whose host has no `tracing` subscriber).
//!
//! Both are decided here, once; every binding only converts them (Node
//! emits `'connect'`, `'offline'`, ...; C calls `on_connect` /
//! `on_disconnect` and a log callback).

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::mpsc;

use super::config::MqttVersion;
use super::lock;
use crate::error::Error;

/// A change in a client's connection to the broker.
///
/// The first event a new [`ConnectionEvents`] yields is the state at the
/// time it was made (`Connected` while connected), then every change:
/// `Offline` when the connection is lost, `Reconnecting` before each attempt
/// and `ReconnectFailed` after each failed one, `Connected` again once
/// back (subscriptions restored when the session was not resumed), and
/// `Closed`, the last one, when the application closed the client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// Connected and subscribed: the first time, or again after a loss.
    Connected {
        /// The broker URL in use (after a failover, the one that answered).
        broker: String,
        /// The MQTT version spoken (`V5` or `V311`).
        mqtt_version: MqttVersion,
        /// Whether the broker resumed the session (a stable client id):
        /// what was queued while away is delivered now.
        session_resumed: bool,
    },
    /// The connection was lost; `Reconnecting` follows at once. Publishes
    /// are kept and sent again once connected.
    Offline {
        /// Why, in words (`the broker closed the connection`).
        reason: String,
    },
    /// A reconnect attempt starts.
    Reconnecting {
        /// The broker tried (with several, each in turn).
        broker: String,
        /// 1 for the first attempt since going offline.
        attempt: u32,
    },
    /// A reconnect attempt failed; another follows (with backoff, at most 30 s).
    ReconnectFailed {
        /// The broker tried.
        broker: String,
        /// The attempt that failed.
        attempt: u32,
        /// Why: connection refused, TLS, credentials no longer accepted, ...
        error: Arc<Error>,
    },
    /// Closed by the application; nothing follows.
    Closed,
}

impl ConnectionEvent {
    /// A stable name: `connected`, `offline`, `reconnecting`,
    /// `reconnect_failed` or `closed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connected { .. } => "connected",
            Self::Offline { .. } => "offline",
            Self::Reconnecting { .. } => "reconnecting",
            Self::ReconnectFailed { .. } => "reconnect_failed",
            Self::Closed => "closed",
        }
    }

    /// Why the client is not connected (`Offline`, `ReconnectFailed`), if it is not.
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Offline { reason } => Some(reason.clone()),
            Self::ReconnectFailed { error, .. } => Some(error.to_string()),
            _ => None,
        }
    }

    /// Whether it is a state (kept and replayed to new subscribers), rather
    /// than a step (`Reconnecting`, `ReconnectFailed`).
    fn is_state(&self) -> bool {
        matches!(
            self,
            Self::Connected { .. } | Self::Offline { .. } | Self::Closed
        )
    }
}

impl fmt::Display for ConnectionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connected {
                broker,
                mqtt_version,
                session_resumed,
            } => write!(
                f,
                "connected to {broker} (MQTT {mqtt_version}{})",
                if *session_resumed {
                    ", session resumed"
                } else {
                    ""
                }
            ),
            Self::Offline { reason } => write!(f, "offline: {reason}"),
            Self::Reconnecting { broker, attempt } => {
                write!(f, "reconnecting to {broker} (attempt {attempt})")
            }
            Self::ReconnectFailed {
                broker,
                attempt,
                error,
            } => write!(
                f,
                "reconnect to {broker} failed (attempt {attempt}): {error}"
            ),
            Self::Closed => f.write_str("closed"),
        }
    }
}

/// The connection events of one client, in order; from
/// `Producer::events`, `Consumer::events` or `Monitor::events`.
///
/// Each one gets every event from its creation on, starting with the
/// current state; it ends (`None`) after [`ConnectionEvent::Closed`]. It
/// does not lag nor drop events (they are few); one that is never read
/// keeps them, so drop it when done.
///
/// ```no_run
/// # async fn demo(producer: oc2mqtt::client::Producer) {
/// use oc2mqtt::client::ConnectionEvent;
/// let mut events = producer.events();
/// while let Some(e) = events.next().await {
///     match e {
///         ConnectionEvent::Offline { reason } => eprintln!("broker gone: {reason}"),
///         ConnectionEvent::Connected { broker, .. } => eprintln!("connected to {broker}"),
///         _ => {}
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct ConnectionEvents {
    rx: mpsc::UnboundedReceiver<ConnectionEvent>,
}

impl ConnectionEvents {
    /// The next event; `None` after `Closed`.
    pub async fn next(&mut self) -> Option<ConnectionEvent> {
        self.rx.recv().await
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<ConnectionEvent> {
        self.rx.try_recv().ok()
    }

    /// The next event, blocking this thread (not a runtime thread); `None`
    /// after `Closed`.
    pub fn blocking_next(&mut self) -> Option<ConnectionEvent> {
        self.rx.blocking_recv()
    }
}

/// Where a connection publishes its events: the last state, and the
/// subscribers.
#[derive(Default)]
pub(crate) struct EventHub(Mutex<HubState>);

#[derive(Default)]
struct HubState {
    state: Option<ConnectionEvent>,
    subscribers: Vec<mpsc::UnboundedSender<ConnectionEvent>>,
    closed: bool,
}

impl EventHub {
    /// Hands `event` to every subscriber; after `Closed`, nothing more.
    pub(crate) fn emit(&self, event: ConnectionEvent) {
        // Logged before taking the lock: a logger may subscribe.
        tracing::debug!(event = %event, "connection event");
        let mut hub = lock(&self.0);
        if hub.closed {
            return;
        }
        if event.is_state() {
            hub.state = Some(event.clone());
        }
        hub.subscribers.retain(|s| s.send(event.clone()).is_ok());
        if matches!(event, ConnectionEvent::Closed) {
            hub.closed = true;
            hub.subscribers.clear();
        }
    }

    /// A new subscriber, whose first event is the current state.
    pub(crate) fn subscribe(&self) -> ConnectionEvents {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut hub = lock(&self.0);
        if let Some(state) = &hub.state {
            let _ = tx.send(state.clone());
        }
        if !hub.closed {
            hub.subscribers.push(tx);
        }
        ConnectionEvents { rx }
    }
}

// ---------------------------------------------------------------------------
// Log records

/// How severe a log record is; a logger set with [`set_logger`] receives
/// this level and the more severe ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum LogLevel {
    /// Something failed and was given up (a handler panicked, a subscription refused).
    Error = 1,
    /// Something went wrong and was handled (connection lost, publish refused).
    Warn = 2,
    /// A change worth knowing (connected, reconnected).
    Info = 3,
    /// Detail for debugging (subscribed, command sent).
    Debug = 4,
    /// Everything.
    Trace = 5,
}

impl LogLevel {
    /// Every level, most severe first.
    pub const ALL: [Self; 5] = [
        Self::Error,
        Self::Warn,
        Self::Info,
        Self::Debug,
        Self::Trace,
    ];

    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }

    fn of(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::ERROR => Self::Error,
            tracing::Level::WARN => Self::Warn,
            tracing::Level::INFO => Self::Info,
            tracing::Level::DEBUG => Self::Debug,
            tracing::Level::TRACE => Self::Trace,
        }
    }
}

impl std::str::FromStr for LogLevel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(Self::Error),
            "warn" | "warning" => Ok(Self::Warn),
            "info" => Ok(Self::Info),
            "debug" => Ok(Self::Debug),
            "trace" => Ok(Self::Trace),
            _ => Err(Error::Config(format!(
                "unknown log level '{s}'; expected error, warn, info, debug or trace"
            ))),
        }
    }
}

/// One log record of the core, as handed to a logger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its severity.
    pub level: LogLevel,
    /// Where it comes from (`oc2mqtt::client::connection`).
    pub target: String,
    /// What happened (`connection lost; reconnecting`).
    pub message: String,
    /// The structured fields, in order (`why` → `the broker closed the connection`).
    pub fields: Vec<(String, String)>,
}

impl LogRecord {
    /// The message followed by its fields (`connection lost; reconnecting
    /// why="the broker closed the connection"`), for loggers that take one line.
    pub fn text(&self) -> String {
        let mut out = self.message.clone();
        for (k, v) in &self.fields {
            let _ = write!(out, " {k}={v:?}");
        }
        out
    }
}

/// What [`set_logger`] takes: a function of each record.
pub type LogFn = Box<dyn Fn(&LogRecord) + Send + Sync>;

type Logger = Arc<dyn Fn(&LogRecord) + Send + Sync>;

/// The logger set by [`set_logger`], and the most detailed level it takes
/// (0: none).
static LOGGER: RwLock<Option<Logger>> = RwLock::new(None);
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);

/// Routes the core's log records (its `tracing` events) at `level` and
/// above to `logger`, replacing the logger set before; `None` turns
/// logging off. For bindings and programs without a `tracing` subscriber
/// of their own: the first call installs one as the process's global
/// default, and fails with `Error::Config` if another is installed already
/// (use that one then).
///
/// `logger` runs on the thread that logged (a runtime thread, or the
/// caller's), so it must be quick and must not block; a record logged from
/// inside `logger` is dropped rather than recursing.
///
/// ```
/// use oc2mqtt::client::{LogLevel, set_logger};
/// set_logger(LogLevel::Warn, Some(Box::new(|r| eprintln!("{}: {}", r.level.as_str(), r.text()))))
///     .expect("no other tracing subscriber in this program");
/// set_logger(LogLevel::Warn, None).expect("turned off");
/// ```
pub fn set_logger(level: LogLevel, logger: Option<LogFn>) -> crate::Result<()> {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    let installed = *INSTALLED.get_or_init(|| {
        tracing::dispatcher::set_global_default(tracing::Dispatch::new(Forwarder)).is_ok()
    });
    if !installed {
        return Err(Error::Config(
            "another tracing subscriber is installed in this process; the core logs to it"
                .to_owned(),
        ));
    }
    let on = logger.is_some();
    *LOGGER
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = logger.map(Logger::from);
    MAX_LEVEL.store(if on { level as u8 } else { 0 }, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
    Ok(())
}

thread_local! {
    /// Set while this thread runs the logger: what it logs is dropped.
    static IN_LOGGER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The subscriber [`set_logger`] installs: no spans, only events, each
/// formatted and handed to the logger.
struct Forwarder;

impl tracing::Subscriber for Forwarder {
    fn register_callsite(
        &self,
        _meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level can change at any time: decide per event in `enabled`.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.is_event() && (LogLevel::of(meta.level()) as u8) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        use tracing::level_filters::LevelFilter;
        Some(match MAX_LEVEL.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        if IN_LOGGER.with(std::cell::Cell::get) {
            return;
        }
        let Some(logger) = LOGGER
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        else {
            return;
        };
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let record = LogRecord {
            level: LogLevel::of(meta.level()),
            target: meta.target().to_owned(),
            message: fields.message,
            fields: fields.others,
        };
        IN_LOGGER.with(|f| f.set(true));
        // A logger that panics loses its record, not the caller's work.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| logger(&record)));
        IN_LOGGER.with(|f| f.set(false));
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(String, String)>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.others
                .push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.others.push((field.name().to_owned(), text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected() -> ConnectionEvent {
        ConnectionEvent::Connected {
            broker: "mqtt://b:1883".to_owned(),
            mqtt_version: MqttVersion::V5,
            session_resumed: false,
        }
    }

    #[test]
    fn a_new_subscriber_starts_with_the_current_state() {
        let hub = EventHub::default();
        hub.emit(connected());
        let mut events = hub.subscribe();
        assert_eq!(events.try_next().map(|e| e.kind()), Some("connected"));
        hub.emit(ConnectionEvent::Offline {
            reason: "gone".to_owned(),
        });
        assert_eq!(
            events.try_next().and_then(|e| e.reason()),
            Some("gone".to_owned())
        );
        assert!(events.try_next().is_none());
    }

    #[test]
    fn steps_are_not_replayed_and_closed_ends_the_stream() {
        let hub = EventHub::default();
        hub.emit(ConnectionEvent::Offline {
            reason: "gone".to_owned(),
        });
        hub.emit(ConnectionEvent::Reconnecting {
            broker: "mqtt://b:1883".to_owned(),
            attempt: 1,
        });
        let mut late = hub.subscribe();
        assert_eq!(late.try_next().map(|e| e.kind()), Some("offline"));
        assert!(late.try_next().is_none());
        hub.emit(ConnectionEvent::Closed);
        hub.emit(connected());
        assert_eq!(late.blocking_next().map(|e| e.kind()), Some("closed"));
        assert!(late.blocking_next().is_none(), "nothing after closed");
        let after = hub.subscribe();
        let kinds: Vec<_> = std::iter::from_fn({
            let mut after = after;
            move || after.try_next()
        })
        .map(|e| e.kind())
        .collect();
        assert_eq!(kinds, ["closed"]);
    }

    #[test]
    fn events_read_as_words() {
        assert_eq!(
            connected().to_string(),
            "connected to mqtt://b:1883 (MQTT 5)"
        );
        let failed = ConnectionEvent::ReconnectFailed {
            broker: "mqtt://b:1883".to_owned(),
            attempt: 2,
            error: Arc::new(Error::Connect("refused".to_owned())),
        };
        assert_eq!(
            failed.to_string(),
            "reconnect to mqtt://b:1883 failed (attempt 2): refused"
        );
        assert_eq!(failed.reason().as_deref(), Some("refused"));
    }

    #[test]
    fn log_levels_parse_and_order() {
        assert_eq!("WARNING".parse::<LogLevel>().ok(), Some(LogLevel::Warn));
        assert!("loud".parse::<LogLevel>().is_err());
        assert!(LogLevel::Error < LogLevel::Trace);
    }

    #[test]
    fn records_reach_the_logger_with_their_fields_and_level_filter() {
        let seen: Arc<Mutex<Vec<LogRecord>>> = Arc::default();
        let sink = Arc::clone(&seen);
        // Other tests log on their own threads meanwhile: keep this one's.
        let here = std::thread::current().id();
        set_logger(
            LogLevel::Info,
            Some(Box::new(move |r| {
                // Logged from inside the logger: dropped, no recursion.
                tracing::error!("from inside the logger");
                if std::thread::current().id() == here {
                    lock(&sink).push(r.clone());
                }
            })),
        )
        .expect("the test binary has no other subscriber");
        tracing::warn!(why = "the broker closed the connection", "connection lost");
        tracing::debug!("too detailed");
        set_logger(LogLevel::Trace, None).expect("off");
        tracing::error!("after turning it off");
        let seen = lock(&seen);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].level, LogLevel::Warn);
        assert_eq!(seen[0].message, "connection lost");
        assert_eq!(
            seen[0].text(),
            "connection lost why=\"the broker closed the connection\""
        );
        assert!(seen[0].target.starts_with("oc2mqtt"), "{}", seen[0].target);
    }
}
