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

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{mpsc, watch};

use crate::client::{
    ClientConfig, Connection, Counters, Inbound, SharedProbe, Stats, lock, monotonic_ms, panic_text,
};
use crate::codec::{Dialect, Encoding};
use crate::dedup::DedupKey;
use crate::error::{Error, Result};
use crate::journal::{Journal, Unsent};
use crate::message::{Command, Message, Response, ResponseRequested};
use crate::rules::{ConsumerRules, Outcome, Publish, Received, Request, Responder, Skip, panicked};
use crate::topics::{Role, shared};

pub use crate::rules::{
    ConsumerOptions, DEFAULT_FRESHNESS_SECS, HandlerResult, addressed_to, builtin_response,
    dedup_window_ms, features_response, handler_outcome, outcome_response, stale_reason,
    stopped_response,
};

/// Commands waiting for the application; when full, new ones get `503`.
const QUEUE: usize = 10_000;
/// Handler calls running at once in [`Consumer::serve`] and
/// [`Consumer::serve_async`] (and a binding's own asynchronous serve loop,
/// which reads it from here).
pub const CONCURRENT_HANDLERS: usize = 64;
/// Commands that may wait while every [`Consumer::serve`] handler is busy
/// and none has taken a command for [`STALLED_MS`]; past them, new ones get
/// `503` at once instead of waiting without bound.
const SATURATED_BACKLOG: usize = 64;
/// How long without a command taken means the handlers are stuck, not slow:
/// a backlog that moves (a device back online with its session's commands)
/// waits its turn; one that does not is answered `503`.
pub const STALLED_MS: u64 = 1_000;
/// How long an inline handler ([`Consumer::serve_inline`]) may hold the
/// connection's task before a warning says it blocks: nothing is read or
/// written on that connection meanwhile, PINGREQs included.
pub const INLINE_SLOW: std::time::Duration = std::time::Duration::from_millis(100);
/// At most one such warning per this many milliseconds: a handler that
/// blocks on every command would otherwise log once per command.
const INLINE_SLOW_WARN_EVERY_MS: u64 = 10_000;

/// The handler of a running [`Consumer::serve_inline`], called on the
/// connection's task.
type InlineHandler = Arc<dyn Fn(&Incoming) -> Outcome + Send + Sync>;

struct Inner {
    conn: Connection,
    options: ConsumerOptions,
    /// The OpenC2 rules: what each received message leads to.
    rules: Mutex<ConsumerRules>,
    /// Addresses the application's answers without taking the rules' lock.
    responder: Responder,
    queue: mpsc::Sender<Incoming>,
    shutdown: watch::Sender<bool>,
    /// Commands the application took ([`Consumer::next`], either serve loop)
    /// and has not finished: no final answer yet, not dropped. A handler
    /// answered 500 at its timeout no longer counts.
    busy: AtomicUsize,
    /// When the application last took a command (monotonic ms).
    last_taken_ms: std::sync::atomic::AtomicU64,
    /// The commands taken and finished, when [`ConsumerOptions::journal`] is set.
    journal: Option<Arc<Mutex<Journal>>>,
    /// The handler of a running [`Consumer::serve_inline`]: each command
    /// goes to it instead of the queue. Locked once per command, which
    /// costs nothing uncontended; `serve_inline` holds it while it answers
    /// the commands queued before it started, so that those are answered
    /// first and in order.
    inline: Mutex<Option<InlineHandler>>,
    /// A serve of any style runs (one at a time).
    serving: std::sync::atomic::AtomicBool,
    /// When an inline handler's slowness was last logged (monotonic ms; 0: never).
    slow_warned_ms: std::sync::atomic::AtomicU64,
}

impl Inner {
    /// Why a new command cannot be taken now: every serve handler is busy
    /// and a backlog already waits, or the queue is full.
    fn overloaded(&self) -> Option<String> {
        let waiting = self.queue.max_capacity() - self.queue.capacity();
        let stalled_ms = monotonic_ms().saturating_sub(self.last_taken_ms.load(Ordering::Relaxed));
        if self.busy.load(Ordering::Relaxed) >= CONCURRENT_HANDLERS
            && waiting >= SATURATED_BACKLOG
            && stalled_ms >= STALLED_MS
        {
            return Some(format!(
                "consumer busy: all {CONCURRENT_HANDLERS} handlers are running, none finished for {:.1} s, and {waiting} commands wait",
                stalled_ms as f64 / 1000.0
            ));
        }
        (self.queue.capacity() == 0).then(|| format!("consumer busy: {QUEUE} commands queued"))
    }

    /// Publishes a response without waiting for the broker's PUBACK (see
    /// [`Incoming::reply`]).
    fn publish(&self, p: &Publish) -> Result<()> {
        self.conn
            .publish_detached(&p.topics, &p.payload, &p.properties)
    }

    /// Sends the final answer of a journaled command: recorded as answered
    /// first, finished once the broker acknowledged it, so that a consumer
    /// killed in between sends it again after a restart (and does not run
    /// the command again).
    fn publish_journaled(
        &self,
        journal: &Arc<Mutex<Journal>>,
        key: DedupKey,
        p: &Unsent,
    ) -> Result<()> {
        lock(journal).answered(key, &p.topics, &p.payload, &p.properties);
        let journal = Arc::clone(journal);
        self.conn
            .publish_then(&p.topics, &p.payload, &p.properties, move |acked| match acked {
                Ok(()) => lock(&journal).finished(key),
                Err(e) => tracing::warn!(
                    error = %e,
                    "a response was not acknowledged; the journal keeps it to send again after a restart"
                ),
            })
    }

    /// Sends a response of the consumer's own (102, 400, 501, 503, query features).
    fn publish_own(&self, p: &Publish) {
        if let Err(e) = self.publish(p) {
            tracing::warn!(error = %e, "cannot send a response");
        }
    }

    /// Runs on the connection's task for every message on a command topic.
    fn on_message(self: &Arc<Self>, m: &Inbound) {
        let properties = m.properties();
        self.on_received(&Received {
            topic: m.topic(),
            payload: m.payload(),
            properties: properties.as_ref(),
            retained: m.retained(),
        });
    }

    /// Decides on one message (from the broker, or from the journal at
    /// start) and acts on the decision.
    fn on_received(self: &Arc<Self>, received: &Received<'_>) {
        let m = received;
        let decision =
            lock(&self.rules).on_command(received, crate::message::now_ms(), monotonic_ms());
        for p in &decision.publish {
            self.publish_own(p);
        }
        let counters = &self.conn.counters;
        match &decision.skipped {
            None => {}
            Some(Skip::Duplicate) => Counters::bump(&counters.duplicates),
            Some(Skip::Stale(why)) => {
                Counters::bump(&counters.stale);
                tracing::warn!(topic = m.topic, why, "stale command not executed");
            }
            Some(Skip::Undecodable(e)) => {
                Counters::bump(&counters.decode_errors);
                tracing::warn!(topic = m.topic, error = %e, answered = !decision.publish.is_empty(), "undecodable command");
            }
            Some(Skip::Answered(status)) => {
                tracing::info!(topic = m.topic, status, "answered by the consumer itself");
            }
            Some(why @ (Skip::NotAddressed | Skip::NotACommand)) => {
                tracing::debug!(topic = m.topic, why = why.as_str(), "not for this device");
            }
        }
        let Some(request) = decision.execute else {
            return;
        };
        let refuse = |request: &Request, why: String| {
            tracing::warn!(why, "command refused: 503");
            if let Ok(Some(p)) = self
                .responder
                .answer(request, Response::new(503).with_text(why))
            {
                self.publish_own(&p);
            }
        };
        if let Some(why) = self.overloaded() {
            return refuse(&request, why);
        }
        // Written before the application can see it: a process killed from
        // here on runs it again when it starts.
        if let (Some(journal), Some(key)) = (&self.journal, request.key()) {
            lock(journal).taken(key, m.topic, m.payload);
        }
        let incoming = Incoming {
            inner: Arc::clone(self),
            request,
            taken: std::sync::atomic::AtomicBool::new(false),
            answered: std::sync::atomic::AtomicBool::new(false),
            deadline: AtomicU8::new(UNTIMED),
            timer: Mutex::new(None),
        };
        // Queued under the lock: a `serve_inline` starting now answers it
        // with what was queued before, not after the commands that follow.
        let inline = lock(&self.inline);
        if let Some(handler) = inline.as_ref() {
            let handler = Arc::clone(handler);
            drop(inline);
            return self.run_inline(&handler, incoming.take());
        }
        if let Err(mpsc::error::TrySendError::Full(incoming)) = self.queue.try_send(incoming) {
            drop(inline);
            refuse(
                &incoming.request,
                format!("consumer busy: {QUEUE} commands queued"),
            );
        }
    }

    /// Runs an inline handler on one command and answers it by the outcome
    /// rule, on the calling thread (the connection's task, or
    /// `serve_inline`'s caller for the commands queued before it started).
    fn run_inline(&self, handler: &InlineHandler, incoming: Incoming) {
        let started = std::time::Instant::now();
        let run = std::panic::AssertUnwindSafe(|| handler(&incoming));
        let outcome = std::panic::catch_unwind(run).unwrap_or_else(|p| panicked(panic_text(&*p)));
        let held = started.elapsed();
        if held >= INLINE_SLOW {
            self.warn_slow_inline(held);
        }
        if let Err(e) = incoming.answer_once(outcome) {
            tracing::warn!(error = %e, "cannot answer a command");
        }
    }

    /// Says, at most once per [`INLINE_SLOW_WARN_EVERY_MS`], that an inline
    /// handler held the connection's task: no timeout can interrupt it, and
    /// nothing else moves on the connection meanwhile.
    fn warn_slow_inline(&self, held: std::time::Duration) {
        let now = monotonic_ms().max(1);
        let last = self.slow_warned_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= INLINE_SLOW_WARN_EVERY_MS;
        if due
            && self
                .slow_warned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                held_ms = u64::try_from(held.as_millis()).unwrap_or(u64::MAX),
                "a serve_inline handler held the network thread for {:.0} ms: nothing is read or \
                 sent on this connection meanwhile and no handler timeout applies; use serve for \
                 handlers that block",
                held.as_secs_f64() * 1000.0
            );
        }
    }
}

/// Why a consumer group cannot start on the broker at `broker`.
fn no_shared_subscriptions(broker: &str, why: &str) -> Error {
    Error::Config(format!(
        "consumer groups need shared subscriptions ($share/<group>/...), and the check of the \
         broker at {broker} failed: {why}. Mosquitto 2, EMQX and HiveMQ have them; RabbitMQ 3.10 \
         and ActiveMQ 5.17 do not (they take $share/... for an ordinary topic, so a group \
         member would receive nothing). Run one consumer per device id, without a group, or \
         use a broker that has them"
    ))
}

/// A command for the application, with the means to answer it.
pub struct Incoming {
    inner: Arc<Inner>,
    request: Request,
    /// Counted in `Inner::busy`: taken by the application, not finished.
    taken: std::sync::atomic::AtomicBool,
    /// Answered through [`Incoming::answer_once`].
    answered: std::sync::atomic::AtomicBool,
    /// Whether a handler timeout runs ([`Incoming::with_handler_timeout`]):
    /// [`UNTIMED`], [`OPEN`], then [`ANSWERED`] or [`TIMED_OUT`], whichever
    /// comes first.
    deadline: AtomicU8,
    /// The timer of [`Incoming::with_handler_timeout`], stopped by a final
    /// answer in time or by the drop: a timer per command does not outlive it.
    timer: Mutex<Option<tokio::task::AbortHandle>>,
}

/// No handler timeout runs on the command (taken with [`Consumer::next`],
/// or the serve loops', which keep their own).
const UNTIMED: u8 = 0;
/// A handler timeout runs and no final answer was sent.
const OPEN: u8 = 1;
/// The application's final answer came in time.
const ANSWERED: u8 = 2;
/// The timeout's `500` was sent: what the application answers later is dropped.
const TIMED_OUT: u8 = 3;

impl Incoming {
    /// Counts this command as taken by the application.
    fn take(self) -> Self {
        self.inner.busy.fetch_add(1, Ordering::SeqCst);
        self.taken.store(true, Ordering::SeqCst);
        self.inner
            .last_taken_ms
            .store(monotonic_ms(), Ordering::Relaxed);
        self
    }

    /// No longer counts this command as taken (once).
    fn finish(&self) {
        if self.taken.swap(false, Ordering::SeqCst) {
            self.inner.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.finish();
        self.stop_timer();
    }
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("topic", &self.request.topic)
            .field("message", &self.request.message)
            .finish()
    }
}

impl Incoming {
    /// The whole request message.
    pub fn message(&self) -> &Message {
        &self.request.message
    }

    /// The command.
    pub fn command(&self) -> &Command {
        self.request.command()
    }

    /// The topic it arrived on.
    pub fn topic(&self) -> &str {
        &self.request.topic
    }

    /// Its encoding (the reply uses the same).
    pub fn encoding(&self) -> Encoding {
        self.request.encoding
    }

    /// Its dialect (the reply uses the same).
    pub fn dialect(&self) -> Dialect {
        self.request.dialect
    }

    /// What the producer asked for.
    pub fn response_requested(&self) -> ResponseRequested {
        self.request.response_requested()
    }

    /// Answers with a handler's outcome ([`outcome_response`]): the
    /// response as given, `Ok(None)` as a plain `200`, `Err(text)` as a
    /// `500` with that text.
    pub async fn answer(
        &self,
        outcome: std::result::Result<Option<Response>, String>,
    ) -> Result<()> {
        self.respond(outcome_response(outcome))
    }

    /// [`Incoming::answer`], unless the command was answered this way
    /// already: of a serve loop and a binding that answers a handler's
    /// outcome on its own thread (without waking the loop's), the first
    /// answers and the other sends nothing (`Ok(false)`). Past the handler's
    /// timeout, the loop's `500` is the first.
    pub fn answer_once(
        &self,
        outcome: std::result::Result<Option<Response>, String>,
    ) -> Result<bool> {
        if self.answered.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        self.respond(outcome_response(outcome)).map(|()| true)
    }

    /// How long a handler may take on this command
    /// ([`ConsumerOptions::handler_timeout`]; `None`: no limit).
    pub fn handler_timeout(&self) -> Option<std::time::Duration> {
        self.inner.options.handler_timeout
    }

    /// Answers `500 handler timed out after N s`, logged as a warning: what
    /// both serve loops answer for a handler past
    /// [`ConsumerOptions::handler_timeout`], for a binding's own loop.
    pub fn time_out(&self) -> Result<()> {
        let text = timed_out(self, self.handler_timeout().unwrap_or_default());
        self.respond(Response::new(500).with_text(text))
    }

    /// Answers [`stopped_response`] (`500`), logged as a warning: for a
    /// binding's own serve loop that stopped this command's handler before
    /// it finished, because serving was stopped (Python's `serve_async`
    /// cancelled), as [`Incoming::time_out`] is for a handler past its time.
    pub fn stop(&self) -> Result<()> {
        let r = stopped_response();
        tracing::warn!(
            request_id = ?self.message().headers.request_id,
            "{}",
            r.status_text.as_deref().unwrap_or_default()
        );
        self.respond(r)
    }

    /// Hands the command to a callback of the application that answers it
    /// whenever it likes, through [`Incoming::respond`] (C's
    /// `oc2_consumer_serve`), under the consumer's handler timeout as the
    /// serve loops apply it: past [`ConsumerOptions::handler_timeout`] from
    /// now without a final answer, the command is answered `500 handler
    /// timed out after N s` and what the application answers later is
    /// dropped ([`Error::Timeout`]). Without a timeout, or once the command
    /// is dropped unanswered (it then gets no answer, as ever), nothing
    /// happens. A command taken with [`Consumer::next`] is the
    /// application's own loop's: no timeout applies unless it asks for one
    /// here.
    pub fn with_handler_timeout(self) -> Arc<Self> {
        let this = Arc::new(self);
        let Some(limit) = this.handler_timeout() else {
            return this;
        };
        this.deadline.store(OPEN, Ordering::SeqCst);
        let command = Arc::downgrade(&this);
        let timer = crate::client::runtime().spawn(async move {
            tokio::time::sleep(limit).await;
            let Some(incoming) = command.upgrade() else {
                return;
            };
            let closed = incoming.deadline.compare_exchange(
                OPEN,
                TIMED_OUT,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            if closed.is_ok() {
                let text = timed_out(&incoming, limit);
                if let Err(e) = incoming.send(Response::new(500).with_text(text)) {
                    tracing::warn!(error = %e, "cannot answer a command");
                }
            }
        });
        *lock(&this.timer) = Some(timer.abort_handle());
        this
    }

    /// Stops the timer of [`Incoming::with_handler_timeout`], if any.
    fn stop_timer(&self) {
        // Most commands have none: no lock for them.
        if self.deadline.load(Ordering::Relaxed) == UNTIMED {
            return;
        }
        if let Some(timer) = lock(&self.timer).take() {
            timer.abort();
        }
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

    /// [`Incoming::reply`] for callers that are not async. Under a handler
    /// timeout ([`Incoming::with_handler_timeout`]) that passed, the answer
    /// is dropped: [`Error::Timeout`].
    pub fn respond(&self, response: Response) -> Result<()> {
        let late = match self.deadline.load(Ordering::SeqCst) {
            TIMED_OUT => true,
            OPEN if response.is_final() => {
                let closed = self.deadline.compare_exchange(
                    OPEN,
                    ANSWERED,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                self.stop_timer();
                closed.is_err()
            }
            _ => false,
        };
        if late {
            return Err(Error::Timeout(format!(
                "the command was answered 500 at its handler timeout ({:.1} s); this answer was dropped",
                self.handler_timeout().unwrap_or_default().as_secs_f64()
            )));
        }
        self.send(response)
    }

    /// Addresses, encodes and publishes a response (journaled when final).
    fn send(&self, response: Response) -> Result<()> {
        let is_final = response.is_final();
        let publish = self.inner.responder.answer(&self.request, response)?;
        let journaled = match (&self.inner.journal, self.request.key()) {
            (Some(journal), Some(key)) if is_final => Some((journal, key)),
            _ => None,
        };
        let sent = match (publish, journaled) {
            (Some(p), Some((journal, key))) => {
                let answer = Unsent {
                    key,
                    topics: p.topics,
                    payload: p.payload,
                    properties: p.properties,
                };
                self.inner.publish_journaled(journal, key, &answer)
            }
            (Some(p), None) => self.inner.publish(&p),
            (None, Some((journal, key))) => {
                lock(journal).finished(key);
                Ok(())
            }
            (None, None) => Ok(()),
        };
        if is_final {
            self.finish();
        }
        sent
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
        // On a topic of its own, outside oc2/: no consumer, producer or
        // monitor sees the probe.
        let probe = options.group.as_ref().map(|group| SharedProbe {
            group: group.clone(),
            topic: format!(
                "{}oc2mqtt/probe/{}",
                topics.prefix(),
                uuid::Uuid::new_v4().simple()
            ),
            refusal: no_shared_subscriptions,
        });
        let mut rules =
            ConsumerRules::with_max_payload(options.clone(), topics, config.max_payload)?;
        let (journal, pending, unsent) = match &options.journal {
            Some(path) => {
                if config.client_id.is_none() && config.client_id_file.is_none() {
                    tracing::warn!(
                        journal = %path.display(),
                        "a journal without a stable client id: commands sent while this consumer \
                         is down are not kept by the broker (set client_id or client_id_file)"
                    );
                }
                let (journal, opened) = Journal::open(path)?;
                for key in opened.finished {
                    rules.remember(key, monotonic_ms());
                }
                for u in &opened.unsent {
                    rules.remember(u.key, monotonic_ms());
                }
                (
                    Some(Arc::new(Mutex::new(journal))),
                    opened.pending,
                    opened.unsent,
                )
            }
            None => (None, Vec::new(), Vec::new()),
        };
        let conn = Connection::open_with(&config, filters, probe).await?;
        let (queue, rx) = mpsc::channel(QUEUE);
        let inner = Arc::new(Inner {
            conn,
            options,
            responder: rules.responder(),
            rules: Mutex::new(rules),
            queue,
            shutdown: watch::Sender::new(false),
            busy: AtomicUsize::new(0),
            last_taken_ms: std::sync::atomic::AtomicU64::new(monotonic_ms()),
            journal,
            inline: Mutex::new(None),
            serving: std::sync::atomic::AtomicBool::new(false),
            slow_warned_ms: std::sync::atomic::AtomicU64::new(0),
        });
        if !pending.is_empty() {
            tracing::warn!(
                commands = pending.len(),
                "the journal holds commands taken and not finished before the last stop: running them"
            );
        }
        if let Some(journal) = &inner.journal {
            if !unsent.is_empty() {
                tracing::warn!(
                    answers = unsent.len(),
                    "the journal holds answers the broker had not acknowledged before the last stop: sending them again"
                );
            }
            for u in &unsent {
                if let Err(e) = inner.publish_journaled(journal, u.key, u) {
                    tracing::warn!(error = %e, "cannot send a response again");
                }
            }
        }
        for p in &pending {
            inner.on_received(&Received::new(&p.topic, &p.payload));
        }
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
        let taken = tokio::select! {
            m = rx.recv() => m,
            _ = closed.wait_for(|c| *c) => None,
        };
        taken.map(Incoming::take)
    }

    /// A command already waiting, without waiting for one: `None` when none
    /// is, when a [`Consumer::next`] is waiting (it takes the next one), or
    /// once closed.
    fn try_next(&self) -> Option<Incoming> {
        if *self.inner.shutdown.borrow() {
            return None;
        }
        let mut rx = self.rx.try_lock().ok()?;
        rx.try_recv().ok().map(Incoming::take)
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
    ///
    /// One serve of any style at a time ([`Consumer::serve`],
    /// [`Consumer::serve_held`], [`Consumer::serve_async`],
    /// [`Consumer::serve_inline`]): a second one while one runs returns
    /// [`Error::Config`] at once.
    pub async fn serve<F>(&self, handler: F) -> Result<()>
    where
        F: Fn(&Message) -> std::result::Result<Option<Response>, String> + Send + Sync + 'static,
    {
        self.serve_held(|run: &mut dyn FnMut()| run(), handler)
            .await
    }

    /// [`Consumer::serve`] for handlers that run under a lock of their own
    /// (a binding's interpreter lock): `hold(run)` takes it, calls `run`
    /// once, and lets it go. A thread that has it runs its command, then every
    /// command already waiting, one after the other under that one hold; the
    /// next thread waits for the hold with the next command, which it gets
    /// as soon as a handler lets the lock go (ends, or blocks and releases
    /// it), so handlers that block still run side by side, up to 64.
    pub async fn serve_held<H, F>(&self, hold: H, handler: F) -> Result<()>
    where
        H: Fn(&mut dyn FnMut()) + Send + Sync + 'static,
        F: Fn(&Message) -> std::result::Result<Option<Response>, String> + Send + Sync + 'static,
    {
        let _serving = self.start_serving()?;
        let (stop, _) = watch::channel(false);
        let (finished, mut all_finished) = watch::channel(false);
        let serve = Arc::new(Serve {
            consumer: self.clone(),
            hold,
            handler,
            rt: tokio::runtime::Handle::current(),
            stop,
            finished,
            lead: tokio::sync::Mutex::new(()),
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

    /// [`Consumer::serve`] for an asynchronous handler (a binding's
    /// JavaScript or Python coroutine, a tokio task's work): runs
    /// `handler(incoming)` for every command until [`Consumer::close`], up to
    /// 64 at a time as tasks on the runtime, and answers each with its
    /// outcome by the same rule ([`outcome_response`]): the response given,
    /// `Ok(None)` as `200`, `Err(text)` or a panic as `500`, a handler
    /// running past [`ConsumerOptions::handler_timeout`] as `500` (its
    /// future is dropped). While all 64 run and none finishes, new commands
    /// wait and then get `503`, as with [`Consumer::serve`]. The handler may
    /// send a `102` itself through the [`Incoming`] it gets.
    ///
    /// Returns once the consumer is closed and the handlers running then
    /// have answered; dropping the returned future stops taking commands
    /// (the running handlers still finish and answer).
    pub async fn serve_async<F, Fut>(&self, handler: F) -> Result<()>
    where
        F: Fn(Arc<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<Option<Response>, String>>
            + Send
            + 'static,
    {
        use futures::FutureExt as _;
        let _serving = self.start_serving()?;
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_HANDLERS));
        // Dropping this future detaches the running handlers instead of
        // aborting them: each still answers its command.
        let mut running = DetachOnDrop(tokio::task::JoinSet::new());
        let running = &mut running.0;
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let Some(incoming) = self.next().await else {
                break;
            };
            while running.try_join_next().is_some() {}
            let incoming = Arc::new(incoming);
            let limit = self.inner.options.handler_timeout;
            let work = std::panic::AssertUnwindSafe(handler(Arc::clone(&incoming))).catch_unwind();
            running.spawn(async move {
                let outcome = match limit {
                    Some(limit) => match tokio::time::timeout(limit, work).await {
                        Ok(done) => done,
                        Err(_) => Ok(Err(timed_out(&incoming, limit))),
                    },
                    None => work.await,
                }
                .unwrap_or_else(|p| panicked(panic_text(&*p)));
                if let Err(e) = incoming.answer_once(outcome) {
                    tracing::warn!(error = %e, "cannot answer a command");
                }
                drop(slot);
            });
        }
        while running.join_next().await.is_some() {}
        Ok(())
    }

    /// [`Consumer::serve`] for handlers that never block: runs `handler` on
    /// the connection's own task (its network thread), right where the
    /// command would be handed to a serve thread, and answers it by the
    /// same rule: the response given, `Ok(None)` as a plain `200`,
    /// `Err(text)` as a `500` with that text, a panic as a `500` (and the
    /// next command is served). Until [`Consumer::close`], or until this
    /// future is dropped, which uninstalls the handler (commands queue
    /// again, for a later serve). Commands already queued when it starts are
    /// answered first, in order, on the caller's thread.
    ///
    /// What it saves: the hand-off of every command from the network thread
    /// to a handler thread (two thread wake-ups per exchange); the answer is
    /// written with the command's PUBACK, in one write. What it costs: the
    /// connection reads and writes nothing while the handler runs, handlers
    /// run one at a time, and [`ConsumerOptions::handler_timeout`] cannot
    /// interrupt a handler (none is applied). A handler that holds the thread
    /// 100 ms or more is logged as a warning (at most once per 10 s): it
    /// belongs in [`Consumer::serve`]. The handler must not wait for this
    /// connection (a [`Consumer::close`] awaited from inside it never ends),
    /// nor block on anything else.
    ///
    /// Everything the consumer does before the application sees a command
    /// still applies: duplicates dropped, the journal written first, `query
    /// features` and `501` answered by the rules. One serve of any style at
    /// a time: a second one while one runs returns [`Error::Config`].
    ///
    /// ```no_run
    /// # async fn demo(consumer: oc2mqtt::client::Consumer) -> oc2mqtt::Result<()> {
    /// use oc2mqtt::message::Response;
    ///
    /// // A lookup in memory: never blocks, so it may run on the network thread.
    /// consumer.serve_inline(|command| match command.command() {
    ///     Some(c) if c.action.as_str() == "deny" => Ok(Some(Response::new(200))),
    ///     _ => Err("not implemented here".to_owned()),
    /// }).await
    /// # }
    /// ```
    pub async fn serve_inline<F>(&self, handler: F) -> Result<()>
    where
        F: Fn(&Message) -> std::result::Result<Option<Response>, String> + Send + Sync + 'static,
    {
        self.serve_inline_incoming(move |incoming: &Incoming| handler(incoming.message()))
            .await
    }

    /// [`Consumer::serve_inline`] with the whole [`Incoming`] (its topic,
    /// encoding and dialect), for a binding that hands those to its
    /// handler. The handler returns the outcome; it must not answer through
    /// the `Incoming` itself (its answer would be the only one sent).
    pub async fn serve_inline_incoming<F>(&self, handler: F) -> Result<()>
    where
        F: Fn(&Incoming) -> std::result::Result<Option<Response>, String> + Send + Sync + 'static,
    {
        let _serving = self.start_serving()?;
        let mut closed = self.inner.shutdown.subscribe();
        if *closed.borrow() {
            return Ok(());
        }
        let handler: InlineHandler = Arc::new(handler);
        // Held to the end: nothing else takes from the queue meanwhile (a
        // `next()` waits), and a `next()` waiting now takes its command first.
        let mut rx = self.rx.lock().await;
        {
            let mut inline = lock(&self.inner.inline);
            while let Ok(incoming) = rx.try_recv() {
                self.inner.run_inline(&handler, incoming.take());
            }
            *inline = Some(handler);
        }
        let _uninstall = Uninstall(&self.inner);
        let _ = closed.wait_for(|c| *c).await;
        Ok(())
    }

    /// Marks this consumer as serving until the guard is dropped; an error
    /// if it already does.
    fn start_serving(&self) -> Result<ServingGuard> {
        if self.inner.serving.swap(true, Ordering::SeqCst) {
            return Err(Error::Config(
                "this consumer already serves: one serve, serve_async or serve_inline at a time"
                    .to_owned(),
            ));
        }
        Ok(ServingGuard(Arc::clone(&self.inner)))
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

    /// The connection's state changes from now on, starting with the
    /// current state: connected, offline, reconnecting, closed.
    pub fn events(&self) -> crate::client::ConnectionEvents {
        self.inner.conn.events()
    }
}

/// The threads of one [`Consumer::serve_held`].
struct Serve<H, F> {
    consumer: Consumer,
    hold: H,
    handler: F,
    rt: tokio::runtime::Handle,
    /// Set when the `serve` future is dropped.
    stop: watch::Sender<bool>,
    /// Set by the last thread to stop.
    finished: watch::Sender<bool>,
    /// Held by the thread waiting for the next command, until it has the
    /// hold: one thread at a time waits for it with a command in hand.
    lead: tokio::sync::Mutex<()>,
    /// Threads waiting for a command.
    idle: AtomicUsize,
    /// Threads started and not yet stopped.
    running: AtomicUsize,
}

impl<H, F> Serve<H, F>
where
    H: Fn(&mut dyn FnMut()) + Send + Sync + 'static,
    F: Fn(&Message) -> std::result::Result<Option<Response>, String> + Send + Sync + 'static,
{
    fn start(this: &Arc<Self>) {
        let serve = Arc::clone(this);
        drop(this.rt.spawn_blocking(move || serve.run()));
    }

    /// Starts another thread, unless one is waiting for a command already
    /// or 64 run.
    fn start_another(self: &Arc<Self>, others_waiting: bool) {
        let another = !others_waiting
            && self
                .running
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < CONCURRENT_HANDLERS).then_some(n + 1)
                })
                .is_ok();
        if another {
            Self::start(self);
        }
    }

    fn run(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        loop {
            self.idle.fetch_add(1, Ordering::SeqCst);
            let next = self.rt.block_on(async {
                tokio::select! {
                    m = async {
                        let lead = self.lead.lock().await;
                        self.consumer.next().await.map(|m| (lead, m))
                    } => m,
                    _ = stop.wait_for(|s| *s) => None,
                }
            });
            let others_waiting = self.idle.fetch_sub(1, Ordering::SeqCst) > 1;
            let Some((lead, incoming)) = next else { break };
            self.start_another(others_waiting);
            let lead = std::cell::Cell::new(Some(lead));
            let first = std::cell::Cell::new(Some(incoming));
            let replaced = std::cell::Cell::new(false);
            let mut run = || {
                // With the hold: the next thread may wait for the next command.
                drop(lead.take());
                let mut next = first.take();
                while let Some(incoming) = next {
                    if !self.handle(incoming) {
                        replaced.set(true);
                        return;
                    }
                    if *self.stop.borrow() {
                        return;
                    }
                    next = self.consumer.try_next();
                    if next.is_some() {
                        self.start_another(self.idle.load(Ordering::SeqCst) > 0);
                    }
                }
            };
            (self.hold)(&mut run);
            if lead.take().is_some() {
                // `hold` did not call `run`: the command is still answered.
                run();
            }
            if replaced.get() {
                // Timed out: another thread has taken this one's place.
                return;
            }
        }
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.finished.send_replace(true);
        }
    }
}

impl<H, F> Serve<H, F>
where
    H: Fn(&mut dyn FnMut()) + Send + Sync + 'static,
    F: Fn(&Message) -> std::result::Result<Option<Response>, String> + Send + Sync + 'static,
{
    /// Runs the handler on one command and answers it; `false` when the
    /// handler outlived its timeout (the command was answered `500` then
    /// and another thread took this one's place).
    fn handle(self: &Arc<Self>, incoming: Incoming) -> bool {
        let inner = &self.consumer.inner;
        let incoming = Arc::new(incoming);
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watchdog = inner.options.handler_timeout.map(|limit| {
            let (serve, incoming, done) =
                (Arc::clone(self), Arc::clone(&incoming), Arc::clone(&done));
            self.rt.spawn(async move {
                tokio::time::sleep(limit).await;
                if done.swap(true, Ordering::SeqCst) {
                    return;
                }
                if let Err(e) = incoming.time_out() {
                    tracing::warn!(error = %e, "cannot answer a command");
                }
                // The stuck thread keeps its handler; a new one takes its slot.
                Serve::start(&serve);
            })
        });
        let run = std::panic::AssertUnwindSafe(|| (self.handler)(incoming.message()));
        let outcome = std::panic::catch_unwind(run).unwrap_or_else(|p| panicked(panic_text(&*p)));
        if let Some(w) = watchdog {
            w.abort();
        }
        if done.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                request_id = ?incoming.message().headers.request_id,
                "a handler finished after its timeout; its answer is dropped"
            );
            return false;
        }
        if let Err(e) = incoming.respond(outcome_response(outcome)) {
            tracing::warn!(error = %e, "cannot answer a command");
        }
        true
    }
}

/// Ends a serve of any style: another may start.
struct ServingGuard(Arc<Inner>);

impl Drop for ServingGuard {
    fn drop(&mut self) {
        self.0.serving.store(false, Ordering::SeqCst);
    }
}

/// Uninstalls the handler of a [`Consumer::serve_inline`] that ends (closed,
/// or its future dropped): commands queue again.
struct Uninstall<'a>(&'a Inner);

impl Drop for Uninstall<'_> {
    fn drop(&mut self) {
        // The handler is dropped after the lock is let go: its captures are the caller's.
        let handler = lock(&self.0.inline).take();
        drop(handler);
    }
}

/// The handler tasks of a [`Consumer::serve_async`], left to finish when it is dropped.
struct DetachOnDrop(tokio::task::JoinSet<()>);

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        self.0.detach_all();
    }
}

/// Stops the threads of a [`Consumer::serve`] whose future was dropped.
struct StopOnDrop<H, F>(Arc<Serve<H, F>>);

impl<H, F> Drop for StopOnDrop<H, F> {
    fn drop(&mut self) {
        self.0.stop.send_replace(true);
    }
}

/// The text of a handler's timeout, logged as a warning.
fn timed_out(incoming: &Incoming, limit: std::time::Duration) -> String {
    let text = format!("handler timed out after {:.1} s", limit.as_secs_f64());
    tracing::warn!(request_id = ?incoming.message().headers.request_id, "{text}");
    text
}
