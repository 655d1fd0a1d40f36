//! Matching responses to commands: wraps `oc2mqtt::correlate`.
//!
//! Time is whatever monotonic milliseconds the caller passes
//! (`performance.now()`, `Date.now()`); the correlator reads no clock.

use napi::bindgen_prelude::{Env, FromNapiValue, JsValue, Object, Unknown, ValueType};
use napi_derive::napi;

use oc2mqtt::correlate::{self, Expect, Outcome};

use crate::convert;
use crate::error::OrThrow;

/// A closed exchange as a plain object: the core's serde form.
fn closed_to_js<'e>(env: &'e Env, c: &correlate::Closed<()>) -> napi::Result<Object<'e>> {
    let o = convert::core_to_js(env, c)?;
    // SAFETY: a struct's serde form is an object, in this env.
    unsafe { Object::from_napi_value(env.raw(), o.raw()) }
}

/// Open exchanges keyed by `request_id`, each with the responders it
/// expects and a deadline.
///
/// ```js
/// const c = new Correlator()
/// c.open('r1', ['fw-1'], Date.now() + 5000)
/// c.onResponse(response102)   // { state: 'open', requestId: 'r1', isFinal: false, expected: true }
/// c.onResponse(response200)   // { state: 'complete', requestId: 'r1', closed: { reason: 'complete', ... } }
/// ```
#[napi]
pub struct Correlator {
    inner: correlate::Correlator<()>,
}

#[napi]
impl Correlator {
    /// An empty correlator.
    #[napi(constructor)]
    pub fn new() -> Self {
        Self {
            inner: correlate::Correlator::new(),
        }
    }

    /// Opens an exchange for `requestId` that closes at `deadline` (ms) at the latest.
    ///
    /// `expect`: the responder ids (usually the command's `to`), a number of
    /// distinct responders, or `null`/omitted when unknown (a broadcast, open
    /// until the deadline). Throws `OC2_CONFIG` if the id is already open.
    #[napi(
        ts_args_type = "requestId: string, expect: string[] | number | null | undefined, deadline: number"
    )]
    pub fn open(
        &mut self,
        env: Env,
        request_id: Unknown<'_>,
        expect: Unknown<'_>,
        deadline: Unknown<'_>,
    ) -> napi::Result<()> {
        let id = convert::string(&env, request_id, "\"requestId\" argument")?;
        let expect = match expect.get_type()? {
            ValueType::Undefined | ValueType::Null => Expect::Unknown,
            ValueType::Number => {
                Expect::Count(
                    convert::uint(&env, expect, "\"expect\" argument", u32::MAX.into())? as usize,
                )
            }
            _ if expect.is_array()? => {
                let ids = convert::string_list(&env, expect, "\"expect\" argument")?;
                Expect::from_to(Some(&ids))
            }
            _ => {
                return Err(convert::type_error(
                    &env,
                    "The \"expect\" argument must be an array of responder ids, a number, or null",
                ));
            }
        };
        let deadline = convert::time_ms(&env, deadline, "\"deadline\" argument")?;
        self.inner.open(&id, expect, deadline, ()).or_throw(&env)
    }

    /// Opens the exchange `command` (a request message) starts, as the
    /// package's `Producer` and `Monitor` do: keyed by its `request_id`,
    /// awaiting each id of its `to` (unknown without one); with
    /// `response_requested: 'ack'` a `102` completes a responder; with
    /// `'none'` nothing is awaited and nothing opened (returns `false`).
    /// Throws `OC2_DECODE` without a `request_id`, `OC2_CONFIG` if it is already open.
    #[napi(ts_args_type = "command: Message, deadline: number")]
    pub fn open_command(
        &mut self,
        env: Env,
        command: Unknown<'_>,
        deadline: Unknown<'_>,
    ) -> napi::Result<bool> {
        let msg = convert::message(&env, command, "\"command\" argument")?;
        let deadline = convert::time_ms(&env, deadline, "\"deadline\" argument")?;
        self.inner
            .open_command(&msg, None, deadline, ())
            .or_throw(&env)
    }

    /// Feeds a response message. Returns `{ state: 'unsolicited' }`,
    /// `{ state: 'open', requestId, isFinal, expected }` or
    /// `{ state: 'complete', requestId, closed }`.
    #[napi(
        ts_args_type = "message: Message",
        ts_return_type = "CorrelatorOutcome"
    )]
    pub fn on_response<'e>(
        &mut self,
        env: &'e Env,
        message: Unknown<'_>,
    ) -> napi::Result<Object<'e>> {
        let msg = convert::message(env, message, "\"message\" argument")?;
        let mut o = Object::new(env)?;
        let outcome = self.inner.on_response(&msg);
        o.set("state", outcome.kind())?;
        match outcome {
            Outcome::Unsolicited => {}
            Outcome::Open {
                is_final, expected, ..
            } => {
                o.set("requestId", msg.headers.request_id.as_deref())?;
                o.set("isFinal", is_final)?;
                o.set("expected", expected)?;
            }
            Outcome::Complete(closed) => {
                o.set("requestId", closed.request_id.as_str())?;
                o.set("closed", closed_to_js(env, &closed)?)?;
            }
        }
        Ok(o)
    }

    /// Closes the exchange now (cancelled, or complete on PUBACK); `null` if it was not open.
    #[napi(
        ts_args_type = "requestId: string",
        ts_return_type = "ClosedExchange | null"
    )]
    pub fn close<'e>(
        &mut self,
        env: &'e Env,
        request_id: Unknown<'_>,
    ) -> napi::Result<Option<Object<'e>>> {
        let id = convert::string(env, request_id, "\"requestId\" argument")?;
        self.inner
            .close(&id)
            .map(|c| closed_to_js(env, &c))
            .transpose()
    }

    /// Closes and returns every exchange whose deadline is at or before `now`.
    #[napi(ts_args_type = "now: number", ts_return_type = "ClosedExchange[]")]
    pub fn expire<'e>(&mut self, env: &'e Env, now: Unknown<'_>) -> napi::Result<Vec<Object<'e>>> {
        let now = convert::time_ms(env, now, "\"now\" argument")?;
        self.inner
            .expire(now)
            .iter()
            .map(|c| closed_to_js(env, c))
            .collect()
    }

    /// The earliest deadline of an open exchange, or `null`.
    #[napi]
    pub fn next_deadline(&mut self) -> Option<f64> {
        self.inner.next_deadline().map(|d| d as f64)
    }

    /// Expected responders that have not sent a final response yet; `null` if not open.
    #[napi(ts_args_type = "requestId: string")]
    pub fn missing(&self, env: Env, request_id: Unknown<'_>) -> napi::Result<Option<Vec<String>>> {
        let id = convert::string(&env, request_id, "\"requestId\" argument")?;
        Ok(self.inner.missing(&id))
    }

    /// Whether an exchange with this id is open.
    #[napi(ts_args_type = "requestId: string")]
    pub fn is_open(&self, env: Env, request_id: Unknown<'_>) -> napi::Result<bool> {
        let id = convert::string(&env, request_id, "\"requestId\" argument")?;
        Ok(self.inner.is_open(&id))
    }

    /// How many exchanges are open.
    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.inner.len() as u32
    }

    /// How many responses matched no open exchange so far.
    #[napi(getter)]
    pub fn unsolicited(&self) -> f64 {
        self.inner.unsolicited() as f64
    }
}

impl Default for Correlator {
    fn default() -> Self {
        Self::new()
    }
}
