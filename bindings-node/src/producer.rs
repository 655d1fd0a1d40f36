//! The producer: wraps `oc2mqtt::client::{Producer, Exchange}`.
//!
//! `send` returns its `Exchange` at once; the publish runs on the core
//! runtime, and its failure rejects the exchange's `next()`, `collect()`
//! and `sent()`. Cancelling (directly, or through an `AbortSignal` in the
//! JavaScript layer) makes pending and later calls reject with an
//! `AbortError`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use napi::bindgen_prelude::{Env, JsObjectValue, Object, Unknown};
use napi_derive::napi;

use oc2mqtt::client::{self as core, SendOptions, SharedExchange};
use oc2mqtt::message::{Command, Message};
use oc2mqtt::producer::Dispatched;

use crate::client::{self, config_object};
use crate::convert::{self, field};
use crate::error::{self, OrThrow};
use crate::events::EventSink;
use crate::later::Later;
use crate::runtime::{self, Raw, promise};
use crate::settings;

/// A reply, or a summary, as a plain object: the core's serde form.
pub(crate) fn result_to_js<T: serde::Serialize>(env: &Env, r: &T) -> napi::Result<Raw> {
    Ok(Raw::of(&convert::core_to_js(env, r)?))
}

/// How deep a command sent as JSON text may be nested; deeper ones take
/// the property walk (`convert::json`, limit `codec::MAX_NESTING`).
const SHALLOW: usize = 32;

/// Whether `v` has arrays or objects nested more than `limit` deep.
fn deeper_than(v: &serde_json::Value, limit: usize) -> bool {
    match v {
        serde_json::Value::Array(a) => limit == 0 || a.iter().any(|x| deeper_than(x, limit - 1)),
        serde_json::Value::Object(o) => limit == 0 || o.values().any(|x| deeper_than(x, limit - 1)),
        _ => false,
    }
}

/// What a JavaScript `command` argument holds.
enum Outgoing {
    /// A command object: the producer makes the message.
    Command(Command),
    /// A whole request message (`{ headers, body }`).
    Message(Message),
}

fn outgoing(env: &Env, v: Unknown<'_>) -> napi::Result<Outgoing> {
    let obj = convert::object(env, v, "\"command\" argument")?;
    if obj.has_named_property("body")? {
        return convert::message(env, v, "\"command\" argument").map(Outgoing::Message);
    }
    // A command alone is the bare dialect's request: read it as one.
    let value = convert::json(env, v, "command")?;
    Command::from_json_value(value)
        .or_throw(env)
        .map(Outgoing::Command)
}

/// A send's options; `signal` is index.js's.
fn send_options(env: &Env, v: Unknown<'_>) -> napi::Result<SendOptions> {
    settings::options(env, v, &["signal"])
}

/// Sends OpenC2 commands and collects their responses over one MQTT connection.
///
/// An `EventEmitter` of its connection, as an mqtt.js client: `'connect'`,
/// `'offline'`, `'reconnect'`, `'error'` (a failed reconnect attempt),
/// `'close'` and `'end'`. `await using` closes it at the end of the block.
///
/// ```js
/// const producer = new Producer({ url: 'mqtt://127.0.0.1:1883', id: 'producer-1' })
/// await producer.connect()
/// const summary = await producer.send({ action: 'query', target: { features: ['versions'] } }, { to: 'fw-1' }).collect()
/// for await (const reply of producer.send(command, { timeout: 5000 })) console.log(reply.from, reply.status)
/// await producer.close()
/// ```
#[napi]
pub struct Producer {
    config: core::ClientConfig,
    id: String,
    connected: Later<core::Producer>,
    events: EventSink,
}

#[napi]
impl Producer {
    /// `config`: the broker (`url` or `brokers`), this producer's `id` (the
    /// `from` of its commands and its response topic `oc2/rsp/<id>`), and the
    /// client settings of `ClientConfig`. Nothing connects until `connect()`.
    #[napi(constructor, ts_args_type = "config: ProducerConfig")]
    pub fn new(env: Env, config: Unknown<'_>) -> napi::Result<Self> {
        let obj = config_object(&env, config, &["id"])?;
        let id = convert::string(&env, field(&env, &obj, "id")?, "config.id")?;
        Ok(Self {
            config: client::config(&env, &obj)?,
            id,
            connected: Later::new("producer"),
            events: EventSink::default(),
        })
    }

    /// This producer's id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// Sets the function index.js routes connection events through (see `events.rs`).
    #[napi(js_name = "_setEventSink", skip_typescript)]
    pub fn set_event_sink(&self, env: Env, listener: Unknown<'_>) -> napi::Result<()> {
        self.events.set(&env, listener)
    }

    /// Connects and subscribes to `oc2/rsp` and `oc2/rsp/<id>`. Rejects with
    /// `OC2_CONFIG`, `OC2_CONNECT`, `OC2_AUTH`, `OC2_TLS`, `OC2_TIMEOUT` or `OC2_IO`.
    /// Connecting a connected producer does nothing.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn connect<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let (config, id) = (self.config.clone(), self.id.clone());
        let events = self.events.clone();
        promise(
            env,
            self.connected.connect(async move {
                client::validate(&config)?;
                let producer = core::Producer::connect(config, &id).await?;
                events.forward(producer.events());
                Ok(producer)
            }),
            |env, ()| runtime::undefined(env),
        )
    }

    /// Sends a command and returns its exchange at once.
    ///
    /// `command` is a command object (`{ action, target, args?, actuator? }`;
    /// the producer adds `request_id`, `created`, `from` and `to`) or a whole
    /// request message. Options: `to` (recipient ids: one publish each on
    /// `oc2/cmd/device/<id>`, and the exchange completes when each answered),
    /// `profile` (actuator profile, topic `oc2/cmd/ap/<profile>`), `timeout`
    /// (ms, default 10000; it also bounds the wait for the broker's
    /// acknowledgement, `OC2_TIMEOUT` then), `expect` (complete after this many responders),
    /// `encoding`, `dialect`, and `signal` (an `AbortSignal` that cancels).
    /// Throws `OC2_CLOSED` when not connected.
    #[napi(ts_args_type = "command: Command | Message, options?: SendOptions")]
    pub fn send(
        &self,
        env: Env,
        command: Unknown<'_>,
        options: Unknown<'_>,
    ) -> napi::Result<Exchange> {
        let outgoing = outgoing(&env, command)?;
        let options = send_options(&env, options)?;
        let producer = self.connected.require().or_throw(&env)?;
        let (shared, settle) = SharedExchange::pending();
        if producer.open_exchanges() > 0 {
            // Other exchanges in flight (pipelined): their traffic wakes the
            // runtime's thread anyway, and its task encodes and writes a
            // burst of sends together, which costs less than a write per
            // send from this thread (bench/node/RESULTS.md, session 13).
            runtime::handle().spawn(async move {
                let sent = match outgoing {
                    Outgoing::Command(c) => producer.send(c, options).await,
                    Outgoing::Message(m) => producer.send_message(m, options).await,
                };
                settle.settle(sent).await;
            });
            return Ok(Exchange {
                shared,
                start: Start::taken(),
            });
        }
        let by = std::time::Instant::now() + options.timeout;
        // The PUBLISH goes to the connection from this thread, now (written
        // at once when the connection is idle, in the order of the sends);
        // the wait for its PUBACK goes to the runtime without waking it: the
        // PUBACK does (`Start`).
        let start = Start::queue(by);
        let dispatched = {
            let _rt = runtime::handle().enter();
            match outgoing {
                Outgoing::Command(c) => producer.dispatch(c, options),
                Outgoing::Message(m) => producer.dispatch_message(m, options),
            }
        };
        // Nothing comes back for a send that failed at once: no waiting then.
        let waiting = dispatched.as_ref().is_ok_and(Dispatched::is_waiting);
        let work: runtime::Task = match dispatched {
            Ok(d) => Box::pin(async move { settle.settle(d.acked().await).await }),
            Err(e) => Box::pin(async move { settle.settle(Err(e)).await }),
        };
        start.ready(work, waiting);
        Ok(Exchange { shared, start })
    }

    /// Sends a command and collects its responses: what
    /// `send(command, options).collect()` resolves with, the same
    /// `Summary`, with one Promise and no `Exchange` (core:
    /// `Producer::send_collect`, which waits once, for the end of the
    /// exchange, and takes the broker's acknowledgement on the way).
    ///
    /// Arguments and options as `send()` (with `signal`, `index.js` takes
    /// the `send().collect()` path). Throws as `send()` does (bad
    /// arguments, `OC2_CLOSED` when not connected); rejects as `collect()`
    /// does: `OC2_PUBLISH` when the broker refused the command,
    /// `OC2_TIMEOUT` when it did not acknowledge it within `timeout`,
    /// `OC2_CONFIG`, `OC2_TOPIC`, ... for a command that cannot be sent.
    ///
    /// ```js
    /// const summary = await producer.sendCollect({ action: 'deny', target: { ipv4_net: '10.0.0.0/8' } }, { to: 'fw-1' })
    /// ```
    #[napi(
        ts_args_type = "command: Command | Message, options?: SendOptions",
        ts_return_type = "Promise<Summary>"
    )]
    pub fn send_collect<'e>(
        &self,
        env: &'e Env,
        command: Unknown<'_>,
        options: Unknown<'_>,
    ) -> napi::Result<Object<'e>> {
        let outgoing = outgoing(env, command)?;
        self.start_collect(env, outgoing, options)
    }

    /// `sendCollect` with the command object as its JSON text, made by
    /// `index.js` when `JSON.stringify` gives exactly the value that
    /// [`convert::json`]'s walk of its properties would (a plain object of
    /// strings, booleans, safe integers, arrays and plain objects): one
    /// `JSON.stringify` costs a few µs where the walk costs tens (a napi call
    /// per property and per value). `undefined` for a command nested deeper
    /// than commands are ([`SHALLOW`]; serde's own limit is near the walk's):
    /// `index.js` then takes the walk, whose limit and errors are the rule.
    #[napi(js_name = "_sendCollectJson", skip_typescript)]
    pub fn send_collect_json<'e>(
        &self,
        env: &'e Env,
        text: String,
        options: Unknown<'_>,
    ) -> napi::Result<Option<Object<'e>>> {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            return Ok(None);
        };
        if deeper_than(&value, SHALLOW) {
            return Ok(None);
        }
        let command = Command::from_json_value(value).or_throw(env)?;
        self.start_collect(env, Outgoing::Command(command), options)
            .map(Some)
    }
}

impl Producer {
    /// The rest of `sendCollect`, once the command is read.
    fn start_collect<'e>(
        &self,
        env: &'e Env,
        outgoing: Outgoing,
        options: Unknown<'_>,
    ) -> napi::Result<Object<'e>> {
        let options = send_options(env, options)?;
        let producer = self.connected.require().or_throw(env)?;
        // As in `send`: only a lone exchange is started from this thread.
        let lone = producer.open_exchanges() == 0;
        let by = std::time::Instant::now() + options.timeout;
        let (p, task) = runtime::promise_task(
            env,
            async move {
                match outgoing {
                    Outgoing::Command(c) => producer.send_collect(c, options).await,
                    Outgoing::Message(m) => producer.send_message_collect(m, options).await,
                }
            },
            |env, summary| result_to_js(env, &summary),
        )?;
        if lone {
            Start::inline(task, by);
        } else {
            // Most likely one of a burst (the continuations of a burst of
            // settled Promises): spawned with the rest of it.
            runtime::spawn_batched(task);
        }
        Ok(p)
    }
}

#[napi]
impl Producer {
    /// The broker URL connected to (after a failover, the one in use); null
    /// before `connect()` and after `close()`.
    #[napi(getter)]
    pub fn broker(&self) -> Option<String> {
        self.connected.with(core::Producer::broker)
    }

    /// Counters, as core keeps them (the `Stats` type).
    /// All zero before `connect()`.
    #[napi(ts_return_type = "Stats")]
    pub fn stats<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let stats = self
            .connected
            .with(core::Producer::stats)
            .unwrap_or_default();
        client::stats_to_js(env, &stats)
    }

    /// The next response that matched no exchange (a peer's bare `{ status:
    /// 200 }` without `request_id`, an answer after its exchange ended), as
    /// a `Reply`; `null` after `timeoutMs` (default: no limit) or once
    /// closed. Up to 1024 wait to be read; more are only counted in
    /// `stats().unsolicited`. Rejects with `OC2_CLOSED` when not connected.
    #[napi(
        ts_args_type = "timeoutMs?: number | null",
        ts_return_type = "Promise<Reply | null>"
    )]
    pub fn next_unsolicited<'e>(
        &self,
        env: &'e Env,
        timeout_ms: Unknown<'_>,
    ) -> napi::Result<Object<'e>> {
        let timeout =
            convert::opt_uint(env, timeout_ms, "\"timeoutMs\" argument", convert::MAX_SAFE)?
                .map(Duration::from_millis);
        let producer = self.connected.require();
        promise(
            env,
            async move {
                let p = producer?;
                Ok(match timeout {
                    Some(t) => tokio::time::timeout(t, p.next_unsolicited())
                        .await
                        .ok()
                        .flatten(),
                    None => p.next_unsolicited().await,
                })
            },
            |env, reply| match reply {
                Some(r) => result_to_js(env, &r),
                None => Ok(Raw::of(&convert::to_js(env, &serde_json::Value::Null)?)),
            },
        )
    }

    /// Disconnects. Open exchanges end at their timeout; `send` throws
    /// `OC2_CLOSED` until the next `connect()`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let producer = self.connected.take();
        self.events.clear();
        promise(
            env,
            async move {
                if let Some(p) = producer {
                    p.close().await;
                }
                Ok(())
            },
            |env, ()| runtime::undefined(env),
        )
    }
}

/// What a `next()` or `collect()` ended with.
enum Step<T> {
    Value(T),
    Cancelled,
}

/// The responses to one command, as they arrive: an async iterator of
/// replies (`for await (const reply of exchange)`), or all at once with
/// `collect()`. It ends when every expected responder sent a final
/// (non-102) response, or at the timeout.
#[napi]
pub struct Exchange {
    /// The core's exchange; a `cancel()` makes every read reject.
    shared: SharedExchange,
    /// The wait for the command's PUBACK, until the runtime takes it.
    start: Start,
}

/// The work of a send, handed to the runtime's thread without waking it
/// ([`runtime::defer`]): the wait for the command's PUBACK, and the
/// `collect()` made meanwhile (as in `await producer.send(...).collect()`),
/// joined into one task. The JavaScript thread then wakes the runtime's
/// thread for neither: the PUBACK does.
#[derive(Clone)]
struct Start(Arc<Mutex<Stage>>);

enum Stage {
    /// Queued for the runtime's thread; the work is not made yet.
    Queued,
    /// The work, not taken by the runtime yet.
    Ready(runtime::Task),
    /// The runtime came before the work: whoever makes it spawns it.
    Due,
    /// On the runtime.
    Taken,
}

impl Start {
    /// Queues the start before the command goes out: the runtime's thread
    /// may meet the PUBACK, and even the response, before the work is
    /// made, and must then find it waiting (it would not wake up again).
    fn queue(by: std::time::Instant) -> Self {
        let this = Self(Arc::new(Mutex::new(Stage::Queued)));
        let queued = this.clone();
        runtime::defer(
            Box::new(move || {
                let mut stage = queued.lock();
                match std::mem::replace(&mut *stage, Stage::Taken) {
                    Stage::Ready(work) => drop(runtime::handle().spawn(work)),
                    Stage::Queued => *stage = Stage::Due,
                    other => *stage = other,
                }
            }),
            by,
        );
        this
    }

    /// Runs `task` on this thread up to its first wait (for
    /// `send_collect`: the command made, its exchange opened and its
    /// PUBLISH handed to the connection), then hands it to the runtime's
    /// thread without waking it, as `send` does with its PUBACK wait. The
    /// start is queued before the first poll, which writes the PUBLISH
    /// (see [`Start::queue`]). A task that ended at once (a command that
    /// could not be sent) has settled its Promise already.
    fn inline(mut task: runtime::Task, by: std::time::Instant) {
        let start = Self::queue(by);
        let first = {
            let _rt = runtime::handle().enter();
            task.as_mut()
                .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        };
        if first.is_ready() {
            *start.lock() = Stage::Taken;
        } else {
            start.ready(task, true);
        }
    }

    /// A send whose work is on the runtime already.
    fn taken() -> Self {
        Self(Arc::new(Mutex::new(Stage::Taken)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stage> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The send's work, now made; `waiting`: for something that wakes the
    /// runtime's thread (else it is spawned now).
    fn ready(&self, work: runtime::Task, waiting: bool) {
        let mut stage = self.lock();
        match &*stage {
            Stage::Queued if waiting => *stage = Stage::Ready(work),
            _ => {
                *stage = Stage::Taken;
                drop(runtime::handle().spawn(work));
            }
        }
    }

    /// Runs `then` after the send's work, in its task, if the runtime has
    /// not taken it yet; gives `then` back otherwise.
    fn join(&self, then: runtime::Task) -> Option<runtime::Task> {
        let mut stage = self.lock();
        match std::mem::replace(&mut *stage, Stage::Taken) {
            Stage::Ready(work) => {
                *stage = Stage::Ready(Box::pin(async move {
                    work.await;
                    then.await;
                }));
                None
            }
            other => {
                *stage = other;
                Some(then)
            }
        }
    }
}

#[napi]
impl Exchange {
    /// The command's `request_id`, once it was published (`null` before).
    #[napi(getter)]
    pub fn request_id(&self) -> Option<String> {
        Some(self.shared.request_id())
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
    }

    /// Resolves with the `request_id` once the broker accepted the command;
    /// rejects if it could not be sent (`OC2_PUBLISH`, `OC2_DECODE`, `OC2_TOPIC`, ...).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn sent<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let shared = self.shared.clone();
        promise(
            env,
            async move { shared.sent().await },
            |env, id| match id {
                Some(id) => Ok(Raw::of(&env.create_string(&id)?)),
                None => Err(raw_error(
                    env,
                    Raw::of(&error::abort_error(env, "the exchange was cancelled")?),
                )),
            },
        )
    }

    /// The next reply (`{ done: false, value }`), or `{ done: true }` once
    /// the exchange is complete or timed out.
    #[napi(ts_return_type = "Promise<IteratorResult<Reply, undefined>>")]
    pub fn next<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let shared = self.shared.clone();
        promise(
            env,
            async move {
                if shared.sent().await?.is_none() {
                    return Ok(Step::Cancelled);
                }
                let reply = shared.next().await;
                // Cancelled meanwhile: rejects, even with a reply at hand.
                Ok(if shared.is_cancelled() {
                    Step::Cancelled
                } else {
                    Step::Value(reply)
                })
            },
            |env, step| match step {
                Step::Cancelled => Err(raw_error(
                    env,
                    Raw::of(&error::abort_error(env, "the exchange was cancelled")?),
                )),
                Step::Value(r) => {
                    let mut o = Object::new(env)?;
                    o.set("done", r.is_none())?;
                    match r {
                        Some(r) => o.set("value", result_to_js(env, &r)?)?,
                        None => o.set("value", ())?,
                    }
                    Ok(Raw::of(&o))
                }
            },
        )
    }

    /// Waits for every response; resolves as soon as the exchange is
    /// complete, or at the timeout, with `{ requestId, responses, complete,
    /// missing, missingCount }`.
    #[napi(ts_return_type = "Promise<Summary>")]
    pub fn collect<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let shared = self.shared.clone();
        let (p, task) = runtime::promise_task(
            env,
            async move {
                if shared.sent().await?.is_none() {
                    return Ok(Step::Cancelled);
                }
                let summary = shared.collect().await?;
                Ok(if shared.is_cancelled() {
                    Step::Cancelled
                } else {
                    Step::Value(summary)
                })
            },
            |env, step| match step {
                Step::Cancelled => Err(raw_error(
                    env,
                    Raw::of(&error::abort_error(env, "the exchange was cancelled")?),
                )),
                Step::Value(s) => result_to_js(env, &s),
            },
        )?;
        if let Some(task) = self.start.join(task) {
            runtime::handle().spawn(task);
        }
        Ok(p)
    }

    /// Ends the exchange now: pending and later `next()`, `collect()` and
    /// `sent()` reject with an `AbortError` (`code: 'ABORT_ERR'`); late
    /// responses are counted as unsolicited.
    #[napi]
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// Whether `cancel()` was called.
    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.shared.is_cancelled()
    }
}

/// A rejection with a JavaScript value made on this thread.
fn raw_error(env: &Env, r: Raw) -> napi::Error {
    // SAFETY: `r` was made in this env, on this thread, just now.
    match unsafe {
        <Unknown<'_> as napi::bindgen_prelude::FromNapiValue>::from_napi_value(
            env.raw(),
            r.into_raw(),
        )
    } {
        Ok(v) => napi::Error::from(v),
        Err(e) => e,
    }
}
