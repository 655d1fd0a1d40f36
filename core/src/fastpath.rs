//! The fast path of decoding: well-formed spec and otupy messages are
//! deserialized straight into the model, without building a JSON tree for
//! the envelope first.
//!
//! It only ever accepts: any surprise (an unknown key, a null, a wrong type,
//! a value the specification forbids) returns `None`, and the general path
//! in [`crate::codec`] decodes the message again and explains the problem
//! with its path. Both paths must agree on every message the fast one takes;
//! the shared vectors check that.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::codec::{Dialect, Encoding};
use crate::message::{
    self, Action, Actuator, Body, Command, Headers, JsonMap, Message, Response, Target,
};
use crate::strict::{StrictMap, StrictValue};

/// A field that, when present, must hold a `T` (a JSON null is not "absent").
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A JSON object with exactly one key (a choice: target, actuator), read
/// without building a map; any other shape fails (and the general path
/// then says why).
struct One(String, Value);

/// An object field that, when present, is a strict object (no repeated key).
fn strict_map<'de, D: Deserializer<'de>>(d: D) -> Result<Option<JsonMap>, D::Error> {
    StrictMap::deserialize(d).map(|m| Some(m.0))
}

/// A field that, when present, is a strict JSON value (no repeated key).
fn strict_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    StrictValue::deserialize(d).map(|v| Some(v.0))
}

impl<'de> Deserialize<'de> for One {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = One;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object with exactly one key")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<One, A::Error> {
                let (name, StrictValue(value)) = map
                    .next_entry()?
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(2, &self));
                }
                Ok(One(name, value))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCommand {
    action: String,
    target: One,
    #[serde(default, deserialize_with = "strict_map")]
    args: Option<JsonMap>,
    #[serde(default, deserialize_with = "present")]
    actuator: Option<One>,
    #[serde(default, deserialize_with = "present")]
    command_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireResponse {
    status: u16,
    #[serde(default, deserialize_with = "present")]
    status_text: Option<String>,
    #[serde(default, deserialize_with = "strict_map")]
    results: Option<JsonMap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum WireChoice {
    Request(WireCommand),
    Response(WireResponse),
    Notification(StrictMap),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireHeaders {
    #[serde(default, deserialize_with = "present")]
    request_id: Option<String>,
    #[serde(default, deserialize_with = "strict_value")]
    created: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    from: Option<String>,
    #[serde(default, deserialize_with = "strict_value")]
    to: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireOpenC2 {
    openc2: WireChoice,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSpec {
    #[serde(default, deserialize_with = "present")]
    headers: Option<WireHeaders>,
    body: WireOpenC2,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireOtupy {
    content: WireChoice,
    #[serde(default, deserialize_with = "present")]
    request_id: Option<String>,
    #[serde(default, deserialize_with = "strict_value")]
    created: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    from: Option<String>,
    #[serde(default, deserialize_with = "strict_value")]
    to: Option<Value>,
}

fn command(w: WireCommand) -> Option<Command> {
    let action: Action = w.action.parse().ok()?;
    let One(name, value) = w.target;
    let actuator = w
        .actuator
        .map(|One(profile, value)| Actuator { profile, value });
    let command = Command {
        action,
        target: Target { name, value },
        args: w.args,
        actuator,
        command_id: w.command_id,
        extra: JsonMap::new(),
    };
    // Invalid commands are the general path's to report, with their paths.
    command.validate().ok()?;
    Some(command)
}

fn body(c: WireChoice) -> Option<Body> {
    Some(match c {
        WireChoice::Request(w) => Body::Request(command(w)?),
        WireChoice::Response(w) => {
            message::validate_status(w.status, "status").ok()?;
            Body::Response(Response {
                status: w.status,
                status_text: w.status_text,
                results: w.results,
                extra: JsonMap::new(),
            })
        }
        WireChoice::Notification(n) => Body::Notification(n.0),
    })
}

fn headers(
    request_id: Option<String>,
    created: Option<Value>,
    from: Option<String>,
    to: Option<Value>,
) -> Option<Headers> {
    Some(Headers {
        request_id,
        created: created
            .map(|c| message::read_created(c, ""))
            .transpose()
            .ok()?,
        from,
        to: to.map(|t| message::read_to(t, "")).transpose().ok()?,
        extra: JsonMap::new(),
    })
}

fn parse<T: for<'de> Deserialize<'de>>(payload: &[u8], encoding: Encoding) -> Option<T> {
    match encoding {
        // Valid UTF-8 checked once for the whole payload: serde_json then
        // skips checking each string. Invalid UTF-8 is the general path's to report.
        Encoding::Json => serde_json::from_str(std::str::from_utf8(payload).ok()?).ok(),
        Encoding::Cbor => {
            let mut rest = payload;
            let v = ciborium::from_reader(&mut rest).ok()?;
            rest.is_empty().then_some(v)
        }
    }
}

/// Decodes a well-formed spec or otupy message, or returns `None`.
pub(crate) fn decode(payload: &[u8], encoding: Encoding) -> Option<(Message, Dialect)> {
    if let Some(w) = parse::<WireSpec>(payload, encoding) {
        let h = w.headers.unwrap_or(WireHeaders {
            request_id: None,
            created: None,
            from: None,
            to: None,
        });
        let headers = headers(h.request_id, h.created, h.from, h.to)?;
        return Some((
            Message {
                headers,
                body: body(w.body.openc2)?,
                extra: JsonMap::new(),
            },
            Dialect::Spec,
        ));
    }
    let w = parse::<WireOtupy>(payload, encoding)?;
    let headers = headers(w.request_id, w.created, w.from, w.to)?;
    Some((
        Message {
            headers,
            body: body(w.content)?,
            extra: JsonMap::new(),
        },
        Dialect::Otupy,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every valid shared vector: when the fast path takes a message, it
    /// decodes it exactly as the general path does.
    #[test]
    fn agrees_with_the_general_path_on_every_valid_vector() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
        let (mut fast, mut total) = (0, 0);
        for group in ["spec", "otupy", "bare", "v311", "cbor"] {
            for entry in std::fs::read_dir(root.join(group)).expect("vector group") {
                let path = entry.expect("entry").path();
                let case: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
                        .expect("json");
                let payload = if let Some(v) = case.get("payload_json") {
                    serde_json::to_vec(v).expect("serializes")
                } else if let Some(Value::String(t)) = case.get("payload_text") {
                    t.as_bytes().to_vec()
                } else if let Some(Value::String(h)) = case.get("payload_hex") {
                    hex::decode(h).expect("hex")
                } else {
                    continue;
                };
                let encoding = match case["expect"]["encoding"].as_str() {
                    Some("cbor") => Encoding::Cbor,
                    _ => Encoding::Json,
                };
                total += 1;
                if let Some(got) = decode(&payload, encoding) {
                    fast += 1;
                    let value = match encoding {
                        Encoding::Json => serde_json::from_slice(&payload).expect("json"),
                        Encoding::Cbor => ciborium::from_reader(payload.as_slice()).expect("cbor"),
                    };
                    let general = crate::codec::decode_value(value, None).expect("valid vector");
                    assert_eq!(got, general, "{}", path.display());
                }
            }
        }
        eprintln!("fast path took {fast} of {total} valid vectors");
        assert!(
            total > 50 && fast * 2 > total,
            "fast path took {fast} of {total}"
        );
    }
}
