//! The monitor: wraps `oc2mqtt::client::{Monitor, MonitorEvent}`.
//!
//! The native side is a pull API (`next()`); the EventEmitter side
//! (`'request'`, `'response'`, ...) is a loop over it in index.js.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use napi::bindgen_prelude::{Array, Buffer, Env, FromNapiValue, JsValue, Object, Unknown};
use napi_derive::napi;

use oc2mqtt::client::{self as core, MonitorEvent};
use oc2mqtt::monitor::{Paired, Pairing};

use crate::client::{self, config_object};
use crate::convert::{self, field};
use crate::error;
use crate::events::EventSink;
use crate::later::Later;
use crate::runtime::{self, Raw, promise};

const MONITOR_KEYS: &[&str] = &["filter", "pairingWindowMs"];

/// Events as one JavaScript array, in the core's serde form (one
/// `JSON.parse`); an undecodable event's `payload` and `error` are then set
/// as what JavaScript has for them, a `Buffer` and an `Error`.
fn events_to_js(env: &Env, events: &[(MonitorEvent, Pairing)]) -> napi::Result<Raw> {
    let paired: Vec<Paired<'_>> = events.iter().map(|(e, p)| Paired(e, p)).collect();
    let arr = convert::core_to_js(env, &paired)?;
    // SAFETY: a sequence's serde form is an array, in this env.
    let arr = unsafe { Array::from_napi_value(env.raw(), arr.raw()) }?;
    for (i, (ev, _)) in events.iter().enumerate() {
        if let MonitorEvent::Undecodable { .. } = ev {
            if let Some(o) = arr.get::<Object<'_>>(i as u32)? {
                host_fields(env, o, ev)?;
            }
        }
    }
    Ok(Raw::of(&arr))
}

/// One event (see [`events_to_js`]).
fn event_to_js<'e>(env: &'e Env, ev: &MonitorEvent, pairing: &Pairing) -> napi::Result<Object<'e>> {
    let o = convert::core_to_js(env, &Paired(ev, pairing))?;
    // SAFETY: an event's serde form is an object, in this env.
    let o = unsafe { Object::from_napi_value(env.raw(), o.raw()) }?;
    host_fields(env, o, ev)
}

/// The fields of an undecodable event that are no JSON: its payload and error.
fn host_fields<'e>(env: &Env, mut o: Object<'e>, ev: &MonitorEvent) -> napi::Result<Object<'e>> {
    if let MonitorEvent::Undecodable {
        payload,
        error: err,
        ..
    } = ev
    {
        o.set("payload", Buffer::from(payload.clone()))?;
        o.set(
            "error",
            error::js_error(env, &oc2mqtt::Error::from(err.clone()))?,
        )?;
    }
    Ok(o)
}

/// Watches OpenC2 traffic (`oc2/#` by default), pairs responses with their
/// command and reports latency and responders that never answered.
///
/// Both an async iterator (`for await (const event of monitor)`) and an
/// `EventEmitter` (`'request'`, `'response'`, `'notification'`,
/// `'undecodable'`, `'unanswered'`); use either or both. Its connection
/// events are those of every role (`'connect'`, `'offline'`,
/// `'reconnect'`, `'error'`, `'close'`, `'end'`).
///
/// ```js
/// const monitor = new Monitor({ url: 'mqtt://127.0.0.1:1883' })
/// await monitor.connect()
/// monitor.on('response', (e) => console.log(e.from, e.status, e.latencyMs))
/// ```
#[napi]
pub struct Monitor {
    config: core::ClientConfig,
    filter: Option<String>,
    window: Duration,
    connected: Later<Arc<core::Monitor>>,
    /// Set by `close()`: `next()` then reports the end rather than an error.
    closed: Arc<AtomicBool>,
    events: EventSink,
}

#[napi]
impl Monitor {
    /// `config`: the broker (`url` or `brokers`) and client settings, plus
    /// `filter` (default `oc2/#` under the topic prefix) and
    /// `pairingWindowMs` (how long a command waits for its responses,
    /// default 30000).
    #[napi(constructor, ts_args_type = "config: MonitorConfig")]
    pub fn new(env: Env, config: Unknown<'_>) -> napi::Result<Self> {
        let obj = config_object(&env, config, MONITOR_KEYS)?;
        let window = convert::opt_uint(
            &env,
            field(&env, &obj, "pairingWindowMs")?,
            "config.pairingWindowMs",
            convert::MAX_SAFE,
        )?;
        Ok(Self {
            config: client::config(&env, &obj)?,
            filter: convert::opt_string(&env, field(&env, &obj, "filter")?, "config.filter")?,
            window: window.map_or(
                oc2mqtt::monitor::DEFAULT_PAIRING_WINDOW,
                Duration::from_millis,
            ),
            connected: Later::new("monitor"),
            closed: Arc::new(AtomicBool::new(false)),
            events: EventSink::default(),
        })
    }

    /// Sets the function index.js routes connection events through (see `events.rs`).
    #[napi(js_name = "_setEventSink", skip_typescript)]
    pub fn set_event_sink(&self, env: Env, listener: Unknown<'_>) -> napi::Result<()> {
        self.events.set(&env, listener)
    }

    /// Connects and subscribes.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn connect<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let (config, filter, window) = (self.config.clone(), self.filter.clone(), self.window);
        let closed = Arc::clone(&self.closed);
        let events = self.events.clone();
        promise(
            env,
            self.connected.connect(async move {
                client::validate(&config)?;
                let monitor = core::Monitor::connect_with_window(config, filter, window).await?;
                events.forward(monitor.events());
                closed.store(false, Ordering::SeqCst);
                Ok(Arc::new(monitor))
            }),
            |env, ()| runtime::undefined(env),
        )
    }

    /// The next event (`{ done: false, value }`), or `{ done: true }` once closed.
    /// Rejects with `OC2_CLOSED` before `connect()`.
    #[napi(ts_return_type = "Promise<IteratorResult<MonitorEvent, undefined>>")]
    pub fn next<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let monitor = self.connected.get();
        let closed = self.closed.load(Ordering::SeqCst);
        let not_connected = self.connected.not_connected();
        promise(
            env,
            async move {
                match monitor {
                    Some(m) => Ok(m.next_with_pairing().await),
                    None if closed => Ok(None),
                    None => Err(not_connected),
                }
            },
            |env, ev| {
                let mut o = Object::new(env)?;
                o.set("done", ev.is_none())?;
                match ev {
                    Some((ev, pairing)) => o.set("value", event_to_js(env, &ev, &pairing)?)?,
                    None => o.set("value", ())?,
                }
                Ok(Raw::of(&o))
            },
        )
    }

    /// The events waiting, at least one and at most core's batch, as an
    /// array; `null` once closed (the pull loop of index.js: one Promise per
    /// burst of events rather than per event). Rejects with `OC2_CLOSED`
    /// before `connect()`.
    #[napi(js_name = "_nextBatch", skip_typescript)]
    pub fn next_batch<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let monitor = self.connected.get();
        let closed = self.closed.load(Ordering::SeqCst);
        let not_connected = self.connected.not_connected();
        promise(
            env,
            async move {
                let m = match monitor {
                    Some(m) => m,
                    None if closed => return Ok(Vec::new()),
                    None => return Err(not_connected),
                };
                Ok(m.next_batch().await)
            },
            |env, batch| {
                if batch.is_empty() {
                    return Ok(Raw::of(&convert::to_js(env, &serde_json::Value::Null)?));
                }
                events_to_js(env, &batch)
            },
        )
    }

    /// Commands seen whose addressed responders have not all answered yet.
    #[napi(ts_return_type = "Array<{ requestId: string; missing: string[] }>")]
    pub fn pending<'e>(&self, env: &'e Env) -> napi::Result<Vec<Object<'e>>> {
        let pending = self.connected.with(|m| m.pending()).unwrap_or_default();
        pending
            .into_iter()
            .map(|(id, missing)| {
                let mut o = Object::new(env)?;
                o.set("requestId", id)?;
                o.set("missing", missing)?;
                Ok(o)
            })
            .collect()
    }

    /// How long a command waits for its responses, in ms (`pairingWindowMs`).
    #[napi(getter)]
    pub fn pairing_window_ms(&self) -> f64 {
        self.window.as_secs_f64() * 1000.0
    }

    /// The broker URL connected to (after a failover, the one in use); null
    /// before `connect()` and after `close()`.
    #[napi(getter)]
    pub fn broker(&self) -> Option<String> {
        self.connected.with(|m| m.broker())
    }

    /// Counters, as core keeps them (the `Stats` type).
    #[napi(ts_return_type = "Stats")]
    pub fn stats<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let stats = self.connected.with(|m| m.stats()).unwrap_or_default();
        client::stats_to_js(env, &stats)
    }

    /// Stops and disconnects; iteration ends, and `'close'` and `'end'` are emitted.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let monitor = self.connected.take();
        self.closed.store(true, Ordering::SeqCst);
        self.events.clear();
        promise(
            env,
            async move {
                if let Some(m) = monitor {
                    m.close().await;
                }
                Ok(())
            },
            |env, ()| runtime::undefined(env),
        )
    }
}

/// The names of the monitor's events (core's `MonitorEvent::KINDS`): index.js
/// starts its event loop when a listener for one of them is added.
#[napi(js_name = "__monitorEvents", skip_typescript)]
pub fn monitor_events() -> Vec<&'static str> {
    MonitorEvent::KINDS.to_vec()
}
