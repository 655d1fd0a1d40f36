//! Result codes and the one mapping from core errors to them.

use std::ffi::{CStr, c_char};

use oc2::{Error, MessageError, MessageErrorKind};

use crate::ffi::{guard, oc2_str, write_text};

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

    fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| *c as u32 == n)
    }

    fn text(self) -> &'static CStr {
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

/// The code of a message error kind.
pub(crate) fn message_code(kind: MessageErrorKind) -> oc2_result {
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
pub(crate) fn error_code(e: &Error) -> oc2_result {
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

/// Code of a message error (convenience for `map_err`).
pub(crate) fn message_error_code(e: &MessageError) -> oc2_result {
    message_code(e.kind)
}

/// Writes a short English text for `result` into `buf` (`len` bytes),
/// NUL-terminated, and its length (without the NUL) into `*written`.
///
/// An unknown number gets the text "unknown result code". When `len` is too
/// small (pass `buf` NULL and `len` 0 to ask), nothing is copied, `*written`
/// receives the size needed *including* the NUL, and the function returns
/// `OC2_RESULT_INSUFFICIENT_SIZE`. This is the one case where an output is
/// written on failure, and every `_last_error` and text function behaves the
/// same way.
///
/// ```c
/// char text[128];
/// size_t n;
/// oc2_result_text(rc, text, sizeof text, &n);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn oc2_result_text(
    result: u32,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| {
        let text = text_of(result).to_str().unwrap_or_default();
        write_text(text, buf, len, written)
    })
}

/// The text of a code, or "unknown result code".
fn text_of(result: u32) -> &'static CStr {
    oc2_result::from_u32(result).map_or(UNKNOWN_RESULT, oc2_result::text)
}

const UNKNOWN_RESULT: &CStr = c"unknown result code";

/// The short English text of `result` ("cannot connect to the broker"), as
/// a static NUL-terminated string: never NULL, never to be freed. An
/// unknown number gives "unknown result code". The same text as
/// `oc2_result_text`, for callers who need no buffer.
///
/// ```c
/// fprintf(stderr, "oc2mqtt: %s\n", oc2_result_str(rc));
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn oc2_result_str(result: u32) -> *const c_char {
    // Nothing here can panic: no boundary needed (and none could return a code).
    text_of(result).as_ptr()
}

/// The library version ("0.1.0"), static, NUL-terminated.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_version() -> oc2_str {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    oc2_str {
        data: VERSION.as_ptr().cast(),
        len: VERSION.len() - 1,
    }
}

/// The major version of this header (`OC2MQTT_VERSION_NUMBER` is
/// `major * 1000000 + minor * 1000 + patch`, as libmosquitto's).
pub const OC2MQTT_VERSION_MAJOR: u32 = 0;
/// The minor version of this header.
pub const OC2MQTT_VERSION_MINOR: u32 = 1;
/// The patch version of this header.
pub const OC2MQTT_VERSION_PATCH: u32 = 0;
/// This header's version as one number, for `#if OC2MQTT_VERSION_NUMBER >=
/// 1002000`; compare with `oc2_version_number()` for the library loaded.
pub const OC2MQTT_VERSION_NUMBER: u32 =
    OC2MQTT_VERSION_MAJOR * 1_000_000 + OC2MQTT_VERSION_MINOR * 1000 + OC2MQTT_VERSION_PATCH;

/// `u32` of a decimal string, at compile time.
const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut n = 0u32;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "a version part is a number");
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

// The header's version constants are what Cargo builds: a version bump
// without them does not compile (cbindgen reads literals only).
const _: () = assert!(
    OC2MQTT_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR"))
        && OC2MQTT_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR"))
        && OC2MQTT_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")),
    "OC2MQTT_VERSION_* in bindings-c/src/error.rs must match the workspace version"
);

/// The version of the library loaded, as `OC2MQTT_VERSION_NUMBER`: a
/// program built against one header can check the library it runs with.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_version_number() -> u32 {
    OC2MQTT_VERSION_NUMBER
}
