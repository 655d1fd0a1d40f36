//! The one mapping from core errors to JavaScript errors.
//!
//! Every `oc2mqtt::Error` becomes an `Error` whose `code` names its kind
//! (`OC2_DECODE`, `OC2_TIMEOUT`, ...); a message error also carries `kind`,
//! `path`, `reason` and `salvage`. Wrong argument types are `TypeError`s
//! with Node's own codes (see [`crate::convert`]).

use napi::bindgen_prelude::{Env, JsValue, Object, Status};

use oc2mqtt::error::MessageError;

/// The `code` of a JavaScript error: core's name of its kind, in Node's
/// style (`OC2_DECODE`, `OC2_TIMEOUT`, ...).
pub(crate) fn code(e: &oc2mqtt::Error) -> String {
    format!("OC2_{}", e.kind().to_ascii_uppercase())
}

/// Builds the JavaScript `Error` for a core error.
pub(crate) fn js_error<'e>(env: &'e Env, e: &oc2mqtt::Error) -> napi::Result<Object<'e>> {
    let mut err = env.create_error(napi::Error::new(Status::GenericFailure, e.to_string()))?;
    err.set("code", code(e))?;
    if let Some(m) = e.as_message() {
        set_message_fields(env, &mut err, m)?;
    }
    Ok(err)
}

fn set_message_fields(env: &Env, err: &mut Object<'_>, m: &MessageError) -> napi::Result<()> {
    err.set("kind", m.kind.as_str())?;
    err.set("path", m.path.as_str())?;
    err.set("reason", m.reason.as_str())?;
    err.set("salvage", crate::convert::core_to_js(env, &m.salvage)?)?;
    Ok(())
}

/// Throws the JavaScript error for `e` and returns the napi error that tells
/// the generated glue an exception is already pending.
pub(crate) fn throw(env: &Env, e: &oc2mqtt::Error) -> napi::Error {
    match js_error(env, e).and_then(|obj| env.throw(obj)) {
        Ok(()) => napi::Error::new(Status::PendingException, e.to_string()),
        Err(fail) => fail,
    }
}

/// A rejection value for a Promise settled from another thread (built on the JS thread).
pub(crate) fn rejection(env: &Env, e: &oc2mqtt::Error) -> napi::Error {
    match js_error(env, e) {
        Ok(obj) => napi::Error::from(obj.to_unknown()),
        Err(fail) => fail,
    }
}

/// Throws for a message error (decode, encode, or a message object from JavaScript).
pub(crate) fn throw_message(env: &Env, e: MessageError) -> napi::Error {
    throw(env, &oc2mqtt::Error::from(e))
}

/// Shorthand used by the modules: maps a core result, throwing on error.
pub(crate) trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for Result<T, oc2mqtt::Error> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| throw(env, &e))
    }
}

impl<T> OrThrow<T> for Result<T, MessageError> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| throw_message(env, e))
    }
}

/// The `AbortError` (`code: 'ABORT_ERR'`) of a cancelled operation, as Node's own APIs make it.
pub(crate) fn abort_error<'e>(env: &'e Env, what: &str) -> napi::Result<Object<'e>> {
    let mut err = env.create_error(napi::Error::new(
        Status::GenericFailure,
        format!("The operation was aborted: {what}"),
    ))?;
    err.set("code", "ABORT_ERR")?;
    err.set("name", "AbortError")?;
    Ok(err)
}
