//! `oc2_correlator`: matching responses to the commands that asked for them.

use std::ffi::{c_char, c_void};

use oc2::correlate::{CloseReason, Closed, Correlator, Expect, Outcome};

use crate::error::oc2_result;
use crate::ffi::{
    LastError, NulStr, box_handle, free_box, guard, guard_free, oc2_str, oc2_strings, to_c,
    try_cstr, try_mut, try_out, try_ref, write, write_text,
};
use crate::message::oc2_message;

/// What `oc2_correlator_on_response` found: one of the `OC2_OUTCOME_*` constants.
pub type oc2_outcome_kind = u32;
/// No open exchange has this response's request_id (or it has none).
pub const OC2_OUTCOME_UNSOLICITED: oc2_outcome_kind = 1;
/// The response belongs to an exchange that is still open.
pub const OC2_OUTCOME_OPEN: oc2_outcome_kind = 2;
/// The response completed its exchange, which is now closed.
pub const OC2_OUTCOME_COMPLETE: oc2_outcome_kind = 3;

/// Why an exchange closed: one of the `OC2_CLOSE_*` constants.
pub type oc2_close_reason = u32;
/// Every expected responder sent a final (non-102) response.
pub const OC2_CLOSE_COMPLETE: oc2_close_reason = 1;
/// The deadline passed.
pub const OC2_CLOSE_DEADLINE: oc2_close_reason = 2;
/// The caller closed it.
pub const OC2_CLOSE_CLOSED: oc2_close_reason = 3;

/// The result of `oc2_correlator_on_response`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct oc2_outcome {
    /// `OC2_OUTCOME_*`.
    pub kind: oc2_outcome_kind,
    /// The exchange's `userdata` (NULL when unsolicited). When `kind` is
    /// `OC2_OUTCOME_COMPLETE` the exchange is gone and this is the last time
    /// the library mentions it: release what it points to if you need to.
    pub userdata: *mut c_void,
    /// The response's status is final (not 102).
    pub is_final: bool,
    /// The sender was one of the expected responders (always true when
    /// the responders were not named).
    pub expected: bool,
}

/// An exchange that closed, as `oc2_correlator_expire` reports it; every
/// pointer in it is valid only during the callback.
#[repr(C)]
pub struct oc2_closed {
    /// The exchange's request_id.
    pub request_id: oc2_str,
    /// The `userdata` given when it was opened.
    pub userdata: *mut c_void,
    /// `OC2_CLOSE_*`.
    pub reason: oc2_close_reason,
    /// How many expected responders had not sent a final response.
    pub missing_count: usize,
    /// Their ids, when the responders were named (empty otherwise).
    pub missing: *const oc2_strings,
}

/// Called once per closed exchange, with the `userdata` given to the call
/// that closed it first.
pub type oc2_closed_callback =
    Option<extern "C" fn(userdata: *mut c_void, closed: *const oc2_closed)>;

/// Open exchanges keyed by request_id, each with a deadline (caller's clock,
/// milliseconds) and a `void *userdata` the library stores but never reads
/// or frees. Not thread-safe. Freeing it forgets open exchanges without
/// reporting them: call `oc2_correlator_expire(c, UINT64_MAX, ...)` first
/// to get their `userdata` back.
pub struct oc2_correlator {
    inner: Correlator<usize>,
    last_error: LastError,
}
box_handle!(oc2_correlator);

/// Creates an empty correlator.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_new(out: *mut *mut oc2_correlator) -> oc2_result {
    guard(|| {
        let out = try_out(out)?;
        write(
            out,
            to_c(oc2_correlator {
                inner: Correlator::new(),
                last_error: LastError::default(),
            }),
        );
        Ok(())
    })
}

/// Frees a correlator; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_free(correlator: *mut oc2_correlator) {
    guard_free(|| free_box(correlator));
}

fn open(
    c: &mut oc2_correlator,
    request_id: &str,
    expect: Expect,
    deadline_ms: u64,
    userdata: *mut c_void,
) -> Result<(), oc2_result> {
    c.inner
        .open(request_id, expect, deadline_ms, userdata as usize)
        .map_err(|e| c.last_error.fail(&e))
}

/// Opens the exchange `command` (a request) starts, as the library's
/// producers and monitors do: keyed by its request_id, expecting a final
/// response from each id in its `to` header (or an unknown number when it
/// has none), closing at `deadline_ms`; with `response_requested: ack` a
/// `102` completes a responder; with `none` nothing is expected and nothing
/// is opened (`OC2_RESULT_OK`; `*opened`, when not NULL, says which).
/// `OC2_RESULT_ABSENT` if the command has no request_id; `OC2_RESULT_CONFIG`
/// if an exchange with that id is already open.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_open_command(
    correlator: *mut oc2_correlator,
    command: *const oc2_message,
    deadline_ms: u64,
    userdata: *mut c_void,
    opened: *mut bool,
) -> oc2_result {
    guard(|| {
        let c = try_mut(correlator)?;
        c.last_error.clear();
        let m = try_ref(command)?;
        if m.message.headers.request_id.is_none() {
            return Err(oc2_result::OC2_RESULT_ABSENT);
        }
        let done = c
            .inner
            .open_command(&m.message, None, deadline_ms, userdata as usize)
            .map_err(|e| c.last_error.fail(&e))?;
        if let Some(out) = std::ptr::NonNull::new(opened) {
            write(out, done);
        }
        Ok(())
    })
}

/// Opens an exchange keyed by `request_id` that completes after final
/// responses from `expected_count` distinct senders; 0 means the number is
/// unknown (a broadcast), so only the deadline closes it.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_open(
    correlator: *mut oc2_correlator,
    request_id: *const c_char,
    expected_count: usize,
    deadline_ms: u64,
    userdata: *mut c_void,
) -> oc2_result {
    guard(|| {
        let c = try_mut(correlator)?;
        c.last_error.clear();
        let id = try_cstr(request_id)?;
        let expect = if expected_count == 0 {
            Expect::Unknown
        } else {
            Expect::Count(expected_count)
        };
        open(c, id, expect, deadline_ms, userdata)
    })
}

/// Matches a received response to its exchange; see `oc2_outcome`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_on_response(
    correlator: *mut oc2_correlator,
    response: *const oc2_message,
    out: *mut oc2_outcome,
) -> oc2_result {
    guard(|| {
        let c = try_mut(correlator)?;
        c.last_error.clear();
        let m = try_ref(response)?;
        let out = try_out(out)?;
        let outcome = match c.inner.on_response(&m.message) {
            Outcome::Unsolicited => oc2_outcome {
                kind: OC2_OUTCOME_UNSOLICITED,
                userdata: std::ptr::null_mut(),
                is_final: false,
                expected: false,
            },
            Outcome::Open {
                data,
                is_final,
                expected,
            } => oc2_outcome {
                kind: OC2_OUTCOME_OPEN,
                userdata: *data as *mut c_void,
                is_final,
                expected,
            },
            Outcome::Complete(closed) => oc2_outcome {
                kind: OC2_OUTCOME_COMPLETE,
                userdata: closed.data as *mut c_void,
                is_final: true,
                expected: true,
            },
        };
        write(out, outcome);
        Ok(())
    })
}

fn report(
    closed: Closed<usize>,
    callback: extern "C" fn(*mut c_void, *const oc2_closed),
    userdata: *mut c_void,
) {
    let id = NulStr::new(&closed.request_id);
    let missing = oc2_strings::from_iter(&closed.missing);
    let view = oc2_closed {
        request_id: id.view(),
        userdata: closed.data as *mut c_void,
        reason: match closed.reason {
            CloseReason::Complete => OC2_CLOSE_COMPLETE,
            CloseReason::Deadline => OC2_CLOSE_DEADLINE,
            CloseReason::Closed => OC2_CLOSE_CLOSED,
        },
        missing_count: closed.missing_count,
        missing: &raw const missing,
    };
    callback(userdata, &raw const view);
}

/// Closes every exchange whose deadline is at or before `now_ms`, calling
/// `callback(userdata, closed)` for each, earliest deadline first.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_expire(
    correlator: *mut oc2_correlator,
    now_ms: u64,
    callback: oc2_closed_callback,
    userdata: *mut c_void,
) -> oc2_result {
    guard(|| {
        let c = try_mut(correlator)?;
        c.last_error.clear();
        let callback = callback.ok_or(oc2_result::OC2_RESULT_NULL_PARAMETER)?;
        for closed in c.inner.expire(now_ms) {
            report(closed, callback, userdata);
        }
        Ok(())
    })
}

/// Closes the exchange `request_id` now and writes its `userdata` to
/// `*userdata_out`; `OC2_RESULT_ABSENT` if no such exchange is open.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_close(
    correlator: *mut oc2_correlator,
    request_id: *const c_char,
    userdata_out: *mut *mut c_void,
) -> oc2_result {
    guard(|| {
        let c = try_mut(correlator)?;
        c.last_error.clear();
        let id = try_cstr(request_id)?;
        let out = try_out(userdata_out)?;
        let closed = c.inner.close(id).ok_or(oc2_result::OC2_RESULT_ABSENT)?;
        write(out, closed.data as *mut c_void);
        Ok(())
    })
}

/// The earliest deadline of the open exchanges; `OC2_RESULT_ABSENT` if none is open.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_next_deadline(
    correlator: *mut oc2_correlator,
    out: *mut u64,
) -> oc2_result {
    guard(|| {
        let c = try_mut(correlator)?;
        let out = try_out(out)?;
        write(
            out,
            c.inner
                .next_deadline()
                .ok_or(oc2_result::OC2_RESULT_ABSENT)?,
        );
        Ok(())
    })
}

/// The named responders of exchange `request_id` that have not sent a final
/// response yet (empty when they were not named); `*out` is owned by the
/// caller. `OC2_RESULT_ABSENT` if no such exchange is open.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_missing(
    correlator: *const oc2_correlator,
    request_id: *const c_char,
    out: *mut *mut oc2_strings,
) -> oc2_result {
    guard(|| {
        let c = try_ref(correlator)?;
        let id = try_cstr(request_id)?;
        let out = try_out(out)?;
        let missing = c.inner.missing(id).ok_or(oc2_result::OC2_RESULT_ABSENT)?;
        write(out, to_c(oc2_strings::from_iter(missing)));
        Ok(())
    })
}

/// The number of open exchanges.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_len(
    correlator: *const oc2_correlator,
    out: *mut usize,
) -> oc2_result {
    guard(|| {
        let c = try_ref(correlator)?;
        let out = try_out(out)?;
        write(out, c.inner.len());
        Ok(())
    })
}

/// The number of responses that matched no open exchange so far.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_unsolicited(
    correlator: *const oc2_correlator,
    out: *mut u64,
) -> oc2_result {
    guard(|| {
        let c = try_ref(correlator)?;
        let out = try_out(out)?;
        write(out, c.inner.unsolicited());
        Ok(())
    })
}

/// Copies the detail of the last failure on `correlator` into `buf`; the
/// empty string if the last call succeeded. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_correlator_last_error(
    correlator: *const oc2_correlator,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(try_ref(correlator)?.last_error.text(), buf, len, written))
}
