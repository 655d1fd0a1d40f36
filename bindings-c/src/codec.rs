//! `oc2_codec`: decode payloads, build messages from JSON text, encode them;
//! `oc2_properties` (the MQTT v5 publish properties) and `oc2_payload`.

use std::ffi::c_char;

use oc2::codec::{self, DEFAULT_MAX_PAYLOAD, PublishProperties};
use oc2::{Command, Dialect, Encoding, Message, MessageError, Response};
use serde_json::Value;

use crate::error::{Failure, JsonTextError, oc2_result};
use crate::ffi::{
    LastError, NulStr, Outcome, box_handle, free_box, guard, guard_free, oc2_bytes, oc2_str,
    parse_json, to_c, try_cstr, try_mut, try_opt_ref, try_out, try_ref, try_slice, write,
    write_text,
};
use crate::message::{
    dialect_code, dialect_from, encoding_code, encoding_from, msg_type_code, oc2_dialect,
    oc2_encoding, oc2_message, oc2_msg_type,
};

/// The default largest payload `oc2_codec_decode` accepts: 1 MiB.
pub const OC2_DEFAULT_MAX_PAYLOAD: usize = 1_048_576;
const _: () = assert!(
    OC2_DEFAULT_MAX_PAYLOAD == DEFAULT_MAX_PAYLOAD,
    "header constant follows core"
);

/// Decodes and encodes messages, and remembers the detail of its last failure.
///
/// Created by `oc2_codec_new`, freed by `oc2_codec_free`. Not thread-safe:
/// use one codec per thread (they are cheap).
pub struct oc2_codec {
    max_payload: usize,
    last_error: LastError,
    /// Path and salvage of the last message error, lent out by the accessors.
    last_path: Option<NulStr>,
    salvage_request_id: Option<NulStr>,
    salvage_from: Option<NulStr>,
    salvage: oc2::error::Salvage,
}
box_handle!(oc2_codec);

impl oc2_codec {
    fn begin(&mut self) {
        self.last_error.clear();
        self.last_path = None;
        self.salvage_request_id = None;
        self.salvage_from = None;
        self.salvage = oc2::error::Salvage::default();
    }

    fn fail(&mut self, e: &MessageError) -> oc2_result {
        self.last_error.set(e.to_string());
        self.last_path = Some(NulStr::new(&e.path));
        self.salvage_request_id = e.salvage.request_id.as_deref().map(NulStr::new);
        self.salvage_from = e.salvage.from.as_deref().map(NulStr::new);
        self.salvage = e.salvage.clone();
        e.code()
    }

    fn fail_with(&mut self, code: oc2_result, text: String) -> oc2_result {
        self.last_error.set(text);
        code
    }
}

/// Creates a codec with the default payload limit (`OC2_DEFAULT_MAX_PAYLOAD`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_new(out: *mut *mut oc2_codec) -> oc2_result {
    guard(|| {
        let out = try_out(out)?;
        write(
            out,
            to_c(oc2_codec {
                max_payload: DEFAULT_MAX_PAYLOAD,
                last_error: LastError::default(),
                last_path: None,
                salvage_request_id: None,
                salvage_from: None,
                salvage: oc2::error::Salvage::default(),
            }),
        );
        Ok(())
    })
}

/// Frees a codec; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_free(codec: *mut oc2_codec) {
    guard_free(|| free_box(codec));
}

/// Sets the largest payload `oc2_codec_decode` accepts; larger payloads
/// fail with `OC2_RESULT_MESSAGE_TOO_LARGE` before any parsing.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_set_max_payload(
    codec: *mut oc2_codec,
    max_payload: usize,
) -> oc2_result {
    guard(|| {
        try_mut(codec)?.max_payload = max_payload;
        Ok(())
    })
}

/// Decodes a received payload into a new message (`*out`, freed by the
/// caller with `oc2_message_free`).
///
/// `props` are the PUBLISH properties as received, or NULL when there were
/// none (MQTT v3.1.1): encoding and dialect are then sniffed from the bytes.
/// `payload` may be NULL when `len` is 0. On failure the code names the
/// kind of problem (`OC2_RESULT_MESSAGE_*`) and `oc2_codec_last_error`
/// says what and where, e.g. "body.openc2.request.target: expected exactly
/// one key, found 2"; `oc2_codec_salvage_request_id` and
/// `oc2_codec_salvage_from` give what could still be read, so a consumer can
/// answer 400 to the right producer.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_decode(
    codec: *mut oc2_codec,
    payload: *const u8,
    len: usize,
    props: *const oc2_properties,
    out: *mut *mut oc2_message,
) -> oc2_result {
    guard(|| {
        let codec = try_mut(codec)?;
        codec.begin();
        let payload = try_slice(payload, len)?;
        let props = try_opt_ref(props).map(|p| &p.props);
        let out = try_out(out)?;
        let decoded = codec::decode_with_limit(payload, props, codec.max_payload)
            .map_err(|e| codec.fail(&e))?;
        write(
            out,
            to_c(oc2_message::new(
                decoded.message,
                decoded.encoding,
                decoded.dialect,
            )),
        );
        Ok(())
    })
}

/// Parses `len` bytes of JSON text as UTF-8.
fn json_value(codec: &mut oc2_codec, json: *const c_char, len: usize) -> Result<Value, oc2_result> {
    parse_json(try_slice(json.cast(), len)?).map_err(|e| match e {
        JsonTextError::Syntax(m) => codec.fail(&m),
        utf8 => codec.fail_with(utf8.code(), utf8.to_string()),
    })
}

/// Builds a message from JSON text in the specification's shape
/// (`{"headers": {...}, "body": {"openc2": {"request": {...}}}}`), as
/// `oc2_message_json` writes it. `json` is `len` bytes of UTF-8, not
/// necessarily NUL-terminated. The message is validated as `oc2_codec_decode`
/// would; `*out` is freed by the caller with `oc2_message_free`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_message_from_json(
    codec: *mut oc2_codec,
    json: *const c_char,
    len: usize,
    out: *mut *mut oc2_message,
) -> oc2_result {
    guard(|| {
        let codec = try_mut(codec)?;
        codec.begin();
        let out = try_out(out)?;
        let value = json_value(codec, json, len)?;
        let message = Message::from_json_value(value).map_err(|e| codec.fail(&e))?;
        write(
            out,
            to_c(oc2_message::new(
                message,
                Encoding::default(),
                Dialect::default(),
            )),
        );
        Ok(())
    })
}

/// Builds a request from a command object given as JSON text
/// (`{"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}`), with a
/// fresh v4 UUID `request_id` and `created` set to now. Set `from` and `to`
/// with `oc2_message_set_from` / `oc2_message_set_to`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_command_from_json(
    codec: *mut oc2_codec,
    json: *const c_char,
    len: usize,
    out: *mut *mut oc2_message,
) -> oc2_result {
    guard(|| {
        let codec = try_mut(codec)?;
        codec.begin();
        let out = try_out(out)?;
        let value = json_value(codec, json, len)?;
        let command = Command::from_json_value(value).map_err(|e| codec.fail(&e))?;
        write(
            out,
            to_c(oc2_message::new(
                Message::request(command),
                Encoding::default(),
                Dialect::default(),
            )),
        );
        Ok(())
    })
}

/// Builds a response to `command` from a response object given as JSON text
/// (`{"status": 200, "results": {...}}`): the `request_id` is copied from
/// the command, `to` is its sender, `created` is now, and the encoding and
/// dialect are those the command arrived in. Set `from` with
/// `oc2_message_set_from`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_response_from_json(
    codec: *mut oc2_codec,
    command: *const oc2_message,
    json: *const c_char,
    len: usize,
    out: *mut *mut oc2_message,
) -> oc2_result {
    guard(|| {
        let codec = try_mut(codec)?;
        codec.begin();
        let command = try_ref(command)?;
        let out = try_out(out)?;
        let value = json_value(codec, json, len)?;
        let response = Response::from_json_value(value).map_err(|e| codec.fail(&e))?;
        let reply = Message::response_to(&command.message, response);
        write(
            out,
            to_c(oc2_message::new(reply, command.encoding, command.dialect)),
        );
        Ok(())
    })
}

/// Encodes `message` in `encoding` (`OC2_ENCODING_*`) and `dialect`
/// (`OC2_DIALECT_*`) after validating it. `*out` holds the payload bytes and
/// the PUBLISH properties to send with them; the caller frees it with
/// `oc2_payload_free`. The bare dialect carries no headers.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_encode(
    codec: *mut oc2_codec,
    message: *const oc2_message,
    encoding: oc2_encoding,
    dialect: oc2_dialect,
    out: *mut *mut oc2_payload,
) -> oc2_result {
    guard(|| {
        let codec = try_mut(codec)?;
        codec.begin();
        let message = try_ref(message)?;
        let encoding = encoding_from(encoding)?;
        let dialect = dialect_from(dialect)?;
        let out = try_out(out)?;
        let (bytes, props) =
            codec::encode(&message.message, encoding, dialect).map_err(|e| codec.fail(&e))?;
        write(
            out,
            to_c(oc2_payload {
                bytes,
                props: oc2_properties::new(props),
            }),
        );
        Ok(())
    })
}

/// Copies the detail of the codec's last failure ("body.openc2.request.target:
/// expected exactly one key, found 2") into `buf`, NUL-terminated; the
/// empty string if the last call succeeded. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_last_error(
    codec: *const oc2_codec,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(try_ref(codec)?.last_error.text(), buf, len, written))
}

/// The dotted path of the field the last message error is about
/// (`"body.openc2.request.target"`, empty for the payload as a whole);
/// `OC2_RESULT_ABSENT` if the last call did not fail on a message. Borrowed
/// from the codec until its next call.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_last_error_path(
    codec: *const oc2_codec,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(codec)?.last_path.as_ref(), out))
}

/// The `request_id` read from the message the last decode failed on;
/// `OC2_RESULT_ABSENT` if none could be read. Borrowed until the codec's next call.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_salvage_request_id(
    codec: *const oc2_codec,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(codec)?.salvage_request_id.as_ref(), out))
}

/// The `from` read from the message the last decode failed on;
/// `OC2_RESULT_ABSENT` if none could be read. Borrowed until the codec's next call.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_salvage_from(codec: *const oc2_codec, out: *mut oc2_str) -> oc2_result {
    guard(|| lend(try_ref(codec)?.salvage_from.as_ref(), out))
}

/// The dialect the message the last decode failed on appeared to be in
/// (`OC2_DIALECT_*`); `OC2_RESULT_ABSENT` if it could not be told.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_salvage_dialect(
    codec: *const oc2_codec,
    out: *mut oc2_dialect,
) -> oc2_result {
    guard(|| {
        let c = try_ref(codec)?;
        let out = try_out(out)?;
        write(
            out,
            dialect_code(c.salvage.dialect.ok_or(oc2_result::OC2_RESULT_ABSENT)?),
        );
        Ok(())
    })
}

/// The encoding the message the last decode failed on was in, or was
/// announced to be in (`OC2_ENCODING_*`); `OC2_RESULT_ABSENT` if unknown.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_salvage_encoding(
    codec: *const oc2_codec,
    out: *mut oc2_encoding,
) -> oc2_result {
    guard(|| {
        let c = try_ref(codec)?;
        let out = try_out(out)?;
        write(
            out,
            encoding_code(c.salvage.encoding.ok_or(oc2_result::OC2_RESULT_ABSENT)?),
        );
        Ok(())
    })
}

/// Whether the message the last decode failed on appeared to be a request,
/// response or notification (`OC2_MSG_TYPE_*`); `OC2_RESULT_ABSENT` if unknown.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_codec_salvage_msg_type(
    codec: *const oc2_codec,
    out: *mut oc2_msg_type,
) -> oc2_result {
    guard(|| {
        let c = try_ref(codec)?;
        let out = try_out(out)?;
        write(
            out,
            msg_type_code(c.salvage.msg_type.ok_or(oc2_result::OC2_RESULT_ABSENT)?),
        );
        Ok(())
    })
}

fn lend(field: Option<&NulStr>, out: *mut oc2_str) -> Outcome {
    let out = try_out(out)?;
    write(out, field.ok_or(oc2_result::OC2_RESULT_ABSENT)?.view());
    Ok(())
}

/// The MQTT v5 PUBLISH properties that matter to OpenC2: Payload Format
/// Indicator, Content Type and the user properties, in order.
///
/// Build one from a received PUBLISH to pass to `oc2_codec_decode`
/// (`oc2_properties_new`, then the setters; free with
/// `oc2_properties_free`), or read the one an `oc2_payload` lends out.
pub struct oc2_properties {
    pub(crate) props: PublishProperties,
    /// NUL-terminated copies lent out by the accessors.
    content_type: Option<NulStr>,
    users: Vec<(NulStr, NulStr)>,
}
box_handle!(oc2_properties);

impl oc2_properties {
    pub(crate) fn new(props: PublishProperties) -> Self {
        let content_type = props.content_type.as_deref().map(NulStr::new);
        let users = props
            .user_properties
            .iter()
            .map(|(k, v)| (NulStr::new(k), NulStr::new(v)))
            .collect();
        Self {
            props,
            content_type,
            users,
        }
    }
}

/// Creates an empty property set (no indicator, no content type, no user properties).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_properties_new(out: *mut *mut oc2_properties) -> oc2_result {
    guard(|| {
        let out = try_out(out)?;
        write(out, to_c(oc2_properties::new(PublishProperties::default())));
        Ok(())
    })
}

/// Frees a property set; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_properties_free(props: *mut oc2_properties) {
    guard_free(|| free_box(props));
}

/// Sets the Payload Format Indicator (0 bytes, 1 UTF-8).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_properties_set_payload_format(
    props: *mut oc2_properties,
    indicator: u8,
) -> oc2_result {
    guard(|| {
        try_mut(props)?.props.payload_format_indicator = Some(indicator);
        Ok(())
    })
}

/// Sets the Content Type (NUL-terminated UTF-8).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_properties_set_content_type(
    props: *mut oc2_properties,
    content_type: *const c_char,
) -> oc2_result {
    guard(|| {
        let p = try_mut(props)?;
        let ct = try_cstr(content_type)?;
        p.props.content_type = Some(ct.to_owned());
        p.content_type = Some(NulStr::new(ct));
        Ok(())
    })
}

/// Appends a user property (both NUL-terminated UTF-8), keeping order.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_properties_add_user(
    props: *mut oc2_properties,
    key: *const c_char,
    value: *const c_char,
) -> oc2_result {
    guard(|| {
        let p = try_mut(props)?;
        let (k, v) = (try_cstr(key)?, try_cstr(value)?);
        p.props.user_properties.push((k.to_owned(), v.to_owned()));
        p.users.push((NulStr::new(k), NulStr::new(v)));
        Ok(())
    })
}

/// The Payload Format Indicator; `OC2_RESULT_ABSENT` if not set.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_properties_payload_format(
    props: *const oc2_properties,
    out: *mut u8,
) -> oc2_result {
    guard(|| {
        let p = try_ref(props)?;
        let out = try_out(out)?;
        write(
            out,
            p.props
                .payload_format_indicator
                .ok_or(oc2_result::OC2_RESULT_ABSENT)?,
        );
        Ok(())
    })
}

/// The Content Type, borrowed from `props`; `OC2_RESULT_ABSENT` if not set.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_properties_content_type(
    props: *const oc2_properties,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(props)?.content_type.as_ref(), out))
}

/// The number of user properties.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_properties_user_count(
    props: *const oc2_properties,
    out: *mut usize,
) -> oc2_result {
    guard(|| {
        let p = try_ref(props)?;
        let out = try_out(out)?;
        write(out, p.users.len());
        Ok(())
    })
}

/// The user property at `index` (in order: `msgType` comes before
/// `encoding`), both borrowed from `props`; `OC2_RESULT_OUT_OF_RANGE` past the end.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_properties_user_get(
    props: *const oc2_properties,
    index: usize,
    key: *mut oc2_str,
    value: *mut oc2_str,
) -> oc2_result {
    guard(|| {
        let p = try_ref(props)?;
        let (key, value) = (try_out(key)?, try_out(value)?);
        let (k, v) = p
            .users
            .get(index)
            .ok_or(oc2_result::OC2_RESULT_OUT_OF_RANGE)?;
        write(key, k.view());
        write(value, v.view());
        Ok(())
    })
}

/// An encoded message: the payload bytes and the PUBLISH properties to send
/// with them. Created by `oc2_codec_encode`, freed by `oc2_payload_free`.
pub struct oc2_payload {
    bytes: Vec<u8>,
    props: oc2_properties,
}
box_handle!(oc2_payload);

/// Frees a payload; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_payload_free(payload: *mut oc2_payload) {
    guard_free(|| free_box(payload));
}

/// The payload bytes, borrowed from `payload` (JSON payloads are not NUL-terminated).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_payload_bytes(
    payload: *const oc2_payload,
    out: *mut oc2_bytes,
) -> oc2_result {
    guard(|| {
        let p = try_ref(payload)?;
        let out = try_out(out)?;
        write(
            out,
            oc2_bytes {
                data: p.bytes.as_ptr(),
                len: p.bytes.len(),
            },
        );
        Ok(())
    })
}

/// The PUBLISH properties to send with the payload, borrowed from `payload`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_payload_properties(
    payload: *const oc2_payload,
    out: *mut *const oc2_properties,
) -> oc2_result {
    guard(|| {
        let p = try_ref(payload)?;
        let out = try_out(out)?;
        write(out, std::ptr::from_ref(&p.props));
        Ok(())
    })
}
