//! The plumbing every entry point shares: the one panic boundary, the
//! null checks and every read of a caller's pointer, the handles C owns,
//! borrowed string views and caller-buffer text output. Every `unsafe`
//! block on a caller's pointer is here.
//!
//! Learnt from rustls-ffi's `ffi_panic_boundary!`, `try_ref_from_ptr!` and
//! `box_castable!`, shaped for a library whose every entry point returns a
//! result code: the body is a closure returning `Result<(), oc2_result>`, so
//! a null check is `try_ref(p)?` (no per-return-type default is needed),
//! and [`box_handle!`] marks the types handed out as boxes.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use oc2::{MessageError, MessageErrorKind};

use crate::error::{Failure, JsonTextError, oc2_result};

/// What an entry point's body returns: `Err` carries the code to hand back.
pub(crate) type Outcome = Result<(), oc2_result>;

/// The one panic boundary: runs `body`, and hands back `on_panic` if it
/// panics, never an unwind into C.
fn boundary<R>(on_panic: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// Runs an entry point's body inside the panic boundary: `Ok` is
/// `OC2_RESULT_OK`, `Err` its code, a panic `OC2_RESULT_PANIC`.
pub(crate) fn guard(body: impl FnOnce() -> Outcome) -> oc2_result {
    boundary(oc2_result::OC2_RESULT_PANIC, || match body() {
        Ok(()) => oc2_result::OC2_RESULT_OK,
        Err(code) => code,
    })
}

/// Runs a `_free` body inside the panic boundary; a panic is swallowed
/// because `_free` returns nothing.
pub(crate) fn guard_free(body: impl FnOnce()) {
    boundary((), body);
}

/// A borrowed, read-only string: `len` bytes of UTF-8 at `data`.
///
/// Every `oc2_str` this library hands out is also NUL-terminated
/// (`data[len] == '\0'`), so it can be printed with `%s` unless the text
/// itself contains a NUL; use `%.*s` with `(int)len` to be exact. It is
/// borrowed from the object that returned it; the function's documentation
/// says for how long it stays valid.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct oc2_str {
    /// The first byte; never NULL in a string this library returns.
    pub data: *const c_char,
    /// Length in bytes, not counting the terminating NUL.
    pub len: usize,
}

/// A borrowed, read-only byte string: `len` bytes at `data`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct oc2_bytes {
    /// The first byte; never NULL in bytes this library returns.
    pub data: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// An owned string kept NUL-terminated, so views of it can be handed to C.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NulStr(Box<[u8]>);

impl NulStr {
    pub(crate) fn new(s: &str) -> Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        Self(v.into_boxed_slice())
    }

    pub(crate) fn view(&self) -> oc2_str {
        oc2_str {
            data: self.0.as_ptr().cast(),
            len: self.0.len() - 1,
        }
    }
}

/// An owned or borrowed list of strings (topics, ids).
///
/// Read it with `oc2_strings_len` and `oc2_strings_get`. Lists returned
/// through a `oc2_strings **` are owned by the caller (free them with
/// `oc2_strings_free`); lists returned through a `const oc2_strings **` are
/// borrowed from the object that returned them.
pub struct oc2_strings {
    pub(crate) items: Vec<NulStr>,
}
box_handle!(oc2_strings);

impl oc2_strings {
    pub(crate) fn from_iter<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        Self {
            items: items.into_iter().map(|s| NulStr::new(s.as_ref())).collect(),
        }
    }
}

/// Number of strings in `list`, written to `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_strings_len(list: *const oc2_strings, out: *mut usize) -> oc2_result {
    guard(|| {
        let list = try_ref(list)?;
        let out = try_out(out)?;
        write(out, list.items.len());
        Ok(())
    })
}

/// The string at `index` in `list`, written to `*out`; borrowed from `list`.
///
/// Returns `OC2_RESULT_OUT_OF_RANGE` when `index` is not below the length.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_strings_get(
    list: *const oc2_strings,
    index: usize,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| {
        let list = try_ref(list)?;
        let out = try_out(out)?;
        let item = list
            .items
            .get(index)
            .ok_or(oc2_result::OC2_RESULT_OUT_OF_RANGE)?;
        write(out, item.view());
        Ok(())
    })
}

/// Frees a list this library returned as owned; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_strings_free(list: *mut oc2_strings) {
    guard_free(|| free_box(list));
}

/// `&T` from a caller's pointer, or `OC2_RESULT_NULL_PARAMETER`.
pub(crate) fn try_ref<'a, T>(p: *const T) -> Result<&'a T, oc2_result> {
    // SAFETY: the caller passes NULL or a live object of this type (header contract).
    unsafe { p.as_ref() }.ok_or(oc2_result::OC2_RESULT_NULL_PARAMETER)
}

/// `&T` from a caller's pointer that may be NULL (`None`).
pub(crate) fn try_opt_ref<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: the caller passes NULL or a live object of this type (header contract).
    unsafe { p.as_ref() }
}

/// `&mut T` from a caller's pointer, or `OC2_RESULT_NULL_PARAMETER`.
pub(crate) fn try_mut<'a, T>(p: *mut T) -> Result<&'a mut T, oc2_result> {
    // SAFETY: the caller passes NULL or a live object not used elsewhere during the call.
    unsafe { p.as_mut() }.ok_or(oc2_result::OC2_RESULT_NULL_PARAMETER)
}

/// An output pointer, checked before any work so outputs are written only on success.
pub(crate) fn try_out<T>(p: *mut T) -> Result<NonNull<T>, oc2_result> {
    NonNull::new(p).ok_or(oc2_result::OC2_RESULT_NULL_PARAMETER)
}

/// Writes a checked output.
pub(crate) fn write<T>(out: NonNull<T>, value: T) {
    // SAFETY: `out` came from `try_out` on a caller pointer to writable storage for a T.
    unsafe { out.as_ptr().write(value) }
}

/// A type C holds as an owned pointer to a `Box`: made by [`to_c`], freed
/// by [`free_box`]; nothing else is, so no pointer of another type (a
/// borrowed view, a plain struct) can be freed as one by mistake.
pub(crate) trait BoxHandle {}

/// Declares a C handle type as boxed (see [`BoxHandle`]), beside its definition.
macro_rules! box_handle {
    ($($t:ty),+ $(,)?) => {
        $(impl $crate::ffi::BoxHandle for $t {})+
    };
}
pub(crate) use box_handle;

/// Hands a new object to C.
pub(crate) fn to_c<T: BoxHandle>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back and drops an object handed out by `to_c`; NULL is ignored.
pub(crate) fn free_box<T: BoxHandle>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: `p` came from `to_c` (header contract: free only what we returned, once).
        drop(unsafe { Box::from_raw(p) });
    }
}

/// `len` bytes at `data`; NULL is allowed when `len` is 0.
pub(crate) fn try_slice<'a>(data: *const u8, len: usize) -> Result<&'a [u8], oc2_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(oc2_result::OC2_RESULT_NULL_PARAMETER);
    }
    if len > isize::MAX as usize {
        return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT);
    }
    // SAFETY: the caller passes `len` readable bytes at `data` (header contract).
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// A NUL-terminated UTF-8 argument.
pub(crate) fn try_cstr<'a>(p: *const c_char) -> Result<&'a str, oc2_result> {
    if p.is_null() {
        return Err(oc2_result::OC2_RESULT_NULL_PARAMETER);
    }
    // SAFETY: the caller passes a NUL-terminated string (header contract).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| oc2_result::OC2_RESULT_INVALID_UTF8)
}

/// A NUL-terminated UTF-8 argument that may be NULL.
pub(crate) fn try_opt_cstr<'a>(p: *const c_char) -> Result<Option<&'a str>, oc2_result> {
    if p.is_null() {
        Ok(None)
    } else {
        try_cstr(p).map(Some)
    }
}

/// An array of `n` NUL-terminated UTF-8 strings; NULL is allowed when `n` is 0.
pub(crate) fn try_cstr_array<'a>(
    p: *const *const c_char,
    n: usize,
) -> Result<Vec<&'a str>, oc2_result> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(oc2_result::OC2_RESULT_NULL_PARAMETER);
    }
    if n > isize::MAX as usize / std::mem::size_of::<*const c_char>() {
        return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT);
    }
    // SAFETY: the caller passes `n` readable pointers at `p` (header contract).
    let ptrs = unsafe { std::slice::from_raw_parts(p, n) };
    ptrs.iter().map(|&s| try_cstr(s)).collect()
}

/// `bytes` of JSON text from C as a JSON document.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, JsonTextError> {
    let text = std::str::from_utf8(bytes).map_err(|e| JsonTextError::Utf8(e.valid_up_to()))?;
    serde_json::from_str(text).map_err(|e| {
        JsonTextError::Syntax(MessageError::new(
            MessageErrorKind::Syntax,
            "",
            format!("malformed JSON: {e}"),
        ))
    })
}

/// Copies `text` and a NUL into the caller's buffer.
///
/// On success `*written` is the text length (without the NUL). When the
/// buffer is too small (or NULL with `len` 0, to ask for the size), nothing
/// is copied, `*written` is the size needed including the NUL, and the code
/// is `OC2_RESULT_INSUFFICIENT_SIZE`.
pub(crate) fn write_text(text: &str, buf: *mut c_char, len: usize, written: *mut usize) -> Outcome {
    let written = try_out(written)?;
    let needed = text.len() + 1;
    if len < needed {
        write(written, needed);
        return Err(oc2_result::OC2_RESULT_INSUFFICIENT_SIZE);
    }
    if buf.is_null() {
        return Err(oc2_result::OC2_RESULT_NULL_PARAMETER);
    }
    // SAFETY: the caller passes `len` writable bytes at `buf`, and `needed <= len`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        buf.add(text.len()).write(0);
    }
    write(written, text.len());
    Ok(())
}

/// The last error of a handle, kept as text for `oc2_<type>_last_error`.
#[derive(Default, Debug)]
pub(crate) struct LastError(Option<String>);

impl LastError {
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }

    /// Records `e`'s text and returns its code.
    pub(crate) fn fail(&mut self, e: &impl Failure) -> oc2_result {
        self.set(e.to_string());
        e.code()
    }

    pub(crate) fn set(&mut self, text: impl Into<String>) {
        self.0 = Some(text.into());
    }

    pub(crate) fn text(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}
