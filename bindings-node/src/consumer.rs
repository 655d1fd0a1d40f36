//! The consumer: wraps `oc2mqtt::client::{Consumer, Incoming}`.
//!
//! Commands are pulled from the core on its runtime; each is handed to the
//! JavaScript handler through a threadsafe function, and the handler's
//! Promise is awaited on the runtime. Built-ins (query features, 501, 400,
//! duplicates, `to` filtering, `response_requested`) are answered by the
//! core before a command gets here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use napi::bindgen_prelude::{
    ClassInstance, Env, FnArgs, FromNapiValue, Function, JavaScriptClassExt, JsValue, Object,
    PromiseRaw, Unknown, ValueType,
};
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi_derive::napi;
use serde_json::Value;
use tokio::sync::oneshot;

use oc2mqtt::client::{self as core, ConsumerOptions};
use oc2mqtt::codec;
use oc2mqtt::message::{Message, Response};
use oc2mqtt::rules::{HandlerResult, Outcome, handler_outcome};
use oc2mqtt::settings::Settings;

use crate::client;
use crate::convert::{self, field};
use crate::error::OrThrow;
use crate::events::EventSink;
use crate::later::Later;
use crate::runtime::{self, Raw, promise};

/// What the JavaScript handler settled with, as core's outcome: read on the
/// JavaScript thread into core's [`HandlerResult`], whose meaning (and every
/// text of a result that is not a response) is core's ([`handler_outcome`]).
#[derive(Clone)]
struct HandlerOutcome(Outcome);

impl HandlerOutcome {
    /// The serve machinery failed before the handler's result was read.
    fn broken(text: String) -> Self {
        Self(Err(text))
    }
}

impl FromNapiValue for HandlerOutcome {
    unsafe fn from_napi_value(
        env: napi::sys::napi_env,
        v: napi::sys::napi_value,
    ) -> napi::Result<Self> {
        let env = Env::from_raw(env);
        // SAFETY: a value napi handed us, in this env.
        let v = unsafe { Unknown::from_napi_value(env.raw(), v) }?;
        Ok(Self(handler_outcome(handler_result(&env, v)?)))
    }
}

/// The layer in index.js settles with `{ response }` (what the handler
/// returned) or `{ error, kind? }` (what it threw or rejected with: the
/// message, and an `Error`'s `name`).
fn handler_result(env: &Env, v: Unknown<'_>) -> napi::Result<HandlerResult> {
    if v.get_type()? != ValueType::Object {
        return Ok(HandlerResult::Failed {
            text: "internal: the serve wrapper gave no outcome".to_owned(),
            kind: None,
        });
    }
    // SAFETY: type checked.
    let obj = unsafe { Object::from_napi_value(env.raw(), v.raw()) }?;
    if let Some(text) = obj.get::<String>("error")? {
        let kind = obj.get::<String>("kind")?;
        return Ok(HandlerResult::Failed { text, kind });
    }
    let rsp = field(env, &obj, "response")?;
    Ok(match rsp.get_type()? {
        ValueType::Undefined | ValueType::Null => HandlerResult::Nothing,
        ValueType::Number => {
            // SAFETY: type checked.
            HandlerResult::Status(unsafe { f64::from_napi_value(env.raw(), rsp.raw()) }?)
        }
        // A TypeError thrown here is pending on the JS thread; clear it into a 500 text instead.
        ValueType::Object => match convert::json(env, rsp, "response") {
            Ok(value) => HandlerResult::Object(value),
            Err(e) => {
                let _ = clear_pending(env);
                HandlerResult::Unreadable(e.reason.clone())
            }
        },
        other => HandlerResult::Other(convert::type_name(other)),
    })
}

fn clear_pending(env: &Env) -> napi::Result<()> {
    let mut pending = false;
    // SAFETY: plain N-API calls on the JS thread.
    unsafe {
        napi::sys::napi_is_exception_pending(env.raw(), &mut pending);
        if pending {
            let mut ex = std::ptr::null_mut();
            napi::sys::napi_get_and_clear_last_exception(env.raw(), &mut ex);
        }
    }
    Ok(())
}

type HandlerFn =
    ThreadsafeFunction<Arc<core::Incoming>, Raw, FnArgs<(Raw, Raw)>, napi::Status, false>;

/// The command object of an incoming request, as JavaScript.
fn command_to_js(env: &Env, m: &Message) -> napi::Result<Raw> {
    let content = codec::content_json(&m.body);
    let command = content.get("request").unwrap_or(&Value::Null);
    // One JSON.parse builds it faster than N-API calls per property, when it makes the same value.
    if convert::parses_exactly(command) {
        if let Ok(text) = serde_json::to_string(command) {
            return Ok(Raw::of(&convert::parse(env, &text)?));
        }
    }
    Ok(Raw::of(&convert::to_js(env, command)?))
}

/// Receives OpenC2 commands and answers them over one MQTT connection.
///
/// An `EventEmitter` of its connection, as an mqtt.js client: `'connect'`,
/// `'offline'`, `'reconnect'`, `'error'` (a failed reconnect attempt),
/// `'close'` and `'end'`. `await using` closes it at the end of the block.
///
/// ```js
/// const consumer = new Consumer({ url: 'mqtt://127.0.0.1:1883', deviceId: 'fw-1', profiles: ['slpf'] })
/// await consumer.connect()
/// consumer.serve(async (command, incoming) => {
///   if (command.action === 'deny') return { status: 200 }
///   return { status: 501, status_text: 'not here' }
/// })
/// // ... later
/// await consumer.close()
/// ```
#[napi]
pub struct Consumer {
    config: core::ClientConfig,
    options: ConsumerOptions,
    connected: Later<core::Consumer>,
    events: EventSink,
}

#[napi]
impl Consumer {
    /// `config`: the broker (`url` or `brokers`) and client settings, plus
    /// `deviceId` (required), `profiles`, `pairs` (action/target pairs it
    /// implements; others get 501), `args` (command arguments it takes
    /// beyond the Language Specification's and its profiles'; others get
    /// 501 once pairs, profiles or args are declared), `rateLimit`, `group` (shared
    /// subscription), `handleFeatures` (deliver `query features` to the
    /// handler instead of answering it), `freshnessSecs` (commands whose
    /// `created` is older are not run; 0: off; default the core's window)
    /// `journal` (a file that keeps the commands taken and finished
    /// across a kill) and `handlerTimeoutSecs` (past it a handler's command
    /// is answered 500).
    #[napi(constructor, ts_args_type = "config: ConsumerConfig")]
    pub fn new(env: Env, config: Unknown<'_>) -> napi::Result<Self> {
        let obj = client::config_object_with(&env, config, &[ConsumerOptions::SETTINGS], &[])?;
        let options = crate::rules::consumer_options(&env, &obj, "config")?;
        Ok(Self {
            config: client::config(&env, &obj)?,
            options,
            connected: Later::new("consumer"),
            events: EventSink::default(),
        })
    }

    /// Sets the function index.js routes connection events through (see `events.rs`).
    #[napi(js_name = "_setEventSink", skip_typescript)]
    pub fn set_event_sink(&self, env: Env, listener: Unknown<'_>) -> napi::Result<()> {
        self.events.set(&env, listener)
    }

    /// This consumer's device id.
    #[napi(getter)]
    pub fn device_id(&self) -> String {
        self.options.device_id.clone()
    }

    /// The freshness window in seconds (0: off): a command whose `created`
    /// is older is not run nor answered, only counted in `stats().stale`.
    #[napi(getter)]
    pub fn freshness_secs(&self) -> f64 {
        self.options.freshness_secs as f64
    }

    /// Connects and subscribes to `oc2/cmd/all`, `oc2/cmd`, `oc2/cmd/ap/<p>`
    /// per profile and `oc2/cmd/device/<deviceId>`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn connect<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let (config, options) = (self.config.clone(), self.options.clone());
        let events = self.events.clone();
        promise(
            env,
            self.connected.connect(async move {
                client::validate(&config)?;
                let consumer = core::Consumer::connect(config, options).await?;
                events.forward(consumer.events());
                Ok(consumer)
            }),
            |env, ()| runtime::undefined(env),
        )
    }

    /// Runs `handler(command, incoming)` for every command until `close()`;
    /// the returned Promise resolves then. The handler returns (or resolves
    /// with) the response, a status code (`404`: a response with that status
    /// alone), or nothing for a plain `200`; anything else answers `500`
    /// saying what it was, as in every language. A throw or a rejection
    /// answers `500` with the error's message (with none, "the handler
    /// failed: " and the error's name), and serving goes on.
    /// Use `incoming.reply({ status: 102 })` for an interim response. Up to
    /// 64 handlers run at once; while all 64 are stuck for a second, new
    /// commands are answered `503`.
    #[napi(
        ts_args_type = "handler: (command: Command, incoming: Incoming) => Response | number | void | Promise<Response | number | void>",
        ts_return_type = "Promise<void>"
    )]
    pub fn serve<'e>(&self, env: &'e Env, handler: Unknown<'_>) -> napi::Result<Object<'e>> {
        if handler.get_type()? != ValueType::Function {
            return Err(convert::type_error(
                env,
                "The \"handler\" argument must be a function",
            ));
        }
        let consumer = self.connected.require().or_throw(env)?;
        // SAFETY: type checked just above.
        let f = unsafe {
            Function::<FnArgs<(Raw, Raw)>, Raw>::from_napi_value(env.raw(), handler.raw())
        }?;
        let tsfn: HandlerFn = f
            .build_threadsafe_function::<Arc<core::Incoming>>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<Arc<core::Incoming>>| {
                let command = command_to_js(&ctx.env, ctx.value.message())?;
                let incoming = Incoming {
                    inner: Arc::clone(&ctx.value),
                }
                .into_instance(&ctx.env)?;
                Ok(FnArgs::from((
                    command,
                    Raw::of(&instance_unknown(&incoming)),
                )))
            })?;
        let tsfn = Arc::new(tsfn);
        let running = Arc::new(AtomicUsize::new(0));
        // Core's serve loop: the concurrency limit, the outcome rule
        // (`outcome_response`), the handler timeout and the 503 of a stall.
        promise(
            env,
            async move {
                consumer
                    .serve_async(move |incoming| {
                        let tsfn = Arc::clone(&tsfn);
                        let running = Arc::clone(&running);
                        async move { call_handler(&tsfn, incoming, running).await.0 }
                    })
                    .await
            },
            |env, ()| runtime::undefined(env),
        )
    }

    /// The broker URL connected to (after a failover, the one in use); null
    /// before `connect()` and after `close()`.
    #[napi(getter)]
    pub fn broker(&self) -> Option<String> {
        self.connected.with(core::Consumer::broker)
    }

    /// Counters, as core keeps them (the `Stats` type).
    #[napi(ts_return_type = "Stats")]
    pub fn stats<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let stats = self
            .connected
            .with(core::Consumer::stats)
            .unwrap_or_default();
        client::stats_to_js(env, &stats)
    }

    /// Stops serving (the `serve()` Promise resolves) and disconnects.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let consumer = self.connected.take();
        self.events.clear();
        promise(
            env,
            async move {
                if let Some(c) = consumer {
                    c.close().await;
                }
                Ok(())
            },
            |env, ()| runtime::undefined(env),
        )
    }
}

fn instance_unknown<'a>(i: &ClassInstance<'a, Incoming>) -> Unknown<'a> {
    i.to_unknown()
}

/// Calls the JavaScript handler and waits for its outcome.
///
/// The layer in index.js makes the handler return `{ response }` or
/// `{ error }`, or a Promise that always fulfils with one of them (when the
/// handler returned a Promise); it is converted on the JavaScript thread, so
/// no JavaScript reference travels to another thread.
async fn call_handler(
    tsfn: &HandlerFn,
    incoming: Arc<core::Incoming>,
    running: Arc<AtomicUsize>,
) -> HandlerOutcome {
    let (tx, rx) = oneshot::channel::<HandlerOutcome>();
    let here = Arc::clone(&incoming);
    running.fetch_add(1, Ordering::SeqCst);
    let running = Running(running);
    let status = tsfn.call_with_return_value(
        incoming,
        ThreadsafeFunctionCallMode::NonBlocking,
        move |ret, env| {
            let raw = match ret {
                Ok(raw) => raw,
                Err(e) => {
                    let _ = tx.send(HandlerOutcome::broken(e.reason.clone()));
                    return Ok(());
                }
            };
            // A handler that answered at once: its outcome object, no Promise to wait for.
            // SAFETY: the handler's return value, on the JavaScript thread.
            let mut is_promise = false;
            unsafe { napi::sys::napi_is_promise(env.raw(), raw.as_raw(), &mut is_promise) };
            if !is_promise {
                // SAFETY: as above.
                let outcome = unsafe { HandlerOutcome::from_napi_value(env.raw(), raw.into_raw()) }
                    .unwrap_or_else(|e| HandlerOutcome::broken(e.reason.clone()));
                answer_here(&here, tx, outcome, &running);
                return Ok(());
            }
            // SAFETY: the handler's return value, on the JavaScript thread.
            let promise = match unsafe {
                PromiseRaw::<HandlerOutcome>::from_napi_value(env.raw(), raw.into_raw())
            } {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(HandlerOutcome::broken(format!(
                        "the handler wrapper did not return a Promise: {}",
                        e.reason
                    )));
                    return Ok(());
                }
            };
            promise.then(move |ctx| {
                answer_here(&here, tx, ctx.value, &running);
                Ok(())
            })?;
            Ok(())
        },
    );
    if status != napi::Status::Ok {
        return HandlerOutcome::broken(format!("cannot call the handler ({status})"));
    }
    rx.await
        .unwrap_or_else(|_| HandlerOutcome::broken("the handler's Promise was dropped".to_owned()))
}

/// Handlers of one `serve()` whose outcome is not answered yet.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How late the serve loop may learn of an outcome answered on the
/// JavaScript thread, should nothing wake the runtime's thread before.
const LOOP_TOLD_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// On the JavaScript thread, with a handler's outcome: answers the command
/// from here (the response written by this thread when the connection is
/// idle) and tells the serve loop without waking the runtime's thread (the
/// response's PUBACK does, [`runtime::defer`]). The loop is told first:
/// should it run before this answer, it answers, with the same outcome,
/// and this one sends nothing (`answer_once`); past the handler's timeout
/// the loop's `500` went first, and this one sends nothing either.
///
/// Only for a handler that is the only one running: with more (a burst of
/// commands), the loop's task answers them together, one write for the
/// burst, which costs less than a write per answer from this thread.
fn answer_here(
    incoming: &Arc<core::Incoming>,
    tx: oneshot::Sender<HandlerOutcome>,
    outcome: HandlerOutcome,
    running: &Running,
) {
    if running.0.load(Ordering::SeqCst) > 1 {
        let _ = tx.send(outcome);
        return;
    }
    let told = outcome.clone();
    runtime::defer(
        Box::new(move || {
            let _ = tx.send(told);
        }),
        std::time::Instant::now() + LOOP_TOLD_WITHIN,
    );
    let outcome = outcome.0;
    let _rt = runtime::handle().enter();
    if let Err(e) = incoming.answer_once(outcome) {
        tracing::warn!(error = %e, "cannot answer a command");
    }
}

/// A command being handled: the whole message, and the means to send an
/// interim response.
#[napi]
pub struct Incoming {
    inner: Arc<core::Incoming>,
}

#[napi]
impl Incoming {
    /// The whole request message (`{ headers, body }`).
    #[napi(getter, ts_return_type = "Message")]
    pub fn message<'e>(&self, env: &'e Env) -> napi::Result<Unknown<'e>> {
        convert::message_to_js(env, self.inner.message())
    }

    /// The topic it arrived on.
    #[napi(getter)]
    pub fn topic(&self) -> String {
        self.inner.topic().to_owned()
    }

    /// Its encoding; the response uses the same.
    #[napi(getter, ts_return_type = "Encoding")]
    pub fn encoding(&self) -> &'static str {
        self.inner.encoding().as_str()
    }

    /// Its dialect; the response uses the same.
    #[napi(getter, ts_return_type = "Dialect")]
    pub fn dialect(&self) -> &'static str {
        self.inner.dialect().as_str()
    }

    /// What the producer asked for: `'none'`, `'ack'`, `'status'` or `'complete'`.
    #[napi(getter, ts_return_type = "'none' | 'ack' | 'status' | 'complete'")]
    pub fn response_requested(&self) -> &'static str {
        self.inner.response_requested().as_str()
    }

    /// Sends a response now, typically `{ status: 102 }` before long work;
    /// the handler's return value is still sent as the final response.
    /// Sends nothing when the producer asked for `none` or `ack`.
    #[napi(ts_args_type = "response: Response", ts_return_type = "Promise<void>")]
    pub fn reply<'e>(&self, env: &'e Env, response: Unknown<'_>) -> napi::Result<Object<'e>> {
        let obj = convert::object(env, response, "\"response\" argument")?;
        let value = convert::json(env, obj.to_unknown(), "response")?;
        let rsp = Response::from_json_value(value).map_err(|e| {
            convert::value_error(env, &format!("The \"response\" argument is invalid: {e}"))
        })?;
        let inner = Arc::clone(&self.inner);
        promise(env, async move { inner.reply(rsp).await }, |env, ()| {
            runtime::undefined(env)
        })
    }
}
