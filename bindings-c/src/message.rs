//! `oc2_message`: a decoded or built OpenC2 message and its accessors.

use std::ffi::c_char;
use std::sync::OnceLock;

use oc2::{Dialect, Encoding, Message, MsgType};
use serde_json::Value;

use crate::error::oc2_result;
use crate::ffi::{
    NulStr, Outcome, box_handle, free_box, guard, guard_free, oc2_str, oc2_strings, try_cstr,
    try_cstr_array, try_mut, try_out, try_ref, write,
};

/// A message type: one of the `OC2_MSG_TYPE_*` constants.
pub type oc2_msg_type = u32;
/// A request (`msgType` `req`): it carries a command.
pub const OC2_MSG_TYPE_REQUEST: oc2_msg_type = 1;
/// A response (`msgType` `rsp`).
pub const OC2_MSG_TYPE_RESPONSE: oc2_msg_type = 2;
/// A notification (`msgType` `ntf`).
pub const OC2_MSG_TYPE_NOTIFICATION: oc2_msg_type = 3;

/// A payload encoding: one of the `OC2_ENCODING_*` constants.
pub type oc2_encoding = u32;
/// JSON (UTF-8 text).
pub const OC2_ENCODING_JSON: oc2_encoding = 1;
/// CBOR (RFC 8949).
pub const OC2_ENCODING_CBOR: oc2_encoding = 2;

/// A wire dialect: one of the `OC2_DIALECT_*` constants.
pub type oc2_dialect = u32;
/// The specification's `{"headers": ..., "body": {"openc2": ...}}`.
pub const OC2_DIALECT_SPEC: oc2_dialect = 1;
/// otupy's flat `{"content": ..., "request_id": ..., "from": ...}`.
pub const OC2_DIALECT_OTUPY: oc2_dialect = 2;
/// The command or response object alone, without headers.
pub const OC2_DIALECT_BARE: oc2_dialect = 3;

pub(crate) fn msg_type_code(t: MsgType) -> oc2_msg_type {
    match t {
        MsgType::Request => OC2_MSG_TYPE_REQUEST,
        MsgType::Response => OC2_MSG_TYPE_RESPONSE,
        MsgType::Notification => OC2_MSG_TYPE_NOTIFICATION,
    }
}

pub(crate) fn encoding_code(e: Encoding) -> oc2_encoding {
    match e {
        Encoding::Json => OC2_ENCODING_JSON,
        Encoding::Cbor => OC2_ENCODING_CBOR,
    }
}

pub(crate) fn encoding_from(code: oc2_encoding) -> Result<Encoding, oc2_result> {
    match code {
        OC2_ENCODING_JSON => Ok(Encoding::Json),
        OC2_ENCODING_CBOR => Ok(Encoding::Cbor),
        _ => Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT),
    }
}

pub(crate) fn dialect_code(d: Dialect) -> oc2_dialect {
    match d {
        Dialect::Spec => OC2_DIALECT_SPEC,
        Dialect::Otupy => OC2_DIALECT_OTUPY,
        Dialect::Bare => OC2_DIALECT_BARE,
    }
}

pub(crate) fn dialect_from(code: oc2_dialect) -> Result<Dialect, oc2_result> {
    match code {
        OC2_DIALECT_SPEC => Ok(Dialect::Spec),
        OC2_DIALECT_OTUPY => Ok(Dialect::Otupy),
        OC2_DIALECT_BARE => Ok(Dialect::Bare),
        _ => Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT),
    }
}

/// An OpenC2 message (request, response or notification), owned by the
/// caller until `oc2_message_free`.
///
/// Strings read from it are borrowed: they stay valid until the message is
/// changed (`oc2_message_set_*`) or freed. Reading from one message on
/// several threads at once is safe; changing it while another thread reads
/// it is not.
pub struct oc2_message {
    pub(crate) message: Held,
    pub(crate) encoding: Encoding,
    pub(crate) dialect: Dialect,
    /// Where and when it arrived, for messages received by a client.
    pub(crate) topic: Option<NulStr>,
    pub(crate) latency: Option<std::time::Duration>,
    fields: OnceLock<Fields>,
    json: OnceLock<NulStr>,
}
box_handle!(oc2_message);

/// The message of an [`oc2_message`]: its own, or one lent to a handler
/// callback for the length of the call (`Handler::call`), which then needs
/// no copy of the command. Reads go through `Deref`; a change (a setter on
/// a lent message, which the callback may make through a cast) copies it
/// first.
// Boxing the owned message would cost every message an allocation more,
// the thing a lent one is there to save; an `oc2_message` is boxed anyway.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Held {
    Owned(Message),
    /// Valid while the `oc2_message` lives: only [`oc2_message::lent`]
    /// makes one, for a message it outlives.
    Lent(std::ptr::NonNull<Message>),
}

// SAFETY: a `Lent` is a shared borrow of a `Message` (which is `Sync`), so
// it may be sent and shared as a `&Message` may.
unsafe impl Send for Held {}
// SAFETY: as for `Send`.
unsafe impl Sync for Held {}

impl std::ops::Deref for Held {
    type Target = Message;

    fn deref(&self) -> &Message {
        match self {
            Self::Owned(m) => m,
            // SAFETY: `oc2_message::lent`'s contract: the message outlives this.
            Self::Lent(m) => unsafe { m.as_ref() },
        }
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut Message {
        if let Self::Lent(_) = self {
            *self = Self::Owned((**self).clone());
        }
        match self {
            Self::Owned(m) => m,
            Self::Lent(_) => unreachable!("made owned above"),
        }
    }
}

/// The NUL-terminated copies that accessors lend out, made on first use.
struct Fields {
    request_id: Option<NulStr>,
    from: Option<NulStr>,
    to: Option<oc2_strings>,
    action: Option<NulStr>,
    target_name: Option<NulStr>,
    target_json: Option<NulStr>,
    profile: Option<NulStr>,
    status_text: Option<NulStr>,
    content_json: NulStr,
}

impl oc2_message {
    pub(crate) fn new(message: Message, encoding: Encoding, dialect: Dialect) -> Self {
        Self::holding(Held::Owned(message), encoding, dialect)
    }

    fn holding(message: Held, encoding: Encoding, dialect: Dialect) -> Self {
        Self {
            message,
            encoding,
            dialect,
            topic: None,
            latency: None,
            fields: OnceLock::new(),
            json: OnceLock::new(),
        }
    }

    /// A message received on `topic`, `latency` after its command was sent or seen.
    pub(crate) fn received(
        message: Message,
        encoding: Encoding,
        dialect: Dialect,
        topic: &str,
        latency: Option<std::time::Duration>,
    ) -> Self {
        Self {
            topic: Some(NulStr::new(topic)),
            latency,
            ..Self::new(message, encoding, dialect)
        }
    }

    /// A received message that borrows `message` instead of copying it,
    /// for a handler callback: the caller keeps it no longer than `message`
    /// (the borrow says so) and never hands it out as a box.
    pub(crate) fn lent<'a>(
        message: &'a Message,
        encoding: Encoding,
        dialect: Dialect,
        topic: &str,
    ) -> Lent<'a> {
        Lent {
            message: Self {
                topic: Some(NulStr::new(topic)),
                ..Self::holding(
                    Held::Lent(std::ptr::NonNull::from(message)),
                    encoding,
                    dialect,
                )
            },
            borrowed: std::marker::PhantomData,
        }
    }

    fn fields(&self) -> &Fields {
        self.fields.get_or_init(|| {
            let m = &self.message;
            let cmd = m.command();
            let content = oc2::codec::content_json(&m.body);
            let inner = match content {
                Value::Object(map) => map.into_iter().next().map_or(Value::Null, |(_, v)| v),
                other => other,
            };
            Fields {
                request_id: m.headers.request_id.as_deref().map(NulStr::new),
                from: m.headers.from.as_deref().map(NulStr::new),
                to: m.headers.to.as_ref().map(oc2_strings::from_iter),
                action: cmd.map(|c| NulStr::new(c.action.as_str())),
                target_name: cmd.map(|c| NulStr::new(&c.target.name)),
                target_json: cmd.map(|c| NulStr::new(&c.target.value.to_string())),
                profile: cmd.and_then(|c| c.profile()).map(NulStr::new),
                status_text: m
                    .response()
                    .and_then(|r| r.status_text.as_deref())
                    .map(NulStr::new),
                content_json: NulStr::new(&inner.to_string()),
            }
        })
    }

    fn changed(&mut self) {
        self.fields = OnceLock::new();
        self.json = OnceLock::new();
    }
}

/// An [`oc2_message`] borrowing its message for `'a` (see [`oc2_message::lent`]).
pub(crate) struct Lent<'a> {
    message: oc2_message,
    borrowed: std::marker::PhantomData<&'a Message>,
}

impl std::ops::Deref for Lent<'_> {
    type Target = oc2_message;

    fn deref(&self) -> &oc2_message {
        &self.message
    }
}

fn lend(field: Option<&NulStr>, out: *mut oc2_str) -> Outcome {
    let out = try_out(out)?;
    let s = field.ok_or(oc2_result::OC2_RESULT_ABSENT)?;
    write(out, s.view());
    Ok(())
}

/// Frees a message; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_free(message: *mut oc2_message) {
    guard_free(|| free_box(message));
}

/// The message type (`OC2_MSG_TYPE_*`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_msg_type(
    message: *const oc2_message,
    out: *mut oc2_msg_type,
) -> oc2_result {
    guard(|| {
        let m = try_ref(message)?;
        let out = try_out(out)?;
        write(out, msg_type_code(m.message.msg_type()));
        Ok(())
    })
}

/// The encoding the message arrived in (`OC2_ENCODING_*`); JSON for a message built from JSON text.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_encoding(
    message: *const oc2_message,
    out: *mut oc2_encoding,
) -> oc2_result {
    guard(|| {
        let m = try_ref(message)?;
        let out = try_out(out)?;
        write(out, encoding_code(m.encoding));
        Ok(())
    })
}

/// The dialect the message arrived in (`OC2_DIALECT_*`); replies should use the same.
/// A message built from JSON text is in the spec dialect.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_dialect(
    message: *const oc2_message,
    out: *mut oc2_dialect,
) -> oc2_result {
    guard(|| {
        let m = try_ref(message)?;
        let out = try_out(out)?;
        write(out, dialect_code(m.dialect));
        Ok(())
    })
}

/// The `request_id` header; `OC2_RESULT_ABSENT` if the message has none.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_request_id(
    message: *const oc2_message,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(message)?.fields().request_id.as_ref(), out))
}

/// The `from` header; `OC2_RESULT_ABSENT` if the message has none.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_from(message: *const oc2_message, out: *mut oc2_str) -> oc2_result {
    guard(|| lend(try_ref(message)?.fields().from.as_ref(), out))
}

/// The `created` header in milliseconds since the epoch; `OC2_RESULT_ABSENT` if none.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_created(message: *const oc2_message, out: *mut i64) -> oc2_result {
    guard(|| {
        let m = try_ref(message)?;
        let out = try_out(out)?;
        write(
            out,
            m.message
                .headers
                .created
                .ok_or(oc2_result::OC2_RESULT_ABSENT)?,
        );
        Ok(())
    })
}

/// The `to` header as a list borrowed from the message (a `to` sent as a
/// single string is a list of one); `OC2_RESULT_ABSENT` if there is none.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_to(
    message: *const oc2_message,
    out: *mut *const oc2_strings,
) -> oc2_result {
    guard(|| {
        let m = try_ref(message)?;
        let out = try_out(out)?;
        let to = m
            .fields()
            .to
            .as_ref()
            .ok_or(oc2_result::OC2_RESULT_ABSENT)?;
        write(out, std::ptr::from_ref(to));
        Ok(())
    })
}

/// The command's action (`"query"`, `"deny"`, ...); `OC2_RESULT_ABSENT` if not a request.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_action(message: *const oc2_message, out: *mut oc2_str) -> oc2_result {
    guard(|| lend(try_ref(message)?.fields().action.as_ref(), out))
}

/// The name of the command's target (`"features"`, `"ipv4_net"`, ...);
/// `OC2_RESULT_ABSENT` if not a request.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_target_name(
    message: *const oc2_message,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(message)?.fields().target_name.as_ref(), out))
}

/// The value of the command's target as compact JSON text (`["versions"]`,
/// `"10.0.0.0/8"`); `OC2_RESULT_ABSENT` if not a request.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_target_json(
    message: *const oc2_message,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(message)?.fields().target_json.as_ref(), out))
}

/// The actuator profile of the command (`"slpf"`); `OC2_RESULT_ABSENT` if
/// there is no actuator or it is not a request.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_profile(
    message: *const oc2_message,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(message)?.fields().profile.as_ref(), out))
}

/// The response's status (200, 400, ...); `OC2_RESULT_ABSENT` if not a response.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_status(message: *const oc2_message, out: *mut u16) -> oc2_result {
    guard(|| {
        let m = try_ref(message)?;
        let out = try_out(out)?;
        write(
            out,
            m.message
                .response()
                .ok_or(oc2_result::OC2_RESULT_ABSENT)?
                .status,
        );
        Ok(())
    })
}

/// The response's `status_text`; `OC2_RESULT_ABSENT` if none or not a response.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_status_text(
    message: *const oc2_message,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(message)?.fields().status_text.as_ref(), out))
}

/// The body content as compact JSON text: the command object for a
/// request (`{"action":"query","target":{...}}`), the response object
/// (`{"status":200,...}`) or the notification object.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_content_json(
    message: *const oc2_message,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(Some(&try_ref(message)?.fields().content_json), out))
}

/// The whole message as compact JSON text in the specification's shape
/// (`{"body":{"openc2":{...}},"headers":{...}}`), whatever dialect it
/// arrived in: the canonical form shared by every oc2mqtt language.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_json(message: *const oc2_message, out: *mut oc2_str) -> oc2_result {
    guard(|| {
        let m = try_ref(message)?;
        let json = m
            .json
            .get_or_init(|| NulStr::new(&m.message.to_json_value().to_string()));
        lend(Some(json), out)
    })
}

/// The topic the message arrived on; `OC2_RESULT_ABSENT` for a message
/// that was decoded or built rather than received by a producer, consumer or monitor.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_topic(message: *const oc2_message, out: *mut oc2_str) -> oc2_result {
    guard(|| lend(try_ref(message)?.topic.as_ref(), out))
}

/// For a response received by a producer or monitor: microseconds from
/// sending (or seeing) its command to receiving it; `OC2_RESULT_ABSENT` otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_latency_us(message: *const oc2_message, out: *mut u64) -> oc2_result {
    guard(|| {
        let m = try_ref(message)?;
        let out = try_out(out)?;
        let latency = m.latency.ok_or(oc2_result::OC2_RESULT_ABSENT)?;
        write(out, u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        Ok(())
    })
}

/// Sets the `from` header (NUL-terminated UTF-8). Strings borrowed from the
/// message before this call become invalid.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_set_from(
    message: *mut oc2_message,
    from: *const c_char,
) -> oc2_result {
    guard(|| {
        let m = try_mut(message)?;
        let from = try_cstr(from)?;
        m.message.headers.from = Some(from.to_owned());
        m.changed();
        Ok(())
    })
}

/// Sets the `to` header to `n` NUL-terminated UTF-8 ids (`ids` may be NULL
/// when `n` is 0, which removes the header). Strings borrowed from the
/// message before this call become invalid.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_message_set_to(
    message: *mut oc2_message,
    ids: *const *const c_char,
    n: usize,
) -> oc2_result {
    guard(|| {
        let m = try_mut(message)?;
        let ids = try_cstr_array(ids, n)?;
        m.message.headers.to = if ids.is_empty() {
            None
        } else {
            Some(ids.iter().map(|s| (*s).to_owned()).collect())
        };
        m.changed();
        Ok(())
    })
}
