//! Encoding and decoding of OpenC2 messages: JSON or CBOR, in one of three
//! wire dialects, with the MQTT publish properties that go with them.
//!
//! Decoding is tolerant: it takes the properties of an MQTT v5 PUBLISH when
//! there are any and sniffs encoding and dialect from the bytes when there are
//! none (MQTT v3.1.1). Encoding is strict: compact output, `created` in
//! milliseconds, and the properties of MQTT-T 3.2 with `msgType` before
//! `encoding`.
//!
//! ```
//! use oc2mqtt::codec::{self, Dialect, Encoding};
//!
//! let bare = br#"{"action": "query", "target": {"features": ["versions"]}}"#;
//! let decoded = codec::decode(bare, None).unwrap();
//! assert_eq!(decoded.dialect, Dialect::Bare);
//! assert_eq!(decoded.encoding, Encoding::Json);
//!
//! let (bytes, props) = codec::encode(&decoded.message, Encoding::Json, Dialect::Spec).unwrap();
//! assert!(bytes.starts_with(br#"{"body":{"openc2":{"request":{"action":"query""#));
//! assert_eq!(props.user_properties[0], ("msgType".into(), "req".into()));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::error::{MessageError, MessageErrorKind as Kind, Salvage};
use crate::message::{
    self, BareView, Body, ChoiceView, JsonMap, Message, MsgType, OtupyView, SpecView,
};
use crate::strict::StrictValue;

/// The MQTT Content Type of every OpenC2 message (MQTT-T 3.2).
pub const CONTENT_TYPE: &str = "application/openc2";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Default largest payload accepted by [`decode`]: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

/// The deepest nesting of objects and arrays a binding converts into a
/// message, the limit serde_json's parser has for JSON payloads: deeper, or a
/// container inside itself, is an error rather than a stack overflow.
pub const MAX_NESTING: usize = 128;

/// The values MQTT v5 (3.3.2.3.2) gives the Payload Format Indicator: 0,
/// unspecified bytes (CBOR); 1, UTF-8 (JSON). [`decode`] refuses another,
/// whichever host handed the properties over.
pub const PAYLOAD_FORMATS: [u8; 2] = [0, 1];

/// Name of the user property that carries the message type.
pub const PROP_MSG_TYPE: &str = "msgType";
/// Name of the user property that carries the encoding.
pub const PROP_ENCODING: &str = "encoding";

/// A payload serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// JSON (UTF-8 text).
    #[default]
    Json,
    /// CBOR (RFC 8949).
    Cbor,
}

impl Encoding {
    /// Every encoding, in the order of [`Encoding::NAMES`].
    pub const ALL: [Self; 2] = [Self::Json, Self::Cbor];

    /// Every encoding's name: what `encoding` takes in every language.
    pub const NAMES: [&'static str; 2] = [Self::Json.as_str(), Self::Cbor.as_str()];

    /// The value of the `encoding` user property.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Cbor => "cbor",
        }
    }
}

impl FromStr for Encoding {
    type Err = MessageError;
    fn from_str(s: &str) -> Result<Self, MessageError> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                MessageError::new(
                    Kind::ContentType,
                    "",
                    format!(
                        "unsupported encoding '{s}'; expected {}",
                        crate::settings::one_of(&Self::NAMES)
                    ),
                )
            })
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shape of a message on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// MQTT-T 2.4.2: `{"headers": {...}, "body": {"openc2": {"request": {...}}}}`.
    #[default]
    Spec,
    /// otupy's flat shape: `{"content": {"request": {...}}, "request_id": .., "from": .., ...}`.
    Otupy,
    /// The command or response object alone, no headers.
    Bare,
}

impl Dialect {
    /// Every dialect, in the order of [`Dialect::NAMES`].
    pub const ALL: [Self; 3] = [Self::Spec, Self::Otupy, Self::Bare];

    /// Every dialect's name: what `dialect` takes in every language.
    pub const NAMES: [&'static str; 3] = [
        Self::Spec.as_str(),
        Self::Otupy.as_str(),
        Self::Bare.as_str(),
    ];

    /// The dialect's name (`spec`, `otupy`, `bare`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Otupy => "otupy",
            Self::Bare => "bare",
        }
    }
}

impl FromStr for Dialect {
    type Err = MessageError;
    fn from_str(s: &str) -> Result<Self, MessageError> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                MessageError::new(
                    Kind::Dialect,
                    "",
                    format!(
                        "unknown dialect '{s}'; expected {}",
                        crate::settings::one_of(&Self::NAMES)
                    ),
                )
            })
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The MQTT v5 PUBLISH properties that matter to OpenC2.
///
/// Given to [`decode`] as received (absent entirely for MQTT v3.1.1) and
/// returned by [`encode`] for the publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// Payload Format Indicator: 1 for UTF-8 (JSON), 0 for bytes (CBOR).
    pub payload_format_indicator: Option<u8>,
    /// Content Type.
    pub content_type: Option<String>,
    /// User properties, in order.
    pub user_properties: Vec<(String, String)>,
}

impl PublishProperties {
    /// The value of the first user property named `key`.
    pub fn user(&self, key: &str) -> Option<&str> {
        self.user_properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The properties MQTT-T 3.2 requires for a message of `msg_type` in `encoding`.
    pub fn for_message(msg_type: MsgType, encoding: Encoding) -> Self {
        Self {
            payload_format_indicator: Some(u8::from(encoding == Encoding::Json)),
            content_type: Some(CONTENT_TYPE.to_owned()),
            user_properties: vec![
                (PROP_MSG_TYPE.to_owned(), msg_type.as_property().to_owned()),
                (PROP_ENCODING.to_owned(), encoding.as_str().to_owned()),
            ],
        }
    }
}

/// A decoded message and how it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The message.
    pub message: Message,
    /// The payload's encoding.
    pub encoding: Encoding,
    /// The payload's dialect; replies should use the same.
    pub dialect: Dialect,
    /// What was accepted although the specification says otherwise, kept
    /// as received (`results: ""` from the OIF device, say): for logs and
    /// monitors; empty for a conforming message.
    pub warnings: Vec<String>,
}

/// What a decoded message holds that the specification does not allow but
/// that harms nobody, so it was kept (see [`Decoded::warnings`]).
fn warnings_of(m: &Message) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = m.response() {
        if let Some(v) = r.extra.get("results") {
            out.push(format!(
                "results: expected an object, found {}; kept as received",
                message::type_name(v)
            ));
        }
    }
    out
}

/// Decodes a payload with the default size limit ([`DEFAULT_MAX_PAYLOAD`]).
pub fn decode(payload: &[u8], props: Option<&PublishProperties>) -> Result<Decoded, MessageError> {
    decode_with_limit(payload, props, DEFAULT_MAX_PAYLOAD)
}

/// Decodes a payload, refusing any larger than `max_payload` bytes before parsing.
///
/// On error, [`MessageError::salvage`] holds what could be read (request id,
/// sender, dialect, encoding) so a consumer can still answer `400`.
pub fn decode_with_limit(
    payload: &[u8],
    props: Option<&PublishProperties>,
    max_payload: usize,
) -> Result<Decoded, MessageError> {
    decode_unsalvaged(payload, props, max_payload).map_err(|mut e| {
        if e.salvage.request_id.is_none() && e.salvage.from.is_none() {
            salvage_more(&mut e, payload, props, max_payload);
        }
        e
    })
}

/// Fills in whom a message that failed came from, when the failure came
/// before its headers could be read: a content type or msgType property
/// we do not take (the payload itself may be fine), or a payload too large
/// or too deep to parse (its first bytes still name the sender).
fn salvage_more(
    e: &mut MessageError,
    payload: &[u8],
    props: Option<&PublishProperties>,
    max_payload: usize,
) {
    if e.kind == Kind::ContentType && props.is_some() {
        match decode_unsalvaged(payload, None, max_payload) {
            Ok(d) => e.salvage = salvage_of(&d.message, d.dialect, d.encoding),
            Err(inner) => e.salvage = inner.salvage,
        }
        return;
    }
    if matches!(e.kind, Kind::TooLarge | Kind::Syntax) {
        let head = &payload[..payload.len().min(SALVAGE_SCAN)];
        let (request_id, from) = scan_sender(head);
        e.salvage.request_id = request_id;
        e.salvage.from = from;
    }
}

/// How much of a payload [`scan_sender`] reads.
const SALVAGE_SCAN: usize = 64 * 1024;

/// The first `"request_id": "..."` and `"from": "..."` pairs in a JSON
/// text that may be cut off or malformed further on.
fn scan_sender(text: &[u8]) -> (Option<String>, Option<String>) {
    /// The JSON string starting at `text[at] == b'"'` and where it ends.
    fn string_at(text: &[u8], at: usize) -> Option<(String, usize)> {
        let mut i = at + 1;
        while i < text.len() {
            match text[i] {
                b'\\' => i += 2,
                b'"' => {
                    let s = serde_json::from_slice::<String>(&text[at..=i]).ok()?;
                    return Some((s, i + 1));
                }
                _ => i += 1,
            }
        }
        None
    }
    fn skip_ws(text: &[u8], mut i: usize) -> usize {
        while i < text.len() && text[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }
    let (mut request_id, mut from) = (None, None);
    let mut i = 0;
    while i < text.len() && (request_id.is_none() || from.is_none()) {
        if text[i] != b'"' {
            i += 1;
            continue;
        }
        let Some((key, end)) = string_at(text, i) else {
            break;
        };
        i = end;
        let colon = skip_ws(text, i);
        if text.get(colon) != Some(&b':') {
            continue;
        }
        let v = skip_ws(text, colon + 1);
        if text.get(v) != Some(&b'"') {
            continue;
        }
        let Some((value, end)) = string_at(text, v) else {
            break;
        };
        i = end;
        let slot = match key.as_str() {
            "request_id" => &mut request_id,
            "from" => &mut from,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    (request_id, from)
}

fn decode_unsalvaged(
    payload: &[u8],
    props: Option<&PublishProperties>,
    max_payload: usize,
) -> Result<Decoded, MessageError> {
    if let Some(pfi) = props
        .and_then(|p| p.payload_format_indicator)
        .filter(|pfi| !PAYLOAD_FORMATS.contains(pfi))
    {
        return Err(MessageError::new(
            Kind::ContentType,
            "properties.payload_format_indicator",
            format!(
                "expected {}, found {pfi}",
                crate::settings::one_of(&PAYLOAD_FORMATS)
            ),
        ));
    }
    if payload.len() > max_payload {
        return Err(MessageError::new(
            Kind::TooLarge,
            "",
            format!(
                "payload is {} bytes, larger than the limit of {max_payload} bytes",
                payload.len()
            ),
        ));
    }
    let announced = props.map(announced_type).transpose()?.flatten();
    let encoding = match props.map(announced_encoding).transpose()?.flatten() {
        Some(e) => e,
        None => sniff_encoding(payload),
    };
    // RFC 8259 §8.1: a parser may ignore a byte order mark; some Windows
    // tools write one.
    let payload = match encoding {
        Encoding::Json => payload.strip_prefix(UTF8_BOM).unwrap_or(payload),
        Encoding::Cbor => payload,
    };
    let (message, dialect) = match crate::fastpath::decode(payload, encoding) {
        Some(fast) => fast,
        None => general_decode(payload, encoding)?,
    };
    if let Some(announced) = announced {
        if announced != message.msg_type() {
            let mut e = MessageError::new(
                Kind::Value,
                "",
                format!(
                    "msgType property says '{}' but the message is a {}",
                    announced.as_property(),
                    message.msg_type()
                ),
            );
            e.salvage = salvage_of(&message, dialect, encoding);
            return Err(e);
        }
    }
    Ok(Decoded {
        warnings: warnings_of(&message),
        message,
        encoding,
        dialect,
    })
}

/// The general path: parse into a JSON tree, then read it with paths in errors.
fn general_decode(payload: &[u8], encoding: Encoding) -> Result<(Message, Dialect), MessageError> {
    let with_encoding = |mut e: MessageError| {
        e.salvage.encoding = Some(encoding);
        e
    };
    let value = match parse(payload, encoding) {
        Ok(v) => v,
        Err(mut e) if e.kind == Kind::Value => {
            // A repeated key: read the message as a lenient parser would,
            // only to learn whom to answer 400.
            if let Some(lenient) = lenient_parse(payload, encoding) {
                e.salvage = match decode_value(lenient, None) {
                    Ok((m, d)) => salvage_of(&m, d, encoding),
                    Err(inner) => inner.salvage,
                };
            }
            return Err(with_encoding(e));
        }
        Err(e) => return Err(with_encoding(e)),
    };
    decode_value(value, None).map_err(with_encoding)
}

fn salvage_of(m: &Message, dialect: Dialect, encoding: Encoding) -> Salvage {
    Salvage {
        request_id: m.headers.request_id.clone(),
        from: m.headers.from.clone(),
        dialect: Some(dialect),
        encoding: Some(encoding),
        msg_type: Some(m.msg_type()),
        to: m.headers.to.clone().map(Vec::into_boxed_slice),
        response_requested: m.command().map(message::Command::response_requested),
    }
}

fn announced_type(p: &PublishProperties) -> Result<Option<MsgType>, MessageError> {
    p.user(PROP_MSG_TYPE)
        .map(|t| {
            MsgType::from_property(t).ok_or_else(|| {
                MessageError::new(
                    Kind::ContentType,
                    "",
                    format!("unknown msgType '{t}'; expected req, rsp or ntf (MQTT-T 3.2)"),
                )
            })
        })
        .transpose()
}

fn announced_encoding(p: &PublishProperties) -> Result<Option<Encoding>, MessageError> {
    let from_ct = match p.content_type.as_deref() {
        None => None,
        Some(ct) => {
            let lower = ct.to_ascii_lowercase();
            let base = lower.split(';').next().unwrap_or("").trim();
            let ours = is_openc2_media_type(base)
                || base == "application/json"
                || base == "application/cbor";
            if !ours {
                return Err(MessageError::new(
                    Kind::ContentType,
                    "",
                    format!("unsupported content type '{ct}'; expected {CONTENT_TYPE}"),
                ));
            }
            if base.ends_with("cbor") {
                Some(Encoding::Cbor)
            } else if base.ends_with("json") {
                Some(Encoding::Json)
            } else {
                None
            }
        }
    };
    match p.user(PROP_ENCODING) {
        Some(e) => e.parse().map(Some),
        None => Ok(from_ct.or(match p.payload_format_indicator {
            Some(1) => Some(Encoding::Json),
            _ => None,
        })),
    }
}

/// `application/openc2`, with a structured-syntax suffix (`+json`, `+cbor`),
/// or the OpenC2 HTTPS transfer's `application/openc2-cmd+json` and
/// `application/openc2-rsp+json` (seen from peers that reuse them over MQTT).
/// `application/openc2x` and the like are someone else's.
fn is_openc2_media_type(base: &str) -> bool {
    let Some(rest) = base.strip_prefix(CONTENT_TYPE) else {
        return false;
    };
    let rest = rest
        .strip_prefix("-cmd")
        .or_else(|| rest.strip_prefix("-rsp"))
        .unwrap_or(rest);
    rest.is_empty() || rest.starts_with('+')
}

/// Guesses the encoding of a payload that came without properties.
///
/// A JSON message starts with `{` (after white space); a CBOR message is a
/// map, whose first byte is in `0xa0..=0xbf`.
pub fn sniff_encoding(payload: &[u8]) -> Encoding {
    match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(0xa0..=0xbf) => Encoding::Cbor,
        Some(b) if b.is_ascii() => Encoding::Json,
        // Neither: let the CBOR parser explain, unless it is text.
        _ if std::str::from_utf8(payload).is_ok() => Encoding::Json,
        _ => Encoding::Cbor,
    }
}

fn parse(payload: &[u8], encoding: Encoding) -> Result<Value, MessageError> {
    match encoding {
        Encoding::Json => {
            let text = std::str::from_utf8(payload).map_err(|e| {
                MessageError::new(
                    Kind::Utf8,
                    "",
                    format!("payload is not valid UTF-8 (at byte {})", e.valid_up_to()),
                )
            })?;
            serde_json::from_str(text)
                .map(|StrictValue(v)| v)
                .map_err(|e| {
                    repeated_key(e.to_string()).unwrap_or_else(|| {
                        MessageError::new(Kind::Syntax, "", format!("malformed JSON: {e}"))
                    })
                })
        }
        Encoding::Cbor => {
            // RFC 8949 §3.4.6: the self-described CBOR tag (55799, d9 d9 f7) may
            // prefix any item and means nothing; the JSON data model has no tags.
            let mut rest = payload
                .strip_prefix(&[0xd9, 0xd9, 0xf7][..])
                .unwrap_or(payload);
            let StrictValue(value) = ciborium::from_reader(&mut rest).map_err(|e| {
                let reason = cbor_reason(&e);
                repeated_key(reason.clone()).unwrap_or_else(|| {
                    MessageError::new(Kind::Syntax, "", format!("malformed CBOR: {reason}"))
                })
            })?;
            if !rest.is_empty() {
                return Err(MessageError::new(
                    Kind::Syntax,
                    "",
                    format!(
                        "malformed CBOR: {} trailing bytes after the message",
                        rest.len()
                    ),
                ));
            }
            Ok(value)
        }
    }
}

/// The error for an object that names a key twice, if `reason` says so.
fn repeated_key(reason: String) -> Option<MessageError> {
    let at = reason.find(crate::strict::DUPLICATE)?;
    // serde_json appends " at line L column C": keep it, it says where.
    Some(MessageError::new(Kind::Value, "", reason[at..].to_owned()))
}

fn cbor_reason(e: &ciborium::de::Error<std::io::Error>) -> String {
    match e {
        ciborium::de::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated input".to_owned()
        }
        ciborium::de::Error::Io(io) => io.to_string(),
        ciborium::de::Error::Syntax(at) => format!("invalid item at byte {at}"),
        ciborium::de::Error::Semantic(at, msg) => match at {
            Some(at) => format!("{msg} (at byte {at})"),
            None => msg.clone(),
        },
        ciborium::de::Error::RecursionLimitExceeded => "nested too deeply".to_owned(),
    }
}

/// Parses as serde does by default (a repeated key: the last one wins),
/// for salvage only.
fn lenient_parse(payload: &[u8], encoding: Encoding) -> Option<Value> {
    match encoding {
        Encoding::Json => serde_json::from_slice(payload).ok(),
        Encoding::Cbor => ciborium::from_reader(
            payload
                .strip_prefix(&[0xd9, 0xd9, 0xf7][..])
                .unwrap_or(payload),
        )
        .ok(),
    }
}

/// Guesses the dialect from the top-level keys. `body` decides first, then
/// `content`: an otupy message whose headers include one named `headers` is
/// still otupy's.
fn sniff_dialect(top: &JsonMap) -> Result<Dialect, MessageError> {
    if top.contains_key("body") {
        Ok(Dialect::Spec)
    } else if top.contains_key("content") {
        Ok(Dialect::Otupy)
    } else if top.contains_key("headers") {
        Ok(Dialect::Spec)
    } else if top.contains_key("action") || top.contains_key("status") {
        Ok(Dialect::Bare)
    } else {
        Err(MessageError::new(
            Kind::Dialect,
            "",
            "unrecognised message: expected headers/body (spec), content (otupy), \
             or a bare command (action) or response (status) at the top level",
        ))
    }
}

/// Reads a message from a parsed document; `force` skips dialect sniffing.
pub(crate) fn decode_value(
    value: Value,
    force: Option<Dialect>,
) -> Result<(Message, Dialect), MessageError> {
    let mut top = match value {
        Value::Object(m) => m,
        other => {
            return Err(MessageError::new(
                Kind::Type,
                "",
                format!(
                    "expected an object at the top level, found {}",
                    message::type_name(&other)
                ),
            ));
        }
    };
    let dialect = match force {
        Some(d) => d,
        None => sniff_dialect(&top)?,
    };
    let mut salvage = Salvage {
        dialect: Some(dialect),
        response_requested: salvage_response_requested(&top, dialect),
        ..Salvage::default()
    };
    let result = match dialect {
        Dialect::Spec => decode_spec(&mut top, &mut salvage),
        Dialect::Otupy | Dialect::Bare => {
            salvage_headers(&top, &mut salvage);
            if dialect == Dialect::Otupy {
                decode_otupy(top, &mut salvage)
            } else {
                decode_bare(top, &mut salvage)
            }
        }
    };
    result.map(|m| (m, dialect)).map_err(|mut e| {
        e.salvage = salvage;
        e
    })
}

fn salvage_headers(h: &JsonMap, s: &mut Salvage) {
    s.request_id = h
        .get("request_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    s.from = h.get("from").and_then(Value::as_str).map(str::to_owned);
    s.to = h
        .get("to")
        .and_then(|v| message::read_to(v.clone(), "").ok())
        .map(Vec::into_boxed_slice);
}

/// The command's `response_requested` in a document that may not decode,
/// wherever its dialect puts the command.
fn salvage_response_requested(
    top: &JsonMap,
    dialect: Dialect,
) -> Option<message::ResponseRequested> {
    let args = match dialect {
        Dialect::Spec => top
            .get("body")?
            .get("openc2")?
            .get("request")?
            .get("args")?,
        Dialect::Otupy => top.get("content")?.get("request")?.get("args")?,
        Dialect::Bare => top.get("args")?,
    };
    args.get("response_requested")?.as_str()?.parse().ok()
}

fn missing(path: &str) -> MessageError {
    MessageError::new(Kind::Missing, path, "required field is absent")
}

fn expect_object(v: Value, path: &str) -> Result<JsonMap, MessageError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(MessageError::new(
            Kind::Type,
            path,
            format!("expected an object, found {}", message::type_name(&other)),
        )),
    }
}

/// Reads `{"request": {...}}` (or response, notification) at `path`.
fn decode_choice(v: Value, path: &str, salvage: &mut Salvage) -> Result<Body, MessageError> {
    let choice = expect_object(v, path)?;
    if choice.len() != 1 {
        return Err(MessageError::new(
            Kind::Value,
            path,
            format!(
                "expected exactly one of request, response or notification, found {} keys",
                choice.len()
            ),
        ));
    }
    let (key, content) = choice.into_iter().next().expect("one entry, checked above");
    let content_path = message::join(path, &key);
    match key.as_str() {
        "request" => {
            salvage.msg_type = Some(MsgType::Request);
            message::command_from_map(expect_object(content, &content_path)?, &content_path)
                .map(Body::Request)
        }
        "response" => {
            salvage.msg_type = Some(MsgType::Response);
            message::response_from_map(expect_object(content, &content_path)?, &content_path)
                .map(Body::Response)
        }
        "notification" => {
            salvage.msg_type = Some(MsgType::Notification);
            expect_object(content, &content_path).map(Body::Notification)
        }
        other => Err(MessageError::new(
            Kind::Value,
            path,
            format!("unknown content '{other}'; expected request, response or notification"),
        )),
    }
}

fn decode_spec(top: &mut JsonMap, salvage: &mut Salvage) -> Result<Message, MessageError> {
    let mut header_map = match top.remove("headers") {
        None => JsonMap::new(),
        Some(v) => expect_object(v, "headers")?,
    };
    salvage_headers(&header_map, salvage);
    let body = expect_object(top.remove("body").ok_or_else(|| missing("body"))?, "body")?;
    let mut body = body;
    let openc2 = body
        .remove("openc2")
        .ok_or_else(|| missing("body.openc2"))?;
    let body = decode_choice(openc2, "body.openc2", salvage)?;
    let mut headers = message::take_headers(&mut header_map, "headers")?;
    headers.extra = header_map;
    Ok(Message {
        headers,
        body,
        extra: std::mem::take(top),
    })
}

fn decode_otupy(mut top: JsonMap, salvage: &mut Salvage) -> Result<Message, MessageError> {
    let content = top.remove("content").ok_or_else(|| missing("content"))?;
    let body = decode_choice(content, "content", salvage)?;
    let mut headers = message::take_headers(&mut top, "")?;
    headers.extra = top;
    Ok(Message {
        headers,
        body,
        extra: JsonMap::new(),
    })
}

/// The command or response object, with any header keys beside its own
/// (see [`message::BareView`]); other keys stay the command's or response's.
fn decode_bare(mut top: JsonMap, salvage: &mut Salvage) -> Result<Message, MessageError> {
    let headers = message::take_headers(&mut top, "")?;
    let body = if top.contains_key("action") {
        salvage.msg_type = Some(MsgType::Request);
        Body::Request(message::command_from_map(top, "")?)
    } else {
        salvage.msg_type = Some(MsgType::Response);
        Body::Response(message::response_from_map(top, "")?)
    };
    Ok(Message {
        headers,
        body,
        extra: JsonMap::new(),
    })
}

enum WireView<'a> {
    Spec(SpecView<'a>),
    Otupy(OtupyView<'a>),
    Bare(BareView<'a>),
}

impl Serialize for WireView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Spec(v) => v.serialize(s),
            Self::Otupy(v) => v.serialize(s),
            Self::Bare(v) => v.serialize(s),
        }
    }
}

/// Encodes a message after validating it, returning the payload and the
/// publish properties to send with it.
///
/// The bare dialect carries the headers as keys beside the command's or
/// response's own (see [`message::BareView`]).
pub fn encode(
    msg: &Message,
    encoding: Encoding,
    dialect: Dialect,
) -> Result<(Vec<u8>, PublishProperties), MessageError> {
    msg.validate()?;
    if dialect == Dialect::Otupy {
        // otupy's headers share the top level with `content`, and `body` would make it read as the spec's.
        if let Some(k) = ["content", "body"]
            .into_iter()
            .find(|k| msg.headers.extra.contains_key(*k))
        {
            return Err(MessageError::new(
                Kind::Value,
                format!("headers.{k}"),
                "a header of this name cannot be sent in the otupy dialect, \
                 whose headers are top-level keys beside `content`",
            ));
        }
        // The message's own top-level keys (`signature`) go there too.
        let taken = |k: &str| {
            ["content", "body", "request_id", "created", "from", "to"].contains(&k)
                || msg.headers.extra.contains_key(k)
        };
        if let Some(k) = msg.extra.keys().find(|k| taken(k)) {
            return Err(MessageError::new(
                Kind::Value,
                k.clone(),
                "a top-level key of this name cannot be sent in the otupy dialect, \
                 where it would collide with a header or `content`",
            ));
        }
    }
    let view = match dialect {
        Dialect::Spec => WireView::Spec(SpecView(msg)),
        Dialect::Otupy => WireView::Otupy(OtupyView(msg)),
        Dialect::Bare => WireView::Bare(BareView(msg)),
    };
    let mut buf = Vec::with_capacity(512);
    match encoding {
        Encoding::Json => serde_json::to_writer(&mut buf, &view).map_err(|e| {
            MessageError::new(Kind::Value, "", format!("cannot encode as JSON: {e}"))
        })?,
        Encoding::Cbor => ciborium::into_writer(&view, &mut buf).map_err(|e| {
            MessageError::new(Kind::Value, "", format!("cannot encode as CBOR: {e}"))
        })?,
    }
    Ok((
        buf,
        PublishProperties::for_message(msg.msg_type(), encoding),
    ))
}

/// The body's choice wrapper alone (`{"request": {...}}`), as JSON; used in logs and by the monitor.
pub fn content_json(body: &Body) -> Value {
    serde_json::to_value(ChoiceView(body)).expect("a body always serializes to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_is_read_from_the_start_of_a_payload_too_large_to_parse() {
        let (id, from) = scan_sender(br#"{"headers":{"request_id":"r\"1","created":1,"from" : "p1"},"body":{"openc2":{"requ"#);
        assert_eq!((id.as_deref(), from.as_deref()), (Some("r\"1"), Some("p1")));
        assert_eq!(scan_sender(b"{\"from\":12,\"x\":\"from\"}"), (None, None));
        let mut big =
            br#"{"request_id":"r2","from":"p2","content":{"request":{"action":"deny","x":""#
                .to_vec();
        big.extend(std::iter::repeat_n(b'y', 2 << 20));
        let e = decode(&big, None).expect_err("too large");
        assert_eq!(e.kind, Kind::TooLarge);
        assert_eq!(
            (e.salvage.request_id.as_deref(), e.salvage.from.as_deref()),
            (Some("r2"), Some("p2"))
        );
    }

    #[test]
    fn a_refused_content_type_still_names_the_sender() {
        let msg = Message::request(
            crate::message::Command::new(
                "query",
                crate::message::Target::features(Vec::<String>::new()),
            )
            .expect("cmd"),
        )
        .from("p1");
        let (payload, mut props) = encode(&msg, Encoding::Json, Dialect::Spec).expect("encode");
        props.content_type = Some("text/plain".into());
        let e = decode(&payload, Some(&props)).expect_err("text/plain");
        assert_eq!(e.kind, Kind::ContentType);
        assert_eq!(e.salvage.from.as_deref(), Some("p1"));
        assert_eq!(e.salvage.request_id, msg.headers.request_id);
    }

    #[test]
    fn json_and_cbor_round_trip_in_every_dialect() {
        let text = br#"{"headers":{"request_id":"r1","created":1700000000000,"from":"p","to":["d"]},
            "body":{"openc2":{"request":{"action":"deny","target":{"ipv4_net":"10.0.0.0/8"},"args":{"duration":5}}}}}"#;
        let original = decode(text, None).expect("valid").message;
        for enc in [Encoding::Json, Encoding::Cbor] {
            for dialect in [Dialect::Spec, Dialect::Otupy] {
                let (bytes, props) = encode(&original, enc, dialect).expect("encodes");
                let back = decode(&bytes, Some(&props)).expect("decodes");
                assert_eq!(back.message, original, "{enc} {dialect}");
                assert_eq!((back.encoding, back.dialect), (enc, dialect));
                let sniffed = decode(&bytes, None).expect("decodes without properties");
                assert_eq!((sniffed.encoding, sniffed.dialect), (enc, dialect));
            }
        }
    }

    #[test]
    fn harmless_oddities_are_kept_with_a_warning() {
        // The OIF device: results "" and status_text null.
        let text = br#"{"headers":{"request_id":"r1","from":"c01"},"body":{"openc2":{"response":{"status":200,"status_text":null,"results":""}}}}"#;
        let d = decode(text, None).expect("accepted");
        assert_eq!(
            d.warnings,
            ["results: expected an object, found a string; kept as received"]
        );
        let r = d.message.response().expect("response");
        assert_eq!(
            (r.status_text.as_deref(), &r.extra["results"]),
            (None, &Value::from(""))
        );
        let (again, _) = encode(&d.message, Encoding::Json, Dialect::Spec).expect("encodes");
        assert!(again.ends_with(br#"{"response":{"status":200,"results":""}}}}"#));
        let clean =
            br#"{"headers":{"request_id":"r1"},"body":{"openc2":{"response":{"status":200}}}}"#;
        assert!(decode(clean, None).expect("valid").warnings.is_empty());
    }

    #[test]
    fn created_in_seconds_is_read_as_milliseconds() {
        let text = br#"{"content":{"response":{"status":200}},"created":1700000000}"#;
        assert_eq!(
            decode(text, None).expect("valid").message.headers.created,
            Some(1_700_000_000_000)
        );
    }

    #[test]
    fn salvage_carries_request_id_and_sender() {
        let text = br#"{"headers":{"request_id":"abc","from":"p9"},"body":{"openc2":{"request":{"action":"deny","target":{"a":1,"b":2}}}}}"#;
        let err = decode(text, None).expect_err("two targets");
        assert_eq!(
            err.to_string(),
            "body.openc2.request.target: expected exactly one key, found 2"
        );
        assert_eq!(err.salvage.request_id.as_deref(), Some("abc"));
        assert_eq!(err.salvage.from.as_deref(), Some("p9"));
        assert_eq!(err.salvage.msg_type, Some(MsgType::Request));
    }

    #[test]
    fn mismatched_msg_type_property_is_an_error() {
        let props = PublishProperties::for_message(MsgType::Request, Encoding::Json);
        let err =
            decode(br#"{"status":200}"#, Some(&props)).expect_err("a response announced as req");
        assert!(err.reason.contains("msgType property says 'req'"), "{err}");
    }

    #[test]
    fn a_payload_format_mqtt_does_not_define_is_refused_naming_the_sender() {
        let mut props = PublishProperties::for_message(MsgType::Response, Encoding::Json);
        props.payload_format_indicator = Some(2);
        let payload = br#"{"headers":{"request_id":"r1","from":"fw-1"},"body":{"openc2":{"response":{"status":200}}}}"#;
        let err = decode(payload, Some(&props)).expect_err("PFI 2");
        assert_eq!(
            err.to_string(),
            "properties.payload_format_indicator: expected 0 or 1, found 2"
        );
        assert_eq!(err.kind, Kind::ContentType);
        assert_eq!(err.salvage.from.as_deref(), Some("fw-1"));
        props.payload_format_indicator = Some(1);
        assert!(decode(payload, Some(&props)).is_ok());
    }

    #[test]
    fn properties_put_msg_type_before_encoding() {
        let p = PublishProperties::for_message(MsgType::Response, Encoding::Cbor);
        assert_eq!(p.payload_format_indicator, Some(0));
        assert_eq!(p.user_properties[0].0, "msgType");
        assert_eq!(
            p.user_properties[1],
            ("encoding".to_owned(), "cbor".to_owned())
        );
    }
}
