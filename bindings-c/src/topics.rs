//! `oc2_topics`: subscriptions, command and response topics, id checks,
//! filter matching.

use std::ffi::c_char;

use oc2::topics::{self, Peer, ResponseTopics, Role, TopicScheme, Topics};

use crate::error::oc2_result;
use crate::ffi::{
    LastError, box_handle, free_box, guard, guard_free, oc2_strings, to_c, try_cstr,
    try_cstr_array, try_mut, try_opt_cstr, try_out, try_ref, write, write_text,
};
use crate::message::oc2_message;

/// A role on the broker: one of the `OC2_ROLE_*` constants.
pub type oc2_role = u32;
/// Sends commands, receives responses.
pub const OC2_ROLE_PRODUCER: oc2_role = 1;
/// Receives commands, sends responses.
pub const OC2_ROLE_CONSUMER: oc2_role = 2;
/// Observes all OpenC2 traffic.
pub const OC2_ROLE_MONITOR: oc2_role = 3;

/// The peers to suit (their topics, dialect and `msgType` spelling): one
/// of the `OC2_PEER_*` constants. Decoding accepts every peer's forms.
pub type oc2_peer = u32;
/// MQTT-T as written: responses on `oc2/rsp`, the spec dialect (the default).
pub const OC2_PEER_SPEC: oc2_peer = 0;
/// otupy 1.1: its flat dialect, and its producers' `oc2/rsp/device/<id>` too.
pub const OC2_PEER_OTUPY: oc2_peer = 1;
/// yuuki consumers listen on `oc2/cmd`: every command goes there too.
pub const OC2_PEER_YUUKI: oc2_peer = 2;
/// The OIF orchestrator: responses on `oc2/rsp` and `oc2/rsp/<its id>`,
/// `msgType` spelled `request`/`response`.
pub const OC2_PEER_OIF: oc2_peer = 3;

/// Where a consumer publishes its responses: one of the
/// `OC2_RESPONSE_TOPICS_*` constants.
pub type oc2_response_topics = u32;
/// As the peer has it (`oc2/rsp` only, but for `OC2_PEER_OIF`).
pub const OC2_RESPONSE_TOPICS_PEER: oc2_response_topics = 0;
/// `oc2/rsp` only: every conforming producer hears each response once.
pub const OC2_RESPONSE_TOPICS_SHARED: oc2_response_topics = 1;
/// `oc2/rsp/<producer>` only (`oc2/rsp` when the producer is unknown).
pub const OC2_RESPONSE_TOPICS_PRODUCER: oc2_response_topics = 2;
/// Both `oc2/rsp` and `oc2/rsp/<producer>`.
pub const OC2_RESPONSE_TOPICS_BOTH: oc2_response_topics = 3;

/// The core peer of an `OC2_PEER_*` constant.
pub(crate) fn peer_from(code: oc2_peer) -> Result<Peer, oc2_result> {
    match code {
        OC2_PEER_SPEC => Ok(Peer::Spec),
        OC2_PEER_OTUPY => Ok(Peer::Otupy),
        OC2_PEER_YUUKI => Ok(Peer::Yuuki),
        OC2_PEER_OIF => Ok(Peer::Oif),
        _ => Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT),
    }
}

/// The core choice of an `OC2_RESPONSE_TOPICS_*` constant (`None`: as the peer has it).
pub(crate) fn response_topics_from(
    code: oc2_response_topics,
) -> Result<Option<ResponseTopics>, oc2_result> {
    match code {
        OC2_RESPONSE_TOPICS_PEER => Ok(None),
        OC2_RESPONSE_TOPICS_SHARED => Ok(Some(ResponseTopics::Shared)),
        OC2_RESPONSE_TOPICS_PRODUCER => Ok(Some(ResponseTopics::Producer)),
        OC2_RESPONSE_TOPICS_BOTH => Ok(Some(ResponseTopics::Both)),
        _ => Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT),
    }
}

/// The core's topic scheme of `peer` and `response_topics`.
pub(crate) fn scheme(
    peer: oc2_peer,
    response_topics: oc2_response_topics,
) -> Result<TopicScheme, oc2_result> {
    Ok(TopicScheme {
        peer: peer_from(peer)?,
        response_topics: response_topics_from(response_topics)?,
    })
}

/// The topic layout (optional site prefix, otupy compatibility) and the
/// detail of its last failure. Created by `oc2_topics_new`, freed by
/// `oc2_topics_free`. Not thread-safe: use one per thread.
pub struct oc2_topics {
    topics: Topics,
    last_error: LastError,
}
box_handle!(oc2_topics);

/// Creates the standard layout (`oc2/cmd/...`, `oc2/rsp/...`), no prefix.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_new(out: *mut *mut oc2_topics) -> oc2_result {
    guard(|| {
        let out = try_out(out)?;
        write(
            out,
            to_c(oc2_topics {
                topics: Topics::new(),
                last_error: LastError::default(),
            }),
        );
        Ok(())
    })
}

/// Frees a topic layout; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_free(topics: *mut oc2_topics) {
    guard_free(|| free_box(topics));
}

/// Puts every topic under `prefix` (`"site-a"` gives `site-a/oc2/...`; the
/// empty string removes it). `OC2_RESULT_TOPIC` if the prefix is not a valid
/// topic level sequence; the layout is then unchanged.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_set_prefix(
    topics: *mut oc2_topics,
    prefix: *const c_char,
) -> oc2_result {
    guard(|| {
        let t = try_mut(topics)?;
        t.last_error.clear();
        let prefix = try_cstr(prefix)?;
        t.topics = t
            .topics
            .clone()
            .with_prefix(prefix)
            .map_err(|e| t.last_error.fail(&e))?;
        Ok(())
    })
}

/// Also uses otupy's response topic `oc2/rsp/device/<producer>`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_set_otupy_compatible(topics: *mut oc2_topics, on: bool) -> oc2_result {
    guard(|| {
        let t = try_mut(topics)?;
        t.topics = t.topics.clone().otupy_compatible(on);
        Ok(())
    })
}

/// Suits `peer` (`OC2_PEER_*`): its topics, and its response topics until
/// `oc2_topics_set_response_topics` says otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_set_peer(topics: *mut oc2_topics, peer: oc2_peer) -> oc2_result {
    guard(|| {
        let t = try_mut(topics)?;
        t.topics = t.topics.clone().with_peer(peer_from(peer)?);
        Ok(())
    })
}

/// Sets where responses go (`OC2_RESPONSE_TOPICS_*`; `OC2_RESPONSE_TOPICS_PEER`:
/// as the peer has it).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_set_response_topics(
    topics: *mut oc2_topics,
    response_topics: oc2_response_topics,
) -> oc2_result {
    guard(|| {
        let t = try_mut(topics)?;
        let r = response_topics_from(response_topics)?
            .unwrap_or_else(|| t.topics.peer().response_topics());
        t.topics = t.topics.clone().with_response_topics(r);
        Ok(())
    })
}

/// The filters a `role` subscribes to. `id` is the device id (required for
/// a consumer) or producer id (optional, may be NULL); `profiles` are the
/// `n_profiles` actuator profiles a consumer implements (may be NULL when
/// `n_profiles` is 0). `*out` is owned by the caller (`oc2_strings_free`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_subscriptions(
    topics: *mut oc2_topics,
    role: oc2_role,
    id: *const c_char,
    profiles: *const *const c_char,
    n_profiles: usize,
    out: *mut *mut oc2_strings,
) -> oc2_result {
    guard(|| {
        let t = try_mut(topics)?;
        t.last_error.clear();
        let role = match role {
            OC2_ROLE_PRODUCER => Role::Producer,
            OC2_ROLE_CONSUMER => Role::Consumer,
            OC2_ROLE_MONITOR => Role::Monitor,
            _ => return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT),
        };
        let id = try_opt_cstr(id)?;
        let profiles = try_cstr_array(profiles, n_profiles)?;
        let out = try_out(out)?;
        let subs = t
            .topics
            .subscriptions(role, id, &profiles)
            .map_err(|e| t.last_error.fail(&e))?;
        write(out, to_c(oc2_strings::from_iter(subs)));
        Ok(())
    })
}

/// The topics to publish a command on (one per `to` id, else the actuator
/// profile's, else `oc2/cmd/all`). `*out` is owned by the caller.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_command_topics(
    topics: *mut oc2_topics,
    command: *const oc2_message,
    out: *mut *mut oc2_strings,
) -> oc2_result {
    guard(|| {
        let t = try_mut(topics)?;
        t.last_error.clear();
        let m = try_ref(command)?;
        let out = try_out(out)?;
        let list = t
            .topics
            .command_topics(&m.message)
            .map_err(|e| t.last_error.fail(&e))?;
        write(out, to_c(oc2_strings::from_iter(list)));
        Ok(())
    })
}

/// The topics to publish a response on (`oc2/rsp` and `oc2/rsp/<to>`).
/// `*out` is owned by the caller.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_response_topics(
    topics: *mut oc2_topics,
    response: *const oc2_message,
    out: *mut *mut oc2_strings,
) -> oc2_result {
    guard(|| {
        let t = try_mut(topics)?;
        t.last_error.clear();
        let m = try_ref(response)?;
        let out = try_out(out)?;
        write(
            out,
            to_c(oc2_strings::from_iter(t.topics.response_topics(&m.message))),
        );
        Ok(())
    })
}

/// Checks that `id` can be used as a topic level; `what` names it in the
/// error ("device id"). `OC2_RESULT_TOPIC` with the reason in
/// `oc2_topics_last_error` if not.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_validate_id(
    topics: *mut oc2_topics,
    what: *const c_char,
    id: *const c_char,
) -> oc2_result {
    guard(|| {
        let t = try_mut(topics)?;
        t.last_error.clear();
        let (what, id) = (try_cstr(what)?, try_cstr(id)?);
        topics::validate_id(what, id).map_err(|e| t.last_error.fail(&e))
    })
}

/// Copies the detail of the last failure on `topics` into `buf`; the empty
/// string if the last call succeeded. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topics_last_error(
    topics: *const oc2_topics,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(try_ref(topics)?.last_error.text(), buf, len, written))
}

/// Whether MQTT topic filter `filter` (with `+`, `#`, `$share/...`)
/// matches `topic`; written to `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_topic_filter_matches(
    filter: *const c_char,
    topic: *const c_char,
    out: *mut bool,
) -> oc2_result {
    guard(|| {
        let (filter, topic) = (try_cstr(filter)?, try_cstr(topic)?);
        let out = try_out(out)?;
        write(out, topics::filter_matches(filter, topic));
        Ok(())
    })
}
