//! Promises settled from the core's tokio runtime.
//!
//! Work runs on `oc2mqtt::client::runtime()`, never on the JavaScript
//! thread; only the conversion of the result happens there, when the
//! Promise is settled. Each pending Promise keeps the Node event loop alive
//! (through napi's deferred), and none is left pending once its future
//! ends: a panic in the future rejects it instead.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use napi::bindgen_prelude::{Env, FromNapiValue, JsValue, Object, ToNapiValue};
use napi::sys;

use crate::error;

/// A JavaScript value made on the JavaScript thread, handed to napi as is.
pub(crate) struct Raw(sys::napi_value);

impl Raw {
    pub(crate) fn of<'a, V: JsValue<'a>>(v: &V) -> Self {
        Self(v.raw())
    }
}

impl FromNapiValue for Raw {
    unsafe fn from_napi_value(_env: sys::napi_env, val: sys::napi_value) -> napi::Result<Self> {
        Ok(Self(val))
    }
}

impl ToNapiValue for Raw {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}

type Resolver = Box<dyn FnOnce(Env) -> napi::Result<Raw> + Send>;

/// Runs `fut` on the core runtime and returns a Promise of its result,
/// converted by `to_js` on the JavaScript thread. Core errors reject with
/// the mapped `Error` (`code: 'OC2_...'`).
pub(crate) fn promise<'e, T, F, C>(env: &'e Env, fut: F, to_js: C) -> napi::Result<Object<'e>>
where
    T: Send + 'static,
    F: Future<Output = oc2mqtt::Result<T>> + Send + 'static,
    C: FnOnce(&Env, T) -> napi::Result<Raw> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<Raw, Resolver>()?;
    oc2mqtt::client::runtime().spawn(async move {
        let outcome = AssertUnwindSafe(fut).catch_unwind().await;
        deferred.resolve(Box::new(move |env: Env| match outcome {
            Ok(Ok(v)) => to_js(&env, v),
            Ok(Err(e)) => Err(error::rejection(&env, &e)),
            Err(panic) => Err(error::rejection(
                &env,
                &oc2mqtt::Error::Handler(format!(
                    "internal error: a task panicked: {}",
                    oc2mqtt::client::panic_text(panic.as_ref())
                )),
            )),
        }));
    });
    Ok(promise)
}

/// `undefined`, for Promises of nothing.
pub(crate) fn undefined(env: &Env) -> napi::Result<Raw> {
    // SAFETY: `()` converts to `undefined` in this env.
    Ok(Raw(unsafe { <()>::to_napi_value(env.raw(), ()) }?))
}

impl Raw {
    /// The raw handle, for conversions on the JavaScript thread.
    pub(crate) fn into_raw(self) -> sys::napi_value {
        self.0
    }
}
