//! `oc2_config_builder` and `oc2_config`: how to reach the broker.

use std::ffi::c_char;
use std::path::PathBuf;

use oc2::client::{ClientConfig, MqttVersion};

use crate::client::SharedError;
use crate::error::oc2_result;
use crate::ffi::{
    LastError, free_box, guard, guard_free, to_c, try_cstr, try_mut, try_opt_cstr, try_out,
    try_ref, write, write_text,
};

/// An MQTT protocol version: one of the `OC2_MQTT_*` constants.
pub type oc2_mqtt_version = u32;
/// Try MQTT v5, fall back to v3.1.1 if the broker refuses it (the default).
pub const OC2_MQTT_AUTO: oc2_mqtt_version = 0;
/// MQTT v3.1.1 only (messages then carry no properties).
pub const OC2_MQTT_V311: oc2_mqtt_version = 4;
/// MQTT v5 only.
pub const OC2_MQTT_V5: oc2_mqtt_version = 5;

/// Collects connection settings; `oc2_config_builder_build` checks them
/// and makes an immutable `oc2_config`. Free with `oc2_config_builder_free`
/// (building does not consume it). Not thread-safe.
pub struct oc2_config_builder {
    config: ClientConfig,
    last_error: LastError,
}

/// Immutable connection settings, shared by any number of producers,
/// consumers and monitors, on any thread. Free with `oc2_config_free`
/// (the clients made from it keep their own copy).
///
/// A failed `oc2_*_connect` records its detail here: read it with
/// `oc2_config_last_error`.
pub struct oc2_config {
    pub(crate) config: ClientConfig,
    pub(crate) last_error: SharedError,
}

/// Starts a configuration for the broker at `broker_url` (`mqtt://host:port`,
/// `mqtts://host:port` for TLS, or `ws://host:port/path` and
/// `wss://host:port/path` for MQTT over WebSocket), every other setting at
/// its default: generated client id (a session that ends with the
/// connection), no credentials, keep-alive 60 s, QoS 1, MQTT v5 with
/// fallback to v3.1.1, connect timeout 10 s.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_new(
    broker_url: *const c_char,
    out: *mut *mut oc2_config_builder,
) -> oc2_result {
    guard(|| {
        let url = try_cstr(broker_url)?;
        let out = try_out(out)?;
        write(
            out,
            to_c(oc2_config_builder {
                config: ClientConfig::new(url),
                last_error: LastError::default(),
            }),
        );
        Ok(())
    })
}

/// Frees a builder; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_free(builder: *mut oc2_config_builder) {
    guard_free(|| free_box(builder));
}

fn set(
    builder: *mut oc2_config_builder,
    f: impl FnOnce(&mut ClientConfig) -> Result<(), oc2_result>,
) -> oc2_result {
    guard(|| f(&mut try_mut(builder)?.config))
}

/// Adds a failover broker, tried when the ones before it cannot be reached.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_add_broker(
    builder: *mut oc2_config_builder,
    broker_url: *const c_char,
) -> oc2_result {
    set(builder, |c| {
        c.brokers.push(try_cstr(broker_url)?.to_owned());
        Ok(())
    })
}

/// Sets the MQTT client id. Keep it stable so the broker can resume the
/// session and deliver what queued while the client was away: only a
/// client id given here or by `oc2_config_builder_set_client_id_file` keeps
/// a session on the broker (a generated one ends with the connection).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_client_id(
    builder: *mut oc2_config_builder,
    client_id: *const c_char,
) -> oc2_result {
    set(builder, |c| {
        c.client_id = Some(try_cstr(client_id)?.to_owned());
        Ok(())
    })
}

/// Keeps the client id in the file at `path`: read if it exists, else
/// generated once and written there.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_client_id_file(
    builder: *mut oc2_config_builder,
    path: *const c_char,
) -> oc2_result {
    set(builder, |c| {
        c.client_id_file = Some(PathBuf::from(try_cstr(path)?));
        Ok(())
    })
}

/// Sets the username and password (`password` may be NULL).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_credentials(
    builder: *mut oc2_config_builder,
    username: *const c_char,
    password: *const c_char,
) -> oc2_result {
    set(builder, |c| {
        c.username = Some(try_cstr(username)?.to_owned());
        c.password = try_opt_cstr(password)?.map(str::to_owned);
        Ok(())
    })
}

/// Sets the TLS files (PEM): the CA that signed the broker's certificate,
/// and a client certificate and key for brokers that require one. Each
/// may be NULL. TLS is used for `mqtts://` and `wss://` brokers, at version
/// 1.2 or later.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_tls(
    builder: *mut oc2_config_builder,
    ca_file: *const c_char,
    cert_file: *const c_char,
    key_file: *const c_char,
) -> oc2_result {
    set(builder, |c| {
        c.ca_file = try_opt_cstr(ca_file)?.map(PathBuf::from);
        c.cert_file = try_opt_cstr(cert_file)?.map(PathBuf::from);
        c.key_file = try_opt_cstr(key_file)?.map(PathBuf::from);
        Ok(())
    })
}

/// Skips the broker certificate check. For tests only: anyone can then
/// impersonate the broker.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_insecure_skip_verify(
    builder: *mut oc2_config_builder,
    skip: bool,
) -> oc2_result {
    set(builder, |c| {
        c.insecure_skip_verify = skip;
        Ok(())
    })
}

/// Sets the keep-alive in seconds (at most 300, as MQTT-T requires).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_keep_alive(
    builder: *mut oc2_config_builder,
    seconds: u32,
) -> oc2_result {
    set(builder, |c| {
        c.keep_alive_secs = seconds;
        Ok(())
    })
}

/// Sets how long the broker keeps the session after a disconnect, in
/// seconds (MQTT v5), when the client id is given: a generated client id's
/// session ends with the connection.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_session_expiry(
    builder: *mut oc2_config_builder,
    seconds: u32,
) -> oc2_result {
    set(builder, |c| {
        c.session_expiry_secs = seconds;
        Ok(())
    })
}

/// Sets the QoS of publishes and subscriptions (1 or 2).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_qos(
    builder: *mut oc2_config_builder,
    qos: u8,
) -> oc2_result {
    set(builder, |c| {
        c.qos = qos;
        Ok(())
    })
}

/// The `OC2_MQTT_*` constant of a core version.
pub(crate) fn mqtt_version_to_c(v: MqttVersion) -> oc2_mqtt_version {
    match v {
        MqttVersion::Auto => OC2_MQTT_AUTO,
        MqttVersion::V311 => OC2_MQTT_V311,
        MqttVersion::V5 => OC2_MQTT_V5,
    }
}

/// Sets the MQTT version (`OC2_MQTT_*`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_mqtt_version(
    builder: *mut oc2_config_builder,
    version: oc2_mqtt_version,
) -> oc2_result {
    set(builder, |c| {
        c.mqtt_version = match version {
            OC2_MQTT_AUTO => MqttVersion::Auto,
            OC2_MQTT_V311 => MqttVersion::V311,
            OC2_MQTT_V5 => MqttVersion::V5,
            _ => return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT),
        };
        Ok(())
    })
}

/// Puts every topic under `prefix` (`site-a/oc2/...`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_topic_prefix(
    builder: *mut oc2_config_builder,
    prefix: *const c_char,
) -> oc2_result {
    set(builder, |c| {
        c.topic_prefix = Some(try_cstr(prefix)?.to_owned());
        Ok(())
    })
}

/// Suits `peer` (`OC2_PEER_*`; default `OC2_PEER_SPEC`): the topics, dialect
/// and `msgType` spelling its family of peers needs. Every peer's forms are
/// decoded whatever this says.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_peer(
    builder: *mut oc2_config_builder,
    peer: crate::topics::oc2_peer,
) -> oc2_result {
    set(builder, |c| {
        c.peer = crate::topics::peer_from(peer)?;
        Ok(())
    })
}

/// Sets where a consumer publishes its responses (`OC2_RESPONSE_TOPICS_*`;
/// default `OC2_RESPONSE_TOPICS_PEER`: as the peer has it, `oc2/rsp` only
/// for the specification's peers).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_response_topics(
    builder: *mut oc2_config_builder,
    response_topics: crate::topics::oc2_response_topics,
) -> oc2_result {
    set(builder, |c| {
        c.response_topics = crate::topics::response_topics_from(response_topics)?;
        Ok(())
    })
}

/// Sets how long connecting may take, in seconds.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_connect_timeout(
    builder: *mut oc2_config_builder,
    seconds: u32,
) -> oc2_result {
    set(builder, |c| {
        c.connect_timeout_secs = seconds;
        Ok(())
    })
}

/// Puts a Message Expiry Interval of `seconds` on every publish (MQTT v5),
/// so that a broker drops commands and responses nobody received in time;
/// 0: none (the default).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_message_expiry(
    builder: *mut oc2_config_builder,
    seconds: u32,
) -> oc2_result {
    set(builder, |c| {
        c.message_expiry_secs = (seconds != 0).then_some(seconds);
        Ok(())
    })
}

/// Sets the largest payload accepted, in bytes (default 1 MiB): larger
/// ones are refused before parsing (a consumer answers `400` when it can
/// tell who sent it; counted in `oc2_stats.decode_errors`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_max_payload(
    builder: *mut oc2_config_builder,
    bytes: usize,
) -> oc2_result {
    set(builder, |c| {
        c.max_payload = bytes;
        Ok(())
    })
}

/// A setting as a C caller knows it: by the function that sets it.
fn setter(setting: &str) -> String {
    let function = match setting {
        "keep_alive_secs" => "keep alive (oc2_config_builder_set_keep_alive)",
        "qos" => "qos (oc2_config_builder_set_qos)",
        "connect_timeout_secs" => "connect timeout (oc2_config_builder_set_connect_timeout)",
        "client_id" => "client id (oc2_config_builder_set_client_id)",
        "cert_file" => "cert_file (oc2_config_builder_set_tls)",
        "max_payload" => "max payload (oc2_config_builder_set_max_payload)",
        "message_expiry_secs" => "message expiry (oc2_config_builder_set_message_expiry)",
        other => other,
    };
    function.to_owned()
}

/// Checks the settings and makes an immutable configuration (`*out`,
/// freed with `oc2_config_free`). `OC2_RESULT_CONFIG` (or `OC2_RESULT_IO`
/// for an unreadable file) with the reason in `oc2_config_builder_last_error`
/// ("qos (oc2_config_builder_set_qos) is 0, but OpenC2 over MQTT uses 1 or 2")
/// when they do not hold.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_build(
    builder: *mut oc2_config_builder,
    out: *mut *mut oc2_config,
) -> oc2_result {
    guard(|| {
        let b = try_mut(builder)?;
        b.last_error.clear();
        let out = try_out(out)?;
        b.config.validate_naming(setter).map_err(|e| {
            b.last_error.set(e.to_string());
            crate::error::error_code(&e)
        })?;
        write(
            out,
            to_c(oc2_config {
                config: b.config.clone(),
                last_error: SharedError::default(),
            }),
        );
        Ok(())
    })
}

/// Copies the detail of the builder's last failure into `buf`; the empty
/// string if the last call succeeded. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_last_error(
    builder: *const oc2_config_builder,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(try_ref(builder)?.last_error.text(), buf, len, written))
}

/// Frees a configuration; NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_free(config: *mut oc2_config) {
    guard_free(|| free_box(config));
}

/// Copies the detail of the last failed `oc2_*_connect` that used this
/// configuration ("cannot connect to mqtt://127.0.0.1:1: ..."); the empty
/// string if none failed. Buffer rules as for `oc2_result_text`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_last_error(
    config: *const oc2_config,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| write_text(&try_ref(config)?.last_error.text(), buf, len, written))
}
