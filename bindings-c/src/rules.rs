//! `oc2_consumer_rules`, `oc2_decision`, `oc2_request`, `oc2_publish`: a
//! consumer's OpenC2 rules without the network (`oc2mqtt::rules`), for
//! devices that keep their own MQTT client; and the consumer options the
//! core keeps beside them (arguments, and their check).

use std::ffi::c_char;

use oc2::rules::{ConsumerRules, Decision, Publish, Received, Request};
use oc2::{MessageError, Response};

use crate::client::SharedError;
use crate::codec::oc2_properties;
use crate::consumer::oc2_consumer_options;
use crate::error::{Failure, oc2_result};
use crate::ffi::{
    NulStr, Outcome, box_handle, free_box, guard, guard_free, oc2_bytes, oc2_str, oc2_strings,
    parse_json, to_c, try_cstr, try_mut, try_opt_ref, try_out, try_ref, try_slice, write,
    write_text,
};
use crate::message::oc2_message;
use crate::settings::{Append, set_by_name};
use crate::topics::{oc2_peer, oc2_response_topics, scheme};

/// Adds a command argument implemented beyond the Language Specification's
/// and the declared profiles': a top-level name (`"x-acme"`, any value
/// beneath it) or `"namespace.name"` (`"x-acme.mode"`). Once pairs,
/// profiles or arguments are declared, a command with another argument
/// gets `501`. Appends to `args`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_add_arg(
    options: *mut oc2_consumer_options,
    name: *const c_char,
) -> oc2_result {
    set_by_name!(options; "args" = Append(name))
}

/// Copies into `buf` why `oc2_consumer_rules_new` (and
/// `oc2_consumer_connect_with`) would refuse `options` ("pair explode:x:
/// unknown action 'explode'"), or the empty string when they hold. Buffer
/// rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_options_check(
    options: *const oc2_consumer_options,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| {
        let o = try_ref(options)?;
        let text = o.options.validate().err().map(|e| e.to_string());
        write_text(text.as_deref().unwrap_or(""), buf, len, written)
    })
}

/// A consumer's rules: a message from a command topic in, the responses to
/// publish and the command to run out. It does no I/O and reads no clock.
/// Made by `oc2_consumer_rules_new`, freed by `oc2_consumer_rules_free`.
/// `oc2_consumer_rules_on_command` changes it (duplicates are remembered).
/// Not thread-safe: use it from one thread at a time.
pub struct oc2_consumer_rules {
    rules: ConsumerRules,
    last_error: SharedError,
}
box_handle!(oc2_consumer_rules);

/// What to do with one received message: publish every
/// `oc2_decision_publish` now, in order; run `oc2_decision_request` if
/// there is one; else `oc2_decision_skipped` says why nothing runs.
/// Owned by the caller (`oc2_decision_free`).
pub struct oc2_decision {
    publish: Vec<oc2_publish>,
    request: Option<oc2_request>,
    skipped: Option<NulStr>,
    reason: Option<NulStr>,
}
box_handle!(oc2_decision);

/// A command for the application to run, with what its answer needs; give
/// it to `oc2_consumer_rules_answer`. Borrowed from its decision.
pub struct oc2_request {
    request: Request,
    message: oc2_message,
}

/// A response to publish: the same payload and properties on each topic
/// (`oc2_codec_decode` reads it back, should you want the message).
/// Those a decision lends are borrowed from it; the one
/// `oc2_consumer_rules_answer` returns is owned by the caller
/// (`oc2_publish_free`).
pub struct oc2_publish {
    topics: oc2_strings,
    payload: Vec<u8>,
    props: oc2_properties,
}
box_handle!(oc2_publish);

impl From<Publish> for oc2_publish {
    fn from(p: Publish) -> Self {
        Self {
            topics: oc2_strings::from_iter(&p.topics),
            payload: p.payload,
            props: oc2_properties::new(p.properties),
        }
    }
}

impl From<Decision> for oc2_decision {
    fn from(d: Decision) -> Self {
        let skipped = d.skipped.as_ref();
        Self {
            publish: d.publish.into_iter().map(oc2_publish::from).collect(),
            request: d.execute.map(|request| oc2_request {
                message: oc2_message::received(
                    request.message.clone(),
                    request.encoding,
                    request.dialect,
                    &request.topic,
                    None,
                ),
                request,
            }),
            skipped: skipped.map(|s| NulStr::new(s.as_str())),
            reason: skipped.and_then(|s| s.reason()).as_deref().map(NulStr::new),
        }
    }
}

/// Makes the rules of the consumer `options` describe
/// (`oc2_consumer_options_new` and its setters; copied), on the topics of
/// `peer` (`OC2_PEER_*`) with responses on `response_topics`
/// (`OC2_RESPONSE_TOPICS_*`). `OC2_RESULT_CONFIG` or `OC2_RESULT_TOPIC` when
/// the options do not hold: `oc2_consumer_options_check` says why.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_rules_new(
    options: *const oc2_consumer_options,
    peer: oc2_peer,
    response_topics: oc2_response_topics,
    out: *mut *mut oc2_consumer_rules,
) -> oc2_result {
    guard(|| {
        let options = try_ref(options)?.options.clone();
        let scheme = scheme(peer, response_topics)?;
        let out = try_out(out)?;
        let rules = ConsumerRules::new(options, scheme).map_err(|e| e.code())?;
        write(
            out,
            to_c(oc2_consumer_rules {
                rules,
                last_error: SharedError::default(),
            }),
        );
        Ok(())
    })
}

/// Frees consumer rules; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_rules_free(rules: *mut oc2_consumer_rules) {
    guard_free(|| free_box(rules));
}

/// Decides what to do with a message received on `topic`: `len` bytes of
/// `payload` (NULL when `len` is 0), its PUBLISH properties (NULL over MQTT
/// 3.1.1), whether the broker delivered it `retained`, the wall clock
/// `now_ms` (milliseconds since the epoch, for `created`) and any
/// monotonic clock `monotonic_ms` (milliseconds, for the duplicate
/// windows). `*out` is owned by the caller (`oc2_decision_free`).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn oc2_consumer_rules_on_command(
    rules: *mut oc2_consumer_rules,
    topic: *const c_char,
    payload: *const u8,
    len: usize,
    props: *const oc2_properties,
    retained: bool,
    now_ms: i64,
    monotonic_ms: u64,
    out: *mut *mut oc2_decision,
) -> oc2_result {
    guard(|| {
        let r = try_mut(rules)?;
        let topic = try_cstr(topic)?;
        let payload = try_slice(payload, len)?;
        let props = try_opt_ref(props).map(|p| &p.props);
        let out = try_out(out)?;
        let received = Received {
            topic,
            payload,
            properties: props,
            retained,
        };
        let decision = r.rules.on_command(&received, now_ms, monotonic_ms);
        write(out, to_c(oc2_decision::from(decision)));
        Ok(())
    })
}

/// The application's answer to `request`, a response object given as JSON
/// text (`{"status": 200, "results": {...}}`, `len` bytes of UTF-8),
/// addressed and encoded as the command came in: `*out` is owned by the
/// caller (`oc2_publish_free`). `OC2_RESULT_ABSENT` (nothing written) when
/// the producer asked not to get it (`response_requested` `none`, or `ack`,
/// whose `102` was the answer). A response that is not valid gives its
/// `OC2_RESULT_MESSAGE_*` code and `oc2_consumer_rules_last_error` says why.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_rules_answer(
    rules: *const oc2_consumer_rules,
    request: *const oc2_request,
    response_json: *const c_char,
    len: usize,
    out: *mut *mut oc2_publish,
) -> oc2_result {
    guard(|| {
        let r = try_ref(rules)?;
        r.last_error.clear();
        let request = try_ref(request)?;
        let bytes = try_slice(response_json.cast(), len)?;
        let out = try_out(out)?;
        let value = parse_json(bytes).map_err(|e| r.last_error.fail(&e))?;
        let fail = |e: MessageError| r.last_error.fail(&e);
        let response = Response::from_json_value(value).map_err(fail)?;
        let publish = r
            .rules
            .answer(&request.request, response)
            .map_err(|e| r.last_error.fail(&e))?
            .ok_or(oc2_result::OC2_RESULT_ABSENT)?;
        write(out, to_c(oc2_publish::from(publish)));
        Ok(())
    })
}

/// Copies the detail of the last failed `oc2_consumer_rules_answer` into
/// `buf`; the empty string if it succeeded. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_consumer_rules_last_error(
    rules: *const oc2_consumer_rules,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(&try_ref(rules)?.last_error.text(), buf, len, written))
}

/// Frees a decision (and the request and publishes it lends); NULL is
/// accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_decision_free(decision: *mut oc2_decision) {
    guard_free(|| free_box(decision));
}

/// How many responses to publish now, written to `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_decision_publish_count(
    decision: *const oc2_decision,
    out: *mut usize,
) -> oc2_result {
    guard(|| {
        let d = try_ref(decision)?;
        let out = try_out(out)?;
        write(out, d.publish.len());
        Ok(())
    })
}

/// The response to publish at `index` (in order: a `102` before the final
/// answer), borrowed from the decision; `OC2_RESULT_OUT_OF_RANGE` past the end.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_decision_publish(
    decision: *const oc2_decision,
    index: usize,
    out: *mut *const oc2_publish,
) -> oc2_result {
    guard(|| {
        let d = try_ref(decision)?;
        let out = try_out(out)?;
        let p = d
            .publish
            .get(index)
            .ok_or(oc2_result::OC2_RESULT_OUT_OF_RANGE)?;
        write(out, std::ptr::from_ref(p));
        Ok(())
    })
}

/// The command to run, borrowed from the decision; `OC2_RESULT_ABSENT`
/// when nothing runs (`oc2_decision_skipped` says why).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_decision_request(
    decision: *const oc2_decision,
    out: *mut *const oc2_request,
) -> oc2_result {
    guard(|| {
        let d = try_ref(decision)?;
        let out = try_out(out)?;
        let r = d.request.as_ref().ok_or(oc2_result::OC2_RESULT_ABSENT)?;
        write(out, std::ptr::from_ref(r));
        Ok(())
    })
}

/// Why nothing runs: `duplicate`, `not_addressed`, `stale`,
/// `not_a_command`, `answered` or `undecodable`, borrowed from the
/// decision; `OC2_RESULT_ABSENT` when the command runs.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_decision_skipped(
    decision: *const oc2_decision,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(decision)?.skipped.as_ref(), out))
}

/// The detail of a skip: why it is stale, why it does not decode, the
/// status it was answered with; `OC2_RESULT_ABSENT` when there is none.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_decision_reason(
    decision: *const oc2_decision,
    out: *mut oc2_str,
) -> oc2_result {
    guard(|| lend(try_ref(decision)?.reason.as_ref(), out))
}

fn lend(field: Option<&NulStr>, out: *mut oc2_str) -> Outcome {
    let out = try_out(out)?;
    write(out, field.ok_or(oc2_result::OC2_RESULT_ABSENT)?.view());
    Ok(())
}

/// The request message (action, target, headers, `command_id` defaulted
/// to `request_id`; `oc2_message_topic`, `oc2_message_encoding` and
/// `oc2_message_dialect` say how it came), borrowed from the request.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_request_message(
    request: *const oc2_request,
    out: *mut *const oc2_message,
) -> oc2_result {
    guard(|| {
        let r = try_ref(request)?;
        let out = try_out(out)?;
        write(out, std::ptr::from_ref(&r.message));
        Ok(())
    })
}

/// Frees a publish `oc2_consumer_rules_answer` returned; NULL is accepted
/// and ignored. Never free one a decision lends.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_publish_free(publish: *mut oc2_publish) {
    guard_free(|| free_box(publish));
}

/// The topics to publish on, in order, borrowed from `publish`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_publish_topics(
    publish: *const oc2_publish,
    out: *mut *const oc2_strings,
) -> oc2_result {
    guard(|| {
        let p = try_ref(publish)?;
        let out = try_out(out)?;
        write(out, std::ptr::from_ref(&p.topics));
        Ok(())
    })
}

/// The payload bytes, borrowed from `publish` (JSON payloads are not NUL-terminated).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_publish_payload(
    publish: *const oc2_publish,
    out: *mut oc2_bytes,
) -> oc2_result {
    guard(|| {
        let p = try_ref(publish)?;
        let out = try_out(out)?;
        write(
            out,
            oc2_bytes {
                data: p.payload.as_ptr(),
                len: p.payload.len(),
            },
        );
        Ok(())
    })
}

/// The PUBLISH properties to send with the payload (ignored over MQTT
/// 3.1.1), borrowed from `publish`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_publish_properties(
    publish: *const oc2_publish,
    out: *mut *const oc2_properties,
) -> oc2_result {
    guard(|| {
        let p = try_ref(publish)?;
        let out = try_out(out)?;
        write(out, std::ptr::from_ref(&p.props));
        Ok(())
    })
}
