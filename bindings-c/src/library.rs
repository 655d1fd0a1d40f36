//! The entry points about the library itself: result code texts and
//! versions.

use std::ffi::{CStr, c_char};

use crate::error::oc2_result;
use crate::ffi::{guard, oc2_str, write_text};

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
