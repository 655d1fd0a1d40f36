//! `oc2_producer` and `oc2_exchange`: send commands, read their responses.

use std::collections::VecDeque;
use std::ffi::c_char;
use std::time::Duration;

use oc2::client::{Exchange, Producer, Reply, SendOptions};
use oc2::{Command, MessageError, MessageErrorKind};

use crate::client::{SharedError, block, block_for, oc2_stats};
use crate::config::oc2_config;
use crate::error::{message_error_code, oc2_result};
use crate::ffi::{
    NulStr, free_box, guard, guard_free, oc2_str, oc2_strings, to_c, try_cstr, try_cstr_array,
    try_mut, try_out, try_ref, try_slice, write, write_text,
};
use crate::message::{dialect_from, encoding_from, oc2_dialect, oc2_encoding, oc2_message};

/// A connected producer: sends commands, collects responses. Thread-safe:
/// several threads may send on one producer at once. Free with
/// `oc2_producer_free`, which disconnects.
pub struct oc2_producer {
    producer: Producer,
    last_error: SharedError,
}

/// The responses to one command, as they arrive. Owned by the caller
/// (`oc2_exchange_free`); use it from one thread at a time.
pub struct oc2_exchange {
    exchange: Exchange,
    request_id: NulStr,
    /// Responses gathered by `oc2_exchange_wait`, not yet taken.
    buffered: VecDeque<Reply>,
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
        exchange,
        request_id,
        buffered: VecDeque::new(),
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
        let bytes = try_slice(command_json.cast(), len)?;
        let to = try_cstr_array(to, n_to)?;
        let out = try_out(out)?;
        let command = parse_command(p, bytes)?;
        let options = SendOptions {
            to: to.iter().map(|s| (*s).to_owned()).collect(),
            timeout: Duration::from_millis(u64::from(timeout_ms)),
            ..SendOptions::default()
        };
        write(out, start(p, p.producer.send(command, options))?);
        Ok(())
    })
}

fn parse_command(p: &oc2_producer, bytes: &[u8]) -> Result<oc2::Command, oc2_result> {
    let fail = |e: MessageError| {
        p.last_error.set(e.to_string());
        message_error_code(&e)
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        p.last_error.set(format!(
            "JSON text is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ));
        oc2_result::OC2_RESULT_INVALID_UTF8
    })?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        fail(MessageError::new(
            MessageErrorKind::Syntax,
            "",
            format!("malformed JSON: {e}"),
        ))
    })?;
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
            dialect: dialect_from(dialect)?,
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
        let x = try_mut(exchange)?;
        let out = try_out(out)?;
        let reply = match x.buffered.pop_front() {
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
        let x = try_mut(exchange)?;
        while let Some(r) = block(x.exchange.next()) {
            x.buffered.push_back(r);
        }
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
