//! Connection callbacks (`on_connect` / `on_disconnect`, as libmosquitto
//! has them) and the log callback: wraps
//! `oc2::client::{ConnectionEvents, set_logger}`.

use std::ffi::c_void;
use std::sync::Mutex;
use std::thread::{JoinHandle, ThreadId};

use oc2::client::{ConnectionEvent, ConnectionEvents, LogLevel, LogRecord, set_logger};

use crate::config::{mqtt_version_to_c, oc2_mqtt_version};
use crate::error::{Failure, oc2_result};
use crate::ffi::{NulStr, guard, oc2_str};

/// How severe a log record is: one of the `OC2_LOG_*` constants.
pub type oc2_log_level = u32;
/// Something failed and was given up (a subscription refused after a reconnect).
pub const OC2_LOG_ERROR: oc2_log_level = 1;
/// Something went wrong and was handled (connection lost, a publish refused).
pub const OC2_LOG_WARN: oc2_log_level = 2;
/// A change worth knowing (connected, reconnected).
pub const OC2_LOG_INFO: oc2_log_level = 3;
/// Detail for debugging (subscribed, command sent).
pub const OC2_LOG_DEBUG: oc2_log_level = 4;
/// Everything.
pub const OC2_LOG_TRACE: oc2_log_level = 5;

/// One log record, borrowed for the duration of the callback.
#[repr(C)]
pub struct oc2_log_params {
    /// Its severity (`OC2_LOG_*`).
    pub level: oc2_log_level,
    /// Where it comes from (`oc2mqtt::client::connection`).
    pub target: oc2_str,
    /// What happened, with its fields (`connection lost; reconnecting
    /// why="the broker closed the connection"`).
    pub message: oc2_str,
}

/// Receives the library's log records (`oc2_log_set_callback`).
pub type oc2_log_callback =
    Option<extern "C" fn(userdata: *mut c_void, params: *const oc2_log_params)>;

/// The caller's pointer, which the caller promises may be used from any thread.
#[derive(Clone, Copy)]
struct Userdata(*mut c_void);

// SAFETY: the header makes the caller promise that `userdata` may be used
// from the library's threads; the library never dereferences it.
unsafe impl Send for Userdata {}
// SAFETY: as above; it is only passed back to the caller's callbacks.
unsafe impl Sync for Userdata {}

impl Userdata {
    /// The pointer (a method, so that closures capture the whole `Userdata`).
    fn ptr(self) -> *mut c_void {
        self.0
    }
}

fn level_from(level: oc2_log_level) -> Result<LogLevel, oc2_result> {
    Ok(match level {
        OC2_LOG_ERROR => LogLevel::Error,
        OC2_LOG_WARN => LogLevel::Warn,
        OC2_LOG_INFO => LogLevel::Info,
        OC2_LOG_DEBUG => LogLevel::Debug,
        OC2_LOG_TRACE => LogLevel::Trace,
        _ => return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT),
    })
}

fn level_to_c(level: LogLevel) -> oc2_log_level {
    match level {
        LogLevel::Error => OC2_LOG_ERROR,
        LogLevel::Warn => OC2_LOG_WARN,
        LogLevel::Info => OC2_LOG_INFO,
        LogLevel::Debug => OC2_LOG_DEBUG,
        LogLevel::Trace => OC2_LOG_TRACE,
    }
}

/// Sends the library's log records at `max_level` (`OC2_LOG_*`) and above
/// to `callback(userdata, params)`, as `mosquitto_log_callback_set` does;
/// NULL turns logging off (the default: nothing is logged). Process-wide:
/// a second call replaces the first. `OC2_RESULT_INVALID_ARGUMENT` for an
/// unknown level.
///
/// The callback runs on the thread that logged: a library thread, or yours
/// inside a call to this library. It must be quick, may be called from
/// several threads at once, and must not call this library's blocking
/// functions (connect, send, wait, free); what it logs itself is dropped.
/// `params` and its strings are valid during the call only.
///
/// ```c
/// static void on_log(void *userdata, const oc2_log_params *p) {
///     fprintf((FILE *)userdata, "oc2mqtt %u: %s\n", p->level, p->message.data);
/// }
/// oc2_log_set_callback(on_log, OC2_LOG_INFO, stderr);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn oc2_log_set_callback(
    callback: oc2_log_callback,
    max_level: oc2_log_level,
    userdata: *mut c_void,
) -> oc2_result {
    guard(|| {
        let level = level_from(max_level)?;
        let logger = callback.map(|f| {
            let userdata = Userdata(userdata);
            Box::new(move |r: &LogRecord| {
                let (target, message) = (NulStr::new(&r.target), NulStr::new(&r.text()));
                let params = oc2_log_params {
                    level: level_to_c(r.level),
                    target: target.view(),
                    message: message.view(),
                };
                f(userdata.ptr(), &params);
            }) as oc2::client::LogFn
        });
        set_logger(level, logger).map_err(|e| e.code())
    })
}

/// Why a disconnect callback is called: one of the `OC2_DISCONNECT_*` constants.
pub type oc2_disconnect_kind = u32;
/// The connection was lost; the library reconnects by itself (with backoff,
/// at most 30 s apart) and calls `on_connect` once back. Publishes are kept.
pub const OC2_DISCONNECT_LOST: oc2_disconnect_kind = 1;
/// A reconnect attempt failed; another follows.
pub const OC2_DISCONNECT_RECONNECT_FAILED: oc2_disconnect_kind = 2;
/// Closed by the application (`oc2_*_close` or `oc2_*_free`): the last call.
pub const OC2_DISCONNECT_CLOSED: oc2_disconnect_kind = 3;

/// A connection made, borrowed for the duration of `on_connect`.
#[repr(C)]
pub struct oc2_connection_info {
    /// The broker URL in use (after a failover, the one that answered).
    pub broker: oc2_str,
    /// `OC2_MQTT_V5` or `OC2_MQTT_V311`.
    pub mqtt_version: oc2_mqtt_version,
    /// Whether the broker resumed the session (a stable client id): what
    /// was queued meanwhile is delivered now.
    pub session_resumed: bool,
}

/// A connection lost, an attempt failed, or the end; borrowed for the
/// duration of `on_disconnect`.
#[repr(C)]
pub struct oc2_disconnect_info {
    /// `OC2_DISCONNECT_LOST`, `_RECONNECT_FAILED` or `_CLOSED`.
    pub kind: oc2_disconnect_kind,
    /// `OC2_RESULT_CONNECT` when lost; the failed attempt's code
    /// (`OC2_RESULT_CONNECT`, `_AUTH`, `_TLS`, ...); `OC2_RESULT_OK` when
    /// closed by the application.
    pub result: oc2_result,
    /// Why, in words; empty when closed by the application.
    pub reason: oc2_str,
    /// The broker tried (`_RECONNECT_FAILED`), else the last one connected to.
    pub broker: oc2_str,
    /// The attempt that failed (1, 2, ...) for `_RECONNECT_FAILED`, else 0.
    pub attempt: u32,
}

/// Called on a library thread when the client is connected and subscribed:
/// at once when set (the current state), and again after each reconnect.
pub type oc2_connect_callback =
    Option<extern "C" fn(userdata: *mut c_void, info: *const oc2_connection_info)>;

/// Called on the same library thread when the connection is lost, when a
/// reconnect attempt fails, and once when the client is closed.
pub type oc2_disconnect_callback =
    Option<extern "C" fn(userdata: *mut c_void, info: *const oc2_disconnect_info)>;

/// The thread that calls a role's connection callbacks, if they were set.
#[derive(Default)]
pub(crate) struct ConnectionCallbacks(Mutex<Option<(JoinHandle<()>, ThreadId)>>);

impl ConnectionCallbacks {
    /// Starts the thread that calls `on_connect` / `on_disconnect` for
    /// `events` until they end (after `Closed`). Once per role:
    /// `OC2_RESULT_INVALID_ARGUMENT` the second time.
    pub(crate) fn start(
        &self,
        events: ConnectionEvents,
        on_connect: oc2_connect_callback,
        on_disconnect: oc2_disconnect_callback,
        userdata: *mut c_void,
    ) -> Result<(), oc2_result> {
        if on_connect.is_none() && on_disconnect.is_none() {
            return Err(oc2_result::OC2_RESULT_NULL_PARAMETER);
        }
        let mut slot = self.lock();
        if slot.is_some() {
            return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT);
        }
        let userdata = Userdata(userdata);
        let handle = std::thread::Builder::new()
            .name("oc2mqtt-connection".to_owned())
            .spawn(move || call_back(events, on_connect, on_disconnect, userdata.ptr()))
            .map_err(|_| oc2_result::OC2_RESULT_IO)?;
        let id = handle.thread().id();
        *slot = Some((handle, id));
        Ok(())
    }

    /// Waits for the thread to deliver `OC2_DISCONNECT_CLOSED` and end
    /// (the role was closed first); not from the thread itself.
    pub(crate) fn join(&self) {
        let taken = self.lock().take();
        if let Some((handle, id)) = taken {
            if id != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(JoinHandle<()>, ThreadId)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn call_back(
    mut events: ConnectionEvents,
    on_connect: oc2_connect_callback,
    on_disconnect: oc2_disconnect_callback,
    userdata: *mut c_void,
) {
    let mut last_broker = NulStr::new("");
    let empty = NulStr::new("");
    let disconnect = |kind, result, reason: &NulStr, broker: &NulStr, attempt| {
        if let Some(f) = on_disconnect {
            let info = oc2_disconnect_info {
                kind,
                result,
                reason: reason.view(),
                broker: broker.view(),
                attempt,
            };
            f(userdata, &info);
        }
    };
    while let Some(e) = events.blocking_next() {
        match e {
            ConnectionEvent::Connected {
                broker,
                mqtt_version,
                session_resumed,
            } => {
                last_broker = NulStr::new(&broker);
                if let Some(f) = on_connect {
                    let info = oc2_connection_info {
                        broker: last_broker.view(),
                        mqtt_version: mqtt_version_to_c(mqtt_version),
                        session_resumed,
                    };
                    f(userdata, &info);
                }
            }
            ConnectionEvent::Offline { reason } => disconnect(
                OC2_DISCONNECT_LOST,
                oc2_result::OC2_RESULT_CONNECT,
                &NulStr::new(&reason),
                &last_broker,
                0,
            ),
            ConnectionEvent::ReconnectFailed {
                broker,
                attempt,
                error,
            } => disconnect(
                OC2_DISCONNECT_RECONNECT_FAILED,
                error.code(),
                &NulStr::new(&error.to_string()),
                &NulStr::new(&broker),
                attempt,
            ),
            ConnectionEvent::Closed => disconnect(
                OC2_DISCONNECT_CLOSED,
                oc2_result::OC2_RESULT_OK,
                &empty,
                &last_broker,
                0,
            ),
            // Attempts starting, and kinds newer than this library: not for C.
            _ => {}
        }
    }
}
