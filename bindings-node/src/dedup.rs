//! Duplicate detection: wraps `oc2mqtt::dedup`.

use napi::bindgen_prelude::{BigInt, Env, FromNapiValue, JsValue, Object, Unknown, ValueType};
use napi_derive::napi;

use oc2mqtt::dedup::{self, DedupKey, DedupOptions};

use crate::convert;
use crate::error::OrThrow;
use crate::settings;

fn key_from_bigint(env: &Env, v: Unknown<'_>) -> napi::Result<DedupKey> {
    if v.get_type()? != ValueType::BigInt {
        return Err(convert::type_error(
            env,
            "The \"key\" argument must be of type bigint (from a Deduplicator key function)",
        ));
    }
    // SAFETY: type checked just above.
    let b = unsafe {
        napi::bindgen_prelude::FromNapiValue::from_napi_value(
            env.raw(),
            napi::bindgen_prelude::JsValue::raw(&v),
        )
    };
    let b: BigInt = b?;
    let (signed, value, lossless) = b.get_u128();
    if signed || !lossless {
        return Err(convert::range_error(
            env,
            "The \"key\" argument must be an unsigned 128-bit bigint",
        ));
    }
    Ok(DedupKey::from_u128(value))
}

fn key_to_bigint(k: DedupKey) -> BigInt {
    BigInt::from(k.as_u128())
}

/// Remembers recently seen messages for a time window and never more than
/// a capacity (oldest dropped first); O(1) per check.
///
/// ```js
/// const d = new Deduplicator({ windowMs: 60_000 })
/// d.check(message, payload, Date.now())  // true: first sighting, process it
/// d.check(message, payload, Date.now())  // false: a duplicate, drop it
/// ```
#[napi]
pub struct Deduplicator {
    inner: dedup::Deduplicator,
}

#[napi]
impl Deduplicator {
    /// Options: `windowMs` and `capacity`, core's `DedupOptions` (their
    /// defaults, ranges and error texts).
    #[napi(constructor, ts_args_type = "options?: DeduplicatorOptions")]
    pub fn new(env: Env, options: Unknown<'_>) -> napi::Result<Self> {
        let options: DedupOptions = settings::options(&env, options, &[])?;
        Ok(Self {
            inner: dedup::Deduplicator::with_options(options).or_throw(&env)?,
        })
    }

    /// `true` the first time this message is seen within the window (process
    /// it), `false` for a duplicate (drop it). `payload` is the bytes it came
    /// in (responses are keyed by their content); `now` in ms must not go back.
    #[napi(ts_args_type = "message: Message, payload: Buffer | Uint8Array, now: number")]
    pub fn check(
        &mut self,
        env: Env,
        message: Unknown<'_>,
        payload: Unknown<'_>,
        now: Unknown<'_>,
    ) -> napi::Result<bool> {
        let msg = convert::message(&env, message, "\"message\" argument")?;
        let payload = convert::bytes(&env, payload, "\"payload\" argument")?;
        let now = convert::time_ms(&env, now, "\"now\" argument")?;
        Ok(self.inner.check(DedupKey::of_message(&msg, payload), now))
    }

    /// Like `check`, with a key from `Deduplicator.commandKey`, `responseKey` or `payloadKey`.
    #[napi(ts_args_type = "key: bigint, now: number")]
    pub fn check_key(
        &mut self,
        env: Env,
        key: Unknown<'_>,
        now: Unknown<'_>,
    ) -> napi::Result<bool> {
        let key = key_from_bigint(&env, key)?;
        let now = convert::time_ms(&env, now, "\"now\" argument")?;
        Ok(self.inner.check(key, now))
    }

    /// The key of a command: (`from`, `requestId`).
    #[napi(ts_args_type = "from: string | null | undefined, requestId: string")]
    pub fn command_key(
        env: Env,
        from: Unknown<'_>,
        request_id: Unknown<'_>,
    ) -> napi::Result<BigInt> {
        let from = convert::opt_string(&env, from, "\"from\" argument")?;
        let id = convert::string(&env, request_id, "\"requestId\" argument")?;
        Ok(key_to_bigint(DedupKey::command(from.as_deref(), &id)))
    }

    /// The key of a response: (`from`, `requestId`, `status`, payload digest).
    #[napi(
        ts_args_type = "from: string | null | undefined, requestId: string, status: number, payload: Buffer | Uint8Array"
    )]
    pub fn response_key(
        env: Env,
        from: Unknown<'_>,
        request_id: Unknown<'_>,
        status: Unknown<'_>,
        payload: Unknown<'_>,
    ) -> napi::Result<BigInt> {
        let from = convert::opt_string(&env, from, "\"from\" argument")?;
        let id = convert::string(&env, request_id, "\"requestId\" argument")?;
        let status = convert::uint(&env, status, "\"status\" argument", u16::MAX.into())? as u16;
        let payload = convert::bytes(&env, payload, "\"payload\" argument")?;
        Ok(key_to_bigint(DedupKey::response(
            from.as_deref(),
            &id,
            status,
            payload,
        )))
    }

    /// The key of a message without a `request_id`: its payload digest.
    #[napi(ts_args_type = "payload: Buffer | Uint8Array")]
    pub fn payload_key(env: Env, payload: Unknown<'_>) -> napi::Result<BigInt> {
        let payload = convert::bytes(&env, payload, "\"payload\" argument")?;
        Ok(key_to_bigint(DedupKey::payload(payload)))
    }

    /// Keys currently remembered.
    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.inner.len() as u32
    }

    /// Counters, as core keeps them (the `DedupStats` type).
    #[napi(ts_return_type = "DedupStats")]
    pub fn stats<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let v = convert::core_to_js(env, &self.inner.stats())?;
        // SAFETY: `DedupStats` serializes as a struct, so `v` is a plain object of this env.
        unsafe { Object::from_napi_value(env.raw(), v.raw()) }
    }
}
