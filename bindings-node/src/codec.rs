//! `decode` and `encode`: wraps `oc2mqtt::codec`.
//!
//! Publish properties use mqtt.js's shape (`payloadFormatIndicator`,
//! `contentType`, `userProperties` as an object), so the output of
//! `encode` can be given to `client.publish(topic, payload, { properties })`
//! and a received `packet.properties` can be given to `decode` as it is.

use napi::bindgen_prelude::{Buffer, Env, JsValue, Object, Unknown, ValueType};
use napi_derive::napi;

use oc2mqtt::client::ClientConfig;
use oc2mqtt::codec::{self, PublishProperties};
use oc2mqtt::producer::SendOptions;

use crate::convert::{self, field};
use crate::error::OrThrow;
use crate::settings;

/// Reads mqtt.js-style (or pairs-style) publish properties.
pub(crate) fn properties(
    env: &Env,
    v: Unknown<'_>,
    what: &str,
) -> napi::Result<Option<PublishProperties>> {
    let Some(obj) = convert::opt_object(env, v, what)? else {
        return Ok(None);
    };
    let mut p = PublishProperties::default();
    let pfi = field(env, &obj, "payloadFormatIndicator")?;
    p.payload_format_indicator = match pfi.get_type()? {
        ValueType::Undefined | ValueType::Null => None,
        ValueType::Boolean => convert::opt_bool(env, pfi, "")?.map(u8::from),
        // Any byte; which values MQTT gives it is core's to say (`decode`).
        _ => convert::opt_uint(
            env,
            pfi,
            &format!("{what}.payloadFormatIndicator"),
            u8::MAX.into(),
        )?
        .map(|n| n as u8),
    };
    p.content_type = convert::opt_string(
        env,
        field(env, &obj, "contentType")?,
        &format!("{what}.contentType"),
    )?;
    let up_what = format!("{what}.userProperties");
    let up = field(env, &obj, "userProperties")?;
    if up.is_array()? {
        // [[key, value], ...]
        let pairs = convert::json(env, up, &up_what)?;
        for (i, pair) in pairs.as_array().into_iter().flatten().enumerate() {
            match pair.as_array().map(Vec::as_slice) {
                Some([serde_json::Value::String(k), serde_json::Value::String(v)]) => {
                    p.user_properties.push((k.clone(), v.clone()));
                }
                _ => {
                    return Err(convert::type_error(
                        env,
                        &format!("The {up_what}[{i}] must be a [key, value] pair of strings"),
                    ));
                }
            }
        }
    } else if let Some(map) = convert::opt_object(
        env,
        up,
        &format!("{up_what} (an object or an array of pairs)"),
    )? {
        // {key: value | [values]}, as mqtt.js delivers them (in insertion order).
        for key in Object::keys(&map)? {
            let item_what = format!("{up_what}.{key}");
            let item = field(env, &map, &key)?;
            if item.is_array()? {
                for value in convert::string_list(env, item, &item_what)? {
                    p.user_properties.push((key.clone(), value));
                }
            } else {
                p.user_properties
                    .push((key.clone(), convert::string(env, item, &item_what)?));
            }
        }
    }
    Ok(Some(p))
}

/// Publish properties in mqtt.js's shape.
pub(crate) fn properties_to_js<'e>(
    env: &'e Env,
    p: &PublishProperties,
) -> napi::Result<Object<'e>> {
    let mut o = Object::new(env)?;
    if let Some(pfi) = p.payload_format_indicator {
        o.set("payloadFormatIndicator", pfi == 1)?;
    }
    if let Some(ct) = &p.content_type {
        o.set("contentType", ct.as_str())?;
    }
    let mut up = Object::new(env)?;
    for (k, v) in &p.user_properties {
        up.set(k, v.as_str())?;
    }
    o.set("userProperties", up)?;
    Ok(o)
}

/// Decodes an OpenC2 message from an MQTT payload.
///
/// `properties` are the PUBLISH properties as mqtt.js delivers them
/// (`packet.properties`); without them (MQTT v3.1.1) the encoding and the
/// dialect are sniffed from the bytes. Returns `{ message, encoding,
/// dialect, msgType }`, where `message` has the canonical
/// `{ headers, body: { openc2: { request | response | notification } } }` shape.
///
/// Throws an `Error` with `code: 'OC2_DECODE'` and `kind`, `path`, `reason`
/// and `salvage` (the `requestId` and `from` that could still be read).
///
/// ```js
/// const { message, dialect } = decode(Buffer.from('{"action":"query","target":{"features":[]}}'))
/// // dialect === 'bare', message.body.openc2.request.action === 'query'
/// ```
#[napi(
    ts_args_type = "payload: Buffer | Uint8Array, properties?: PublishProperties | null, options?: DecodeOptions",
    ts_return_type = "Decoded"
)]
pub fn decode<'e>(
    env: &'e Env,
    payload: Unknown<'_>,
    properties: Unknown<'_>,
    options: Unknown<'_>,
) -> napi::Result<Object<'e>> {
    let payload = convert::bytes(env, payload, "\"payload\" argument")?;
    let props = self::properties(env, properties, "\"properties\" argument")?;
    // The client setting `maxPayload`, as a client reads it.
    let max = settings::pick::<ClientConfig>(env, options, &[("maxPayload", "maxPayload")])?
        .map_or(codec::DEFAULT_MAX_PAYLOAD, |c| c.max_payload);
    let decoded = codec::decode_with_limit(payload, props.as_ref(), max).or_throw(env)?;
    decoded_to_js(env, &decoded)
}

pub(crate) fn decoded_to_js<'e>(env: &'e Env, d: &codec::Decoded) -> napi::Result<Object<'e>> {
    let mut o = Object::new(env)?;
    o.set("message", convert::message_to_js(env, &d.message)?)?;
    o.set("encoding", d.encoding.as_str())?;
    o.set("dialect", d.dialect.as_str())?;
    o.set("msgType", d.message.msg_type().as_key())?;
    Ok(o)
}

/// Encodes an OpenC2 message for publishing.
///
/// `message` has the canonical `{ headers, body: { openc2: ... } }` shape.
/// Options: `encoding` (`'json'`, the default, or `'cbor'`) and `dialect`
/// (`'spec'`, the default, `'otupy'` or `'bare'`). Returns `{ payload,
/// properties }`; `properties` is in mqtt.js's shape, ready for
/// `client.publish(topic, payload, { qos: 1, properties })`.
///
/// Throws `OC2_DECODE` when the message is invalid (the error names the field).
#[napi(
    ts_args_type = "message: Message, options?: EncodeOptions",
    ts_return_type = "Encoded"
)]
pub fn encode<'e>(
    env: &'e Env,
    message: Unknown<'_>,
    options: Unknown<'_>,
) -> napi::Result<Object<'e>> {
    let msg = convert::message(env, message, "\"message\" argument")?;
    // The wire settings of a send's options, read as they are (other properties ignored).
    let o: SendOptions = settings::pick(
        env,
        options,
        &[("encoding", "encoding"), ("dialect", "dialect")],
    )?
    .unwrap_or_default();
    // No peer here: the specification's dialect unless told.
    let (payload, props) =
        codec::encode(&msg, o.encoding, o.dialect.unwrap_or_default()).or_throw(env)?;
    let mut o = Object::new(env)?;
    o.set("payload", Buffer::from(payload))?;
    o.set("properties", properties_to_js(env, &props)?)?;
    Ok(o)
}
