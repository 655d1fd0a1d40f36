//! `oc2_producer` and `oc2_exchange`: send commands, read their responses.

use std::collections::VecDeque;
use std::ffi::{c_char, c_void};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use oc2::client::{Exchange, Producer, Reply, SendOptions, SharedExchange};
use oc2::{Command, MessageError};

use crate::client::{SharedError, block, block_for, oc2_stats};
use crate::config::oc2_config;
use crate::error::oc2_result;
use crate::events::{ConnectionCallbacks, oc2_connect_callback, oc2_disconnect_callback};
use crate::ffi::{
    NulStr, box_handle, free_box, guard, guard_free, oc2_str, oc2_strings, parse_json, to_c,
    try_cstr, try_cstr_array, try_out, try_ref, try_slice, write, write_text,
};
use crate::message::{dialect_from, encoding_from, oc2_dialect, oc2_encoding, oc2_message};

/// A connected producer: sends commands, collects responses. Thread-safe:
/// several threads may send on one producer at once. Free with
/// `oc2_producer_free`, which disconnects.
pub struct oc2_producer {
    producer: Producer,
    last_error: SharedError,
    callbacks: ConnectionCallbacks,
}
box_handle!(oc2_producer);

/// The responses to one command, as they arrive. Owned by the caller
/// (`oc2_exchange_free`). Thread-safe: `oc2_exchange_cancel` from any
/// thread ends an `oc2_exchange_next` or `oc2_exchange_wait` waiting in
/// another; free it once no call on it is running.
pub struct oc2_exchange {
    exchange: SharedExchange,
    request_id: NulStr,
    /// Responses gathered by `oc2_exchange_wait`, not yet taken.
    buffered: Mutex<VecDeque<Reply>>,
}
box_handle!(oc2_exchange);

impl oc2_exchange {
    fn buffered(&self) -> MutexGuard<'_, VecDeque<Reply>> {
        self.buffered.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Connects to the broker as producer `producer_id` and subscribes to its
/// response topics. Blocks up to the configured connect timeout. On failure
/// the detail is in `oc2_config_last_error(config, ...)`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_connect(
    config: *const oc2_config,
    producer_id: *const c_char,
    out: *mut *mut oc2_producer,
) -> oc2_result {
    guard(|| {
        let config = try_ref(config)?;
        let id = try_cstr(producer_id)?;
        let out = try_out(out)?;
        let producer = block(Producer::connect(config.config.clone(), id))
            .map_err(|e| config.last_error.fail(&e))?;
        write(
            out,
            to_c(oc2_producer {
                producer,
                last_error: SharedError::default(),
                callbacks: ConnectionCallbacks::default(),
            }),
        );
        Ok(())
    })
}

/// Disconnects and frees a producer; NULL is accepted and ignored.
/// Exchanges still open end at their next wait.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_free(producer: *mut oc2_producer) {
    guard_free(|| {
        if let Ok(p) = try_ref(producer) {
            block(p.producer.close());
            p.callbacks.join();
        }
        free_box(producer);
    });
}

fn start(
    p: &oc2_producer,
    sending: impl std::future::Future<Output = oc2::Result<Exchange>>,
) -> Result<*mut oc2_exchange, oc2_result> {
    let exchange = block(sending).map_err(|e| p.last_error.fail(&e))?;
    let request_id = NulStr::new(exchange.request_id());
    Ok(to_c(oc2_exchange {
        exchange: SharedExchange::from(exchange),
        request_id,
        buffered: Mutex::default(),
    }))
}

/// Sends a command given as JSON text (`{"action": "query", "target":
/// {"features": ["versions"]}}`, `len` bytes of UTF-8) to the `n_to` devices
/// in `to` (NULL and 0 for a broadcast, or a command whose `actuator`
/// picks the profile topic), waiting up to `timeout_ms` for responses.
/// Returns once the broker accepted the publish; read the responses from
/// `*out` (freed with `oc2_exchange_free`). `timeout_ms` also bounds the
/// wait for the broker's acknowledgement: `OC2_RESULT_TIMEOUT` when it
/// does not come in time.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_send(
    producer: *const oc2_producer,
    command_json: *const c_char,
    len: usize,
    to: *const *const c_char,
    n_to: usize,
    timeout_ms: u32,
    out: *mut *mut oc2_exchange,
) -> oc2_result {
    guard(|| {
        let p = try_ref(producer)?;
        p.last_error.clear();
        let out = try_out(out)?;
        let (command, options) = send_args(p, command_json, len, to, n_to, timeout_ms)?;
        write(out, start(p, p.producer.send(command, options))?);
        Ok(())
    })
}

/// Sends a command as `oc2_producer_send` does and waits until its exchange
/// ends, as `oc2_exchange_wait` does: complete, or the timeout passed. The
/// calling thread sleeps once, until the end, instead of once for the
/// broker's acknowledgement and again for the responses (a device loop
/// that sends one command at a time saves a thread wake-up per command).
/// The responses are read from `*out` with `oc2_exchange_next`, which
/// returns them at once and then `OC2_RESULT_DONE`; `oc2_exchange_is_complete`
/// and `oc2_exchange_missing` tell how it ended. `OC2_RESULT_TIMEOUT` when
/// the broker did not acknowledge the command within `timeout_ms`; an error
/// at once when it refused it.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_send_wait(
    producer: *const oc2_producer,
    command_json: *const c_char,
    len: usize,
    to: *const *const c_char,
    n_to: usize,
    timeout_ms: u32,
    out: *mut *mut oc2_exchange,
) -> oc2_result {
    guard(|| {
        let p = try_ref(producer)?;
        p.last_error.clear();
        let out = try_out(out)?;
        let (command, options) = send_args(p, command_json, len, to, n_to, timeout_ms)?;
        let summary =
            block(p.producer.send_collect(command, options)).map_err(|e| p.last_error.fail(&e))?;
        write(
            out,
            to_c(oc2_exchange {
                exchange: SharedExchange::ended(&summary),
                request_id: NulStr::new(&summary.request_id),
                buffered: Mutex::new(summary.responses.into()),
            }),
        );
        Ok(())
    })
}

/// `oc2_producer_send`'s and `oc2_producer_send_wait`'s arguments, read.
fn send_args(
    p: &oc2_producer,
    command_json: *const c_char,
    len: usize,
    to: *const *const c_char,
    n_to: usize,
    timeout_ms: u32,
) -> Result<(oc2::Command, SendOptions), oc2_result> {
    let bytes = try_slice(command_json.cast(), len)?;
    let to = try_cstr_array(to, n_to)?;
    let command = parse_command(p, bytes)?;
    let options = SendOptions {
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        timeout: Duration::from_millis(u64::from(timeout_ms)),
        ..SendOptions::default()
    };
    Ok((command, options))
}

fn parse_command(p: &oc2_producer, bytes: &[u8]) -> Result<oc2::Command, oc2_result> {
    let value = parse_json(bytes).map_err(|e| p.last_error.fail(&e))?;
    let fail = |e: MessageError| p.last_error.fail(&e);
    Command::from_json_value(value).map_err(fail)
}

/// Sends a request message as built (`oc2_codec_command_from_json` and the
/// setters: its `to` picks the topics), in `encoding` and `dialect`;
/// `request_id`, `created` and `from` are filled in when absent. The
/// exchange completes after final responses from every id in `to`, or from
/// `expected` distinct responders when `expected` is not 0. `timeout_ms`
/// bounds the exchange and the wait for the broker's acknowledgement, as
/// for `oc2_producer_send`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_send_message(
    producer: *const oc2_producer,
    command: *const oc2_message,
    encoding: oc2_encoding,
    dialect: oc2_dialect,
    expected: usize,
    timeout_ms: u32,
    out: *mut *mut oc2_exchange,
) -> oc2_result {
    guard(|| {
        let p = try_ref(producer)?;
        p.last_error.clear();
        let m = try_ref(command)?;
        let options = SendOptions {
            encoding: encoding_from(encoding)?,
            dialect: Some(dialect_from(dialect)?),
            expect: (expected != 0).then_some(expected),
            timeout: Duration::from_millis(u64::from(timeout_ms)),
            ..SendOptions::default()
        };
        let out = try_out(out)?;
        write(
            out,
            start(p, p.producer.send_message(m.message.clone(), options))?,
        );
        Ok(())
    })
}

/// The next response that matched no exchange (`*out`, owned by the
/// caller, as `oc2_exchange_next` gives them): a peer's bare `{"status":
/// 200}` without request_id, an answer after its exchange ended. Waits up
/// to `timeout_ms` (0: only what is queued; `OC2_WAIT_FOREVER`: no limit).
/// `OC2_RESULT_TIMEOUT` if none came, `OC2_RESULT_DONE` once the producer is
/// closed. Up to 1024 wait to be read; more are only counted in
/// `oc2_stats.unsolicited`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_next_unsolicited(
    producer: *const oc2_producer,
    timeout_ms: u32,
    out: *mut *mut oc2_message,
) -> oc2_result {
    guard(|| {
        let p = try_ref(producer)?;
        let out = try_out(out)?;
        let Reply {
            message,
            topic,
            encoding,
            dialect,
            latency,
        } = block_for(timeout_ms, p.producer.next_unsolicited())?
            .ok_or(oc2_result::OC2_RESULT_DONE)?;
        write(
            out,
            to_c(oc2_message::received(
                message,
                encoding,
                dialect,
                &topic,
                Some(latency),
            )),
        );
        Ok(())
    })
}

/// The producer's counters.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_stats(
    producer: *const oc2_producer,
    out: *mut oc2_stats,
) -> oc2_result {
    guard(|| {
        let p = try_ref(producer)?;
        let out = try_out(out)?;
        write(out, p.producer.stats().into());
        Ok(())
    })
}

/// Copies the URL of the broker the producer is connected to (after a
/// failover, the one in use) into `buf`. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_broker(
    producer: *const oc2_producer,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(&try_ref(producer)?.producer.broker(), buf, len, written))
}

/// Calls `on_connect(userdata, info)` when the producer is connected and
/// `on_disconnect(userdata, info)` when its connection is lost, when a
/// reconnect attempt fails, and when it is closed, as libmosquitto's
/// callbacks do; either may be NULL, not both. Both run on one library
/// thread, in order, starting at once with the current state (`on_connect`
/// for the connection already made). `userdata` is passed through untouched
/// and must be usable from that thread. `oc2_producer_free` delivers
/// `OC2_DISCONNECT_CLOSED` and waits for the last callback to return (not
/// from inside a callback). Once per producer: `OC2_RESULT_INVALID_ARGUMENT`
/// the second time.
///
/// ```c
/// static void on_connect(void *ud, const oc2_connection_info *i) { printf("up: %s\n", i->broker.data); }
/// static void on_disconnect(void *ud, const oc2_disconnect_info *i) { printf("down: %s\n", i->reason.data); }
/// oc2_producer_set_connection_callbacks(producer, on_connect, on_disconnect, NULL);
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_set_connection_callbacks(
    producer: *const oc2_producer,
    on_connect: oc2_connect_callback,
    on_disconnect: oc2_disconnect_callback,
    userdata: *mut c_void,
) -> oc2_result {
    guard(|| {
        let p = try_ref(producer)?;
        p.callbacks
            .start(p.producer.events(), on_connect, on_disconnect, userdata)
    })
}

/// Copies the detail of the producer's last failure into `buf`; the empty
/// string if the last call succeeded. Buffer rules as for `oc2_result_text`.
/// Shared by the threads using the producer.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_producer_last_error(
    producer: *const oc2_producer,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(&try_ref(producer)?.last_error.text(), buf, len, written))
}

/// Frees an exchange; NULL is accepted and ignored. Responses that arrive
/// later count as unsolicited.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_exchange_free(exchange: *mut oc2_exchange) {
    guard_free(|| free_box(exchange));
}

/// The command's request_id, borrowed from the exchange.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_exchange_request_id(
    exchange: *const oc2_exchange,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| {
        let x = try_ref(exchange)?;
        let out = try_out(out)?;
        write(out, x.request_id.view());
        Ok(())
    })
}

/// The next response (`*out`, owned by the caller; `oc2_message_topic` and
/// `oc2_message_latency_us` say where and when it came), waiting up to
/// `timeout_ms` (`OC2_WAIT_FOREVER`: until the exchange ends). Returns
/// `OC2_RESULT_TIMEOUT` when this wait ran out but the exchange is still
/// open, and `OC2_RESULT_DONE` once it ended (complete or past the timeout
/// given at send) and every response was read.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_exchange_next(
    exchange: *mut oc2_exchange,
    timeout_ms: u32,
    out: *mut *mut oc2_message,
) -> oc2_result {
    guard(|| {
        // Shared: another thread may cancel it meanwhile.
        let x = try_ref(exchange.cast_const())?;
        let out = try_out(out)?;
        let buffered = x.buffered().pop_front();
        let reply = match buffered {
            Some(r) => r,
            None => block_for(timeout_ms, x.exchange.next())?.ok_or(oc2_result::OC2_RESULT_DONE)?,
        };
        let Reply {
            message,
            topic,
            encoding,
            dialect,
            latency,
        } = reply;
        write(
            out,
            to_c(oc2_message::received(
                message,
                encoding,
                dialect,
                &topic,
                Some(latency),
            )),
        );
        Ok(())
    })
}

/// Waits until the exchange ends: complete (every expected responder sent
/// a final response) or the timeout given at send passed. Responses are
/// kept for `oc2_exchange_next`. Returns as soon as it is complete.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_exchange_wait(exchange: *mut oc2_exchange) -> oc2_result {
    guard(|| {
        let x = try_ref(exchange.cast_const())?;
        while let Some(r) = block(x.exchange.next()) {
            x.buffered().push_back(r);
        }
        Ok(())
    })
}

/// Ends the exchange now, from any thread, without waiting: an
/// `oc2_exchange_next` or `oc2_exchange_wait` waiting in another thread
/// returns at once (the responses that had arrived can still be read,
/// then `OC2_RESULT_DONE`), and the expected responders that had not
/// answered are in `oc2_exchange_missing`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_exchange_cancel(exchange: *const oc2_exchange) -> oc2_result {
    guard(|| {
        try_ref(exchange)?.exchange.cancel();
        Ok(())
    })
}

/// Whether every expected responder sent a final response (false for a
/// broadcast to an unknown audience, which ends at its timeout).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_exchange_is_complete(
    exchange: *const oc2_exchange,
    out: *mut bool,
) -> oc2_result {
    guard(|| {
        let x = try_ref(exchange)?;
        let out = try_out(out)?;
        write(out, x.exchange.is_complete());
        Ok(())
    })
}

/// The expected responders that sent no final response (known once the
/// exchange ended); `*out` is owned by the caller.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_exchange_missing(
    exchange: *const oc2_exchange,
    out: *mut *mut oc2_strings,
) -> oc2_result {
    guard(|| {
        let x = try_ref(exchange)?;
        let out = try_out(out)?;
        write(out, to_c(oc2_strings::from_iter(x.exchange.missing())));
        Ok(())
    })
}
