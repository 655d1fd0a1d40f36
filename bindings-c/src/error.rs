//! Result codes and the one mapping from core errors to them. A leaf:
//! it uses nothing of this crate, and every other file uses it (the entry
//! points about codes, `oc2_result_text` and `oc2_result_str`, are in
//! `library.rs`).

use std::ffi::CStr;

use oc2::{Error, MessageError, MessageErrorKind};

/// What every function returns. The numbers are stable and never reused:
/// 0 is success; 1-99 are about the call itself (arguments, buffers);
/// 100-199 say what is wrong with a message (one per core message error
/// kind); 200-299 are the other errors of the library (topics,
/// configuration, network, timeouts).
///
/// `oc2_result_text` turns a code into a short English text; the handle's
/// `_last_error` function gives the detail of its last failed call.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum oc2_result {
    /// Success.
    OC2_RESULT_OK = 0,
    /// A required pointer argument was NULL.
    OC2_RESULT_NULL_PARAMETER = 1,
    /// The caller's buffer is too small; the needed size was written.
    OC2_RESULT_INSUFFICIENT_SIZE = 2,
    /// A bug in the library was caught at the boundary; the call did nothing useful.
    OC2_RESULT_PANIC = 3,
    /// A string argument is not valid UTF-8.
    OC2_RESULT_INVALID_UTF8 = 4,
    /// An argument is out of its documented range (an unknown enum value, a huge length).
    OC2_RESULT_INVALID_ARGUMENT = 5,
    /// The message has no such field (or is not of the kind that has it).
    OC2_RESULT_ABSENT = 6,
    /// An index is not below the length of the list.
    OC2_RESULT_OUT_OF_RANGE = 7,
    /// Nothing more will come: the exchange ended, or the consumer or monitor was closed.
    OC2_RESULT_DONE = 8,

    /// The payload is larger than the limit; it was not parsed.
    OC2_RESULT_MESSAGE_TOO_LARGE = 100,
    /// The bytes are not well-formed JSON or CBOR.
    OC2_RESULT_MESSAGE_SYNTAX = 101,
    /// A JSON payload is not valid UTF-8.
    OC2_RESULT_MESSAGE_UTF8 = 102,
    /// The MQTT properties announce a content type or encoding not spoken here.
    OC2_RESULT_MESSAGE_CONTENT_TYPE = 103,
    /// The document is none of the known message shapes (spec, otupy, bare).
    OC2_RESULT_MESSAGE_DIALECT = 104,
    /// A field has the wrong JSON type.
    OC2_RESULT_MESSAGE_TYPE = 105,
    /// A required field is absent.
    OC2_RESULT_MESSAGE_MISSING = 106,
    /// A field has a value the specification forbids.
    OC2_RESULT_MESSAGE_VALUE = 107,
    /// Reserved for a message error kind newer than this header (a later
    /// library behind an older header); this version never returns it.
    OC2_RESULT_MESSAGE_OTHER = 199,

    /// An id or topic cannot be used as an MQTT topic (level).
    OC2_RESULT_TOPIC = 200,
    /// The configuration is inconsistent or out of range.
    OC2_RESULT_CONFIG = 201,
    /// The broker could not be reached or the connection was lost.
    OC2_RESULT_CONNECT = 202,
    /// The broker refused the credentials or the authorisation.
    OC2_RESULT_AUTH = 203,
    /// The TLS handshake failed.
    OC2_RESULT_TLS = 204,
    /// A wait ran out of time.
    OC2_RESULT_TIMEOUT = 205,
    /// The broker did not accept a publish or subscribe.
    OC2_RESULT_PUBLISH = 206,
    /// The object was closed or its connection shut down.
    OC2_RESULT_CLOSED = 207,
    /// A handler (callback) failed.
    OC2_RESULT_HANDLER = 208,
    /// A local I/O operation failed (reading a file named in the configuration).
    OC2_RESULT_IO = 209,
    /// Reserved for an error kind newer than this header; this version never returns it.
    OC2_RESULT_ERROR_OTHER = 299,
}

impl oc2_result {
    /// Every code, for `oc2_result_text` on a raw number.
    const ALL: [Self; 29] = [
        Self::OC2_RESULT_OK,
        Self::OC2_RESULT_NULL_PARAMETER,
        Self::OC2_RESULT_INSUFFICIENT_SIZE,
        Self::OC2_RESULT_PANIC,
        Self::OC2_RESULT_INVALID_UTF8,
        Self::OC2_RESULT_INVALID_ARGUMENT,
        Self::OC2_RESULT_ABSENT,
        Self::OC2_RESULT_OUT_OF_RANGE,
        Self::OC2_RESULT_DONE,
        Self::OC2_RESULT_MESSAGE_TOO_LARGE,
        Self::OC2_RESULT_MESSAGE_SYNTAX,
        Self::OC2_RESULT_MESSAGE_UTF8,
        Self::OC2_RESULT_MESSAGE_CONTENT_TYPE,
        Self::OC2_RESULT_MESSAGE_DIALECT,
        Self::OC2_RESULT_MESSAGE_TYPE,
        Self::OC2_RESULT_MESSAGE_MISSING,
        Self::OC2_RESULT_MESSAGE_VALUE,
        Self::OC2_RESULT_MESSAGE_OTHER,
        Self::OC2_RESULT_TOPIC,
        Self::OC2_RESULT_CONFIG,
        Self::OC2_RESULT_CONNECT,
        Self::OC2_RESULT_AUTH,
        Self::OC2_RESULT_TLS,
        Self::OC2_RESULT_TIMEOUT,
        Self::OC2_RESULT_PUBLISH,
        Self::OC2_RESULT_CLOSED,
        Self::OC2_RESULT_HANDLER,
        Self::OC2_RESULT_IO,
        Self::OC2_RESULT_ERROR_OTHER,
    ];

    pub(crate) fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| *c as u32 == n)
    }

    pub(crate) fn text(self) -> &'static CStr {
        match self {
            Self::OC2_RESULT_OK => c"success",
            Self::OC2_RESULT_NULL_PARAMETER => c"a required argument was NULL",
            Self::OC2_RESULT_INSUFFICIENT_SIZE => c"the buffer is too small",
            Self::OC2_RESULT_PANIC => c"internal error (a panic was caught)",
            Self::OC2_RESULT_INVALID_UTF8 => c"a string argument is not valid UTF-8",
            Self::OC2_RESULT_INVALID_ARGUMENT => c"an argument is out of range",
            Self::OC2_RESULT_ABSENT => c"no such field in this message",
            Self::OC2_RESULT_OUT_OF_RANGE => c"index out of range",
            Self::OC2_RESULT_DONE => c"done: nothing more will come",
            Self::OC2_RESULT_MESSAGE_TOO_LARGE => c"message: payload too large",
            Self::OC2_RESULT_MESSAGE_SYNTAX => c"message: malformed JSON or CBOR",
            Self::OC2_RESULT_MESSAGE_UTF8 => c"message: payload is not valid UTF-8",
            Self::OC2_RESULT_MESSAGE_CONTENT_TYPE => {
                c"message: unsupported content type or encoding"
            }
            Self::OC2_RESULT_MESSAGE_DIALECT => c"message: unrecognised message shape",
            Self::OC2_RESULT_MESSAGE_TYPE => c"message: a field has the wrong type",
            Self::OC2_RESULT_MESSAGE_MISSING => c"message: a required field is absent",
            Self::OC2_RESULT_MESSAGE_VALUE => c"message: a field has an invalid value",
            Self::OC2_RESULT_MESSAGE_OTHER => c"message: invalid",
            Self::OC2_RESULT_TOPIC => c"invalid topic or id",
            Self::OC2_RESULT_CONFIG => c"invalid configuration",
            Self::OC2_RESULT_CONNECT => c"cannot connect to the broker",
            Self::OC2_RESULT_AUTH => c"the broker refused the credentials",
            Self::OC2_RESULT_TLS => c"TLS handshake failed",
            Self::OC2_RESULT_TIMEOUT => c"timed out",
            Self::OC2_RESULT_PUBLISH => c"the broker refused a publish or subscribe",
            Self::OC2_RESULT_CLOSED => c"closed",
            Self::OC2_RESULT_HANDLER => c"the handler failed",
            Self::OC2_RESULT_IO => c"I/O error",
            Self::OC2_RESULT_ERROR_OTHER => c"error",
        }
    }
}

/// A failure handed back to C: its code, from the one mapping below, and
/// (through `Display`) the text a handle's `_last_error` gives.
pub(crate) trait Failure: std::fmt::Display {
    fn code(&self) -> oc2_result;
}

impl Failure for Error {
    fn code(&self) -> oc2_result {
        error_code(self)
    }
}

impl Failure for MessageError {
    fn code(&self) -> oc2_result {
        message_code(self.kind)
    }
}

/// JSON text from C that is not a JSON document.
pub(crate) enum JsonTextError {
    /// Not UTF-8: where the valid text ends.
    Utf8(usize),
    /// Not well-formed JSON.
    Syntax(MessageError),
}

impl std::fmt::Display for JsonTextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Utf8(at) => write!(f, "JSON text is not valid UTF-8 (at byte {at})"),
            Self::Syntax(e) => e.fmt(f),
        }
    }
}

impl Failure for JsonTextError {
    fn code(&self) -> oc2_result {
        match self {
            Self::Utf8(_) => oc2_result::OC2_RESULT_INVALID_UTF8,
            Self::Syntax(e) => e.code(),
        }
    }
}

/// The code of a message error kind.
fn message_code(kind: MessageErrorKind) -> oc2_result {
    match kind {
        MessageErrorKind::TooLarge => oc2_result::OC2_RESULT_MESSAGE_TOO_LARGE,
        MessageErrorKind::Syntax => oc2_result::OC2_RESULT_MESSAGE_SYNTAX,
        MessageErrorKind::Utf8 => oc2_result::OC2_RESULT_MESSAGE_UTF8,
        MessageErrorKind::ContentType => oc2_result::OC2_RESULT_MESSAGE_CONTENT_TYPE,
        MessageErrorKind::Dialect => oc2_result::OC2_RESULT_MESSAGE_DIALECT,
        MessageErrorKind::Type => oc2_result::OC2_RESULT_MESSAGE_TYPE,
        MessageErrorKind::Missing => oc2_result::OC2_RESULT_MESSAGE_MISSING,
        MessageErrorKind::Value => oc2_result::OC2_RESULT_MESSAGE_VALUE,
    }
}

/// The code of a core error: the one mapping of this binding.
fn error_code(e: &Error) -> oc2_result {
    match e {
        Error::Message(m) => message_code(m.kind),
        Error::Topic(_) => oc2_result::OC2_RESULT_TOPIC,
        Error::Config(_) => oc2_result::OC2_RESULT_CONFIG,
        Error::Connect(_) => oc2_result::OC2_RESULT_CONNECT,
        Error::Auth(_) => oc2_result::OC2_RESULT_AUTH,
        Error::Tls(_) => oc2_result::OC2_RESULT_TLS,
        Error::Timeout(_) => oc2_result::OC2_RESULT_TIMEOUT,
        Error::Publish(_) => oc2_result::OC2_RESULT_PUBLISH,
        Error::Closed(_) => oc2_result::OC2_RESULT_CLOSED,
        Error::Handler(_) => oc2_result::OC2_RESULT_HANDLER,
        Error::Io(_) => oc2_result::OC2_RESULT_IO,
    }
}
