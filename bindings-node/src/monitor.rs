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
use oc2mqtt::monitor::{Observed, Pairing};

use crate::client::{self, config_object};
use crate::convert::{self, field};
use crate::error;
use crate::events::EventSink;
use crate::later::Later;
use crate::runtime::{self, Raw, promise};

const MONITOR_KEYS: &[&str] = &["filter", "pairingWindowMs"];

fn observed_to_js<'e>(env: &'e Env, kind: &str, o: &Observed) -> napi::Result<Object<'e>> {
    let mut e = Object::new(env)?;
    e.set("type", kind)?;
    e.set("topic", o.topic.as_str())?;
    e.set("message", convert::message_to_js(env, &o.message)?)?;
    e.set("requestId", o.message.headers.request_id.as_deref())?;
    e.set("from", o.message.headers.from.as_deref())?;
    e.set("to", o.message.headers.to.clone())?;
    e.set("encoding", o.encoding.as_str())?;
    e.set("dialect", o.dialect.as_str())?;
    e.set("receivedAt", o.received_ms as f64)?;
    e.set("warnings", o.warnings.clone())?;
    Ok(e)
}

/// `{ state: 'open' | 'complete' | 'unanswered' | null, awaiting, deadline }`.
fn pairing_to_js<'e>(env: &'e Env, p: &Pairing) -> napi::Result<Object<'e>> {
    let mut o = Object::new(env)?;
    let (state, awaiting, deadline): (Option<&str>, &[String], Option<f64>) = match p {
        Pairing::Open {
            awaiting,
            deadline_ms,
        } => (Some("open"), awaiting, Some(*deadline_ms as f64)),
        Pairing::Complete => (Some("complete"), &[], None),
        Pairing::Unanswered { missing } => (Some("unanswered"), missing, None),
        // Unpaired, and whatever a later core adds.
        _ => (None, &[], None),
    };
    o.set("state", state)?;
    o.set("awaiting", awaiting.to_vec())?;
    o.set("deadline", deadline)?;
    Ok(o)
}

/// `{ state, awaiting, deadline }` as JSON text (see [`pairing_to_js`]).
fn pairing_json(p: &Pairing) -> String {
    let (state, awaiting, deadline): (Option<&str>, &[String], Option<f64>) = match p {
        Pairing::Open {
            awaiting,
            deadline_ms,
        } => (Some("open"), awaiting, Some(*deadline_ms as f64)),
        Pairing::Complete => (Some("complete"), &[], None),
        Pairing::Unanswered { missing } => (Some("unanswered"), missing, None),
        _ => (None, &[], None),
    };
    let mut o = convert::JsonText::object();
    o.field("state", state)
        .field("awaiting", awaiting.to_vec())
        .field("deadline", deadline);
    o.finish()
}

/// A request, notification or response event as JSON text, the same
/// object [`event_to_js`] builds; `None` for the other kinds, and for a
/// message that JSON.parse would not make the same (see `convert::parses_exactly`).
fn event_json(ev: &MonitorEvent, pairing: &Pairing) -> Option<String> {
    let (kind, o) = match ev {
        MonitorEvent::Request(o) => ("request", o),
        MonitorEvent::Notification(o) => ("notification", o),
        MonitorEvent::Response { observed, .. } => ("response", observed),
        _ => return None,
    };
    let message = convert::message_json(&o.message)?;
    let h = &o.message.headers;
    let mut e = convert::JsonText::object();
    e.field("type", kind)
        .field("topic", o.topic.as_str())
        .raw("message", &message)
        .field("requestId", h.request_id.as_deref())
        .field("from", h.from.as_deref())
        .field("to", h.to.clone())
        .field("encoding", o.encoding.as_str())
        .field("dialect", o.dialect.as_str())
        .field("receivedAt", o.received_ms as f64)
        .field("warnings", o.warnings.clone());
    match ev {
        MonitorEvent::Request(_) => {
            e.raw("pairing", &pairing_json(pairing));
        }
        MonitorEvent::Response { latency, .. } => {
            e.field("status", o.message.response().map(|r| u32::from(r.status)))
                .field("latencyMs", latency.map(|l| l.as_secs_f64() * 1000.0))
                .raw("pairing", &pairing_json(pairing));
        }
        _ => {}
    }
    Some(e.finish())
}

/// Events as one JavaScript array: those with JSON text through one
/// `JSON.parse`, the others (undecodable payloads, unanswered commands,
/// messages with integers beyond 2^53) built property by property.
fn events_to_js(env: &Env, events: &[(MonitorEvent, Pairing)]) -> napi::Result<Raw> {
    let texts: Vec<Option<String>> = events.iter().map(|(ev, p)| event_json(ev, p)).collect();
    let mut text = String::from("[");
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(t.as_deref().unwrap_or("null"));
    }
    text.push(']');
    let parsed = convert::parse(env, &text)?;
    // SAFETY: JSON.parse of an array text returns an array, in this env.
    let mut arr = unsafe { Array::from_napi_value(env.raw(), parsed.raw()) }?;
    for (i, ((ev, pairing), t)) in events.iter().zip(&texts).enumerate() {
        if t.is_none() {
            arr.set(i as u32, event_to_js(env, ev, pairing)?)?;
        }
    }
    Ok(Raw::of(&arr))
}

fn event_to_js<'e>(env: &'e Env, ev: &MonitorEvent, pairing: &Pairing) -> napi::Result<Object<'e>> {
    Ok(match ev {
        MonitorEvent::Request(o) => {
            let mut e = observed_to_js(env, "request", o)?;
            e.set("pairing", pairing_to_js(env, pairing)?)?;
            e
        }
        MonitorEvent::Notification(o) => observed_to_js(env, "notification", o)?,
        MonitorEvent::Response { observed, latency } => {
            let mut e = observed_to_js(env, "response", observed)?;
            e.set(
                "status",
                observed.message.response().map(|r| u32::from(r.status)),
            )?;
            e.set("latencyMs", latency.map(|l| l.as_secs_f64() * 1000.0))?;
            e.set("pairing", pairing_to_js(env, pairing)?)?;
            e
        }
        MonitorEvent::Undecodable {
            topic,
            payload,
            error: err,
            received_ms,
        } => {
            let mut e = Object::new(env)?;
            e.set("type", "undecodable")?;
            e.set("topic", topic.as_str())?;
            e.set("payload", Buffer::from(payload.clone()))?;
            e.set(
                "error",
                error::js_error(env, &oc2mqtt::Error::from(err.clone()))?,
            )?;
            e.set("receivedAt", *received_ms as f64)?;
            e
        }
        MonitorEvent::Unanswered {
            request_id,
            missing,
        } => {
            let mut e = Object::new(env)?;
            e.set("type", "unanswered")?;
            e.set("requestId", request_id.as_str())?;
            e.set("missing", missing.clone())?;
            e
        }
    })
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

    /// The events waiting, at least one and at most `max`, as an array; `null`
    /// once closed (the pull loop of index.js: one Promise per burst of
    /// events rather than per event). Rejects with `OC2_CLOSED` before `connect()`.
    #[napi(js_name = "_nextBatch", skip_typescript)]
    pub fn next_batch<'e>(&self, env: &'e Env, max: u32) -> napi::Result<Object<'e>> {
        let monitor = self.connected.get();
        let closed = self.closed.load(Ordering::SeqCst);
        let not_connected = self.connected.not_connected();
        let max = max.max(1) as usize;
        promise(
            env,
            async move {
                let m = match monitor {
                    Some(m) => m,
                    None if closed => return Ok(Vec::new()),
                    None => return Err(not_connected),
                };
                Ok(m.next_batch(max).await)
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

    /// Counters: `{ mqttVersion, published, received, duplicates, decodeErrors, unsolicited,
    /// reconnects, publishErrors, stale }`.
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
