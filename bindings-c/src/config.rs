//! `oc2_config_builder` and `oc2_config`: how to reach the broker.

use std::ffi::c_char;

use oc2::client::{ClientConfig, MqttVersion};
use oc2::settings::Value;

use crate::client::SharedError;
use crate::error::oc2_result;
use crate::ffi::{
    LastError, box_handle, free_box, guard, guard_free, to_c, try_cstr, try_mut, try_out, try_ref,
    write, write_text,
};
use crate::settings::{
    Append, Change, Holder, OrDefault, ZeroIsDefault, get_text, set_by_name, set_text,
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
box_handle!(oc2_config_builder);

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
box_handle!(oc2_config);

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

impl Holder for oc2_config_builder {
    type Settings = ClientConfig;
    fn parts(&mut self) -> (&mut ClientConfig, &mut LastError) {
        (&mut self.config, &mut self.last_error)
    }
    fn settings(&self) -> &ClientConfig {
        &self.config
    }
}

/// Sets the setting called `name` from `value` written as text; every
/// typed setter below is a shorthand for one (or two, three) of these.
///
/// The settings, by their snake-case names (the library's in every language), with
/// what their text is and their default:
// @generated settings ClientConfig (from core's settings table: edit core/src/settings.rs, then `make generate`)
/// - `brokers` (a list, separated by commas): broker URLs (`mqtt://host:port`, `mqtts://host:port`,
///   `ws://host:port/path`, `wss://host:port/path`); several are tried in order (failover).
/// - `client_id` (text): the MQTT client id; when absent, one is generated (`oc2mqtt-<uuid>`) and
///   the session ends with the connection: give one (or `client_id_file`) to keep a session on the
///   broker.
/// - `client_id_file` (a path): a file holding the client id: read if it exists, else written with
///   the generated one, so the broker can resume the session after a restart.
/// - `username` (text): user name for the broker.
/// - `password` (text): password for the broker; never logged nor shown.
/// - `ca_file` (a path): CA certificates (PEM) the broker's certificate must chain to; when absent,
///   the system's.
/// - `cert_file` (a path): client certificate (PEM) for mutual TLS, with `key_file`.
/// - `key_file` (a path): client private key (PEM) for mutual TLS.
/// - `insecure_skip_verify` (true/false; default false): skip the check of the broker's certificate
///   and host name; testing only: anyone can then impersonate the broker.
/// - `keep_alive_secs` (a whole number; default 60): keep-alive interval in seconds, at most 300 as
///   MQTT-T 3.4 requires.
/// - `session_expiry_secs` (a whole number; default 3600): how long the broker keeps the session
///   after a disconnect (MQTT v5 Session Expiry), for a given `client_id` or `client_id_file`: a
///   generated client id's session ends with the connection.
/// - `qos` (a whole number; default 1): QoS for publishing: 1 or 2.
/// - `mqtt_version` ("5", "3.1.1", "auto"; default "auto"): the MQTT version: `5`, `3.1.1`, or
///   `auto`: 5, falling back to 3.1.1 when the broker refuses it.
/// - `message_expiry_secs` (a whole number): MQTT v5 Message Expiry Interval put on every publish,
///   so that a broker drops messages nobody received in time; when absent, none.
/// - `topic_prefix` (text): a prefix before `oc2/` in every topic (brokers shared between sites).
/// - `otupy_compat` (true/false; default false): the same as peer `otupy`, kept for existing
///   callers.
/// - `peer` ("spec", "otupy", "yuuki", "oif"; default "spec"): the peers to suit: their topics,
///   dialect and `msgType` spelling; every peer's forms are decoded whatever this says. `spec`:
///   MQTT-T as written; `otupy`: otupy 1.1, its flat dialect and `oc2/rsp/device/<id>`; `yuuki`:
///   yuuki consumers, commands on `oc2/cmd` too; `oif`: the OIF orchestrator, responses on
///   `oc2/rsp/<its id>` too, `msgType` spelled `request`/`response`.
/// - `response_topics` ("shared", "producer", "both"): where a consumer's responses go: `shared`
///   (`oc2/rsp`), `producer` (`oc2/rsp/<producer>`) or `both`; when absent, as the peer has it
///   (`oc2/rsp` only for the specification's peers).
/// - `connect_timeout_secs` (a whole number; default 10): how long one connection attempt may take,
///   in seconds: TCP, TLS and WebSocket together, then again for the CONNACK.
/// - `max_payload` (a whole number; default 1048576): largest payload decoded, in bytes; larger
///   ones are refused before parsing.
// @end generated
///
/// Flags also take `1`/`0`, `yes`/`no`, `on`/`off`; a list replaces the one there
/// (`"mqtt://a:1883,mqtt://b:1883"` for `brokers`).
///
/// `OC2_RESULT_CONFIG` for an unknown name or a value that does not fit,
/// with the reason in `oc2_config_builder_last_error` ("unknown setting
/// 'keepalive' for ClientConfig; known: brokers, ..." or "qos: expected a
/// whole number from 0 to 255, found 'two'"); nothing is changed then.
/// Ranges between settings (QoS 1 or 2, keep-alive at most 300) are
/// checked by `oc2_config_builder_build`.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set(
    builder: *mut oc2_config_builder,
    name: *const c_char,
    value: *const c_char,
) -> oc2_result {
    guard(|| set_text(builder, name, value))
}

/// Copies the setting called `name` (as for `oc2_config_builder_set`) into
/// `buf` as text: `"60"`, `"true"`, lists joined by commas. Buffer rules as
/// for `oc2_result_text`. `OC2_RESULT_ABSENT` when the setting is unset (no
/// client id given) or secret (`password` is never read back);
/// `OC2_RESULT_CONFIG` for an unknown name.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_get(
    builder: *const oc2_config_builder,
    name: *const c_char,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> oc2_result {
    guard(|| get_text(builder, name, buf, len, written))
}

/// Adds a failover broker, tried when the ones before it cannot be reached
/// (appends to `brokers`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_add_broker(
    builder: *mut oc2_config_builder,
    broker_url: *const c_char,
) -> oc2_result {
    set_by_name!(builder; "brokers" = Append(broker_url))
}

/// Sets the MQTT client id (`client_id`). Keep it stable so the broker can
/// resume the session and deliver what queued while the client was away:
/// only a client id given here or by `oc2_config_builder_set_client_id_file`
/// keeps a session on the broker (a generated one ends with the connection).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_client_id(
    builder: *mut oc2_config_builder,
    client_id: *const c_char,
) -> oc2_result {
    set_by_name!(builder; "client_id" = client_id)
}

/// Keeps the client id in the file at `path` (`client_id_file`): read if it
/// exists, else generated once and written there.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_client_id_file(
    builder: *mut oc2_config_builder,
    path: *const c_char,
) -> oc2_result {
    set_by_name!(builder; "client_id_file" = path)
}

/// Sets the username and password (`username`, `password`; `password` may
/// be NULL: none).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_credentials(
    builder: *mut oc2_config_builder,
    username: *const c_char,
    password: *const c_char,
) -> oc2_result {
    set_by_name!(builder; "username" = username, "password" = OrDefault(password))
}

/// Sets the TLS files (PEM; `ca_file`, `cert_file`, `key_file`): the CA
/// that signed the broker's certificate, and a client certificate and key
/// for brokers that require one. Each may be NULL (none; the system's CAs).
/// TLS is used for `mqtts://` and `wss://` brokers, at version 1.2 or later.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_tls(
    builder: *mut oc2_config_builder,
    ca_file: *const c_char,
    cert_file: *const c_char,
    key_file: *const c_char,
) -> oc2_result {
    set_by_name!(builder;
        "ca_file" = OrDefault(ca_file),
        "cert_file" = OrDefault(cert_file),
        "key_file" = OrDefault(key_file),
    )
}

/// Skips the broker certificate check (`insecure_skip_verify`). For tests
/// only: anyone can then impersonate the broker.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_insecure_skip_verify(
    builder: *mut oc2_config_builder,
    skip: bool,
) -> oc2_result {
    set_by_name!(builder; "insecure_skip_verify" = skip)
}

/// Sets the keep-alive in seconds (`keep_alive_secs`; at most 300, as
/// MQTT-T requires).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_keep_alive(
    builder: *mut oc2_config_builder,
    seconds: u32,
) -> oc2_result {
    set_by_name!(builder; "keep_alive_secs" = seconds)
}

/// Sets how long the broker keeps the session after a disconnect, in
/// seconds (`session_expiry_secs`, MQTT v5), when the client id is given: a
/// generated client id's session ends with the connection.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_session_expiry(
    builder: *mut oc2_config_builder,
    seconds: u32,
) -> oc2_result {
    set_by_name!(builder; "session_expiry_secs" = seconds)
}

/// Sets the QoS of publishes and subscriptions (`qos`: 1 or 2).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_qos(
    builder: *mut oc2_config_builder,
    qos: u8,
) -> oc2_result {
    set_by_name!(builder; "qos" = qos)
}

/// The `OC2_MQTT_*` constant of a core version.
pub(crate) fn mqtt_version_to_c(v: MqttVersion) -> oc2_mqtt_version {
    match v {
        MqttVersion::Auto => OC2_MQTT_AUTO,
        MqttVersion::V311 => OC2_MQTT_V311,
        MqttVersion::V5 => OC2_MQTT_V5,
    }
}

/// The `mqtt_version` choice of an `OC2_MQTT_*` constant.
fn mqtt_version(version: oc2_mqtt_version) -> Result<Change, oc2_result> {
    let v = match version {
        OC2_MQTT_AUTO => MqttVersion::Auto,
        OC2_MQTT_V311 => MqttVersion::V311,
        OC2_MQTT_V5 => MqttVersion::V5,
        _ => return Err(oc2_result::OC2_RESULT_INVALID_ARGUMENT),
    };
    Ok(Change::Set(Value::Text(v.to_string())))
}

/// Sets the MQTT version (`OC2_MQTT_*`; `mqtt_version`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_mqtt_version(
    builder: *mut oc2_config_builder,
    version: oc2_mqtt_version,
) -> oc2_result {
    set_by_name!(builder; "mqtt_version" = mqtt_version(version))
}

/// Puts every topic under `prefix` (`site-a/oc2/...`; `topic_prefix`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_topic_prefix(
    builder: *mut oc2_config_builder,
    prefix: *const c_char,
) -> oc2_result {
    set_by_name!(builder; "topic_prefix" = prefix)
}

/// The `peer` choice of an `OC2_PEER_*` constant.
fn peer_choice(peer: crate::topics::oc2_peer) -> Result<Change, oc2_result> {
    crate::topics::peer_from(peer).map(|p| Change::Set(Value::Text(p.as_str().into())))
}

/// The `response_topics` choice of an `OC2_RESPONSE_TOPICS_*` constant
/// (`OC2_RESPONSE_TOPICS_PEER`: the default, as the peer has it).
fn response_topics_choice(
    response_topics: crate::topics::oc2_response_topics,
) -> Result<Change, oc2_result> {
    Ok(
        match crate::topics::response_topics_from(response_topics)? {
            Some(r) => Change::Set(Value::Text(r.as_str().into())),
            None => Change::Unset,
        },
    )
}

/// Suits `peer` (`OC2_PEER_*`; default `OC2_PEER_SPEC`; `peer`): the topics,
/// dialect and `msgType` spelling its family of peers needs. Every peer's
/// forms are decoded whatever this says.
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_peer(
    builder: *mut oc2_config_builder,
    peer: crate::topics::oc2_peer,
) -> oc2_result {
    set_by_name!(builder; "peer" = peer_choice(peer))
}

/// Sets where a consumer publishes its responses (`OC2_RESPONSE_TOPICS_*`;
/// `response_topics`; default `OC2_RESPONSE_TOPICS_PEER`: as the peer has
/// it, `oc2/rsp` only for the specification's peers).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_response_topics(
    builder: *mut oc2_config_builder,
    response_topics: crate::topics::oc2_response_topics,
) -> oc2_result {
    set_by_name!(builder; "response_topics" = response_topics_choice(response_topics))
}

/// Sets how long connecting may take, in seconds (`connect_timeout_secs`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_connect_timeout(
    builder: *mut oc2_config_builder,
    seconds: u32,
) -> oc2_result {
    set_by_name!(builder; "connect_timeout_secs" = seconds)
}

/// Puts a Message Expiry Interval of `seconds` on every publish (MQTT v5;
/// `message_expiry_secs`), so that a broker drops commands and responses
/// nobody received in time; 0: none (the default).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_message_expiry(
    builder: *mut oc2_config_builder,
    seconds: u32,
) -> oc2_result {
    set_by_name!(builder; "message_expiry_secs" = ZeroIsDefault(seconds))
}

/// Sets the largest payload accepted, in bytes (`max_payload`; default 1
/// MiB): larger ones are refused before parsing (a consumer answers `400`
/// when it can tell who sent it; counted in `oc2_stats.decode_errors`).
#[unsafe(no_mangle)]
pub extern "C" fn oc2_config_builder_set_max_payload(
    builder: *mut oc2_config_builder,
    bytes: usize,
) -> oc2_result {
    set_by_name!(builder; "max_payload" = bytes)
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
        b.config
            .validate_naming(setter)
            .map_err(|e| b.last_error.fail(&e))?;
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
