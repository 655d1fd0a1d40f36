//! Client configuration and counters: wraps `oc2mqtt::client::{ClientConfig, Stats}`.

use std::path::PathBuf;

use napi::bindgen_prelude::{Env, Object, Unknown, ValueType};

use oc2mqtt::client::{ClientConfig, MqttVersion, Stats};
use oc2mqtt::topics::{Peer, ResponseTopics};

use crate::convert::{self, field};

/// The keys every role's configuration accepts, in the order documented in index.d.ts.
pub(crate) const CLIENT_KEYS: &[&str] = &[
    "url",
    "brokers",
    "clientId",
    "clientIdFile",
    "username",
    "password",
    "caFile",
    "certFile",
    "keyFile",
    "insecureSkipVerify",
    "keepAliveSecs",
    "sessionExpirySecs",
    "qos",
    "mqttVersion",
    "messageExpirySecs",
    "topicPrefix",
    "otupyCompat",
    "peer",
    "responseTopics",
    "connectTimeoutSecs",
    "maxPayload",
];

/// Checks a configuration's values as the core does, naming each setting
/// as JavaScript spells it (`keepAliveSecs`, not `keep_alive_secs`).
pub(crate) fn validate(c: &ClientConfig) -> oc2mqtt::Result<()> {
    c.validate_naming(camel_case)
}

fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for ch in snake.chars() {
        match ch {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Refuses keys that are not in `CLIENT_KEYS` or `extra`, so that a typo
/// (`keepalive`) is an error rather than a silently ignored setting.
pub(crate) fn check_keys(
    env: &Env,
    obj: &Object<'_>,
    what: &str,
    extra: &[&str],
) -> napi::Result<()> {
    for key in Object::keys(obj)? {
        if !CLIENT_KEYS.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
            let mut known: Vec<&str> = CLIENT_KEYS.to_vec();
            known.extend_from_slice(extra);
            return Err(convert::value_error(
                env,
                &format!(
                    "The {what} has an unknown property \"{key}\"; known properties: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn secs(env: &Env, obj: &Object<'_>, key: &str) -> napi::Result<Option<u32>> {
    Ok(convert::opt_uint(
        env,
        field(env, obj, key)?,
        &format!("config.{key}"),
        u32::MAX.into(),
    )?
    .map(|n| n as u32))
}

pub(crate) fn path(env: &Env, obj: &Object<'_>, key: &str) -> napi::Result<Option<PathBuf>> {
    Ok(
        convert::opt_string(env, field(env, obj, key)?, &format!("config.{key}"))?
            .map(PathBuf::from),
    )
}

/// Reads the client settings of a role's configuration object.
///
/// Values are checked for type here; their meaning (URL syntax, ranges,
/// files) is checked by the core when connecting.
pub(crate) fn config(env: &Env, obj: &Object<'_>) -> napi::Result<ClientConfig> {
    let mut c = ClientConfig::default();
    let url = convert::opt_string(env, field(env, obj, "url")?, "config.url")?;
    let brokers = convert::opt_string_list(env, field(env, obj, "brokers")?, "config.brokers")?;
    c.brokers = match (url, brokers) {
        (Some(u), None) => vec![u],
        (None, Some(b)) => b,
        (None, None) => {
            return Err(convert::type_error(
                env,
                "The config must have a \"url\" (string) or \"brokers\" (array of strings)",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(convert::value_error(
                env,
                "The config must have either \"url\" or \"brokers\", not both",
            ));
        }
    };
    c.client_id = convert::opt_string(env, field(env, obj, "clientId")?, "config.clientId")?;
    c.client_id_file = path(env, obj, "clientIdFile")?;
    c.username = convert::opt_string(env, field(env, obj, "username")?, "config.username")?;
    c.password = convert::opt_string(env, field(env, obj, "password")?, "config.password")?;
    c.ca_file = path(env, obj, "caFile")?;
    c.cert_file = path(env, obj, "certFile")?;
    c.key_file = path(env, obj, "keyFile")?;
    if let Some(b) = convert::opt_bool(
        env,
        field(env, obj, "insecureSkipVerify")?,
        "config.insecureSkipVerify",
    )? {
        c.insecure_skip_verify = b;
    }
    if let Some(s) = secs(env, obj, "keepAliveSecs")? {
        c.keep_alive_secs = s;
    }
    if let Some(s) = secs(env, obj, "sessionExpirySecs")? {
        c.session_expiry_secs = s;
    }
    if let Some(q) = convert::opt_uint(env, field(env, obj, "qos")?, "config.qos", 255)? {
        c.qos = q as u8;
    }
    let version = field(env, obj, "mqttVersion")?;
    let version = match version.get_type()? {
        ValueType::Undefined | ValueType::Null => None,
        ValueType::Number => {
            Some(convert::uint(env, version, "config.mqttVersion", 255)?.to_string())
        }
        _ => Some(convert::string(
            env,
            version,
            "config.mqttVersion (5, '5', '3.1.1' or 'auto')",
        )?),
    };
    if let Some(v) = version {
        c.mqtt_version = v.parse::<MqttVersion>().map_err(|e| {
            convert::value_error(env, &format!("The config.mqttVersion is invalid: {e}"))
        })?;
    }
    c.message_expiry_secs = secs(env, obj, "messageExpirySecs")?;
    c.topic_prefix =
        convert::opt_string(env, field(env, obj, "topicPrefix")?, "config.topicPrefix")?;
    if let Some(b) = convert::opt_bool(env, field(env, obj, "otupyCompat")?, "config.otupyCompat")?
    {
        c.otupy_compat = b;
    }
    if let Some(p) = peer(env, field(env, obj, "peer")?, "config.peer")? {
        c.peer = p;
    }
    c.response_topics = response_topics(
        env,
        field(env, obj, "responseTopics")?,
        "config.responseTopics",
    )?;
    if let Some(s) = secs(env, obj, "connectTimeoutSecs")? {
        c.connect_timeout_secs = s;
    }
    if let Some(n) = convert::opt_uint(
        env,
        field(env, obj, "maxPayload")?,
        "config.maxPayload",
        convert::MAX_SAFE,
    )? {
        c.max_payload = n as usize;
    }
    Ok(c)
}

/// The text of a configuration error without its `configuration: ` prefix.
fn reason(e: &oc2mqtt::Error) -> String {
    match e {
        oc2mqtt::Error::Config(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A peer name (`'spec'`, `'otupy'`, `'yuuki'`, `'oif'`), or `None` when absent.
pub(crate) fn peer(env: &Env, v: Unknown<'_>, what: &str) -> napi::Result<Option<Peer>> {
    convert::opt_string(env, v, what)?
        .map(|p| {
            p.parse::<Peer>().map_err(|e| {
                convert::value_error(env, &format!("The {what} is invalid: {}", reason(&e)))
            })
        })
        .transpose()
}

/// Where responses go (`'shared'`, `'producer'`, `'both'`), or `None` when absent.
pub(crate) fn response_topics(
    env: &Env,
    v: Unknown<'_>,
    what: &str,
) -> napi::Result<Option<ResponseTopics>> {
    convert::opt_string(env, v, what)?
        .map(|r| {
            r.parse::<ResponseTopics>().map_err(|e| {
                convert::value_error(env, &format!("The {what} is invalid: {}", reason(&e)))
            })
        })
        .transpose()
}

/// The configuration object of a role: an object whose keys are known.
pub(crate) fn config_object<'a>(
    env: &Env,
    v: Unknown<'a>,
    extra: &[&str],
) -> napi::Result<Object<'a>> {
    let obj = convert::object(env, v, "\"config\" argument")?;
    check_keys(env, &obj, "\"config\" argument", extra)?;
    Ok(obj)
}

/// Counters as a plain object, with the MQTT version spoken (`'5'`,
/// `'3.1.1'`, or null before the first connection).
pub(crate) fn stats_to_js<'e>(env: &'e Env, s: &Stats) -> napi::Result<Object<'e>> {
    let mut o = Object::new(env)?;
    o.set("mqttVersion", s.mqtt_version.map(|v| v.to_string()))?;
    o.set("published", s.published as f64)?;
    o.set("received", s.received as f64)?;
    o.set("duplicates", s.duplicates as f64)?;
    o.set("decodeErrors", s.decode_errors as f64)?;
    o.set("unsolicited", s.unsolicited as f64)?;
    o.set("reconnects", s.reconnects as f64)?;
    o.set("publishErrors", s.publish_errors as f64)?;
    o.set("discarded", s.discarded as f64)?;
    o.set("stale", s.stale as f64)?;
    Ok(o)
}
