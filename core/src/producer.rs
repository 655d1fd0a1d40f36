//! The producer: sends commands and collects their responses.
//!
//! ```no_run
//! # async fn demo() -> oc2mqtt::Result<()> {
//! use oc2mqtt::client::{ClientConfig, Producer, SendOptions};
//! use oc2mqtt::message::{Command, Target};
//!
//! let producer = Producer::connect(ClientConfig::new("mqtt://127.0.0.1:1883"), "producer-1").await?;
//! let cmd = Command::new("query", Target::features(["versions", "profiles"]))?;
//! let options = SendOptions { to: vec!["fw-1".into()], ..SendOptions::default() };
//! let summary = producer.send(cmd, options).await?.collect().await;
//! for reply in &summary.responses {
//!     println!("{}: {:?}", reply.message.headers.from.as_deref().unwrap_or("?"), reply.message.response());
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::client::{ClientConfig, Connection, Counters, Inbound, Stats, lock, monotonic_ms};
use crate::codec::{self, Dialect, Encoding};
use crate::correlate::{Correlator, Expect, Outcome};
use crate::dedup::{DedupKey, Deduplicator};
use crate::error::{Error, Result};
use crate::message::{self, Actuator, Command, Message, MsgType};
use crate::topics::{Role, Topics, validate_id};

/// How to send one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOptions {
    /// Recipients (`to` header); each gets the command on `oc2/cmd/device/<id>`,
    /// and the exchange completes when each sent a final response.
    pub to: Vec<String>,
    /// Actuator profile: sets the command's actuator if it has none, so it
    /// goes to `oc2/cmd/ap/<profile>` when there is no `to`.
    pub profile: Option<String>,
    /// How long to wait for responses.
    pub timeout: Duration,
    /// Complete after this many distinct responders sent a final response
    /// (for broadcasts whose audience is known by number). At least 1: the
    /// settings table (every binding, the CLI's `--set`) refuses 0; a 0 set
    /// here in Rust counts as 1.
    pub expect: Option<usize>,
    /// Payload encoding.
    pub encoding: Encoding,
    /// Wire dialect; `None` (the default): as the producer's peer has it
    /// ([`crate::topics::Peer::dialect`]: otupy's flat dialect for
    /// `otupy`, the specification's for the others). `bare` carries no
    /// `request_id`, so its responses cannot be correlated.
    pub dialect: Option<Dialect>,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            to: Vec::new(),
            profile: None,
            timeout: Duration::from_secs(10),
            expect: None,
            encoding: Encoding::Json,
            dialect: None,
        }
    }
}

/// A response received in an exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The response message.
    pub message: Message,
    /// The topic it arrived on.
    pub topic: String,
    /// Its encoding.
    pub encoding: Encoding,
    /// Its dialect.
    pub dialect: Dialect,
    /// Time from the send to its arrival.
    pub latency: Duration,
}

/// The result of a whole exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The command's request id.
    pub request_id: String,
    /// Every response, in arrival order.
    pub responses: Vec<Reply>,
    /// Whether every expected responder sent a final response before the
    /// timeout. A broadcast with neither `to` nor `expect` has no known
    /// audience: it ends at the timeout, not complete. `response_requested:
    /// none` is complete on PUBACK.
    pub complete: bool,
    /// Expected responders that did not send a final response.
    pub missing: Vec<String>,
    /// Final responses still missing for an [`SendOptions::expect`] count.
    pub missing_count: usize,
}

/// What a binding shows, in snake case (Node turns the names to camel
/// case): `message`, its `status` (`null` unless a response) and `from`,
/// `topic`, `encoding`, `dialect`, `latency_ms`.
impl serde::Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("Reply", 7)?;
        m.serialize_field("message", &self.message)?;
        m.serialize_field("status", &self.message.response().map(|r| r.status))?;
        m.serialize_field("from", &self.message.headers.from)?;
        m.serialize_field("topic", &self.topic)?;
        m.serialize_field("encoding", self.encoding.as_str())?;
        m.serialize_field("dialect", self.dialect.as_str())?;
        m.serialize_field("latency_ms", &(self.latency.as_secs_f64() * 1000.0))?;
        m.end()
    }
}

/// What a binding shows: `request_id`, `responses`, `complete`, `missing`, `missing_count`.
impl serde::Serialize for Summary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("Summary", 5)?;
        m.serialize_field("request_id", &self.request_id)?;
        m.serialize_field("responses", &self.responses)?;
        m.serialize_field("complete", &self.complete)?;
        m.serialize_field("missing", &self.missing)?;
        m.serialize_field("missing_count", &self.missing_count)?;
        m.end()
    }
}

enum Event {
    Reply(Box<Reply>),
    Complete,
    /// The broker refused the command ([`Producer::send_collect`]).
    Refused,
}

/// The broker's acknowledgement of a command, for a caller that waits for
/// it only after the responses ([`Producer::send_collect`]).
#[derive(Default)]
struct Acked {
    outcome: Mutex<Option<Result<()>>>,
    notify: tokio::sync::Notify,
}

impl Acked {
    fn set(&self, outcome: Result<()>) {
        *lock(&self.outcome) = Some(outcome);
        // Wakes a caller only if it waits for this now (a permit otherwise).
        self.notify.notify_one();
    }

    /// The outcome, waiting for it until `deadline`; `None` at the deadline.
    async fn wait_until(&self, deadline: tokio::time::Instant) -> Option<Result<()>> {
        if let Some(r) = lock(&self.outcome).take() {
            return Some(r);
        }
        let _ = tokio::time::timeout_at(deadline, self.notify.notified()).await;
        lock(&self.outcome).take()
    }
}

/// The request message of `command` sent with `options`: the profile's
/// actuator when the command names none, and `to`.
fn request(mut command: Command, options: &SendOptions) -> Message {
    if let (Some(p), None) = (&options.profile, &command.actuator) {
        command.actuator = Some(Actuator::profile(p.as_str()));
    }
    let mut msg = Message::request(command);
    if !options.to.is_empty() {
        msg.headers.to = Some(options.to.clone());
    }
    msg
}

/// The error of a command the broker did not acknowledge in time.
fn unacknowledged(request_id: &str, timeout: Duration) -> Error {
    Error::Timeout(format!(
        "the broker did not acknowledge the command within {:.1} s (request_id {request_id})",
        timeout.as_secs_f64()
    ))
}

struct Slot {
    tx: mpsc::UnboundedSender<Event>,
    sent: Instant,
    /// The command as published, to send again after a reconnect.
    command: Arc<Published>,
}

/// A command as it went out: its topics, payload and properties.
struct Published {
    topics: Vec<String>,
    payload: Vec<u8>,
    props: codec::PublishProperties,
}

struct State {
    correlator: Correlator<Slot>,
    dedup: Deduplicator,
}

/// When, after a reconnect, the commands still waiting for an answer are
/// sent again (each wait after the previous one): at once, and twice more
/// for consumers that reconnect later than this producer.
const RESEND_AFTER_RECONNECT_MS: [u64; 3] = [0, 1_000, 2_000];

/// Unsolicited responses kept for [`Producer::next_unsolicited`]; more are
/// counted and dropped.
pub const UNSOLICITED_KEPT: usize = 1024;

struct Inner {
    conn: Connection,
    id: String,
    topics: Topics,
    state: Mutex<State>,
    unsolicited: mpsc::Sender<Reply>,
    unsolicited_rx: tokio::sync::Mutex<mpsc::Receiver<Reply>>,
    closed: tokio::sync::watch::Sender<bool>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Runs on the connection's task for every message on a response topic.
    fn on_message(&self, m: &Inbound) {
        // A response arrives byte for byte on oc2/rsp and oc2/rsp/<id> (and
        // again on redelivery). Its dedup key would include the payload
        // digest anyway, so the digest alone decides, before paying to decode.
        if !self
            .state()
            .dedup
            .check(DedupKey::payload(m.payload()), monotonic_ms())
        {
            Counters::bump(&self.conn.counters.duplicates);
            return;
        }
        let decoded = match self.conn.decode(m) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(topic = m.topic(), error = %e, "undecodable response dropped");
                return;
            }
        };
        for w in &decoded.warnings {
            tracing::warn!(topic = m.topic(), request_id = ?decoded.message.headers.request_id, warning = %w, "a response against the specification, kept");
        }
        if decoded.message.msg_type() != MsgType::Response {
            tracing::debug!(
                topic = m.topic(),
                "ignoring a non-response on a response topic"
            );
            return;
        }
        let mut st = self.state();
        let (tx, sent, complete) = match st.correlator.on_response(&decoded.message) {
            Outcome::Unsolicited => {
                // Log after the lock: a logging bridge may need a foreign lock (the GIL).
                drop(st);
                self.on_unsolicited(m, decoded);
                return;
            }
            Outcome::Open { data, .. } => (data.tx.clone(), data.sent, false),
            Outcome::Complete(closed) => (closed.data.tx, closed.data.sent, true),
        };
        drop(st);
        // The receiver may be gone (exchange dropped): nothing to do then.
        let _ = tx.send(Event::Reply(Box::new(Reply {
            latency: sent.elapsed(),
            message: decoded.message,
            topic: m.topic().to_owned(),
            encoding: decoded.encoding,
            dialect: decoded.dialect,
        })));
        if complete {
            let _ = tx.send(Event::Complete);
        }
    }
}

impl Inner {
    /// Sends every command still waiting for an answer again, after a
    /// reconnect: a broker that kept no session may have lost the command
    /// or its answer. Consumers run it once anyway (same request_id and
    /// `created`) and answer a command sent again with the answers it had.
    fn resend_open(&self) {
        let open: Vec<Arc<Published>> = self
            .state()
            .correlator
            .open_exchanges()
            .map(|(_, slot)| Arc::clone(&slot.command))
            .collect();
        if open.is_empty() {
            return;
        }
        tracing::info!(
            commands = open.len(),
            "reconnected: sending again the commands still waiting for an answer"
        );
        for c in open {
            if let Err(e) = self.conn.publish_detached(&c.topics, &c.payload, &c.props) {
                tracing::warn!(error = %e, "cannot send a command again");
            }
        }
    }

    /// A response that matches no open exchange: one addressed to another
    /// producer (every producer hears `oc2/rsp`) is not ours; the rest (a
    /// bare `{"status":200}` without request_id, a late answer) goes to
    /// [`Producer::next_unsolicited`].
    fn on_unsolicited(&self, m: &Inbound, decoded: codec::Decoded) {
        let h = &decoded.message.headers;
        let ours = h.to.as_deref().is_none_or(|to| {
            to.is_empty()
                || to
                    .iter()
                    .any(|t| t == &self.id || crate::rules::address_id(t) == self.id)
        });
        if !ours {
            tracing::trace!(request_id = ?h.request_id, to = ?h.to, "a response to another producer");
            return;
        }
        Counters::bump(&self.conn.counters.unsolicited);
        tracing::debug!(request_id = ?h.request_id, from = ?h.from, "unsolicited response");
        let reply = Reply {
            latency: Duration::ZERO,
            message: decoded.message,
            topic: m.topic().to_owned(),
            encoding: decoded.encoding,
            dialect: decoded.dialect,
        };
        // Full: the application is not reading them; counted above.
        let _ = self.unsolicited.try_send(reply);
    }
}

/// Sends commands and collects their responses; cheap to clone, one MQTT connection.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("id", &self.inner.id)
            .field("broker", &self.inner.conn.url())
            .finish()
    }
}

impl Producer {
    /// Connects as producer `id` and subscribes to `oc2/rsp` and `oc2/rsp/<id>`.
    pub async fn connect(config: ClientConfig, id: &str) -> Result<Self> {
        validate_id("producer id", id)?;
        let topics = config.topics()?;
        let filters = topics.subscriptions(Role::Producer, Some(id), &[] as &[&str])?;
        let conn = Connection::open(&config, filters).await?;
        let (unsolicited, unsolicited_rx) = mpsc::channel(UNSOLICITED_KEPT);
        let inner = Arc::new(Inner {
            conn,
            id: id.to_owned(),
            topics,
            state: Mutex::new(State {
                correlator: Correlator::new(),
                dedup: Deduplicator::default(),
            }),
            unsolicited,
            unsolicited_rx: tokio::sync::Mutex::new(unsolicited_rx),
            closed: tokio::sync::watch::Sender::new(false),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        inner.conn.on_message(move |m| {
            if let Some(inner) = weak.upgrade() {
                inner.on_message(m);
            }
        });
        let mut events = inner.conn.events();
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut connections = 0_u32;
            while let Some(e) = events.next().await {
                if matches!(e, crate::client::ConnectionEvent::Connected { .. }) {
                    connections += 1;
                    if connections > 1 {
                        let weak = weak.clone();
                        tokio::spawn(async move {
                            // Now, and again as the consumers come back (a
                            // broker that lost every session drops what is
                            // published before they have subscribed again).
                            for wait_ms in RESEND_AFTER_RECONNECT_MS {
                                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                                let Some(inner) = weak.upgrade() else { return };
                                inner.resend_open();
                            }
                        });
                    }
                }
            }
        });
        Ok(Self { inner })
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

    /// This producer's id (the `from` of its commands).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Sends `command` as a new request (fresh request id, `created` now).
    pub async fn send(&self, command: Command, options: SendOptions) -> Result<Exchange> {
        let msg = request(command, &options);
        self.send_message(msg, options).await
    }

    /// Sends a request message as given, filling in `request_id`, `created`
    /// and `from` when absent. `options.to` is ignored here: use the message's `to`.
    pub async fn send_message(&self, msg: Message, options: SendOptions) -> Result<Exchange> {
        self.dispatch_message(msg, options)?.acked().await
    }

    /// [`Producer::send`] in two steps: the command is made, its exchange
    /// opened and its PUBLISH handed to the connection now, on the caller's
    /// thread (written at once when the connection is idle); the returned
    /// [`Dispatched`] waits for the broker's acknowledgement, wherever it is
    /// polled. For a binding whose caller is not on the runtime: the
    /// runtime's thread need not be woken to write the command.
    pub fn dispatch(&self, command: Command, options: SendOptions) -> Result<Dispatched> {
        let msg = request(command, &options);
        self.dispatch_message(msg, options)
    }

    /// [`Producer::send_message`] in two steps, as [`Producer::dispatch`].
    pub fn dispatch_message(&self, msg: Message, options: SendOptions) -> Result<Dispatched> {
        // From here on, dropping the exchange closes it in the correlator.
        let (exchange, command) = self.open(msg, &options)?;
        let inner = Arc::clone(&self.inner);
        let mut publish: Pin<Box<dyn Future<Output = Result<()>> + Send>> = Box::pin(async move {
            inner
                .conn
                .publish_many(&command.topics, &command.payload, &command.props)
                .await
        });
        // The first poll hands the publishes to the connection, here and now;
        // the waits for their acknowledgements are polled again by `acked`.
        let first = publish
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        Ok(Dispatched {
            exchange,
            timeout: options.timeout,
            publish: PublishState::from(first, publish),
        })
    }

    /// Sends `command` and collects its responses: what
    /// `send(command, options).await?.collect().await` does, but the caller
    /// waits once, for the end of the exchange, not first for the broker's
    /// acknowledgement and then for the responses (on loopback each wait
    /// is a thread put to sleep and woken). The acknowledgement is still
    /// required: a refused command is an error at once, and an exchange
    /// whose command the broker did not acknowledge within the timeout is a
    /// [`Error::Timeout`], as for [`Producer::send`].
    pub async fn send_collect(&self, command: Command, options: SendOptions) -> Result<Summary> {
        let msg = request(command, &options);
        self.send_message_collect(msg, options).await
    }

    /// [`Producer::send_collect`] for a request message as given, as
    /// [`Producer::send_message`] takes it.
    pub async fn send_message_collect(
        &self,
        msg: Message,
        options: SendOptions,
    ) -> Result<Summary> {
        let (mut exchange, command) = self.open(msg, &options)?;
        let request_id = exchange.request_id.clone();
        let acked = Arc::new(Acked::default());
        let (outcome, wake) = (Arc::clone(&acked), exchange.events.clone());
        let submitted = self.inner.conn.publish_then(
            &command.topics,
            &command.payload,
            &command.props,
            move |r| {
                let refused = r.is_err();
                outcome.set(r);
                // Acknowledged: no wake-up, the caller waits for the
                // responses and finds this when they are in. Refused: the
                // caller stops waiting for them.
                if let (true, Some(tx)) = (refused, wake.upgrade()) {
                    let _ = tx.send(Event::Refused);
                }
            },
        );
        // An error drops the exchange, which closes it in the correlator.
        submitted?;
        let mut responses = Vec::new();
        while let Some(r) = exchange.next().await {
            responses.push(r);
        }
        // The responses cannot in practice come before the acknowledgement
        // (the broker sends it first, on this connection), but a broker that
        // lost the acknowledgement sends the command again later.
        acked
            .wait_until(exchange.deadline)
            .await
            .unwrap_or_else(|| Err(unacknowledged(&request_id, options.timeout)))?;
        tracing::debug!(request_id, topics = ?command.topics, "command sent and collected");
        Ok(Summary {
            request_id,
            responses,
            complete: exchange.complete,
            missing: std::mem::take(&mut exchange.missing),
            missing_count: exchange.missing_count,
        })
    }

    /// Prepares a request: fills in its headers, encodes it, and opens its
    /// exchange (not sent yet; already over when no response is requested).
    /// Also returns the command as published.
    fn open(&self, mut msg: Message, options: &SendOptions) -> Result<(Exchange, Arc<Published>)> {
        if let Some(cmd) = msg.command() {
            cmd.check_before_sending()?;
        }
        if msg.command().is_none() {
            return Err(Error::Config(
                "a producer sends requests, not responses or notifications".to_owned(),
            ));
        }
        let h = &mut msg.headers;
        let request_id = h
            .request_id
            .get_or_insert_with(message::new_request_id)
            .clone();
        h.created.get_or_insert_with(message::now_ms);
        h.from.get_or_insert_with(|| self.inner.id.clone());
        let topics = self.inner.topics.command_topics(&msg)?;
        let dialect = options
            .dialect
            .unwrap_or_else(|| self.inner.topics.peer().dialect());
        let (payload, mut props) = codec::encode(&msg, options.encoding, dialect)?;
        self.inner.topics.spell_msg_type(&mut props);
        // Kept (without a copy) to send again after a reconnect.
        let command = Arc::new(Published {
            topics,
            payload,
            props,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let sent = Instant::now();
        let deadline = tokio::time::Instant::now() + options.timeout;
        let deadline_ms = monotonic_ms()
            .saturating_add(u64::try_from(options.timeout.as_millis()).unwrap_or(u64::MAX));
        let slot = Slot {
            tx: tx.clone(),
            sent,
            command: Arc::clone(&command),
        };
        let wants_reply = self.inner.state().correlator.open_command(
            &msg,
            options.expect.map(Expect::Count),
            deadline_ms,
            slot,
        )?;
        // response_requested none: the PUBACK is all there is.
        let exchange = Exchange {
            inner: Arc::clone(&self.inner),
            request_id,
            rx,
            events: tx.downgrade(),
            deadline,
            closed: !wants_reply,
            complete: !wants_reply,
            missing: Vec::new(),
            missing_count: 0,
        };
        Ok((exchange, command))
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.conn.stats()
    }

    /// Exchanges currently open.
    pub fn open_exchanges(&self) -> usize {
        self.inner.state().correlator.len()
    }

    /// The next response that matched no open exchange and was not
    /// addressed to another producer: a peer's bare `{"status": 200}`
    /// without request_id, an answer after its exchange closed. `None` once
    /// closed. Up to 1 024 wait to be read; more are only counted in
    /// [`Stats::unsolicited`].
    pub async fn next_unsolicited(&self) -> Option<Reply> {
        let mut closed = self.inner.closed.subscribe();
        if *closed.borrow() {
            return None;
        }
        let mut rx = self.inner.unsolicited_rx.lock().await;
        tokio::select! {
            r = rx.recv() => r,
            _ = closed.wait_for(|c| *c) => None,
        }
    }

    /// Disconnects from the broker. Open exchanges end at their next wait.
    pub async fn close(&self) {
        self.inner.closed.send_replace(true);
        self.inner.conn.close().await;
    }

    /// The connection's state changes from now on, starting with the
    /// current state: connected, offline, reconnecting, closed.
    pub fn events(&self) -> crate::client::ConnectionEvents {
        self.inner.conn.events()
    }
}

/// A command handed to the connection by [`Producer::dispatch`], waiting
/// for the broker's acknowledgement. Dropping it closes its exchange.
pub struct Dispatched {
    exchange: Exchange,
    timeout: Duration,
    publish: PublishState,
}

/// Where a dispatched command's publish stands.
enum PublishState {
    Ready(Result<()>),
    Waiting(Pin<Box<dyn Future<Output = Result<()>> + Send>>),
}

impl PublishState {
    fn from(
        first: Poll<Result<()>>,
        wait: Pin<Box<dyn Future<Output = Result<()>> + Send>>,
    ) -> Self {
        match first {
            Poll::Ready(outcome) => Self::Ready(outcome),
            Poll::Pending => Self::Waiting(wait),
        }
    }
}

impl std::fmt::Debug for Dispatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatched")
            .field("request_id", &self.exchange.request_id)
            .finish()
    }
}

impl Dispatched {
    /// The command's request id.
    pub fn request_id(&self) -> &str {
        &self.exchange.request_id
    }

    /// Whether the outcome of the publish is still to come (from the
    /// broker, or from the connection's task); `false` when it is known
    /// already (a publish refused at once, a closed connection).
    pub fn is_waiting(&self) -> bool {
        matches!(self.publish, PublishState::Waiting(_))
    }

    /// Waits until the broker acknowledged the command (every publish of
    /// it), at most until the exchange's timeout, and returns the exchange.
    pub async fn acked(self) -> Result<Exchange> {
        let Self {
            exchange,
            timeout,
            publish,
        } = self;
        // The timeout bounds the broker's acknowledgement too: a broker that
        // stops answering ends the send at the timeout, not when it resumes.
        let published = match publish {
            PublishState::Ready(outcome) => outcome,
            PublishState::Waiting(wait) => tokio::time::timeout_at(exchange.deadline, wait)
                .await
                .unwrap_or_else(|_| Err(unacknowledged(&exchange.request_id, timeout))),
        };
        // An error drops the exchange, which closes it in the correlator.
        published?;
        tracing::debug!(request_id = exchange.request_id, "command sent");
        Ok(exchange)
    }
}

/// The responses to one command, as they arrive.
///
/// Dropping an exchange closes it: late responses are then unsolicited.
pub struct Exchange {
    inner: Arc<Inner>,
    request_id: String,
    rx: mpsc::UnboundedReceiver<Event>,
    /// Its own sender, for events that are not responses.
    events: mpsc::WeakUnboundedSender<Event>,
    deadline: tokio::time::Instant,
    closed: bool,
    complete: bool,
    missing: Vec<String>,
    missing_count: usize,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("request_id", &self.request_id)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Exchange {
    /// The command's request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The next response; `None` once the exchange is complete or timed out.
    pub async fn next(&mut self) -> Option<Reply> {
        loop {
            if self.closed {
                // Drain what arrived before the close.
                return match self.rx.try_recv() {
                    Ok(Event::Reply(r)) => Some(*r),
                    _ => None,
                };
            }
            match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
                Ok(Some(Event::Reply(r))) => return Some(*r),
                Ok(Some(Event::Complete)) => {
                    self.closed = true;
                    self.complete = true;
                }
                Ok(Some(Event::Refused)) => self.close_now(),
                Ok(None) => self.closed = true,
                Err(_) => self.close_now(),
            }
        }
    }

    /// Waits for every response and returns them, as soon as the exchange
    /// is complete or at the timeout.
    pub async fn collect(mut self) -> Summary {
        let mut responses = Vec::new();
        while let Some(r) = self.next().await {
            responses.push(r);
        }
        Summary {
            request_id: self.request_id.clone(),
            responses,
            complete: self.complete,
            missing: std::mem::take(&mut self.missing),
            missing_count: self.missing_count,
        }
    }

    /// Whether the exchange ended (complete, timed out or cancelled).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether every expected responder answered.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Expected responders that did not answer (known once closed).
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    /// Final responses still missing for an [`SendOptions::expect`] count (known once closed).
    pub fn missing_count(&self) -> usize {
        self.missing_count
    }

    /// Ends the exchange now; responses already received can still be read.
    pub fn cancel(&mut self) {
        self.close_now();
    }

    fn close_now(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some(c) = self.inner.state().correlator.close(&self.request_id) {
            self.missing = c.missing;
            self.missing_count = c.missing_count;
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.close_now();
    }
}

/// An [`Exchange`] with several owners: any of them, on any thread, reads
/// the next response, collects the rest or cancels it, and a cancel ends a
/// wait in progress at once (an [`Exchange`] needs `&mut` for each). It may
/// be made before its command is sent ([`SharedExchange::pending`]), so a
/// caller gets it at once and learns with [`SharedExchange::sent`] when the
/// broker acknowledged the command. What a binding hands to its host
/// language, so that none keeps a lifecycle of its own around the core's
/// exchange.
#[derive(Clone)]
pub struct SharedExchange {
    inner: Arc<Shared>,
}

/// How far the command of a [`SharedExchange`] got.
#[derive(Debug, Clone)]
enum SendState {
    Pending,
    Sent,
    Failed(Error),
}

struct Shared {
    request_id: std::sync::OnceLock<String>,
    send: tokio::sync::watch::Sender<SendState>,
    /// `None` before it is sent and once collected.
    exchange: tokio::sync::Mutex<Option<Exchange>>,
    cancelled: std::sync::atomic::AtomicBool,
    cancel: tokio::sync::Notify,
    /// Snapshots for readers that do not wait: closed, complete, missing.
    closed: std::sync::atomic::AtomicBool,
    complete: std::sync::atomic::AtomicBool,
    missing: Mutex<(Vec<String>, usize)>,
}

/// Completes a [`SharedExchange::pending`] with the outcome of its send.
pub struct Settle {
    inner: Arc<Shared>,
}

impl Settle {
    /// Hands over the sent exchange, or why the command could not be sent.
    pub async fn settle(self, sent: Result<Exchange>) {
        let shared = SharedExchange {
            inner: Arc::clone(&self.inner),
        };
        match sent {
            Ok(exchange) => {
                let _ = shared.inner.request_id.set(exchange.request_id.clone());
                shared.snapshot(&exchange);
                *shared.inner.exchange.lock().await = Some(exchange);
                shared.inner.send.send_replace(SendState::Sent);
                if shared.is_cancelled() {
                    shared.cancel();
                }
            }
            Err(e) => {
                shared
                    .inner
                    .closed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                shared.inner.send.send_replace(SendState::Failed(e));
            }
        }
    }
}

impl Drop for Settle {
    /// A send abandoned without an outcome (its task dropped) fails the
    /// waits instead of leaving them pending.
    fn drop(&mut self) {
        self.inner.send.send_if_modified(|state| {
            if matches!(state, SendState::Pending) {
                *state =
                    SendState::Failed(Error::Closed("the command's send was abandoned".to_owned()));
                true
            } else {
                false
            }
        });
    }
}

impl std::fmt::Debug for SharedExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedExchange")
            .field("request_id", &self.request_id())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl From<Exchange> for SharedExchange {
    fn from(exchange: Exchange) -> Self {
        let shared = Self::new(SendState::Sent);
        let _ = shared.inner.request_id.set(exchange.request_id.clone());
        shared.snapshot(&exchange);
        *shared.inner.exchange.try_lock().expect("not shared yet") = Some(exchange);
        shared
    }
}

impl SharedExchange {
    /// An exchange that already ended as `summary` says (from
    /// [`Producer::send_collect`]): its request id, whether it is complete,
    /// who is missing. Its responses are not in it: the caller has them.
    pub fn ended(summary: &Summary) -> Self {
        use std::sync::atomic::Ordering;
        let shared = Self::new(SendState::Sent);
        let _ = shared.inner.request_id.set(summary.request_id.clone());
        shared.inner.closed.store(true, Ordering::SeqCst);
        shared
            .inner
            .complete
            .store(summary.complete, Ordering::SeqCst);
        *lock(&shared.inner.missing) = (summary.missing.clone(), summary.missing_count);
        shared
    }

    fn new(state: SendState) -> Self {
        use std::sync::atomic::AtomicBool;
        Self {
            inner: Arc::new(Shared {
                request_id: std::sync::OnceLock::new(),
                send: tokio::sync::watch::Sender::new(state),
                exchange: tokio::sync::Mutex::new(None),
                cancelled: AtomicBool::new(false),
                cancel: tokio::sync::Notify::new(),
                closed: AtomicBool::new(false),
                complete: AtomicBool::new(false),
                missing: Mutex::new((Vec::new(), 0)),
            }),
        }
    }

    /// An exchange whose command is being sent: run the send where the
    /// caller likes and hand its outcome to the [`Settle`]. Reads wait for it.
    pub fn pending() -> (Self, Settle) {
        let shared = Self::new(SendState::Pending);
        let settle = Settle {
            inner: Arc::clone(&shared.inner),
        };
        (shared, settle)
    }

    /// The command's request id; empty while it is being sent.
    pub fn request_id(&self) -> &str {
        self.inner.request_id.get().map_or("", String::as_str)
    }

    /// Waits until the broker acknowledged the command: its request id, or
    /// why it could not be sent; `Ok(None)` when cancelled first.
    pub async fn sent(&self) -> Result<Option<String>> {
        let mut state = self.inner.send.subscribe();
        loop {
            let cancelled = self.inner.cancel.notified();
            tokio::pin!(cancelled);
            cancelled.as_mut().enable();
            if self.is_cancelled() {
                return Ok(None);
            }
            match &*state.borrow_and_update() {
                SendState::Sent => return Ok(Some(self.request_id().to_owned())),
                SendState::Failed(e) => return Err(e.clone()),
                SendState::Pending => {}
            }
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        return Err(Error::Closed("the send was abandoned".to_owned()));
                    }
                }
                () = &mut cancelled => {}
            }
        }
    }

    /// The next response; `None` once the exchange is complete, timed out,
    /// cancelled or collected, or its command could not be sent. Owners
    /// calling at once take turns.
    pub async fn next(&self) -> Option<Reply> {
        self.sent().await.ok()??;
        let mut guard = self.inner.exchange.lock().await;
        let exchange = guard.as_mut()?;
        self.step(exchange).await
    }

    /// Waits for the remaining responses and returns them, as soon as the
    /// exchange is complete, at the timeout or when cancelled. Responses
    /// already read are not repeated. An exchange is collected once:
    /// `Error::Closed` ("exchange <id>: already collected") for the second
    /// call, from whichever owner, in every language.
    pub async fn collect(&self) -> Result<Summary> {
        let _ = self.sent().await;
        let Some(mut exchange) = self.inner.exchange.lock().await.take() else {
            return Err(Error::Closed(format!(
                "exchange {}: already collected",
                self.request_id()
            )));
        };
        let mut responses = Vec::new();
        while let Some(r) = self.step(&mut exchange).await {
            responses.push(r);
        }
        Ok(Summary {
            request_id: exchange.request_id.clone(),
            responses,
            complete: exchange.complete,
            missing: std::mem::take(&mut exchange.missing),
            missing_count: exchange.missing_count,
        })
    }

    /// Ends the exchange now, from any thread, without waiting: a `next`,
    /// `collect` or `sent` in progress returns what had arrived, then
    /// `None`. A command still being sent goes out, and its exchange is
    /// closed at once.
    pub fn cancel(&self) {
        use std::sync::atomic::Ordering;
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.cancel.notify_waiters();
        // Nobody waiting: close it here, so the producer stops expecting
        // responses now rather than at the next read.
        if let Ok(mut guard) = self.inner.exchange.try_lock()
            && let Some(exchange) = guard.as_mut()
        {
            exchange.cancel();
            self.snapshot(exchange);
        }
    }

    /// Whether [`SharedExchange::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner
            .cancelled
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the exchange ended (complete, timed out, cancelled, collected
    /// or not sent).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether every expected responder answered (as far as read).
    pub fn is_complete(&self) -> bool {
        self.inner
            .complete
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Expected responders that did not answer (known once closed).
    pub fn missing(&self) -> Vec<String> {
        lock(&self.inner.missing).0.clone()
    }

    /// Final responses still missing for an [`SendOptions::expect`] count (known once closed).
    pub fn missing_count(&self) -> usize {
        lock(&self.inner.missing).1
    }

    async fn step(&self, exchange: &mut Exchange) -> Option<Reply> {
        let reply = loop {
            let cancelled = self.inner.cancel.notified();
            tokio::pin!(cancelled);
            // Registered before the flag is read: a cancel in between wakes it.
            cancelled.as_mut().enable();
            if self.is_cancelled() {
                exchange.cancel();
            }
            tokio::select! {
                reply = exchange.next() => break reply,
                () = &mut cancelled => exchange.cancel(),
            }
        };
        self.snapshot(exchange);
        reply
    }

    fn snapshot(&self, exchange: &Exchange) {
        use std::sync::atomic::Ordering;
        self.inner.closed.store(exchange.closed, Ordering::SeqCst);
        self.inner
            .complete
            .store(exchange.complete, Ordering::SeqCst);
        if exchange.closed {
            *lock(&self.inner.missing) = (exchange.missing.clone(), exchange.missing_count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Response, Target};
    use serde_json::json;

    #[test]
    fn replies_and_summaries_show_their_fields_in_snake_case() {
        let cmd = Message::request(Command::new("query", Target::features(["versions"])).unwrap());
        let msg = Message::response_to(&cmd, Response::new(200)).from("fw-1");
        let reply = Reply {
            message: msg.clone(),
            topic: "oc2/rsp".into(),
            encoding: Encoding::Cbor,
            dialect: Dialect::Otupy,
            latency: Duration::from_micros(2500),
        };
        let summary = Summary {
            request_id: "r1".into(),
            responses: vec![reply],
            complete: false,
            missing: vec!["fw-2".into()],
            missing_count: 1,
        };
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            json!({
                "request_id": "r1",
                "responses": [{"message": msg.to_json_value(), "status": 200, "from": "fw-1",
                               "topic": "oc2/rsp", "encoding": "cbor", "dialect": "otupy", "latency_ms": 2.5}],
                "complete": false, "missing": ["fw-2"], "missing_count": 1
            })
        );
    }
}
