//! `oc2_consumer` and `oc2_command`: receive commands and answer them,
//! pull style (`oc2_consumer_next`), callback style (`oc2_consumer_serve`),
//! or through a handler that returns the status (`oc2_consumer_serve_handler`,
//! on the core's serve loop; `oc2_consumer_serve_inline`, on the core's
//! network thread).

use std::ffi::{c_char, c_void};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};

use oc2::client::{Consumer, ConsumerOptions, Incoming};
use oc2::rules::{HandlerResult, handler_outcome};
use oc2::{MessageError, Response};

use crate::client::{SharedError, block, block_for, oc2_stats};
use crate::config::oc2_config;
use crate::error::oc2_result;
use crate::events::{ConnectionCallbacks, oc2_connect_callback, oc2_disconnect_callback};
use crate::ffi::{
    LastError, box_handle, free_box, guard, guard_free, parse_json, to_c, try_cstr, try_cstr_array,
    try_mut, try_opt_cstr, try_out, try_ref, try_slice, write, write_text,
};
use crate::message::oc2_message;
use crate::settings::{Append, Change, Holder, Millis, get_text, set_by_name, set_text};

/// A connected consumer (a device). Thread-safe. Free with
/// `oc2_consumer_free`, which stops the callback thread and disconnects.
///
/// It answers by itself, before the application sees anything: `query
/// features` (from its profiles and pairs), `501` for action/target pairs
/// it did not declare, `400` for malformed commands it can address,
/// duplicates (dropped), commands addressed to other devices (ignored),
/// retained commands and commands older than its freshness window (not
/// executed, counted in `oc2_stats.stale`), and `response_requested`
/// (`none`: nothing is sent; `ack`: a `102` at once).
pub struct oc2_consumer {
    consumer: Consumer,
    last_error: SharedError,
    /// How it serves, if it does: one style at a time.
    serving: Mutex<Serving>,
    /// Tells the callback thread to stop taking commands.
    stopping: Arc<AtomicBool>,
    /// Wakes the callback thread while it waits for a command, once
    /// `stopping` is set.
    stop_signal: Arc<tokio::sync::Notify>,
    callbacks: ConnectionCallbacks,
}
box_handle!(oc2_consumer);

/// A command for the application, with what is needed to answer it. Owned
/// by the caller: answer it with `oc2_consumer_reply` (or
/// `oc2_consumer_reply_status`), then free it with `oc2_command_free`.
pub struct oc2_command {
    /// Shared with the handler timeout's timer, for a command of `oc2_consumer_serve`.
    incoming: Arc<Incoming>,
    message: oc2_message,
}
box_handle!(oc2_command);

/// Called on the consumer's library thread for each command, one at a
/// time, in arrival order. `command` is the callee's: answer it with
/// `oc2_consumer_reply` (from this thread or another) and free it with
/// `oc2_command_free`. With a handler timeout
/// (`oc2_consumer_options_set_handler_timeout`), a command without its final
/// answer that long after it was handed over is answered `500` by the
/// library (`handler timed out after N s`), as in every serve style, and a
/// later reply is dropped (`OC2_RESULT_TIMEOUT`); the next command still
/// comes only once the callback returned. The callback may call any
/// function on `consumer` except `oc2_consumer_free`.
pub type oc2_command_callback = Option<
    extern "C" fn(userdata: *mut c_void, consumer: *const oc2_consumer, command: *mut oc2_command),
>;

/// What a consumer is and implements, before it connects: the device id,
/// profiles, action/target pairs, the freshness window and the journal. Made by
/// `oc2_consumer_options_new`, changed by its setters, used by
/// `oc2_consumer_connect_with` (which copies it: free it with
/// `oc2_consumer_options_free` when you like). Not thread-safe.
pub struct oc2_consumer_options {
    pub(crate) options: ConsumerOptions,
    last_error: LastError,
}
box_handle!(oc2_consumer_options);

/// Starts the options of device `device_id` (its topic is
/// `oc2/cmd/device/<device_id>`): no profiles, no pairs, the library's
/// default freshness window (`oc2_consumer_options_freshness` reads it).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_new(
    device_id: *const c_char,
    out: *mut *mut oc2_consumer_options,
) -> oc2_result {
    guard(|| {
        let id = try_cstr(device_id)?;
        let out = try_out(out)?;
        write(
            out,
            to_c(oc2_consumer_options {
                options: ConsumerOptions::new(id),
                last_error: LastError::default(),
            }),
        );
        Ok(())
    })
}

/// Frees consumer options; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_free(options: *mut oc2_consumer_options) {
    guard_free(|| free_box(options));
}

impl Holder for oc2_consumer_options {
    type Settings = ConsumerOptions;
    fn parts(&mut self) -> (&mut ConsumerOptions, &mut LastError) {
        (&mut self.options, &mut self.last_error)
    }
    fn settings(&self) -> &ConsumerOptions {
        &self.options
    }
}

/// Sets the setting called `name` from `value` written as text, as
/// `oc2_config_builder_set` does for connection settings; the typed setters
/// below are shorthands for it.
///
/// The settings (lists replace the one the `_add_` functions append to;
/// pairs are `"deny:ipv4_net,query:features"`):
// @generated settings ConsumerOptions (from core's settings table: edit core/src/settings.rs, then `make generate`)
/// - `device_id` (text): this device's id: its topic `oc2/cmd/device/<id>` and the `from` of its
///   responses.
/// - `profiles` (a list, separated by commas): actuator profiles implemented (`slpf`, ...): one
///   `oc2/cmd/ap/<profile>` subscription each.
/// - `pairs` (a list, separated by commas): action/target pairs implemented; when any are declared,
///   other pairs are answered 501 (`query features` is always implemented).
/// - `args` (a list, separated by commas): command arguments implemented beyond the Language
///   Specification's and the profiles' (`x-acme` or `x-acme.mode`); once pairs, profiles or args
///   are declared, other arguments are answered 501.
/// - `rate_limit` (a number): commands per minute, reported by `query features`.
/// - `group` (text): consumer group: each command reaches one member (`$share/<group>/...`).
/// - `handle_features` (true/false; default false): deliver `query features` to the application
///   instead of answering it from this configuration.
/// - `freshness_secs` (a whole number; default 900): commands whose `created` is older than this
///   many seconds are not run nor answered, only counted in the `stale` statistic; 0 turns the
///   check off.
/// - `handler_timeout_secs` (seconds, fractions allowed): seconds a `serve()` handler may take;
///   past it the command is answered 500 and the handler's late result is dropped; when absent or
///   0, no limit.
/// - `journal` (a path): a file where each command is written before the handler sees it and marked
///   finished once answered: started again with the same file (and a stable client id) after a
///   kill, the consumer runs what it had taken and not finished, and nothing it had finished; not
///   synced, so an operating system crash may lose the last lines; when absent, in memory only.
// @end generated
///
/// `OC2_RESULT_CONFIG` for an unknown name or a value that does not fit,
/// with the reason in `oc2_consumer_options_last_error` ("rate_limit:
/// expected a finite number greater than 0, found 0"); nothing is changed
/// then.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_set(
    options: *mut oc2_consumer_options,
    name: *const c_char,
    value: *const c_char,
) -> oc2_result {
    guard(|| set_text(options, name, value))
}

/// Copies the setting called `name` (as for `oc2_consumer_options_set`)
/// into `buf` as text, as `oc2_config_builder_get` does.
/// `OC2_RESULT_ABSENT` when it is unset; `OC2_RESULT_CONFIG` for an
/// unknown name.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_get(
    options: *const oc2_consumer_options,
    name: *const c_char,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| get_text(options, name, buf, len, written))
}

/// Copies into `buf` the detail of the last failed setter on `options`
/// (a value refused: "rate_limit: expected a finite number greater than 0,
/// found -1"); the empty string if the last one succeeded. Buffer rules as
/// for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_last_error(
    options: *const oc2_consumer_options,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(try_ref(options)?.last_error.text(), buf, len, written))
}

/// Adds an actuator profile implemented (`"slpf"`; appends to `profiles`):
/// the consumer subscribes to `oc2/cmd/ap/<profile>`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_add_profile(
    options: *mut oc2_consumer_options,
    profile: *const c_char,
) -> oc2_result {
    set_by_name!(options; "profiles" = Append(profile))
}

/// `action:target`, appended to `pairs`.
fn pair(action: *const c_char, target: *const c_char) -> Result<Change, oc2_result> {
    Ok(Change::Add(format!(
        "{}:{}",
        try_cstr(action)?,
        try_cstr(target)?
    )))
}

/// Adds an action/target pair implemented (`"deny"`, `"ipv4_net"`; appends
/// to `pairs`); once any pair is declared, commands with other pairs get
/// `501`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_add_pair(
    options: *mut oc2_consumer_options,
    action: *const c_char,
    target: *const c_char,
) -> oc2_result {
    set_by_name!(options; "pairs" = pair(action, target))
}

/// Sets the freshness window in seconds (`freshness_secs`): a command whose
/// `created` is older than this is not executed nor answered, only logged
/// and counted in `oc2_stats.stale` (as is a retained command). 0 turns the
/// check off.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_set_freshness(
    options: *mut oc2_consumer_options,
    seconds: u64,
) -> oc2_result {
    set_by_name!(options; "freshness_secs" = seconds)
}

/// Joins consumer group `group` (`group`): the consumer subscribes through
/// `$share/<group>/...`, so that each command reaches one member of the
/// group (brokers with shared subscriptions: Mosquitto, not RabbitMQ 3.x nor
/// ActiveMQ 5.x). `OC2_RESULT_TOPIC` at connect for a group that cannot be
/// a topic level.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_set_group(
    options: *mut oc2_consumer_options,
    group: *const c_char,
) -> oc2_result {
    set_by_name!(options; "group" = group)
}

/// Declares the most commands per minute this device takes (`rate_limit`);
/// `query features` reports it as `rate_limit`.
/// `OC2_RESULT_INVALID_ARGUMENT` unless finite and greater than 0 (the
/// reason in `oc2_consumer_options_last_error`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_set_rate_limit(
    options: *mut oc2_consumer_options,
    per_minute: f64,
) -> oc2_result {
    set_by_name!(options; "rate_limit" = per_minute)
}

/// Delivers `query features` to the application (true) instead of
/// answering it from these options (false, the default; `handle_features`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_set_handle_features(
    options: *mut oc2_consumer_options,
    handle: bool,
) -> oc2_result {
    set_by_name!(options; "handle_features" = handle)
}

/// Keeps a journal in the file at `path` (`len` bytes, no NUL needed): each
/// command is written there before the application sees it and marked
/// finished once answered with a final status. Started again with the same
/// file (and a stable client id: `oc2_config_builder_set_client_id_file`)
/// after a kill, the consumer delivers again the commands it had taken and
/// not finished, and none it had finished. The file is not synced: an
/// operating system crash may lose its last lines. `OC2_RESULT_INVALID_ARGUMENT`
/// for an empty path; a file that cannot be opened fails at connect
/// (`OC2_RESULT_CONFIG`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_set_journal(
    options: *mut oc2_consumer_options,
    path: *const c_char,
    len: usize,
) -> oc2_result {
    // Not through the settings table: a path here is any bytes (on Unix),
    // where a setting's text is UTF-8.
    guard(|| {
        let o = &mut try_mut(options)?.options;
        let bytes = try_slice(path.cast(), len)?;
        if bytes.is_empty() {
            return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT);
        }
        o.journal = Some(path_of(bytes)?);
        Ok(())
    })
}

/// A path from its bytes: any bytes on Unix, UTF-8 elsewhere.
#[cfg(unix)]
fn path_of(bytes: &[u8]) -> Result<std::path::PathBuf, oc2_result> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::ffi::OsStr::from_bytes(bytes).into())
}

#[cfg(not(unix))]
fn path_of(bytes: &[u8]) -> Result<std::path::PathBuf, oc2_result> {
    std::str::from_utf8(bytes)
        .map(Into::into)
        .map_err(|_| oc2_result::OC2_RESULT_INVALID_UTF8)
}

/// Sets how long an `oc2_consumer_serve_handler` handler may take, in
/// milliseconds (`handler_timeout_secs`; 0: no limit, the default): past it
/// the command is answered `500` (`handler timed out after N s`) and the
/// handler's late status is dropped. The same bounds the final reply to a
/// command of `oc2_consumer_serve`'s callback; not `oc2_consumer_serve_inline`
/// (its handler cannot be interrupted) nor `oc2_consumer_next`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_set_handler_timeout(
    options: *mut oc2_consumer_options,
    timeout_ms: u64,
) -> oc2_result {
    set_by_name!(options; "handler_timeout_secs" = Millis(timeout_ms))
}

/// The freshness window in seconds (0: off), written to `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_freshness(
    options: *const oc2_consumer_options,
    out: *mut u64,
) -> oc2_result {
    guard(|| {
        let o = try_ref(options)?;
        let out = try_out(out)?;
        write(out, o.options.freshness_secs);
        Ok(())
    })
}

fn connect(
    config: &oc2_config,
    options: ConsumerOptions,
    out: NonNull<*mut oc2_consumer>,
) -> Result<(), oc2_result> {
    let consumer = block(Consumer::connect(config.config.clone(), options))
        .map_err(|e| config.last_error.fail(&e))?;
    write(
        out,
        to_c(oc2_consumer {
            consumer,
            last_error: SharedError::default(),
            serving: Mutex::new(Serving::No),
            stopping: Arc::new(AtomicBool::new(false)),
            stop_signal: Arc::new(tokio::sync::Notify::new()),
            callbacks: ConnectionCallbacks::default(),
        }),
    );
    Ok(())
}

/// Connects as device `device_id` implementing the `n_profiles` actuator
/// `profiles` (`"slpf"`) and the `n_pairs` action/target `pairs` written
/// `"action:target"` (`"deny:ipv4_net"`); when pairs are given, other
/// commands get `501`. Either array may be NULL when its count is 0.
/// Subscribes to `oc2/cmd/all`, `oc2/cmd/ap/<profile>` and
/// `oc2/cmd/device/<device_id>`. On failure the detail is in
/// `oc2_config_last_error(config, ...)`. The other options (the freshness
/// window) are the defaults: see `oc2_consumer_connect_with`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_connect(
    config: *const oc2_config,
    device_id: *const c_char,
    profiles: *const *const c_char,
    n_profiles: usize,
    pairs: *const *const c_char,
    n_pairs: usize,
    out: *mut *mut oc2_consumer,
) -> oc2_result {
    guard(|| {
        let config = try_ref(config)?;
        config.last_error.clear();
        let mut options = ConsumerOptions::new(try_cstr(device_id)?);
        options.profiles = try_cstr_array(profiles, n_profiles)?
            .into_iter()
            .map(str::to_owned)
            .collect();
        for pair in try_cstr_array(pairs, n_pairs)? {
            options = options
                .pair_str(pair)
                .map_err(|e| config.last_error.fail(&e))?;
        }
        let out = try_out(out)?;
        connect(config, options, out)
    })
}

/// Connects as the consumer `options` describe (`oc2_consumer_options_new`
/// and its setters) and subscribes as `oc2_consumer_connect` does. On
/// failure the detail is in `oc2_config_last_error(config, ...)`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_connect_with(
    config: *const oc2_config,
    options: *const oc2_consumer_options,
    out: *mut *mut oc2_consumer,
) -> oc2_result {
    guard(|| {
        let config = try_ref(config)?;
        config.last_error.clear();
        let options = try_ref(options)?.options.clone();
        let out = try_out(out)?;
        connect(config, options, out)
    })
}

/// How a consumer serves: `oc2_consumer_serve`'s thread, or the task of
/// `oc2_consumer_serve_handler` (the core's serve loop) or
/// `oc2_consumer_serve_inline`.
enum Serving {
    No,
    Callback(JoinHandle<()>, ThreadId),
    Handler(tokio::task::JoinHandle<()>),
}

impl oc2_consumer {
    fn serving(&self) -> std::sync::MutexGuard<'_, Serving> {
        self.serving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts serving with what `start` returns, unless it already serves
    /// (`OC2_RESULT_INVALID_ARGUMENT`).
    fn serve_with(
        &self,
        start: impl FnOnce() -> Result<Serving, oc2_result>,
    ) -> Result<(), oc2_result> {
        let mut serving = self.serving();
        if !matches!(*serving, Serving::No) {
            self.last_error.set("this consumer already serves");
            return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT);
        }
        *serving = start()?;
        Ok(())
    }

    /// Stops the callback thread, letting a callback in progress finish
    /// (its reply needs the connection), then disconnects. From inside the
    /// callback it cannot wait for itself: the thread ends when it returns.
    fn shut_down(&self) {
        self.stopping.store(true, Ordering::Release);
        // A permit if the thread is not waiting now: its next wait ends at once.
        self.stop_signal.notify_one();
        let serving = std::mem::replace(&mut *self.serving(), Serving::No);
        if let Serving::Callback(handle, id) = serving {
            if id != std::thread::current().id() {
                let _ = handle.join();
            }
            block(self.consumer.close());
        } else {
            block(self.consumer.close());
            // The serve loop ends once its running handlers answered; a
            // handler closing its own consumer cannot wait for itself.
            if let Serving::Handler(task) = serving {
                if !IN_HANDLER.get() {
                    let _ = block(task);
                }
            }
        }
        self.callbacks.join();
    }
}

/// Stops the callback thread, disconnects, and frees the consumer; NULL is
/// accepted and ignored. Not from inside the callback (from an
/// `oc2_consumer_serve_inline` handler it does nothing).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_free(consumer: *mut oc2_consumer) {
    guard_free(|| {
        if let Ok(c) = try_ref(consumer) {
            if refuse_in_inline(c).is_err() {
                return;
            }
            c.shut_down();
        }
        free_box(consumer);
    });
}

/// Stops receiving: `oc2_consumer_next` then returns `OC2_RESULT_DONE` and
/// the callback thread ends (this waits for it, unless called from the
/// callback). Answer the commands you hold first: replies need the connection.
/// `OC2_RESULT_INVALID_ARGUMENT` from an `oc2_consumer_serve_inline` handler,
/// whose thread the close would wait for.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_close(consumer: *const oc2_consumer) -> oc2_result {
    guard(|| {
        let c = try_ref(consumer)?;
        refuse_in_inline(c)?;
        c.shut_down();
        Ok(())
    })
}

fn command_of(incoming: Arc<Incoming>) -> *mut oc2_command {
    let message = oc2_message::received(
        incoming.message().clone(),
        incoming.encoding(),
        incoming.dialect(),
        incoming.topic(),
        None,
    );
    to_c(oc2_command { incoming, message })
}

/// Pull style, for single-threaded device loops: the next command (`*out`,
/// owned by the caller), waiting up to `timeout_ms` (0: only what is
/// queued; `OC2_WAIT_FOREVER`: no limit). `OC2_RESULT_TIMEOUT` if none came,
/// `OC2_RESULT_DONE` once the consumer is closed. Do not mix with
/// `oc2_consumer_serve`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_next(
    consumer: *const oc2_consumer,
    timeout_ms: u32,
    out: *mut *mut oc2_command,
) -> oc2_result {
    guard(|| {
        let c = try_ref(consumer)?;
        let out = try_out(out)?;
        let incoming =
            block_for(timeout_ms, c.consumer.next())?.ok_or(oc2_result::OC2_RESULT_DONE)?;
        write(out, command_of(Arc::new(incoming)));
        Ok(())
    })
}

/// The pointers handed to the callback thread.
struct Callback {
    f: extern "C" fn(*mut c_void, *const oc2_consumer, *mut oc2_command),
    userdata: *mut c_void,
    consumer: *const oc2_consumer,
    stopping: Arc<AtomicBool>,
    stop_signal: Arc<tokio::sync::Notify>,
}

// SAFETY: the C caller promises (header) that `userdata` may be used from
// the library thread; `consumer` outlives the thread (`shut_down` joins it
// before `oc2_consumer_free` frees the consumer).
unsafe impl Send for Callback {}

impl Callback {
    fn run(self) {
        // SAFETY: see `unsafe impl Send`: the consumer outlives this thread.
        let consumer = unsafe { &*self.consumer };
        while !self.stopping.load(Ordering::Acquire) {
            // Woken by a command or by `shut_down`, no timer: the next command
            // is not cancelled and started again every so often.
            let next = block(async {
                tokio::select! {
                    biased;
                    got = consumer.consumer.next() => Some(got),
                    () = self.stop_signal.notified() => None,
                }
            });
            match next {
                Some(Some(incoming)) => {
                    let command = command_of(incoming.with_handler_timeout());
                    (self.f)(self.userdata, self.consumer, command);
                }
                Some(None) => break,
                None => {} // stopped: `stopping` is set
            }
        }
    }
}

/// Callback style: starts one library thread that calls
/// `callback(userdata, consumer, command)` for each command, until
/// `oc2_consumer_close` or `oc2_consumer_free`. Returns at once.
/// `userdata` is passed through untouched and must be usable from that
/// thread. The consumer's handler timeout bounds each command's final reply
/// (see `oc2_command_callback`). `OC2_RESULT_INVALID_ARGUMENT` if this consumer already serves
/// (either style).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_serve(
    consumer: *const oc2_consumer,
    callback: oc2_command_callback,
    userdata: *mut c_void,
) -> oc2_result {
    guard(|| {
        let c = try_ref(consumer)?;
        c.last_error.clear();
        let f = callback.ok_or(oc2_result::OC2_RESULT_NULL_PARAMETER)?;
        c.serve_with(|| {
            c.stopping.store(false, Ordering::Release);
            let job = Callback {
                f,
                userdata,
                consumer,
                stopping: Arc::clone(&c.stopping),
                stop_signal: Arc::clone(&c.stop_signal),
            };
            let handle = std::thread::Builder::new()
                .name("oc2mqtt-consumer".to_owned())
                .spawn(move || job.run())
                .map_err(|e| {
                    c.last_error
                        .set(format!("cannot start the callback thread: {e}"));
                    oc2_result::OC2_RESULT_IO
                })?;
            let id = handle.thread().id();
            Ok(Serving::Callback(handle, id))
        })
    })
}

/// What an `oc2_handler_callback` adds to the status it returns: a
/// `status_text` and `results`. Lives for the duration of the call.
pub struct oc2_reply {
    text: Option<String>,
    results: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Called for each command on one of the library's handler threads (up to
/// 64 at once, so it must be thread-safe; with `oc2_consumer_serve_inline`,
/// on the network thread, one at a time, and it must not block), with the command (borrowed for
/// the call: action, target, headers, `oc2_message_topic`) and a `reply` to
/// fill with `oc2_reply_set_text` / `oc2_reply_set_results`. Returns the
/// final status: `200`, `400`, ... (a `102` may not be returned); `0` means
/// the handler failed and answers `500` with the text set (or "the handler
/// failed"). A status the specification does not define also answers `500`,
/// naming it ("the handler returned an invalid status: 999; expected one of
/// ..."): the rule and texts of every language. The library sends the
/// response; the callback may call any function on the consumer's handles
/// except `oc2_consumer_free`.
pub type oc2_handler_callback = Option<
    extern "C" fn(userdata: *mut c_void, command: *const oc2_message, reply: *mut oc2_reply) -> u16,
>;

/// Sets the `status_text` of the response (`text`: NUL-terminated UTF-8).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_reply_set_text(reply: *mut oc2_reply, text: *const c_char) -> oc2_result {
    guard(|| {
        let r = try_mut(reply)?;
        r.text = Some(try_cstr(text)?.to_owned());
        Ok(())
    })
}

/// Sets the `results` of the response: a JSON object as text (`len` bytes of
/// UTF-8). `OC2_RESULT_MESSAGE_SYNTAX` for malformed JSON,
/// `OC2_RESULT_MESSAGE_TYPE` for JSON that is not an object.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_reply_set_results(
    reply: *mut oc2_reply,
    results_json: *const c_char,
    len: usize,
) -> oc2_result {
    guard(|| {
        let r = try_mut(reply)?;
        let bytes = try_slice(results_json.cast(), len)?;
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(serde_json::Value::Object(map)) => {
                r.results = Some(map);
                Ok(())
            }
            Ok(_) => Err(oc2_result::OC2_RESULT_MESSAGE_TYPE),
            Err(_) => Err(oc2_result::OC2_RESULT_MESSAGE_SYNTAX),
        }
    })
}

thread_local! {
    /// Set while this thread runs an `oc2_handler_callback`.
    static IN_HANDLER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Set while this thread runs an `oc2_consumer_serve_inline` handler: a
    /// network thread, which nothing may block.
    static IN_INLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `oc2_consumer_close` or `_free` from an inline handler: refused, as
/// closing waits for the very thread the handler holds.
fn refuse_in_inline(c: &oc2_consumer) -> Result<(), oc2_result> {
    if IN_INLINE.get() {
        c.last_error.set(
            "cannot close a consumer from an oc2_consumer_serve_inline handler: closing waits \
             for the network thread the handler runs on",
        );
        return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT);
    }
    Ok(())
}

/// The pointers a handler call needs on its thread.
#[derive(Clone, Copy)]
struct Handler {
    f: extern "C" fn(*mut c_void, *const oc2_message, *mut oc2_reply) -> u16,
    userdata: *mut c_void,
}

// SAFETY: the C caller promises (header) that `userdata` may be used from the
// library's handler threads, several at once.
unsafe impl Send for Handler {}
unsafe impl Sync for Handler {}

impl Handler {
    /// Calls the C handler on `incoming`: the outcome for the core's rule.
    /// `inline`: on a network thread (`oc2_consumer_serve_inline`).
    fn call(self, incoming: &Incoming, inline: bool) -> Result<Option<Response>, String> {
        // Lent, not copied: the callback may not keep it past its return.
        let message = oc2_message::lent(
            incoming.message(),
            incoming.encoding(),
            incoming.dialect(),
            incoming.topic(),
        );
        let mut reply = oc2_reply {
            text: None,
            results: None,
        };
        let flag = if inline { &IN_INLINE } else { &IN_HANDLER };
        flag.set(true);
        let status = (self.f)(self.userdata, &*message, &mut reply);
        flag.set(false);
        // What the status means (0: failed; one the specification does not
        // define, or an interim one) and every text for it are core's.
        handler_outcome(if status == 0 {
            HandlerResult::Failed {
                text: reply.text.unwrap_or_default(),
                kind: None,
            }
        } else {
            let mut response = Response::new(status);
            response.status_text = reply.text;
            response.results = reply.results;
            HandlerResult::Response(response)
        })
    }
}

/// Handler style: runs `handler(userdata, command, reply)` for each command
/// on the library's handler threads (up to 64 at once) until
/// `oc2_consumer_close` or `oc2_consumer_free`, and answers each with the
/// status it returns (see `oc2_handler_callback`). Returns at once. As in
/// every language: while all 64 handlers are stuck for a second, new
/// commands are answered `503`; with a handler timeout
/// (`oc2_consumer_options_set_handler_timeout`) a handler past it is
/// answered `500`. `OC2_RESULT_INVALID_ARGUMENT` if this consumer already
/// serves (either style).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_serve_handler(
    consumer: *const oc2_consumer,
    handler: oc2_handler_callback,
    userdata: *mut c_void,
) -> oc2_result {
    serve_on_runtime(consumer, handler, userdata, |serving, handler| async move {
        let _ = serving
            .serve_async(move |incoming| async move {
                tokio::task::spawn_blocking(move || handler.call(&incoming, false))
                    .await
                    .unwrap_or_else(|e| Err(format!("handler thread failed: {e}")))
            })
            .await;
    })
}

/// What `oc2_consumer_serve_handler` and `_inline` share: the checks, then
/// `serve(consumer, handler)` as the consumer's serving task.
fn serve_on_runtime<F: std::future::Future<Output = ()> + Send + 'static>(
    consumer: *const oc2_consumer,
    handler: oc2_handler_callback,
    userdata: *mut c_void,
    serve: impl FnOnce(Consumer, Handler) -> F,
) -> oc2_result {
    guard(|| {
        let c = try_ref(consumer)?;
        c.last_error.clear();
        let f = handler.ok_or(oc2_result::OC2_RESULT_NULL_PARAMETER)?;
        let task = serve(c.consumer.clone(), Handler { f, userdata });
        c.serve_with(|| Ok(Serving::Handler(oc2::client::runtime().spawn(task))))
    })
}

/// Inline style, for handlers that never block, as libmosquitto's
/// `on_message`: runs `handler(userdata, command, reply)` for each command on
/// the library's network thread, right where it arrives, one at a time in
/// arrival order, and answers each with the status it returns (as
/// `oc2_consumer_serve_handler`: see `oc2_handler_callback`). The answer
/// leaves in the same write as the command's acknowledgement: no thread
/// hand-off, the fastest way to serve, until `oc2_consumer_close` or
/// `oc2_consumer_free`. Returns at once; commands already waiting are
/// answered first, in order.
///
/// The handler must not block: while it runs, the connection reads and
/// writes nothing (keep-alive included), and no handler timeout can
/// interrupt it (`oc2_consumer_options_set_handler_timeout` does not
/// apply; a handler that holds the thread 100 ms or more is logged as a
/// warning). Inside it, call only what does not wait: the `oc2_message_*`
/// readers of `command`, `oc2_reply_set_text`, `oc2_reply_set_results`,
/// `oc2_consumer_stats`, `oc2_consumer_broker`, the codec and sans-IO
/// functions. No function that waits for the network
/// (`oc2_producer_send`, `oc2_exchange_wait`, `oc2_consumer_next`, ...:
/// they fail with `OC2_RESULT_PANIC` on this thread);
/// `oc2_consumer_close` returns `OC2_RESULT_INVALID_ARGUMENT` and
/// `oc2_consumer_free` does nothing. Work that blocks belongs in
/// `oc2_consumer_serve_handler`. `userdata` must be usable from the
/// library's threads. `OC2_RESULT_INVALID_ARGUMENT` if this consumer
/// already serves (any style).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_serve_inline(
    consumer: *const oc2_consumer,
    handler: oc2_handler_callback,
    userdata: *mut c_void,
) -> oc2_result {
    serve_on_runtime(consumer, handler, userdata, |serving, handler| async move {
        let _ = serving
            .serve_inline_incoming(move |incoming| handler.call(incoming, true))
            .await;
    })
}

fn send(c: &oc2_consumer, command: &oc2_command, response: Response) -> Result<(), oc2_result> {
    block(command.incoming.reply(response)).map_err(|e| c.last_error.fail(&e))
}

/// Answers `command` with a response object given as JSON text
/// (`{"status": 200, "results": {...}}`, `len` bytes of UTF-8), in the
/// dialect and encoding the command came in, to the topics of its sender.
/// Send a `102` first if the work takes long, then the final response.
/// Sends nothing if the producer asked for no response. Returns once the
/// client has it (kept across reconnects, retried at QoS 1), without waiting
/// for the broker; a refusal by the broker is logged and not counted as
/// published. `OC2_RESULT_TIMEOUT`, nothing sent, for a command of
/// `oc2_consumer_serve` already answered `500` at its handler timeout.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_reply(
    consumer: *const oc2_consumer,
    command: *const oc2_command,
    response_json: *const c_char,
    len: usize,
) -> oc2_result {
    guard(|| {
        let c = try_ref(consumer)?;
        c.last_error.clear();
        let cmd = try_ref(command)?;
        let bytes = try_slice(response_json.cast(), len)?;
        let value = parse_json(bytes).map_err(|e| c.last_error.fail(&e))?;
        let fail = |e: MessageError| c.last_error.fail(&e);
        send(c, cmd, Response::from_json_value(value).map_err(fail)?)
    })
}

/// Answers `command` with `status` (200, 400, ...) and an optional
/// `status_text` (may be NULL); as `oc2_consumer_reply`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_reply_status(
    consumer: *const oc2_consumer,
    command: *const oc2_command,
    status: u16,
    status_text: *const c_char,
) -> oc2_result {
    guard(|| {
        let c = try_ref(consumer)?;
        c.last_error.clear();
        let cmd = try_ref(command)?;
        let mut response = Response::new(status);
        if let Some(text) = try_opt_cstr(status_text)? {
            response = response.with_text(text);
        }
        send(c, cmd, response)
    })
}

/// The consumer's counters.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_stats(
    consumer: *const oc2_consumer,
    out: *mut oc2_stats,
) -> oc2_result {
    guard(|| {
        let c = try_ref(consumer)?;
        let out = try_out(out)?;
        write(out, c.consumer.stats().into());
        Ok(())
    })
}

/// Copies the URL of the broker the consumer is connected to (after a
/// failover, the one in use) into `buf`. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_broker(
    consumer: *const oc2_consumer,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(&try_ref(consumer)?.consumer.broker(), buf, len, written))
}

/// Connection callbacks, as `oc2_producer_set_connection_callbacks`:
/// `oc2_consumer_close` and `oc2_consumer_free` deliver
/// `OC2_DISCONNECT_CLOSED` and wait for the last callback to return.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_set_connection_callbacks(
    consumer: *const oc2_consumer,
    on_connect: oc2_connect_callback,
    on_disconnect: oc2_disconnect_callback,
    userdata: *mut c_void,
) -> oc2_result {
    guard(|| {
        let c = try_ref(consumer)?;
        c.callbacks
            .start(c.consumer.events(), on_connect, on_disconnect, userdata)
    })
}

/// Copies the detail of the consumer's last failure into `buf`; the empty
/// string if the last call succeeded. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_last_error(
    consumer: *const oc2_consumer,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(&try_ref(consumer)?.last_error.text(), buf, len, written))
}

/// The command message (action, target, headers...; `oc2_message_topic`
/// says where it arrived), borrowed from `command`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_command_message(
    command: *const oc2_command,
    out: *mut *const oc2_message,
) -> oc2_result {
    guard(|| {
        let cmd = try_ref(command)?;
        let out = try_out(out)?;
        write(out, std::ptr::from_ref(&cmd.message));
        Ok(())
    })
}

/// Frees a command; NULL is accepted and ignored. A command freed without
/// a reply gets none (its producer times out).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_command_free(command: *mut oc2_command) {
    guard_free(|| free_box(command));
}
