//! Argument conversions: JavaScript values in, Rust values out, and back.
//!
//! A wrong type is a `TypeError` with Node's `ERR_INVALID_ARG_TYPE` code and
//! a message that names the argument (`The "payload" argument must be a
//! Buffer or Uint8Array. Received type number`), as Node's own APIs do. An
//! argument of the right type with a value outside its set (an unknown
//! encoding name) is a `TypeError` with `ERR_INVALID_ARG_VALUE`; a number
//! out of range is a `RangeError` with `ERR_OUT_OF_RANGE`.

use napi::bindgen_prelude::{
    Array, BufferSlice, Env, FromNapiValue, JsObjectValue, JsValue, Object, Status, ToNapiValue,
    Uint8ArraySlice, Unknown, ValueType,
};
use serde_json::{Map, Number, Value};

use std::cell::Cell;

use crate::camel::Camel;
use crate::error::OrThrow;
use oc2mqtt::codec::MAX_NESTING;
use oc2mqtt::message::Message;

fn pending(msg: &str) -> napi::Error {
    napi::Error::new(Status::PendingException, msg.to_owned())
}

/// Throws a `TypeError` (`ERR_INVALID_ARG_TYPE`).
pub(crate) fn type_error(env: &Env, msg: &str) -> napi::Error {
    match env.throw_type_error(msg, Some("ERR_INVALID_ARG_TYPE")) {
        Ok(()) => pending(msg),
        Err(e) => e,
    }
}

/// Throws a `TypeError` (`ERR_INVALID_ARG_VALUE`): right type, value not allowed.
pub(crate) fn value_error(env: &Env, msg: &str) -> napi::Error {
    match env.throw_type_error(msg, Some("ERR_INVALID_ARG_VALUE")) {
        Ok(()) => pending(msg),
        Err(e) => e,
    }
}

/// Throws a `RangeError` (`ERR_OUT_OF_RANGE`).
pub(crate) fn range_error(env: &Env, msg: &str) -> napi::Error {
    match env.throw_range_error(msg, Some("ERR_OUT_OF_RANGE")) {
        Ok(()) => pending(msg),
        Err(e) => e,
    }
}

/// JavaScript's `typeof` name of a value of type `t` (`string`, `bigint`, ...).
pub(crate) fn type_name(t: ValueType) -> String {
    format!("{t:?}").to_lowercase()
}

/// "Received ..." in Node's wording.
fn received(v: &Unknown<'_>) -> String {
    match v.get_type() {
        Ok(ValueType::Undefined) => "Received undefined".to_owned(),
        Ok(ValueType::Null) => "Received null".to_owned(),
        Ok(ValueType::Object) if v.is_array().unwrap_or(false) => "Received an array".to_owned(),
        Ok(ValueType::Object) => "Received an object".to_owned(),
        Ok(ValueType::Function) => "Received a function".to_owned(),
        Ok(t) => format!("Received type {}", type_name(t)),
        Err(_) => "Received an unreadable value".to_owned(),
    }
}

fn wrong(env: &Env, what: &str, expected: &str, v: &Unknown<'_>) -> napi::Error {
    type_error(
        env,
        &format!("The {what} must be {expected}. {}", received(v)),
    )
}

/// Whether `v` is `undefined` or `null` (an omitted optional argument).
pub(crate) fn is_absent(v: &Unknown<'_>) -> napi::Result<bool> {
    Ok(matches!(
        v.get_type()?,
        ValueType::Undefined | ValueType::Null
    ))
}

/// The bytes of a `Buffer` or `Uint8Array`, borrowed for the call.
pub(crate) fn bytes<'a>(env: &Env, v: Unknown<'a>, what: &str) -> napi::Result<&'a [u8]> {
    if v.is_buffer()? {
        // SAFETY: checked to be a Buffer just above.
        let slice = unsafe { BufferSlice::from_napi_value(env.raw(), v.raw()) }?;
        // The bytes belong to the JavaScript object, which outlives this call.
        let data: &[u8] = &slice;
        // SAFETY: the slice points into the Buffer's backing store, valid for 'a.
        return Ok(unsafe { std::slice::from_raw_parts(data.as_ptr(), data.len()) });
    }
    if v.is_typedarray()? {
        // SAFETY: a typed array; from_napi_value checks that its element type is u8.
        if let Ok(slice) = unsafe { Uint8ArraySlice::from_napi_value(env.raw(), v.raw()) } {
            let data: &[u8] = &slice;
            // SAFETY: as above, the view's backing store is valid for 'a.
            return Ok(unsafe { std::slice::from_raw_parts(data.as_ptr(), data.len()) });
        }
    }
    Err(wrong(env, what, "a Buffer or Uint8Array", &v))
}

/// A string.
pub(crate) fn string(env: &Env, v: Unknown<'_>, what: &str) -> napi::Result<String> {
    if v.get_type()? == ValueType::String {
        // SAFETY: type checked just above.
        return unsafe { String::from_napi_value(env.raw(), v.raw()) };
    }
    Err(wrong(env, what, "of type string", &v))
}

/// A string, or `None` for `undefined`/`null`.
pub(crate) fn opt_string(env: &Env, v: Unknown<'_>, what: &str) -> napi::Result<Option<String>> {
    if is_absent(&v)? {
        return Ok(None);
    }
    if v.get_type()? == ValueType::String {
        // SAFETY: type checked just above.
        return unsafe { String::from_napi_value(env.raw(), v.raw()) }.map(Some);
    }
    Err(wrong(env, what, "of type string", &v))
}

/// A boolean, or `None` for `undefined`/`null`.
pub(crate) fn opt_bool(env: &Env, v: Unknown<'_>, what: &str) -> napi::Result<Option<bool>> {
    if is_absent(&v)? {
        return Ok(None);
    }
    if v.get_type()? == ValueType::Boolean {
        // SAFETY: type checked just above.
        return unsafe { bool::from_napi_value(env.raw(), v.raw()) }.map(Some);
    }
    Err(wrong(env, what, "of type boolean", &v))
}

/// A number (any: NaN and infinities included).
pub(crate) fn number(env: &Env, v: &Unknown<'_>, what: &str) -> napi::Result<f64> {
    if v.get_type()? == ValueType::Number {
        // SAFETY: type checked just above.
        return unsafe { f64::from_napi_value(env.raw(), v.raw()) };
    }
    Err(wrong(env, what, "of type number", v))
}

/// A non-negative integer no larger than `max` (milliseconds, counts, sizes).
pub(crate) fn uint(env: &Env, v: Unknown<'_>, what: &str, max: u64) -> napi::Result<u64> {
    let n = number(env, &v, what)?;
    // Exact for every integer up to 2^53; `max` bounds are below that or saturate.
    if n.fract() != 0.0 || !n.is_finite() || n < 0.0 || n > max as f64 {
        return Err(range_error(
            env,
            &format!(
                "The {what} is out of range. It must be an integer >= 0 and <= {max}. Received {n}"
            ),
        ));
    }
    Ok(n as u64)
}

/// [`uint`], or `None` for `undefined`/`null`.
pub(crate) fn opt_uint(
    env: &Env,
    v: Unknown<'_>,
    what: &str,
    max: u64,
) -> napi::Result<Option<u64>> {
    if is_absent(&v)? {
        Ok(None)
    } else {
        uint(env, v, what, max).map(Some)
    }
}

/// Largest integer a JavaScript number holds exactly.
pub(crate) const MAX_SAFE: u64 = (1 << 53) - 1;

/// A time in milliseconds (any monotonic clock the caller chose).
pub(crate) fn time_ms(env: &Env, v: Unknown<'_>, what: &str) -> napi::Result<u64> {
    uint(env, v, what, MAX_SAFE)
}

/// A plain object (not an array, not null).
pub(crate) fn object<'a>(env: &Env, v: Unknown<'a>, what: &str) -> napi::Result<Object<'a>> {
    if v.get_type()? == ValueType::Object && !v.is_array()? {
        // SAFETY: type checked just above.
        return unsafe { Object::from_napi_value(env.raw(), v.raw()) };
    }
    Err(wrong(env, what, "an object", &v))
}

/// An options object, or `None` for `undefined`/`null`.
pub(crate) fn opt_object<'a>(
    env: &Env,
    v: Unknown<'a>,
    what: &str,
) -> napi::Result<Option<Object<'a>>> {
    if is_absent(&v)? {
        Ok(None)
    } else {
        object(env, v, what).map(Some)
    }
}

/// A property of an object, `undefined` when absent.
pub(crate) fn field<'a>(env: &Env, obj: &Object<'a>, name: &str) -> napi::Result<Unknown<'a>> {
    match obj.get::<Unknown<'a>>(name)? {
        Some(v) => Ok(v),
        // SAFETY: `undefined` from this env is a valid value.
        None => unsafe { Unknown::from_napi_value(env.raw(), <()>::to_napi_value(env.raw(), ())?) },
    }
}

/// An array of strings.
pub(crate) fn string_list(env: &Env, v: Unknown<'_>, what: &str) -> napi::Result<Vec<String>> {
    if !v.is_array()? {
        return Err(wrong(env, what, "an array of strings", &v));
    }
    // SAFETY: checked to be an array just above.
    let arr = unsafe { Array::from_napi_value(env.raw(), v.raw()) }?;
    let mut out = Vec::with_capacity(arr.len() as usize);
    for i in 0..arr.len() {
        let item = arr.get::<Unknown<'_>>(i)?;
        let item = match item {
            Some(item) => item,
            None => {
                return Err(type_error(
                    env,
                    &format!("The {what} must be an array of strings. Element {i} is undefined"),
                ));
            }
        };
        out.push(string(env, item, &format!("{what}[{i}]"))?);
    }
    Ok(out)
}

/// An array of strings, or `None` for `undefined`/`null`.
pub(crate) fn opt_string_list(
    env: &Env,
    v: Unknown<'_>,
    what: &str,
) -> napi::Result<Option<Vec<String>>> {
    if is_absent(&v)? {
        Ok(None)
    } else {
        string_list(env, v, what).map(Some)
    }
}

/// A JSON-representable value; `undefined` object properties are skipped,
/// as `JSON.stringify` does. Integers stay integers. Nesting deeper than
/// [`MAX_NESTING`] (or an object inside itself) is a `RangeError`, not a
/// stack overflow.
pub(crate) fn json(env: &Env, v: Unknown<'_>, path: &str) -> napi::Result<Value> {
    json_at(env, v, path, 0)
}

fn json_at(env: &Env, v: Unknown<'_>, path: &str, depth: usize) -> napi::Result<Value> {
    if depth > MAX_NESTING {
        return Err(range_error(
            env,
            &format!(
                "{path} is nested more than {MAX_NESTING} levels deep (is an object inside itself?)"
            ),
        ));
    }
    let raw = env.raw();
    Ok(match v.get_type()? {
        ValueType::Null => Value::Null,
        // SAFETY (all casts below): each matches the type just read.
        ValueType::Boolean => Value::Bool(unsafe { bool::from_napi_value(raw, v.raw()) }?),
        ValueType::String => Value::String(unsafe { String::from_napi_value(raw, v.raw()) }?),
        ValueType::Number => {
            let n = unsafe { f64::from_napi_value(raw, v.raw()) }?;
            if n.fract() == 0.0 && n.abs() <= MAX_SAFE as f64 {
                // Exact: an integer within the safe range.
                Value::Number(Number::from(n as i64))
            } else {
                match Number::from_f64(n) {
                    Some(n) => Value::Number(n),
                    None => {
                        return Err(type_error(
                            env,
                            &format!("{path} is {n}, which JSON cannot represent"),
                        ));
                    }
                }
            }
        }
        ValueType::Object if v.is_array()? => {
            let arr = unsafe { Array::from_napi_value(raw, v.raw()) }?;
            let mut out = Vec::with_capacity(arr.len() as usize);
            for i in 0..arr.len() {
                let item = field_at(env, &arr, i)?;
                out.push(if is_absent(&item)? {
                    Value::Null
                } else {
                    json_at(env, item, &format!("{path}[{i}]"), depth + 1)?
                });
            }
            Value::Array(out)
        }
        ValueType::Object => {
            let obj = unsafe { Object::from_napi_value(raw, v.raw()) }?;
            let mut out = Map::new();
            for key in Object::keys(&obj)? {
                let item = field(env, &obj, &key)?;
                if item.get_type()? == ValueType::Undefined {
                    continue;
                }
                let sub = format!("{path}.{key}");
                out.insert(key, json_at(env, item, &sub, depth + 1)?);
            }
            Value::Object(out)
        }
        other => {
            let t = format!("{other:?}").to_lowercase();
            return Err(type_error(
                env,
                &format!("{path} is a {t}, which JSON cannot represent"),
            ));
        }
    })
}

fn field_at<'a>(env: &Env, arr: &Array<'a>, i: u32) -> napi::Result<Unknown<'a>> {
    match arr.get::<Unknown<'a>>(i)? {
        Some(v) => Ok(v),
        // SAFETY: `undefined` from this env is a valid value.
        None => unsafe { Unknown::from_napi_value(env.raw(), <()>::to_napi_value(env.raw(), ())?) },
    }
}

/// An OpenC2 message in the canonical `{headers, body: {openc2: ...}}` shape.
///
/// Not an object → `TypeError`; an object that is not a valid message →
/// an `OC2_DECODE` error naming the field.
pub(crate) fn message(env: &Env, v: Unknown<'_>, what: &str) -> napi::Result<Message> {
    let obj = object(env, v, what)?;
    let value = json(env, obj.to_unknown(), "message")?;
    Message::from_json_value(value).or_throw(env)
}

/// A message as a plain JavaScript object in the canonical shape.
pub(crate) fn message_to_js<'e>(env: &'e Env, m: &Message) -> napi::Result<Unknown<'e>> {
    to_js(env, &m.to_json_value())
}

/// A core type's serde form as a JavaScript value, its struct fields in
/// camel case (`request_id` → `requestId`): the one place Node's spelling
/// of the core's names is made ([`Camel`]); maps (user data: a message's
/// keys) stay as sent. Built by one `JSON.parse` of its JSON text, far
/// faster than setting properties one N-API call at a time, unless an
/// integer is beyond what `JSON.parse` keeps (then as [`to_js`] does).
/// Bytes come out `null`.
pub(crate) fn core_to_js<'e, T: serde::Serialize + ?Sized>(
    env: &'e Env,
    v: &T,
) -> napi::Result<Unknown<'e>> {
    let reason = |e: serde_json::Error| napi::Error::from_reason(e.to_string());
    let exact = Cell::new(true);
    let mut text = Vec::with_capacity(1024);
    v.serialize(Camel::new(
        &mut serde_json::Serializer::new(&mut text),
        &exact,
    ))
    .map_err(reason)?;
    if exact.get() {
        let text = String::from_utf8(text).map_err(|e| napi::Error::from_reason(e.to_string()))?;
        return parse(env, &text);
    }
    let value = v
        .serialize(Camel::new(serde_json::value::Serializer, &exact))
        .map_err(reason)?;
    to_js(env, &value)
}

/// A JSON value as a plain JavaScript value.
pub(crate) fn to_js<'e>(env: &'e Env, v: &Value) -> napi::Result<Unknown<'e>> {
    // SAFETY: the value was just created in this env.
    unsafe { Unknown::from_napi_value(env.raw(), <&Value>::to_napi_value(env.raw(), v)?) }
}

/// Whether `JSON.parse` of `v`'s text makes the same JavaScript value as
/// [`to_js`]: it does unless an integer is beyond ±(2^53 - 1), which
/// [`to_js`] makes a `BigInt` and `JSON.parse` a rounded number.
pub(crate) fn parses_exactly(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64() || n.as_i64().is_some_and(|i| i.unsigned_abs() <= MAX_SAFE),
        Value::Array(items) => items.iter().all(parses_exactly),
        Value::Object(map) => map.values().all(parses_exactly),
        _ => true,
    }
}

/// A JavaScript value from JSON text, through the engine's `JSON.parse`.
pub(crate) fn parse<'e>(env: &'e Env, text: &str) -> napi::Result<Unknown<'e>> {
    let raw = env.raw();
    let global = env.get_global()?;
    let json: Object<'_> = global.get_named_property_unchecked("JSON")?;
    let parse: Unknown<'_> = json.get_named_property_unchecked("parse")?;
    let arg = env.create_string(text)?;
    let mut out = std::ptr::null_mut();
    // SAFETY: N-API call on the JavaScript thread with values of this env.
    let status = unsafe {
        napi::sys::napi_call_function(
            raw,
            json.raw(),
            parse.raw(),
            1,
            [arg.raw()].as_ptr(),
            &mut out,
        )
    };
    if status != napi::sys::Status::napi_ok {
        return Err(napi::Error::new(
            Status::GenericFailure,
            "JSON.parse of the binding's own output failed".to_owned(),
        ));
    }
    // SAFETY: the value JSON.parse just returned in this env.
    unsafe { Unknown::from_napi_value(raw, out) }
}
