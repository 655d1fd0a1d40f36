//! The consumer: receives commands, runs each once, and answers.
//!
//! Before a command reaches the application the consumer has already
//! decoded it (answering `400` to malformed commands it can address),
//! dropped duplicates (the same command on `oc2/cmd/all`, `oc2/cmd/ap/<p>`
//! and `oc2/cmd/device/<id>`, or redelivered), ignored commands whose `to`
//! excludes this device, sent the `102` of `response_requested: ack`,
//! answered `query features` from its options, and answered `501` to
//! action/target pairs it did not declare.
//!
//! ```no_run
//! # async fn demo() -> oc2mqtt::Result<()> {
//! use oc2mqtt::client::{ClientConfig, Consumer, ConsumerOptions};
//! use oc2mqtt::message::Response;
//!
//! let options = ConsumerOptions::new("fw-1")
//!     .profile("slpf")
//!     .pair("deny", "ipv4_connection");
//! let consumer = Consumer::connect(ClientConfig::new("mqtt://127.0.0.1:1883"), options).await?;
//! consumer.serve(|command| {
//!     println!("executing {:?}", command.command().map(|c| c.action));
//!     Ok(Some(Response::new(200)))
//! }).await
//! # }
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};

use crate::client::{
    ClientConfig, Connection, Counters, Inbound, Stats, lock, monotonic_ms, panic_text,
};
use crate::codec::{self, Dialect, Encoding};
use crate::dedup::{DEFAULT_CAPACITY, DEFAULT_WINDOW_MS, DedupKey, Deduplicator};
use crate::error::{Error, MessageError, Result};
use crate::message::{Action, Command, Headers, Message, MsgType, Response, ResponseRequested};
use crate::topics::{Role, Topics, shared, validate_id};

/// Commands waiting for the application; when full, new ones get `503`.
const QUEUE: usize = 10_000;
/// Handler calls running at once in [`Consumer::serve`].
const CONCURRENT_HANDLERS: usize = 64;

/// How old a command may be, by its `created`, and still run: 15 minutes.
///
/// A device that was offline may legitimately receive commands queued for
/// it (its broker session kept them), and clocks drift by seconds, not
/// minutes; but a `deny` from yesterday, replayed by a broker that kept it
/// for a dead session, must not run. Fifteen minutes covers a reboot or a
/// network outage and is far beyond any exchange's timeout.
pub const DEFAULT_FRESHNESS_SECS: u64 = 900;

/// What a consumer is and what it implements.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerOptions {
    /// This device's id: its topic is `oc2/cmd/device/<id>` and the `from` of its responses.
    pub device_id: String,
    /// Actuator profiles implemented (`slpf`, ...): one `oc2/cmd/ap/<p>` subscription each.
    pub profiles: Vec<String>,
    /// Action/target pairs implemented; when any are declared, others get `501`.
    /// `query features` is always implemented.
    pub pairs: Vec<(String, String)>,
    /// Maximum commands per minute, reported by `query features` when set.
    pub rate_limit: Option<f64>,
    /// Consumer group: subscribe through `$share/<group>/...` so each command
    /// reaches one member of the group.
    pub group: Option<String>,
    /// Deliver `query features` to the application instead of answering it.
    pub handle_features: bool,
    /// Commands whose `created` is older than this many seconds are stale:
    /// logged, counted in `stale` and not executed (nor answered). 0 = off.
    /// Default [`DEFAULT_FRESHNESS_SECS`]. Commands are also remembered by
    /// request_id this long (at least 60 s, [`dedup_window_ms`]), so that a
    /// replay is a duplicate or stale, never run twice.
    pub freshness_secs: u64,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            device_id: String::new(),
            profiles: Vec::new(),
            pairs: Vec::new(),
            rate_limit: None,
            group: None,
            handle_features: false,
            freshness_secs: DEFAULT_FRESHNESS_SECS,
        }
    }
}

impl ConsumerOptions {
    /// Options for device `device_id`, no profiles, no pairs.
    pub fn new(device_id: impl Into<String>) -> Self {
        Self {
            device_id: device_id.into(),
            ..Self::default()
        }
    }

    /// Adds a profile.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profiles.push(profile.into());
        self
    }

    /// Adds an action/target pair.
    pub fn pair(mut self, action: impl Into<String>, target: impl Into<String>) -> Self {
        self.pairs.push((action.into(), target.into()));
        self
    }

    /// Checks the ids and actions.
    pub fn validate(&self) -> Result<()> {
        validate_id("device id", &self.device_id)?;
        for p in &self.profiles {
            validate_id("profile", p)?;
        }
        for (action, target) in &self.pairs {
            action
                .parse::<Action>()
                .map_err(|e| Error::Config(format!("pair {action}:{target}: {}", e.reason)))?;
            if target.is_empty() {
                return Err(Error::Config(format!(
                    "pair {action}:{target}: empty target"
                )));
            }
        }
        if let Some(g) = &self.group {
            shared(g, "x")?;
        }
        Ok(())
    }

    /// The `pairs` result of `query features`: action → targets, `query: [features]` included.
    pub fn pairs_result(&self) -> Value {
        let mut map: Map<String, Value> = Map::new();
        let mut add = |a: &str, t: &str| {
            let list = map
                .entry(a.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = list {
                if !items.iter().any(|i| i == t) {
                    items.push(Value::String(t.to_owned()));
                }
            }
        };
        add("query", "features");
        for (a, t) in &self.pairs {
            add(a, t);
        }
        Value::Object(map)
    }

    fn implements(&self, cmd: &Command) -> bool {
        self.pairs.is_empty()
            || self
                .pairs
                .iter()
                .any(|(a, t)| a == cmd.action.as_str() && *t == cmd.target.name)
    }
}

fn is_query_features(cmd: &Command) -> bool {
    cmd.action.as_str() == "query" && cmd.target.name == "features"
}

/// The answer to `query features` (LS 4.1) from the consumer's options.
pub fn features_response(options: &ConsumerOptions, cmd: &Command) -> Response {
    if let Some(args) = &cmd.args {
        if args
            .iter()
            .any(|(k, v)| !(k == "response_requested" && v == "complete"))
        {
            return Response::new(400).with_text(
                "query features accepts no argument other than response_requested: complete",
            );
        }
    }
    let Value::Array(features) = &cmd.target.value else {
        return Response::new(400).with_text("target.features: expected an array of feature names");
    };
    let mut rsp = Response::new(200);
    for f in features {
        rsp = match f.as_str() {
            Some("versions") => rsp.with_result("versions", Value::from(vec!["1.0"])),
            Some("profiles") => rsp.with_result("profiles", Value::from(options.profiles.clone())),
            Some("pairs") => rsp.with_result("pairs", options.pairs_result()),
            Some("rate_limit") => match options.rate_limit {
                Some(r) => rsp.with_result("rate_limit", r),
                None => rsp,
            },
            _ => {
                return Response::new(400)
                    .with_text(format!("target.features: unknown feature {f}; expected versions, profiles, pairs or rate_limit"));
            }
        };
    }
    rsp
}

/// What the consumer answers by itself, before the application sees the command.
pub fn builtin_response(options: &ConsumerOptions, cmd: &Command) -> Option<Response> {
    if is_query_features(cmd) {
        return (!options.handle_features).then(|| features_response(options, cmd));
    }
    if !options.implements(cmd) {
        return Some(Response::new(501).with_text(format!(
            "{} {} is not implemented by this consumer",
            cmd.action, cmd.target.name
        )));
    }
    None
}

/// Why a received command must not run although it is well-formed: it
/// arrived retained (a stored message, not a live command; MQTT-T publishes
/// with Retain 0), or its `created` is more than `freshness_secs` before
/// `now_ms` (0 turns the age check off). A command without `created`
/// cannot be judged by age and is fresh.
///
/// ```
/// use oc2mqtt::consumer::stale_reason;
/// use oc2mqtt::message::Headers;
/// let mut h = Headers::default();
/// h.created = Some(1_700_000_000_000);
/// assert_eq!(stale_reason(&h, false, 1_700_000_060_000, 900), None);
/// assert_eq!(
///     stale_reason(&h, false, 1_700_003_600_000, 900).as_deref(),
///     Some("created 3600 s ago, older than the freshness window of 900 s")
/// );
/// assert!(stale_reason(&h, true, 1_700_000_000_000, 900).is_some());
/// ```
pub fn stale_reason(
    headers: &Headers,
    retained: bool,
    now_ms: i64,
    freshness_secs: u64,
) -> Option<String> {
    if retained {
        return Some("delivered as a retained message".to_owned());
    }
    let created = headers.created?;
    if freshness_secs == 0 {
        return None;
    }
    let age_ms = now_ms.saturating_sub(created);
    let window_ms = i64::try_from(freshness_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    (age_ms > window_ms).then(|| {
        format!(
            "created {} s ago, older than the freshness window of {freshness_secs} s",
            age_ms / 1000
        )
    })
}

/// How long a consumer remembers a command by its request_id: as long as
/// the command is fresh (`freshness_secs`), and at least the default dedup
/// window. A replay is then either still remembered (a duplicate) or older
/// than the freshness window (stale): it never runs twice, as long as it
/// carries its `created` and the table's capacity holds.
///
/// ```
/// use oc2mqtt::consumer::dedup_window_ms;
/// assert_eq!(dedup_window_ms(900), 900_000);
/// assert_eq!(dedup_window_ms(0), 60_000); // freshness off: the default window
/// assert_eq!(dedup_window_ms(5), 60_000);
/// ```
pub fn dedup_window_ms(freshness_secs: u64) -> u64 {
    freshness_secs.saturating_mul(1000).max(DEFAULT_WINDOW_MS)
}

/// Whether this device should execute a command addressed to `headers.to`.
pub fn addressed_to(headers: &Headers, device_id: &str) -> bool {
    match headers.to.as_deref() {
        Some(to) if !to.is_empty() => to.iter().any(|t| t == device_id),
        _ => true,
    }
}

/// Where and how to answer one command.
#[derive(Debug, Clone)]
struct ReplyTo {
    request: Message,
    encoding: Encoding,
    dialect: Dialect,
    rr: ResponseRequested,
}

struct Inner {
    conn: Connection,
    options: ConsumerOptions,
    topics: Topics,
    /// Commands by (from, request_id), for as long as they are fresh.
    dedup: Mutex<Deduplicator>,
    /// Commands without a request_id, by payload, for the default window.
    dedup_payload: Mutex<Deduplicator>,
    queue: mpsc::Sender<Incoming>,
    shutdown: watch::Sender<bool>,
}

impl Inner {
    /// Publishes `response` to the command of `to`, in its dialect and
    /// encoding, without waiting for the broker's PUBACK (see [`Incoming::reply`]).
    fn send(&self, to: &ReplyTo, response: Response) -> Result<()> {
        let msg = Message::response_to(&to.request, response).from(self.options.device_id.as_str());
        let (payload, props) = codec::encode(&msg, to.encoding, to.dialect)?;
        let topics = self.topics.response_topics(&msg);
        self.conn.publish_detached(&topics, &payload, &props)
    }

    /// Sends a response of the consumer's own (102, 400, 501, 503, query features).
    fn send_own(&self, to: &ReplyTo, response: Response) {
        if let Err(e) = self.send(to, response) {
            tracing::warn!(error = %e, "cannot send a response");
        }
    }

    /// Whether a command is seen for the first time: by its request_id
    /// (`by_id`) or, without one, by its payload.
    fn fresh(&self, key: DedupKey, by_id: bool) -> bool {
        let table = if by_id {
            &self.dedup
        } else {
            &self.dedup_payload
        };
        let fresh = lock(table).check(key, monotonic_ms());
        if !fresh {
            Counters::bump(&self.conn.counters.duplicates);
        }
        fresh
    }

    fn on_undecodable(&self, topic: &str, payload: &[u8], e: MessageError) {
        tracing::warn!(topic, error = %e, "undecodable command");
        let s = &e.salvage;
        let addressable = s.request_id.is_some() || s.from.is_some();
        if !addressable || !matches!(s.msg_type, None | Some(MsgType::Request)) {
            return;
        }
        let key = match &s.request_id {
            Some(id) => DedupKey::command(s.from.as_deref(), id),
            None => DedupKey::payload(payload),
        };
        if !self.fresh(key, s.request_id.is_some()) {
            return;
        }
        let request = Message {
            headers: Headers {
                request_id: s.request_id.clone(),
                from: s.from.clone(),
                ..Headers::default()
            },
            body: crate::message::Body::Notification(Map::new()),
        };
        let to = ReplyTo {
            request,
            encoding: s.encoding.unwrap_or_default(),
            dialect: match s.dialect {
                Some(Dialect::Bare) | None => Dialect::Spec,
                Some(d) => d,
            },
            rr: ResponseRequested::Complete,
        };
        self.send_own(&to, Response::new(400).with_text(e.to_string()));
    }

    /// Runs on the connection's task for every message on a command topic.
    fn on_message(self: &Arc<Self>, m: &Inbound) {
        let mut decoded = match self.conn.decode(m) {
            Ok(d) => d,
            Err(e) => return self.on_undecodable(m.topic(), m.payload(), e),
        };
        decoded.message.default_command_id();
        let Some(cmd) = decoded.message.command() else {
            tracing::debug!(
                topic = m.topic(),
                "ignoring a non-command on a command topic"
            );
            return;
        };
        let by_id = decoded.message.headers.request_id.is_some();
        if !self.fresh(DedupKey::of_message(&decoded.message, m.payload()), by_id) {
            return;
        }
        if !addressed_to(&decoded.message.headers, &self.options.device_id) {
            tracing::debug!(to = ?decoded.message.headers.to, "command addressed to other devices");
            return;
        }
        let headers = &decoded.message.headers;
        if let Some(why) = stale_reason(
            headers,
            m.retained(),
            crate::message::now_ms(),
            self.options.freshness_secs,
        ) {
            Counters::bump(&self.conn.counters.stale);
            tracing::warn!(
                topic = m.topic(), request_id = ?headers.request_id, from = ?headers.from,
                action = %cmd.action, target = %cmd.target.name, why,
                "stale command not executed"
            );
            return;
        }
        let builtin = builtin_response(&self.options, cmd);
        if let Some(rsp) = &builtin {
            tracing::info!(
                action = %cmd.action, target = %cmd.target.name, status = rsp.status,
                request_id = ?decoded.message.headers.request_id, "answered by the consumer itself"
            );
        }
        let to = ReplyTo {
            rr: cmd.response_requested(),
            request: decoded.message,
            encoding: decoded.encoding,
            dialect: decoded.dialect,
        };
        if to.rr == ResponseRequested::Ack {
            self.send_own(&to, Response::new(102));
        }
        if let Some(rsp) = builtin {
            if wants(to.rr, &rsp) {
                self.send_own(&to, rsp);
            }
            return;
        }
        let incoming = Incoming {
            inner: Arc::clone(self),
            topic: m.topic().to_owned(),
            to,
        };
        if let Err(mpsc::error::TrySendError::Full(incoming)) = self.queue.try_send(incoming) {
            tracing::warn!("command queue full; dropping a command");
            let busy = Response::new(503).with_text("consumer busy: too many commands queued");
            if wants(incoming.to.rr, &busy) {
                self.send_own(&incoming.to, busy);
            }
        }
    }
}

/// Whether a response is sent given `response_requested`: nothing for
/// `none`; for `ack`, the consumer's own `102` is the only answer.
fn wants(rr: ResponseRequested, _rsp: &Response) -> bool {
    matches!(rr, ResponseRequested::Status | ResponseRequested::Complete)
}

/// A command for the application, with the means to answer it.
pub struct Incoming {
    inner: Arc<Inner>,
    topic: String,
    to: ReplyTo,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("topic", &self.topic)
            .field("message", &self.to.request)
            .finish()
    }
}

impl Incoming {
    /// The whole request message.
    pub fn message(&self) -> &Message {
        &self.to.request
    }

    /// The command.
    pub fn command(&self) -> &Command {
        self.to
            .request
            .command()
            .expect("an Incoming always holds a request")
    }

    /// The topic it arrived on.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Its encoding (the reply uses the same).
    pub fn encoding(&self) -> Encoding {
        self.to.encoding
    }

    /// Its dialect (the reply uses the same).
    pub fn dialect(&self) -> Dialect {
        self.to.dialect
    }

    /// What the producer asked for.
    pub fn response_requested(&self) -> ResponseRequested {
        self.to.rr
    }

    /// Answers with a handler's outcome, the one rule every binding shares:
    /// the response as given, `Ok(None)` as a plain `200`, `Err(text)` as a
    /// `500` with that text.
    pub async fn answer(
        &self,
        outcome: std::result::Result<Option<Response>, String>,
    ) -> Result<()> {
        self.respond(outcome_response(outcome))
    }

    /// Answers the command: a `102` first if the work takes long, then the
    /// final response. Sends nothing when the producer asked for `none` or
    /// `ack` (the consumer already acknowledged).
    ///
    /// Returns once the MQTT client has the response (it keeps it across
    /// reconnects and retries it at QoS 1/2), without waiting for the
    /// broker's PUBACK, so a device loop is not slowed by a round trip per
    /// reply. A refusal by the broker (an ACL, say) is logged as a warning
    /// and the response is not counted in [`Stats::published`].
    pub async fn reply(&self, response: Response) -> Result<()> {
        self.respond(response)
    }

    /// [`Incoming::reply`] for callers that are not async.
    pub fn respond(&self, response: Response) -> Result<()> {
        response.validate()?;
        if !wants(self.to.rr, &response) {
            return Ok(());
        }
        self.inner.send(&self.to, response)
    }
}

/// The response for a handler's outcome (see [`Incoming::answer`]).
fn outcome_response(outcome: std::result::Result<Option<Response>, String>) -> Response {
    match outcome {
        Ok(Some(r)) => r,
        Ok(None) => Response::new(200),
        Err(text) => Response::new(500).with_text(text),
    }
}

/// Receives commands and answers them; cheap to clone, one MQTT connection.
#[derive(Clone)]
pub struct Consumer {
    inner: Arc<Inner>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Incoming>>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("device_id", &self.inner.options.device_id)
            .finish()
    }
}

impl Consumer {
    /// Connects and subscribes to `oc2/cmd/all`, `oc2/cmd`, `oc2/cmd/ap/<p>`
    /// per profile and `oc2/cmd/device/<id>` (shared when a group is set).
    pub async fn connect(config: ClientConfig, options: ConsumerOptions) -> Result<Self> {
        options.validate()?;
        let topics = config.topics()?;
        let mut filters =
            topics.subscriptions(Role::Consumer, Some(&options.device_id), &options.profiles)?;
        if let Some(group) = &options.group {
            filters = filters
                .iter()
                .map(|f| shared(group, f))
                .collect::<Result<_>>()?;
        }
        let conn = Connection::open(&config, filters).await?;
        let (queue, rx) = mpsc::channel(QUEUE);
        let window = dedup_window_ms(options.freshness_secs);
        let inner = Arc::new(Inner {
            conn,
            options,
            topics,
            dedup: Mutex::new(Deduplicator::new(window, DEFAULT_CAPACITY)),
            dedup_payload: Mutex::new(Deduplicator::default()),
            queue,
            shutdown: watch::Sender::new(false),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        inner.conn.on_message(move |m| {
            if let Some(inner) = weak.upgrade() {
                inner.on_message(m);
            }
        });
        Ok(Self {
            inner,
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
        })
    }

    /// The next command for the application; `None` once closed.
    pub async fn next(&self) -> Option<Incoming> {
        let mut closed = self.inner.shutdown.subscribe();
        if *closed.borrow() {
            return None;
        }
        let mut rx = self.rx.lock().await;
        tokio::select! {
            m = rx.recv() => m,
            _ = closed.wait_for(|c| *c) => None,
        }
    }

    /// Runs `handler` for every command until [`Consumer::close`] (or until
    /// this future is dropped), on blocking threads (never on the network
    /// thread), up to 64 at a time.
    ///
    /// The handler returns the response, `Ok(None)` for a plain `200`, or
    /// `Err(text)` for a `500` with that text; a panic is also a `500`.
    ///
    /// The threads take turns waiting for the next command (leader and
    /// followers): the network thread's hand-off wakes the very thread that
    /// runs the handler and publishes the answer, and a thread that takes a
    /// command when no other one is waiting starts another, so a slow handler
    /// never holds up the next command.
    pub async fn serve<F>(&self, handler: F) -> Result<()>
    where
        F: Fn(&Message) -> std::result::Result<Option<Response>, String> + Send + Sync + 'static,
    {
        let (stop, _) = watch::channel(false);
        let (finished, mut all_finished) = watch::channel(false);
        let serve = Arc::new(Serve {
            consumer: self.clone(),
            handler,
            rt: tokio::runtime::Handle::current(),
            stop,
            finished,
            idle: AtomicUsize::new(0),
            running: AtomicUsize::new(1),
        });
        // Dropping this future (a caller's timeout, Ctrl-C in a binding) stops
        // the threads once their current handler returned.
        let _stop_on_drop = StopOnDrop(Arc::clone(&serve));
        Serve::start(&serve);
        let _ = all_finished.wait_for(|f| *f).await;
        Ok(())
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

    /// This consumer's options.
    pub fn options(&self) -> &ConsumerOptions {
        &self.inner.options
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.conn.stats()
    }

    /// Stops serving and disconnects.
    pub async fn close(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner.conn.close().await;
    }
}

/// The threads of one [`Consumer::serve`].
struct Serve<F> {
    consumer: Consumer,
    handler: F,
    rt: tokio::runtime::Handle,
    /// Set when the `serve` future is dropped.
    stop: watch::Sender<bool>,
    /// Set by the last thread to stop.
    finished: watch::Sender<bool>,
    /// Threads waiting for a command.
    idle: AtomicUsize,
    /// Threads started and not yet stopped.
    running: AtomicUsize,
}

impl<F> Serve<F>
where
    F: Fn(&Message) -> std::result::Result<Option<Response>, String> + Send + Sync + 'static,
{
    fn start(this: &Arc<Self>) {
        let serve = Arc::clone(this);
        drop(this.rt.spawn_blocking(move || serve.run()));
    }

    fn run(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        loop {
            self.idle.fetch_add(1, Ordering::SeqCst);
            let next = self.rt.block_on(async {
                tokio::select! {
                    m = self.consumer.next() => m,
                    _ = stop.wait_for(|s| *s) => None,
                }
            });
            let others_waiting = self.idle.fetch_sub(1, Ordering::SeqCst) > 1;
            let Some(incoming) = next else { break };
            let another = !others_waiting
                && self
                    .running
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        (n < CONCURRENT_HANDLERS).then_some(n + 1)
                    })
                    .is_ok();
            if another {
                Self::start(&self);
            }
            let run = std::panic::AssertUnwindSafe(|| (self.handler)(incoming.message()));
            let outcome = std::panic::catch_unwind(run)
                .unwrap_or_else(|p| Err(format!("handler panicked: {}", panic_text(&*p))));
            if let Err(e) = incoming.respond(outcome_response(outcome)) {
                tracing::warn!(error = %e, "cannot answer a command");
            }
        }
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.finished.send_replace(true);
        }
    }
}

/// Stops the threads of a [`Consumer::serve`] whose future was dropped.
struct StopOnDrop<F>(Arc<Serve<F>>);

impl<F> Drop for StopOnDrop<F> {
    fn drop(&mut self) {
        self.0.stop.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Target;
    use serde_json::json;

    #[test]
    fn a_replayed_command_never_runs_twice() {
        // The consumer's two checks, in its order: seen before (by request_id,
        // for dedup_window_ms), then stale (by created). Sent at 0 s, then
        // replayed at 2 s, 62 s (past the old 60 s window) and 901 s.
        let freshness = DEFAULT_FRESHNESS_SECS;
        let mut seen = Deduplicator::new(dedup_window_ms(freshness), DEFAULT_CAPACITY);
        let created = 1_700_000_000_000_i64;
        let headers = Headers {
            request_id: Some("r1".into()),
            from: Some("p1".into()),
            created: Some(created),
            ..Headers::default()
        };
        let key = DedupKey::command(Some("p1"), "r1");
        let mut runs = |after_s: u64| {
            let monotonic = after_s * 1000;
            let wall = created + i64::try_from(monotonic).expect("small");
            seen.check(key, monotonic) && stale_reason(&headers, false, wall, freshness).is_none()
        };
        assert!(runs(0));
        assert!(!runs(2), "a duplicate");
        assert!(
            !runs(62),
            "still remembered: the window is the freshness window"
        );
        assert!(!runs(901), "forgotten, but stale");
    }

    fn opts() -> ConsumerOptions {
        ConsumerOptions::new("fw-1")
            .profile("slpf")
            .pair("deny", "ipv4_connection")
    }

    #[test]
    fn query_features_is_answered_from_the_options() {
        let cmd = Command::new("query", Target::features(["versions", "profiles", "pairs"]))
            .expect("query");
        let rsp = builtin_response(&opts(), &cmd).expect("answered by the consumer");
        assert_eq!(rsp.status, 200);
        let results = Value::Object(rsp.results.expect("results"));
        assert_eq!(
            results,
            json!({"versions": ["1.0"], "profiles": ["slpf"], "pairs": {"query": ["features"], "deny": ["ipv4_connection"]}})
        );
    }

    #[test]
    fn query_features_with_no_features_is_a_bare_200() {
        let cmd = Command::new("query", Target::features(Vec::<String>::new())).expect("query");
        let rsp = builtin_response(&opts(), &cmd).expect("answered");
        assert_eq!((rsp.status, rsp.results), (200, None));
    }

    #[test]
    fn query_features_with_other_arguments_is_400() {
        let cmd = Command::new("query", Target::features(["versions"]))
            .expect("query")
            .with_arg("duration", 5);
        let rsp = features_response(&opts(), &cmd);
        assert_eq!(rsp.status, 400);
        let cmd = Command::new("query", Target::features(["colour"])).expect("query");
        assert!(
            features_response(&opts(), &cmd)
                .status_text
                .expect("text")
                .contains("unknown feature \"colour\"")
        );
    }

    #[test]
    fn undeclared_pairs_get_501_and_declared_ones_reach_the_app() {
        let deny6 = Command::new("deny", Target::new("ipv6_connection", json!({}))).expect("deny");
        let rsp = builtin_response(&opts(), &deny6).expect("501");
        assert_eq!(rsp.status, 501);
        assert_eq!(
            rsp.status_text.as_deref(),
            Some("deny ipv6_connection is not implemented by this consumer")
        );
        let deny4 = Command::new("deny", Target::new("ipv4_connection", json!({}))).expect("deny");
        assert!(builtin_response(&opts(), &deny4).is_none());
        assert!(
            builtin_response(&ConsumerOptions::new("x"), &deny6).is_none(),
            "no pairs declared: all reach the app"
        );
    }

    #[test]
    fn to_filter() {
        let mut h = Headers::default();
        assert!(addressed_to(&h, "fw-1"));
        h.to = Some(vec!["fw-2".into()]);
        assert!(!addressed_to(&h, "fw-1"));
        h.to = Some(vec!["fw-2".into(), "fw-1".into()]);
        assert!(addressed_to(&h, "fw-1"));
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(ConsumerOptions::new("a#b").validate().is_err());
        let e = ConsumerOptions::new("a")
            .pair("explode", "x")
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration: pair explode:x: unknown action 'explode'"
        );
    }
}
