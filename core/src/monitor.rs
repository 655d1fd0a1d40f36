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

use serde::ser::{Serialize, SerializeStruct, Serializer};
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
    /// The names of [`MonitorEvent::kind`].
    pub const KINDS: [&'static str; 5] = [
        "request",
        "response",
        "notification",
        "undecodable",
        "unanswered",
    ];

    /// The stable name every binding shows: `request`, `response`,
    /// `notification`, `undecodable`, `unanswered`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Request(_) => Self::KINDS[0],
            Self::Response { .. } => Self::KINDS[1],
            Self::Notification(_) => Self::KINDS[2],
            Self::Undecodable { .. } => Self::KINDS[3],
            Self::Unanswered { .. } => Self::KINDS[4],
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

/// One definition of what a binding shows for an event, in snake case
/// (Node turns the field names to camel case, as for everything it returns):
/// `type` (the [`MonitorEvent::kind`]), then
/// - `request`, `notification`, `response`: `topic`, `message`, the
///   headers' `request_id`, `from` and `to`, `encoding`, `dialect`,
///   `received_at` (milliseconds since the epoch) and `warnings`; a response
///   adds its `status` and `latency_ms` (`null` when its command was not seen);
/// - `undecodable`: `topic`, `payload` (bytes), `error` (`kind`, `path`,
///   `reason`) and `received_at`;
/// - `unanswered`: `request_id` and `missing`.
///
/// [`Paired`] adds the `pairing` of requests and responses.
impl Serialize for MonitorEvent {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_event(self, None, s)
    }
}

/// The most events [`Monitor::next_batch`] hands a binding at once: large
/// enough that a dashboard's burst costs its host thread one wake-up per
/// 256 events, small enough that a batch converts in well under a
/// millisecond and the first event is not held behind thousands.
pub const BATCH: usize = 256;

/// An event with its [`Pairing`], as [`Monitor::next_batch`] gives them:
/// serialized as the event, with `pairing` for a request or a response
/// (the exchanges the pairing concerns).
#[derive(Debug, Clone, Copy)]
pub struct Paired<'a>(pub &'a MonitorEvent, pub &'a Pairing);

impl Serialize for Paired<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let pairing = match self.0 {
            MonitorEvent::Request(_) | MonitorEvent::Response { .. } => Some(self.1),
            _ => None,
        };
        serialize_event(self.0, pairing, s)
    }
}

fn serialize_event<S: Serializer>(
    ev: &MonitorEvent,
    pairing: Option<&Pairing>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let with = usize::from(pairing.is_some());
    match ev {
        MonitorEvent::Request(o) | MonitorEvent::Notification(o) => {
            let mut m = s.serialize_struct("MonitorEvent", 10 + with)?;
            observed_fields(&mut m, ev.kind(), o)?;
            if let Some(p) = pairing {
                m.serialize_field("pairing", p)?;
            }
            m.end()
        }
        MonitorEvent::Response { observed, latency } => {
            let mut m = s.serialize_struct("MonitorEvent", 12 + with)?;
            observed_fields(&mut m, ev.kind(), observed)?;
            m.serialize_field("status", &observed.message.response().map(|r| r.status))?;
            m.serialize_field("latency_ms", &latency.map(|l| l.as_secs_f64() * 1000.0))?;
            if let Some(p) = pairing {
                m.serialize_field("pairing", p)?;
            }
            m.end()
        }
        MonitorEvent::Undecodable {
            topic,
            payload,
            error,
            received_ms,
        } => {
            let mut m = s.serialize_struct("MonitorEvent", 5)?;
            m.serialize_field("type", ev.kind())?;
            m.serialize_field("topic", topic)?;
            m.serialize_field("payload", &Bytes(payload))?;
            m.serialize_field("error", error)?;
            m.serialize_field("received_at", received_ms)?;
            m.end()
        }
        MonitorEvent::Unanswered {
            request_id,
            missing,
        } => {
            let mut m = s.serialize_struct("MonitorEvent", 3)?;
            m.serialize_field("type", ev.kind())?;
            m.serialize_field("request_id", request_id)?;
            m.serialize_field("missing", missing)?;
            m.end()
        }
    }
}

/// The fields of a decoded message's event, `type` first.
fn observed_fields<M: SerializeStruct>(
    m: &mut M,
    kind: &'static str,
    o: &Observed,
) -> std::result::Result<(), M::Error> {
    let h = &o.message.headers;
    m.serialize_field("type", kind)?;
    m.serialize_field("topic", &o.topic)?;
    m.serialize_field("message", &o.message)?;
    m.serialize_field("request_id", &h.request_id)?;
    m.serialize_field("from", &h.from)?;
    m.serialize_field("to", &h.to)?;
    m.serialize_field("encoding", o.encoding.as_str())?;
    m.serialize_field("dialect", o.dialect.as_str())?;
    m.serialize_field("received_at", &o.received_ms)?;
    m.serialize_field("warnings", &o.warnings)
}

/// Bytes as serde's bytes (a host's bytes type), not a list of numbers.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// What a binding shows: `state` (`open`, `complete`, `unanswered`, or
/// `null` when unpaired), `awaiting` (the responders still awaited; for
/// `unanswered`, those missing) and `deadline` (when an open exchange's
/// window ends, milliseconds since the epoch, else `null`).
impl Serialize for Pairing {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (awaiting, deadline): (&[String], Option<i64>) = match self {
            Self::Unpaired | Self::Complete => (&[], None),
            Self::Open {
                awaiting,
                deadline_ms,
            } => (awaiting, Some(*deadline_ms)),
            Self::Unanswered { missing } => (missing, None),
        };
        let mut m = s.serialize_struct("Pairing", 3)?;
        m.serialize_field("state", &self.state())?;
        m.serialize_field("awaiting", awaiting)?;
        m.serialize_field("deadline", &deadline)?;
        m.end()
    }
}

impl Pairing {
    /// The names of [`Pairing::state`].
    pub const STATES: [&'static str; 3] = ["open", "complete", "unanswered"];

    /// Its state as every binding shows it: `open`, `complete`,
    /// `unanswered`, or `None` when unpaired.
    pub fn state(&self) -> Option<&'static str> {
        match self {
            Self::Unpaired => None,
            Self::Open { .. } => Some(Self::STATES[0]),
            Self::Complete => Some(Self::STATES[1]),
            Self::Unanswered { .. } => Some(Self::STATES[2]),
        }
    }
}

/// An open exchange: when its command was seen, when its window ends.
struct Seen {
    at: Instant,
    deadline_ms: i64,
}

/// How long a response to a command not seen yet waits for it. Brokers that
/// dispatch each topic on its own (ActiveMQ; RabbitMQ's queues under load)
/// can hand a monitor subscribed to `oc2/#` a device's response before the
/// command it answers, since the device got the command through another
/// destination; the two arrive within milliseconds of each other. A
/// response whose command does not come within this time is shown
/// unpaired, this much later.
pub const EARLY_RESPONSE_HOLD: Duration = Duration::from_millis(250);

/// Responses held for their command at most; past them, a response to an
/// unknown command is shown unpaired at once (a flood of strays must not
/// grow the monitor without bound).
const EARLY_RESPONSES_HELD: usize = 10_000;

/// A response seen before its command, held for [`EARLY_RESPONSE_HOLD`].
struct Early {
    observed: Observed,
    at: Instant,
}

/// The monitor's pairing, without I/O: commands and responses in, events
/// with their [`Pairing`] out.
///
/// Open exchanges, and completed ones kept for the pairing window so that
/// the same response seen on `oc2/rsp` and `oc2/rsp/<producer>` pairs
/// twice; responses waiting for a command seen after them.
struct Pairs {
    window: Duration,
    open: Correlator<Seen>,
    done: HashMap<String, Instant>,
    /// Responses whose command has not been seen yet, by request id, in
    /// arrival order.
    early: HashMap<String, Vec<Early>>,
    held: usize,
    /// Responses to commands never seen, shown since the owner last took
    /// this count (for [`Stats::unsolicited`]).
    strays: u64,
    /// When `done` was last swept: a sweep walks every entry, so it runs
    /// at most every [`SWEEP_EVERY`], not per message (lookups check the age).
    swept: Option<Instant>,
}

/// How often completed exchanges past the pairing window are dropped.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Events to show, in order.
type Shown = Vec<(MonitorEvent, Pairing)>;

impl Pairs {
    fn new(window: Duration) -> Self {
        Self {
            window,
            open: Correlator::new(),
            done: HashMap::new(),
            early: HashMap::new(),
            held: 0,
            strays: 0,
            swept: None,
        }
    }

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

    /// A command: its event, then those of the responses that came before it.
    fn request(&mut self, observed: Observed, now: Instant, shown: &mut Shown) {
        let mut pairing = Pairing::Unpaired;
        let Some(id) = observed.message.headers.request_id.clone() else {
            shown.push((MonitorEvent::Request(observed), pairing));
            return;
        };
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let deadline = monotonic_ms().saturating_add(window);
        let seen = Seen {
            at: now,
            deadline_ms: observed
                .received_ms
                .saturating_add(i64::try_from(window).unwrap_or(i64::MAX)),
        };
        // The same command on several topics: the first sighting counts
        // (opening it again fails and changes nothing).
        let opened = self
            .open
            .open_command(&observed.message, None, deadline, seen);
        if !matches!(opened, Ok(false)) {
            pairing = self.open_state(&id);
        }
        shown.push((MonitorEvent::Request(observed), pairing));
        if let Some(early) = self.early.remove(&id) {
            self.held -= early.len();
            for e in early {
                // Seen before its command: no time passed since the command.
                self.response(e.observed, Some(Duration::ZERO), now, shown);
            }
        }
    }

    /// A response: its event, unless it is held for its command. `ahead` is
    /// the latency of a response released by its command.
    fn response(
        &mut self,
        observed: Observed,
        ahead: Option<Duration>,
        now: Instant,
        shown: &mut Shown,
    ) {
        let id = observed
            .message
            .headers
            .request_id
            .as_deref()
            .unwrap_or_default();
        let (latency, pairing) = match self.open.on_response(&observed.message) {
            Outcome::Open { data, .. } => {
                let latency = ahead.unwrap_or_else(|| now.saturating_duration_since(data.at));
                (Some(latency), self.open_state(id))
            }
            Outcome::Complete(c) => {
                let latency = ahead.unwrap_or_else(|| now.saturating_duration_since(c.data.at));
                self.done.insert(c.request_id, c.data.at);
                (Some(latency), Pairing::Complete)
            }
            Outcome::Unsolicited => {
                match self.done.get(id).filter(|at| at.elapsed() < self.window) {
                    Some(at) => (
                        Some(ahead.unwrap_or_else(|| at.elapsed())),
                        Pairing::Complete,
                    ),
                    None if id.is_empty()
                        || ahead.is_some()
                        || self.held >= EARLY_RESPONSES_HELD =>
                    {
                        self.strays += 1;
                        shown.push((
                            MonitorEvent::Response {
                                observed,
                                latency: None,
                            },
                            Pairing::Unpaired,
                        ));
                        return;
                    }
                    None => {
                        let id = id.to_owned();
                        self.early
                            .entry(id)
                            .or_default()
                            .push(Early { observed, at: now });
                        self.held += 1;
                        return;
                    }
                }
            }
        };
        shown.push((MonitorEvent::Response { observed, latency }, pairing));
    }

    /// Exchanges whose window ended with responders missing, and responses
    /// whose command did not come in time.
    fn expire(&mut self, now: Instant, shown: &mut Shown) {
        let window = self.window;
        if self.swept.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            self.done.retain(|_, sent| sent.elapsed() < window);
            self.swept = Some(now);
        }
        for closed in self.open.expire(monotonic_ms()) {
            if !closed.missing.is_empty() {
                let pairing = Pairing::Unanswered {
                    missing: closed.missing.clone(),
                };
                let event = MonitorEvent::Unanswered {
                    request_id: closed.request_id,
                    missing: closed.missing,
                };
                shown.push((event, pairing));
            }
        }
        if self.held > 0 {
            let mut late: Vec<Early> = Vec::new();
            self.early.retain(|_, waiting| {
                // Held in arrival order: the oldest first.
                let due = waiting
                    .iter()
                    .take_while(|e| now.saturating_duration_since(e.at) >= EARLY_RESPONSE_HOLD)
                    .count();
                late.extend(waiting.drain(..due));
                !waiting.is_empty()
            });
            late.sort_by_key(|e| e.at);
            self.held -= late.len();
            self.strays += late.len() as u64;
            for e in late {
                shown.push((
                    MonitorEvent::Response {
                        observed: e.observed,
                        latency: None,
                    },
                    Pairing::Unpaired,
                ));
            }
        }
    }

    /// Responses to commands never seen since the last call.
    fn take_strays(&mut self) -> u64 {
        std::mem::take(&mut self.strays)
    }
}

struct Inner {
    conn: Connection,
    /// What it subscribed to.
    filters: Vec<String>,
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

    /// Hands `shown` to the application and counts its strays.
    fn send(&self, strays: u64, shown: Shown) {
        self.conn
            .counters
            .unsolicited
            .fetch_add(strays, std::sync::atomic::Ordering::Relaxed);
        for e in shown {
            let _ = self.events.send(e);
        }
    }

    fn expire(&self) {
        let mut shown = Vec::new();
        let strays = {
            let mut pairs = self.pairs();
            pairs.expire(Instant::now(), &mut shown);
            pairs.take_strays()
        };
        self.send(strays, shown);
    }

    fn observe(&self, m: &Inbound, shown: &mut Shown) -> u64 {
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
                shown.push((event, Pairing::Unpaired));
                return 0;
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
        let now = Instant::now();
        let mut pairs = self.pairs();
        match observed.message.msg_type() {
            MsgType::Request => pairs.request(observed, now, shown),
            MsgType::Response => pairs.response(observed, None, now, shown),
            MsgType::Notification => {
                shown.push((MonitorEvent::Notification(observed), Pairing::Unpaired));
            }
        }
        pairs.take_strays()
    }

    /// Runs on the connection's task for every message.
    fn on_message(&self, m: &Inbound) {
        let mut shown = Vec::new();
        let mut strays = 0;
        if lock(&self.copies).check(DedupKey::payload(m.payload()), monotonic_ms()) {
            strays = self.observe(m, &mut shown);
        } else {
            Counters::bump(&self.conn.counters.duplicates);
        }
        self.send(strays, shown);
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
        let conn = Connection::open(&config, filters.clone()).await?;
        let (events, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            conn,
            filters,
            window,
            pairs: Mutex::new(Pairs::new(window)),
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
            // Also what shows a response whose command never came.
            let mut tick = tokio::time::interval(EARLY_RESPONSE_HOLD);
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

    /// The next event and every one ready with it, at most [`BATCH`], each
    /// with its [`Pairing`]; empty once closed. For bindings that hand
    /// events over in bursts: one wake-up of a JavaScript or Python thread
    /// per burst instead of per event.
    pub async fn next_batch(&self) -> Vec<(MonitorEvent, Pairing)> {
        let max = BATCH;
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

    /// The topic filters it subscribed to: the one given, else its role's
    /// (`oc2/#` under the configured prefix).
    pub fn filters(&self) -> &[String] {
        &self.inner.filters
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Command, Response, Target};
    use serde_json::json;

    fn observed(message: Message) -> Observed {
        Observed {
            topic: "oc2/rsp".into(),
            message,
            encoding: Encoding::Json,
            dialect: Dialect::Spec,
            received_ms: 1_700_000_000_000,
            warnings: vec![],
        }
    }

    fn response() -> Message {
        let cmd = Message::request(Command::new("query", Target::features(["versions"])).unwrap())
            .to(["fw-1"]);
        Message::response_to(&cmd, Response::new(200)).from("fw-1")
    }

    #[test]
    fn a_response_event_shows_its_headers_status_latency_and_pairing() {
        let msg = response();
        let rid = msg.headers.request_id.clone();
        let ev = MonitorEvent::Response {
            observed: observed(msg.clone()),
            latency: Some(Duration::from_micros(1500)),
        };
        let v = serde_json::to_value(Paired(&ev, &Pairing::Complete)).unwrap();
        assert_eq!(
            v,
            json!({
                "type": "response", "topic": "oc2/rsp", "message": msg.to_json_value(),
                "request_id": rid, "from": "fw-1", "to": null, "encoding": "json",
                "dialect": "spec", "received_at": 1_700_000_000_000_i64, "warnings": [],
                "status": 200, "latency_ms": 1.5,
                "pairing": {"state": "complete", "awaiting": [], "deadline": null}
            })
        );
        // Without a pairing, and for kinds a pairing does not concern, there is none.
        assert!(serde_json::to_value(&ev).unwrap().get("pairing").is_none());
        let note = MonitorEvent::Notification(observed(response()));
        let v = serde_json::to_value(Paired(&note, &Pairing::Complete)).unwrap();
        assert_eq!(v["type"], "notification");
        assert!(v.get("pairing").is_none());
    }

    #[test]
    fn undecodable_and_unanswered_events_show_their_own_fields() {
        let ev = MonitorEvent::Undecodable {
            topic: "oc2/cmd".into(),
            payload: b"{".to_vec(),
            error: MessageError::new(crate::error::MessageErrorKind::Syntax, "", "malformed JSON"),
            received_ms: 5,
        };
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            json!({"type": "undecodable", "topic": "oc2/cmd", "payload": [123],
                   "error": {"kind": "syntax", "path": "", "reason": "malformed JSON"}, "received_at": 5})
        );
        let ev = MonitorEvent::Unanswered {
            request_id: "r1".into(),
            missing: vec!["fw-2".into()],
        };
        let p = Pairing::Unanswered {
            missing: vec!["fw-2".into()],
        };
        assert_eq!(
            serde_json::to_value(Paired(&ev, &p)).unwrap(),
            json!({"type": "unanswered", "request_id": "r1", "missing": ["fw-2"]})
        );
    }

    fn command_to(responder: &str) -> Message {
        Message::request(Command::new("deny", Target::features(["versions"])).unwrap())
            .from("p1")
            .to([responder])
    }

    fn kinds(shown: &Shown) -> Vec<(&'static str, Option<Duration>, Pairing)> {
        shown
            .iter()
            .map(|(e, p)| match e {
                MonitorEvent::Response { latency, .. } => ("response", *latency, p.clone()),
                other => (other.kind(), None, p.clone()),
            })
            .collect()
    }

    #[test]
    fn a_response_seen_before_its_command_waits_for_it_and_pairs() {
        let mut pairs = Pairs::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let cmd = command_to("fw-1");
        let rsp = Message::response_to(&cmd, Response::new(200)).from("fw-1");
        let mut shown = Vec::new();
        pairs.response(observed(rsp), None, t0, &mut shown);
        pairs.expire(t0 + Duration::from_millis(100), &mut shown);
        assert!(shown.is_empty(), "held for its command: {shown:?}");
        pairs.request(observed(cmd), t0 + Duration::from_millis(120), &mut shown);
        assert_eq!(
            kinds(&shown),
            [
                // As the command left it: fw-1 awaited, until the window ends.
                (
                    "request",
                    None,
                    Pairing::Open {
                        awaiting: vec!["fw-1".into()],
                        deadline_ms: 1_700_000_030_000
                    }
                ),
                ("response", Some(Duration::ZERO), Pairing::Complete),
            ]
        );
        assert_eq!(pairs.take_strays(), 0);
        assert_eq!(pairs.held, 0);
    }

    #[test]
    fn a_response_whose_command_never_comes_shows_unpaired_after_the_hold() {
        let mut pairs = Pairs::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let cmd = command_to("fw-1");
        let stray = Message::response_to(&cmd, Response::new(200)).from("fw-1");
        let mut shown = Vec::new();
        pairs.response(observed(stray.clone()), None, t0, &mut shown);
        pairs.response(
            observed(stray.from("fw-2")),
            None,
            t0 + Duration::from_millis(10),
            &mut shown,
        );
        pairs.expire(t0 + EARLY_RESPONSE_HOLD, &mut shown);
        assert_eq!(kinds(&shown), [("response", None, Pairing::Unpaired)]);
        pairs.expire(t0 + EARLY_RESPONSE_HOLD * 2, &mut shown);
        assert_eq!(shown.len(), 2, "both shown, in arrival order");
        assert_eq!(pairs.take_strays(), 2);
        assert_eq!(pairs.held, 0);
        // A response without a request id can never pair: shown at once.
        let mut bare = Message::response_to(&cmd, Response::new(200));
        bare.headers.request_id = None;
        let mut shown = Vec::new();
        pairs.response(observed(bare), None, t0, &mut shown);
        assert_eq!(kinds(&shown), [("response", None, Pairing::Unpaired)]);
        assert_eq!(pairs.take_strays(), 1);
    }

    #[test]
    fn a_pairing_shows_its_state_awaited_responders_and_deadline() {
        let shown = |p: &Pairing| serde_json::to_value(p).unwrap();
        assert_eq!(
            shown(&Pairing::Unpaired),
            json!({"state": null, "awaiting": [], "deadline": null})
        );
        assert_eq!(
            shown(&Pairing::Open {
                awaiting: vec!["fw-1".into()],
                deadline_ms: 9
            }),
            json!({"state": "open", "awaiting": ["fw-1"], "deadline": 9})
        );
        assert_eq!(
            shown(&Pairing::Unanswered {
                missing: vec!["fw-2".into()]
            }),
            json!({"state": "unanswered", "awaiting": ["fw-2"], "deadline": null})
        );
    }
}
