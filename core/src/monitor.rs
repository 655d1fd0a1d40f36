//! The monitor: watches OpenC2 traffic, pairs responses with their command
//! and reports latency and responders that never answered.
//!
//! ```no_run
//! # async fn demo() -> oc2mqtt::Result<()> {
//! use oc2mqtt::client::{ClientConfig, Monitor, MonitorEvent};
//!
//! let monitor = Monitor::connect(ClientConfig::new("mqtt://127.0.0.1:1883"), None).await?;
//! while let Some(event) = monitor.next().await {
//!     if let MonitorEvent::Response { observed, latency } = event {
//!         println!("{} answered in {latency:?}", observed.message.headers.from.unwrap_or_default());
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::client::{ClientConfig, Connection, Counters, Inbound, Stats, lock, monotonic_ms};
use crate::codec::{Dialect, Encoding};
use crate::correlate::{Correlator, Outcome};
use crate::dedup::{DedupKey, Deduplicator};
use crate::error::{MessageError, Result};
use crate::message::{Message, MsgType, now_ms};
use crate::topics::Role;

/// How long the monitor waits for the responses to a command.
pub const DEFAULT_PAIRING_WINDOW: Duration = Duration::from_secs(30);

/// A decoded message as the monitor saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The topic.
    pub topic: String,
    /// The message.
    pub message: Message,
    /// Its encoding.
    pub encoding: Encoding,
    /// Its dialect.
    pub dialect: Dialect,
    /// When it arrived, milliseconds since the epoch.
    pub received_ms: i64,
    /// What it holds that the specification does not allow but that was
    /// kept ([`crate::codec::Decoded::warnings`]); empty when it conforms.
    pub warnings: Vec<String>,
}

/// What the monitor reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorEvent {
    /// A command.
    Request(Observed),
    /// A response; `latency` is the time since its command was seen, if it was.
    Response {
        /// The response.
        observed: Observed,
        /// Time since the command was seen.
        latency: Option<Duration>,
    },
    /// A notification.
    Notification(Observed),
    /// A payload that could not be decoded (shown, not dropped).
    Undecodable {
        /// The topic.
        topic: String,
        /// The raw payload.
        payload: Vec<u8>,
        /// Why it could not be decoded.
        error: MessageError,
        /// When it arrived, milliseconds since the epoch.
        received_ms: i64,
    },
    /// The pairing window of a command passed with addressed responders missing.
    Unanswered {
        /// The command's request id.
        request_id: String,
        /// Responders in its `to` that sent no final response.
        missing: Vec<String>,
    },
}

impl MonitorEvent {
    /// The stable name every binding shows: `request`, `response`,
    /// `notification`, `undecodable`, `unanswered`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Request(_) => "request",
            Self::Response { .. } => "response",
            Self::Notification(_) => "notification",
            Self::Undecodable { .. } => "undecodable",
            Self::Unanswered { .. } => "unanswered",
        }
    }
}

/// Where an event leaves its command's exchange, as the monitor's pairing
/// sees it right after the event ([`Monitor::next_with_pairing`]): what a
/// live view shows without waiting for the pairing window to end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pairing {
    /// Not part of an exchange the monitor pairs: a notification, a command
    /// without a request id or with `response_requested: none`, a response
    /// to a command it did not see, an undecodable payload.
    #[default]
    Unpaired,
    /// Responses are still awaited until `deadline_ms`.
    Open {
        /// Addressed responders (the command's `to`) that have not sent a
        /// final response yet, sorted; empty for a broadcast, which any
        /// responder may answer until the deadline.
        awaiting: Vec<String>,
        /// When the pairing window ends, milliseconds since the epoch.
        deadline_ms: i64,
    },
    /// Every addressed responder sent a final response (this event's
    /// response, or an earlier one of which this is a copy).
    Complete,
    /// The pairing window passed with these addressed responders missing
    /// (the [`MonitorEvent::Unanswered`] event).
    Unanswered {
        /// Responders that sent no final response.
        missing: Vec<String>,
    },
}

/// An open exchange: when its command was seen, when its window ends.
struct Seen {
    at: Instant,
    deadline_ms: i64,
}

/// Open exchanges, and completed ones kept for the pairing window so that
/// the same response seen on `oc2/rsp` and `oc2/rsp/<producer>` pairs twice.
#[derive(Default)]
struct Pairs {
    open: Correlator<Seen>,
    done: HashMap<String, Instant>,
    /// When `done` was last swept: a sweep walks every entry, so it runs
    /// at most every [`SWEEP_EVERY`], not per message (lookups check the age).
    swept: Option<Instant>,
}

/// How often completed exchanges past the pairing window are dropped.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

impl Pairs {
    /// The state of the open exchange `request_id`, or `Unpaired`.
    fn open_state(&mut self, request_id: &str) -> Pairing {
        let deadline_ms = self.open.get_mut(request_id).map(|s| s.deadline_ms);
        match (deadline_ms, self.open.missing(request_id)) {
            (Some(deadline_ms), Some(awaiting)) => Pairing::Open {
                awaiting,
                deadline_ms,
            },
            _ => Pairing::Unpaired,
        }
    }
}

struct Inner {
    conn: Connection,
    window: Duration,
    pairs: Mutex<Pairs>,
    /// Payloads seen in the last second: the copies of one publish on
    /// several topics (a command to two devices; a response from a peer
    /// that publishes on `oc2/rsp` and `oc2/rsp/<producer>`) show once.
    copies: Mutex<Deduplicator>,
    events: mpsc::UnboundedSender<(MonitorEvent, Pairing)>,
    shutdown: watch::Sender<bool>,
}

impl Inner {
    fn pairs(&self) -> std::sync::MutexGuard<'_, Pairs> {
        lock(&self.pairs)
    }

    fn expire(&self) {
        let mut pairs = self.pairs();
        let window = self.window;
        if pairs.swept.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            pairs.done.retain(|_, sent| sent.elapsed() < window);
            pairs.swept = Some(Instant::now());
        }
        let expired = pairs.open.expire(monotonic_ms());
        drop(pairs);
        for closed in expired {
            if !closed.missing.is_empty() {
                let pairing = Pairing::Unanswered {
                    missing: closed.missing.clone(),
                };
                let event = MonitorEvent::Unanswered {
                    request_id: closed.request_id,
                    missing: closed.missing,
                };
                let _ = self.events.send((event, pairing));
            }
        }
    }

    fn observe(&self, m: &Inbound) -> (MonitorEvent, Pairing) {
        let received_ms = now_ms();
        let decoded = match self.conn.decode(m) {
            Ok(d) => d,
            Err(error) => {
                let event = MonitorEvent::Undecodable {
                    topic: m.topic().to_owned(),
                    payload: m.payload().to_vec(),
                    error,
                    received_ms,
                };
                return (event, Pairing::Unpaired);
            }
        };
        let observed = Observed {
            warnings: decoded.warnings,
            topic: m.topic().to_owned(),
            message: decoded.message,
            encoding: decoded.encoding,
            dialect: decoded.dialect,
            received_ms,
        };
        match observed.message.msg_type() {
            MsgType::Request => {
                let mut pairing = Pairing::Unpaired;
                if let Some(id) = &observed.message.headers.request_id {
                    let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
                    let deadline = monotonic_ms().saturating_add(window);
                    let seen = Seen {
                        at: Instant::now(),
                        deadline_ms: received_ms
                            .saturating_add(i64::try_from(window).unwrap_or(i64::MAX)),
                    };
                    let mut pairs = self.pairs();
                    // The same command on several topics: the first sighting
                    // counts (opening it again fails and changes nothing).
                    let opened = pairs
                        .open
                        .open_command(&observed.message, None, deadline, seen);
                    if !matches!(opened, Ok(false)) {
                        pairing = pairs.open_state(id);
                    }
                }
                (MonitorEvent::Request(observed), pairing)
            }
            MsgType::Response => {
                let id = observed
                    .message
                    .headers
                    .request_id
                    .as_deref()
                    .unwrap_or_default();
                let mut pairs = self.pairs();
                let (latency, pairing) = match pairs.open.on_response(&observed.message) {
                    Outcome::Open { data, .. } => {
                        let latency = data.at.elapsed();
                        (Some(latency), pairs.open_state(id))
                    }
                    Outcome::Complete(c) => {
                        pairs.done.insert(c.request_id, c.data.at);
                        (Some(c.data.at.elapsed()), Pairing::Complete)
                    }
                    Outcome::Unsolicited => {
                        match pairs.done.get(id).filter(|at| at.elapsed() < self.window) {
                            Some(at) => (Some(at.elapsed()), Pairing::Complete),
                            None => {
                                Counters::bump(&self.conn.counters.unsolicited);
                                (None, Pairing::Unpaired)
                            }
                        }
                    }
                };
                drop(pairs);
                (MonitorEvent::Response { observed, latency }, pairing)
            }
            MsgType::Notification => (MonitorEvent::Notification(observed), Pairing::Unpaired),
        }
    }

    /// Runs on the connection's task for every message.
    fn on_message(&self, m: &Inbound) {
        if lock(&self.copies).check(DedupKey::payload(m.payload()), monotonic_ms()) {
            let _ = self.events.send(self.observe(m));
        } else {
            Counters::bump(&self.conn.counters.duplicates);
        }
        self.expire();
    }
}

/// Watches traffic on a topic filter; one MQTT connection.
pub struct Monitor {
    inner: Arc<Inner>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<(MonitorEvent, Pairing)>>,
}

impl Monitor {
    /// Subscribes to `filter` (default: `oc2/#` under the configured prefix),
    /// pairing responses within [`DEFAULT_PAIRING_WINDOW`].
    pub async fn connect(config: ClientConfig, filter: Option<String>) -> Result<Self> {
        Self::connect_with_window(config, filter, DEFAULT_PAIRING_WINDOW).await
    }

    /// Like [`Monitor::connect`] with a pairing window of your choice.
    pub async fn connect_with_window(
        config: ClientConfig,
        filter: Option<String>,
        window: Duration,
    ) -> Result<Self> {
        let filters = match filter {
            Some(f) => vec![f],
            None => config
                .topics()?
                .subscriptions(Role::Monitor, None, &[] as &[&str])?,
        };
        let conn = Connection::open(&config, filters).await?;
        let (events, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            conn,
            window,
            pairs: Mutex::new(Pairs::default()),
            copies: Mutex::new(Deduplicator::new(
                crate::rules::REPEAT_WINDOW_MS,
                crate::dedup::DEFAULT_CAPACITY,
            )),
            events,
            shutdown: watch::Sender::new(false),
        });
        let weak = Arc::downgrade(&inner);
        inner.conn.on_message(move |m| {
            if let Some(inner) = weak.upgrade() {
                inner.on_message(m);
            }
        });
        // Exchanges that time out while the topic is quiet are reported too.
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                inner.expire();
            }
        });
        Ok(Self {
            inner,
            rx: tokio::sync::Mutex::new(rx),
        })
    }

    /// The next event; `None` once closed.
    pub async fn next(&self) -> Option<MonitorEvent> {
        self.next_with_pairing().await.map(|(event, _)| event)
    }

    /// The next event with where it left its command's exchange
    /// ([`Pairing`]: the responders still awaited and the deadline as soon
    /// as the command is seen, complete, unanswered); `None` once closed.
    pub async fn next_with_pairing(&self) -> Option<(MonitorEvent, Pairing)> {
        let mut closed = self.inner.shutdown.subscribe();
        if *closed.borrow() {
            return None;
        }
        let mut rx = self.rx.lock().await;
        tokio::select! {
            e = rx.recv() => e,
            _ = closed.wait_for(|c| *c) => None,
        }
    }

    /// The next event and every one ready with it, at most `max` (at least
    /// one), each with its [`Pairing`]; empty once closed. For bindings that
    /// hand events over in bursts: one wake-up of a JavaScript or Python
    /// thread per burst instead of per event.
    pub async fn next_batch(&self, max: usize) -> Vec<(MonitorEvent, Pairing)> {
        let mut closed = self.inner.shutdown.subscribe();
        if *closed.borrow() {
            return Vec::new();
        }
        let mut rx = self.rx.lock().await;
        let first = tokio::select! {
            e = rx.recv() => e,
            _ = closed.wait_for(|c| *c) => None,
        };
        let Some(first) = first else {
            return Vec::new();
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        batch
    }

    /// Commands seen whose addressed responders have not all answered yet:
    /// request id and the missing responders.
    pub fn pending(&self) -> Vec<(String, Vec<String>)> {
        self.inner
            .pairs()
            .open
            .pending()
            .into_iter()
            .filter(|(_, missing)| !missing.is_empty())
            .collect()
    }

    /// How long a command waits for its responses.
    pub fn pairing_window(&self) -> Duration {
        self.inner.window
    }

    /// The broker URL connected to (after a failover, the one in use).
    pub fn broker(&self) -> String {
        self.inner.conn.url()
    }

    /// The MQTT client id in use: configured, read from its file, or
    /// generated (then the broker session ends with the connection).
    pub fn client_id(&self) -> &str {
        self.inner.conn.client_id()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.conn.stats()
    }

    /// Stops and disconnects.
    pub async fn close(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner.conn.close().await;
    }

    /// The connection's state changes from now on, starting with the
    /// current state: connected, offline, reconnecting, closed.
    pub fn events(&self) -> crate::client::ConnectionEvents {
        self.inner.conn.events()
    }
}
