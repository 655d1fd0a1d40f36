//! `oc2_monitor` and `oc2_monitor_event`: watch OpenC2 traffic.

use std::ffi::{c_char, c_void};

use oc2::client::{Monitor, MonitorEvent};
use oc2::monitor::Observed;

use crate::client::{block, block_for, oc2_stats};
use crate::config::oc2_config;
use crate::error::oc2_result;
use crate::events::{ConnectionCallbacks, oc2_connect_callback, oc2_disconnect_callback};
use crate::ffi::{
    NulStr, box_handle, free_box, guard, guard_free, oc2_bytes, oc2_str, oc2_strings, to_c,
    try_opt_cstr, try_out, try_ref, write, write_text,
};
use crate::message::oc2_message;

/// What a monitor event is: one of the `OC2_EVENT_*` constants.
pub type oc2_event_kind = u32;
/// A command was seen.
pub const OC2_EVENT_REQUEST: oc2_event_kind = 1;
/// A response was seen (paired with its command when that was seen).
pub const OC2_EVENT_RESPONSE: oc2_event_kind = 2;
/// A notification was seen.
pub const OC2_EVENT_NOTIFICATION: oc2_event_kind = 3;
/// A payload that could not be decoded was seen.
pub const OC2_EVENT_UNDECODABLE: oc2_event_kind = 4;
/// A command's pairing window passed with addressed responders missing.
pub const OC2_EVENT_UNANSWERED: oc2_event_kind = 5;

/// A connected monitor. Thread-safe. Free with `oc2_monitor_free`.
pub struct oc2_monitor {
    monitor: Monitor,
    callbacks: ConnectionCallbacks,
}
box_handle!(oc2_monitor);

/// One thing the monitor saw; owned by the caller (`oc2_monitor_event_free`).
pub struct oc2_monitor_event {
    kind: oc2_event_kind,
    message: Option<oc2_message>,
    topic: Option<NulStr>,
    payload: Vec<u8>,
    error: Option<NulStr>,
    request_id: Option<NulStr>,
    missing: oc2_strings,
}
box_handle!(oc2_monitor_event);

/// Connects and subscribes to `filter` (NULL: `oc2/#` under the configured
/// prefix). On failure the detail is in `oc2_config_last_error(config, ...)`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_connect(
    config: *const oc2_config,
    filter: *const c_char,
    out: *mut *mut oc2_monitor,
) -> oc2_result {
    guard(|| {
        let config = try_ref(config)?;
        config.last_error.clear();
        let filter = try_opt_cstr(filter)?.map(str::to_owned);
        let out = try_out(out)?;
        let monitor = block(Monitor::connect(config.config.clone(), filter))
            .map_err(|e| config.last_error.fail(&e))?;
        write(
            out,
            to_c(oc2_monitor {
                monitor,
                callbacks: ConnectionCallbacks::default(),
            }),
        );
        Ok(())
    })
}

/// Disconnects and frees a monitor; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_free(monitor: *mut oc2_monitor) {
    guard_free(|| {
        if let Ok(m) = try_ref(monitor) {
            block(m.monitor.close());
            m.callbacks.join();
        }
        free_box(monitor);
    });
}

fn event(kind: oc2_event_kind) -> oc2_monitor_event {
    oc2_monitor_event {
        kind,
        message: None,
        topic: None,
        payload: Vec::new(),
        error: None,
        request_id: None,
        missing: oc2_strings::from_iter(Vec::<String>::new()),
    }
}

fn observed(
    kind: oc2_event_kind,
    o: Observed,
    latency: Option<std::time::Duration>,
) -> oc2_monitor_event {
    oc2_monitor_event {
        topic: Some(NulStr::new(&o.topic)),
        message: Some(oc2_message::received(
            o.message, o.encoding, o.dialect, &o.topic, latency,
        )),
        ..event(kind)
    }
}

/// The next event (`*out`, owned by the caller), waiting up to `timeout_ms`
/// (`OC2_WAIT_FOREVER`: no limit). `OC2_RESULT_TIMEOUT` if nothing came.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_next(
    monitor: *const oc2_monitor,
    timeout_ms: u32,
    out: *mut *mut oc2_monitor_event,
) -> oc2_result {
    guard(|| {
        let m = try_ref(monitor)?;
        let out = try_out(out)?;
        let ev = block_for(timeout_ms, m.monitor.next())?.ok_or(oc2_result::OC2_RESULT_DONE)?;
        let ev = match ev {
            MonitorEvent::Request(o) => observed(OC2_EVENT_REQUEST, o, None),
            MonitorEvent::Response {
                observed: o,
                latency,
            } => observed(OC2_EVENT_RESPONSE, o, latency),
            MonitorEvent::Notification(o) => observed(OC2_EVENT_NOTIFICATION, o, None),
            MonitorEvent::Undecodable {
                topic,
                payload,
                error,
                ..
            } => oc2_monitor_event {
                topic: Some(NulStr::new(&topic)),
                payload,
                error: Some(NulStr::new(&error.to_string())),
                ..event(OC2_EVENT_UNDECODABLE)
            },
            MonitorEvent::Unanswered {
                request_id,
                missing,
            } => oc2_monitor_event {
                request_id: Some(NulStr::new(&request_id)),
                missing: oc2_strings::from_iter(missing),
                ..event(OC2_EVENT_UNANSWERED)
            },
        };
        write(out, to_c(ev));
        Ok(())
    })
}

/// The monitor's counters.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_stats(
    monitor: *const oc2_monitor,
    out: *mut oc2_stats,
) -> oc2_result {
    guard(|| {
        let m = try_ref(monitor)?;
        let out = try_out(out)?;
        write(out, m.monitor.stats().into());
        Ok(())
    })
}

/// Connection callbacks, as `oc2_producer_set_connection_callbacks`:
/// `oc2_monitor_free` delivers `OC2_DISCONNECT_CLOSED` and waits for the
/// last callback to return.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_set_connection_callbacks(
    monitor: *const oc2_monitor,
    on_connect: oc2_connect_callback,
    on_disconnect: oc2_disconnect_callback,
    userdata: *mut c_void,
) -> oc2_result {
    guard(|| {
        let m = try_ref(monitor)?;
        m.callbacks
            .start(m.monitor.events(), on_connect, on_disconnect, userdata)
    })
}

/// Copies the URL of the broker the monitor is connected to (after a
/// failover, the one in use) into `buf`. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_broker(
    monitor: *const oc2_monitor,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(&try_ref(monitor)?.monitor.broker(), buf, len, written))
}

/// Frees an event; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_event_free(event: *mut oc2_monitor_event) {
    guard_free(|| free_box(event));
}

/// The kind of event (`OC2_EVENT_*`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_event_kind(
    event: *const oc2_monitor_event,
    out: *mut oc2_event_kind,
) -> oc2_result {
    guard(|| {
        let e = try_ref(event)?;
        let out = try_out(out)?;
        write(out, e.kind);
        Ok(())
    })
}

/// The message seen (request, response, notification), borrowed from the
/// event; for a response, `oc2_message_latency_us` gives the time since its
/// command was seen. `OC2_RESULT_ABSENT` for other kinds.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_event_message(
    event: *const oc2_monitor_event,
    out: *mut *const oc2_message,
) -> oc2_result {
    guard(|| {
        let e = try_ref(event)?;
        let out = try_out(out)?;
        write(
            out,
            std::ptr::from_ref(e.message.as_ref().ok_or(oc2_result::OC2_RESULT_ABSENT)?),
        );
        Ok(())
    })
}

/// The topic it was seen on; `OC2_RESULT_ABSENT` for `OC2_EVENT_UNANSWERED`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_event_topic(
    event: *const oc2_monitor_event,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| {
        let e = try_ref(event)?;
        let out = try_out(out)?;
        write(
            out,
            e.topic
                .as_ref()
                .ok_or(oc2_result::OC2_RESULT_ABSENT)?
                .view(),
        );
        Ok(())
    })
}

/// For `OC2_EVENT_UNDECODABLE`: why it could not be decoded and the raw
/// payload, borrowed from the event; `OC2_RESULT_ABSENT` for other kinds.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_event_undecodable(
    event: *const oc2_monitor_event,
    reason: *mut oc2_str,
    payload: *mut oc2_bytes,
) -> oc2_result {
    guard(|| {
        let e = try_ref(event)?;
        let (reason, payload) = (try_out(reason)?, try_out(payload)?);
        write(
            reason,
            e.error
                .as_ref()
                .ok_or(oc2_result::OC2_RESULT_ABSENT)?
                .view(),
        );
        write(
            payload,
            oc2_bytes {
                data: e.payload.as_ptr(),
                len: e.payload.len(),
            },
        );
        Ok(())
    })
}

/// For `OC2_EVENT_UNANSWERED`: the command's request_id and the addressed
/// responders that sent no final response, borrowed from the event;
/// `OC2_RESULT_ABSENT` for other kinds.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_monitor_event_unanswered(
    event: *const oc2_monitor_event,
    request_id: *mut oc2_str,
    missing: *mut *const oc2_strings,
) -> oc2_result {
    guard(|| {
        let e = try_ref(event)?;
        let (request_id, missing) = (try_out(request_id)?, try_out(missing)?);
        write(
            request_id,
            e.request_id
                .as_ref()
                .ok_or(oc2_result::OC2_RESULT_ABSENT)?
                .view(),
        );
        write(missing, std::ptr::from_ref(&e.missing));
        Ok(())
    })
}
