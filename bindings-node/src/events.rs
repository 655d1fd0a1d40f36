//! Connection events and log records: wraps
//! `oc2mqtt::client::{ConnectionEvents, set_logger}`.
//!
//! Both reach JavaScript through weak threadsafe functions, which never
//! keep the process alive. The events are plain objects (`{ type:
//! 'connect', broker, mqttVersion, sessionResumed }`, ...); index.js emits
//! them on the role, as mqtt.js does (`'connect'`, `'reconnect'`,
//! `'offline'`, `'close'`, `'end'`, `'error'`).

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Env, FromNapiValue, Function, JsValue, Object, Unknown, ValueType};
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi_derive::napi;

use oc2mqtt::client::{ConnectionEvent, ConnectionEvents, LogLevel, LogRecord};

use crate::convert;
use crate::error::{self, OrThrow};
use crate::runtime::Raw;

/// A JavaScript function of one value, callable from any thread, that does
/// not keep the event loop alive.
type Sink<T> = ThreadsafeFunction<T, Raw, Raw, napi::Status, false, true>;

/// A connection event as the plain object index.js emits.
fn event_to_js<'e>(env: &'e Env, e: &ConnectionEvent) -> napi::Result<Object<'e>> {
    let mut o = Object::new(env)?;
    match e {
        ConnectionEvent::Connected {
            broker,
            mqtt_version,
            session_resumed,
        } => {
            o.set("type", "connect")?;
            o.set("broker", broker.as_str())?;
            o.set("mqttVersion", mqtt_version.to_string())?;
            o.set("sessionResumed", *session_resumed)?;
        }
        ConnectionEvent::Offline { reason } => {
            o.set("type", "offline")?;
            o.set("reason", reason.as_str())?;
        }
        ConnectionEvent::Reconnecting { broker, attempt } => {
            o.set("type", "reconnect")?;
            o.set("broker", broker.as_str())?;
            o.set("attempt", *attempt)?;
        }
        ConnectionEvent::ReconnectFailed {
            broker,
            attempt,
            error: e,
        } => {
            let mut err = error::js_error(env, e)?;
            err.set("broker", broker.as_str())?;
            err.set("attempt", *attempt)?;
            o.set("type", "error")?;
            o.set("error", err)?;
        }
        ConnectionEvent::Closed => o.set("type", "end")?,
        // The core enum is non_exhaustive: a new kind is passed on by name.
        other => o.set("type", other.kind())?,
    }
    Ok(o)
}

fn sink<T: 'static>(
    env: &Env,
    f: Unknown<'_>,
    what: &str,
    to_js: impl Fn(&Env, &T) -> napi::Result<Raw> + 'static,
) -> napi::Result<Sink<T>> {
    if f.get_type()? != ValueType::Function {
        return Err(convert::type_error(
            env,
            &format!("The \"{what}\" argument must be a function"),
        ));
    }
    // SAFETY: type checked just above, in this env.
    let f = unsafe { Function::<Raw, Raw>::from_napi_value(env.raw(), f.raw()) }?;
    f.build_threadsafe_function::<T>()
        .callee_handled::<false>()
        .weak::<true>()
        .build_callback(move |ctx: ThreadsafeCallContext<T>| to_js(&ctx.env, &ctx.value))
}

/// Where a role sends its connection events: the listener index.js set
/// with `_setEventSink`, replaced on each `connect()`, dropped on `close()`.
#[derive(Default, Clone)]
pub(crate) struct EventSink(Arc<Mutex<Option<Arc<Sink<ConnectionEvent>>>>>);

impl EventSink {
    /// Sets the JavaScript function that receives the role's events.
    pub(crate) fn set(&self, env: &Env, f: Unknown<'_>) -> napi::Result<()> {
        let f = sink(env, f, "listener", |env, e: &ConnectionEvent| {
            Ok(Raw::of(&event_to_js(env, e)?))
        })?;
        *lock(&self.0) = Some(Arc::new(f));
        Ok(())
    }

    /// Forwards `events` to the current listener until they end (after
    /// `Closed`). The first one (the state when connected) is handed over
    /// before this returns, so that `'connect'` comes before `connect()`
    /// resolves.
    pub(crate) fn forward(&self, mut events: ConnectionEvents) {
        let Some(f) = lock(&self.0).clone() else {
            return;
        };
        if let Some(first) = events.try_next() {
            f.call(first, ThreadsafeFunctionCallMode::NonBlocking);
        }
        crate::runtime::handle().spawn(async move {
            while let Some(e) = events.next().await {
                f.call(e, ThreadsafeFunctionCallMode::NonBlocking);
            }
        });
    }

    /// Drops the listener (the forwarding task keeps it until `Closed`).
    pub(crate) fn clear(&self) {
        lock(&self.0).take();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing holds this lock across a panic that could leave it inconsistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A log record as a plain object: `{ level, target, message, fields, text }`.
fn record_to_js<'e>(env: &'e Env, r: &LogRecord) -> napi::Result<Object<'e>> {
    let mut o = Object::new(env)?;
    o.set("level", r.level.as_str())?;
    o.set("target", r.target.as_str())?;
    o.set("message", r.message.as_str())?;
    let mut fields = Object::new(env)?;
    for (k, v) in &r.fields {
        fields.set(k.as_str(), v.as_str())?;
    }
    o.set("fields", fields)?;
    o.set("text", r.text())?;
    Ok(o)
}

/// Routes the core's log records at `level` and above to `listener`
/// (`null`: nowhere). index.js wraps it as `setLogger`, which also takes
/// `console`-like objects.
#[napi(js_name = "__setLogSink", skip_typescript)]
pub fn set_log_sink(env: Env, listener: Unknown<'_>, level: String) -> napi::Result<()> {
    let level = level.parse::<LogLevel>().or_throw(&env)?;
    if convert::is_absent(&listener)? {
        return oc2mqtt::client::set_logger(level, None).or_throw(&env);
    }
    let f = sink(&env, listener, "logger", |env, r: &LogRecord| {
        Ok(Raw::of(&record_to_js(env, r)?))
    })?;
    oc2mqtt::client::set_logger(
        level,
        Some(Box::new(move |r: &LogRecord| {
            f.call(r.clone(), ThreadsafeFunctionCallMode::NonBlocking);
        })),
    )
    .or_throw(&env)
}

/// The names of the log levels, most severe first (core's `LogLevel::ALL`),
/// for index.js's `setLogger` and its error text.
#[napi(js_name = "__logLevels", skip_typescript)]
pub fn log_levels() -> Vec<&'static str> {
    LogLevel::ALL.iter().map(|l| l.as_str()).collect()
}
