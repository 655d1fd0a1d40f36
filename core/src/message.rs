//! The OpenC2 message model (LS 3.2-3.3, MQTT-T 2.4.2) and its validation.
//!
//! A [`Message`] is headers plus a [`Body`]: a request ([`Command`]), a
//! [`Response`] or a notification. Profile-specific and extension values
//! (target specifiers, args, results, unknown keys) are kept as JSON values,
//! never dropped.
//!
//! ```
//! use oc2mqtt::message::{Command, Message, Target};
//!
//! let cmd = Command::new("query", Target::features(["versions", "profiles"])).unwrap();
//! let msg = Message::request(cmd).from("producer-1").to(["fw-1"]);
//! assert_eq!(msg.headers.request_id.as_ref().unwrap().len(), 36);
//! assert!(msg.validate().is_ok());
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::error::{MessageError, MessageErrorKind as Kind};

/// A JSON object, as used for opaque and extension values.
pub type JsonMap = Map<String, Value>;

/// The actions of LS 3.3.1.1, in the specification's order.
pub const ACTIONS: [&str; 20] = [
    "scan",
    "locate",
    "query",
    "deny",
    "contain",
    "allow",
    "start",
    "stop",
    "restart",
    "cancel",
    "set",
    "update",
    "redirect",
    "create",
    "delete",
    "detonate",
    "restore",
    "copy",
    "investigate",
    "remediate",
];

/// The status codes of LS 3.3.2.1.
pub const STATUS_CODES: [u16; 9] = [102, 200, 400, 401, 403, 404, 500, 501, 503];

/// The name LS 3.3.2.1 gives a status code ("OK", "Not Implemented"), for
/// people reading traffic; `None` for a code it does not define.
pub fn status_name(status: u16) -> Option<&'static str> {
    Some(match status {
        102 => "Processing",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => return None,
    })
}

/// Longest `command_id` allowed (LS 3.4.2.16).
pub const MAX_COMMAND_ID_LEN: usize = 36;

/// Milliseconds since the Unix epoch, read from the system clock.
///
/// Used by the builders to stamp `created`; the sans-IO modules never call it.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A new random (v4) UUID, as a request id.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An OpenC2 action (LS 3.3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Action(u8);

impl Action {
    /// The action's name as written on the wire.
    pub fn as_str(self) -> &'static str {
        ACTIONS[usize::from(self.0)]
    }
}

impl FromStr for Action {
    type Err = MessageError;
    fn from_str(s: &str) -> Result<Self, MessageError> {
        ACTIONS
            .iter()
            .position(|a| *a == s)
            .map(|i| Action(u8::try_from(i).expect("20 actions fit in u8")))
            .ok_or_else(|| {
                MessageError::new(Kind::Value, "action", format!("unknown action '{s}'"))
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The target of a command: exactly one key (`features`, `ipv4_connection`,
/// `slpf:rule_number`, ...) and its specifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The target type, e.g. `features`.
    pub name: String,
    /// The target specifier, kept as JSON.
    pub value: Value,
}

impl Target {
    /// A target of type `name` with specifier `value`.
    pub fn new(name: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The `features` target of `query features` (LS 3.4.2.4).
    ///
    /// ```
    /// let t = oc2mqtt::message::Target::features(["profiles"]);
    /// assert_eq!(t.value, serde_json::json!(["profiles"]));
    /// ```
    pub fn features<I, S>(features: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = features
            .into_iter()
            .map(|f| Value::String(f.into()))
            .collect();
        Self::new("features", Value::Array(list))
    }
}

/// An actuator specifier: one profile namespace and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Actuator {
    /// The profile namespace, e.g. `slpf`.
    pub profile: String,
    /// The actuator specifiers, kept as JSON.
    pub value: Value,
}

impl Actuator {
    /// An actuator of `profile` with no specifiers (`{"slpf": {}}`).
    pub fn profile(profile: impl Into<String>) -> Self {
        Self {
            profile: profile.into(),
            value: Value::Object(JsonMap::new()),
        }
    }
}

/// What response a producer asks for (LS 3.3.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ResponseRequested {
    /// No response at all.
    None,
    /// A `102` on receipt.
    Ack,
    /// The current status.
    Status,
    /// A response on completion (the default).
    #[default]
    Complete,
}

impl ResponseRequested {
    /// Every value, in the specification's order.
    pub const ALL: [Self; 4] = [Self::None, Self::Ack, Self::Status, Self::Complete];

    /// The value as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Ack => "ack",
            Self::Status => "status",
            Self::Complete => "complete",
        }
    }
}

impl FromStr for ResponseRequested {
    type Err = MessageError;
    fn from_str(s: &str) -> Result<Self, MessageError> {
        match s {
            "none" => Ok(Self::None),
            "ack" => Ok(Self::Ack),
            "status" => Ok(Self::Status),
            "complete" => Ok(Self::Complete),
            _ => Err(MessageError::new(
                Kind::Value,
                "args.response_requested",
                format!("expected one of none, ack, status, complete, found '{s}'"),
            )),
        }
    }
}

/// An OpenC2 command (LS 3.3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The action.
    pub action: Action,
    /// The target.
    pub target: Target,
    /// Command arguments; when present, at least one entry.
    pub args: Option<JsonMap>,
    /// The actuator (profile) the command is for.
    pub actuator: Option<Actuator>,
    /// The command identifier (at most 36 non-space characters).
    pub command_id: Option<String>,
    /// Keys of the command object that the language specification does not define.
    pub extra: JsonMap,
}

impl Command {
    /// A command with `action` (one of [`ACTIONS`]) on `target`.
    pub fn new(action: &str, target: Target) -> Result<Self, MessageError> {
        Ok(Self {
            action: action.parse()?,
            target,
            args: None,
            actuator: None,
            command_id: None,
            extra: JsonMap::new(),
        })
    }

    /// Sets `actuator` to the given profile namespace with no specifiers.
    pub fn with_actuator(mut self, profile: impl Into<String>) -> Self {
        self.actuator = Some(Actuator::profile(profile));
        self
    }

    /// Sets one argument (`response_requested`, `duration`, `slpf`, ...).
    pub fn with_arg(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.args
            .get_or_insert_with(JsonMap::new)
            .insert(name.into(), value.into());
        self
    }

    /// The `response_requested` argument, [`ResponseRequested::Complete`] when absent.
    ///
    /// An unreadable value also counts as `complete`; [`Command::validate`]
    /// reports it.
    pub fn response_requested(&self) -> ResponseRequested {
        self.args
            .as_ref()
            .and_then(|a| a.get("response_requested"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default()
    }

    /// The profile namespace of the actuator, if any.
    pub fn profile(&self) -> Option<&str> {
        self.actuator.as_ref().map(|a| a.profile.as_str())
    }

    /// Reads a command object (`{"action": .., "target": {..}, ...}`); error
    /// paths are relative to it.
    ///
    /// ```
    /// let cmd = oc2mqtt::message::Command::from_json_value(
    ///     serde_json::json!({"action": "query", "target": {"features": []}})).unwrap();
    /// assert_eq!(cmd.action.as_str(), "query");
    /// ```
    pub fn from_json_value(value: Value) -> Result<Self, MessageError> {
        match value {
            Value::Object(m) => command_from_map(m, ""),
            other => Err(MessageError::new(
                Kind::Type,
                "",
                format!("expected a command object, found {}", type_name(&other)),
            )),
        }
    }

    /// The command as a JSON object (`{"action": .., "target": {..}}`).
    pub fn to_json_value(&self) -> Value {
        serde_json::to_value(self).expect("a command always serializes to JSON")
    }

    /// The rules a producer must follow before it sends `query features`
    /// (LS 4.1 and 3.4.1.5): no argument other than `response_requested:
    /// complete`, at most 10 features, none named twice. A consumer answers
    /// such commands `400`; a producer does not send them.
    ///
    /// ```
    /// use oc2mqtt::message::{Command, Target};
    /// let q = Command::new("query", Target::features(["versions", "versions"])).unwrap();
    /// assert_eq!(
    ///     q.check_before_sending().unwrap_err().to_string(),
    ///     "target.features: 'versions' is listed twice; a producer MUST NOT repeat a feature (LS 3.4.1.5)"
    /// );
    /// ```
    pub fn check_before_sending(&self) -> Result<(), MessageError> {
        if self.action.as_str() != "query" || self.target.name != "features" {
            return Ok(());
        }
        if let Some(args) = &self.args {
            if let Some((k, _)) = args
                .iter()
                .find(|(k, v)| !(k.as_str() == "response_requested" && *v == "complete"))
            {
                return Err(MessageError::new(
                    Kind::Value,
                    format!("args.{k}"),
                    "query features takes no argument other than response_requested: complete; \
                     a producer MUST NOT send it with another (LS 4.1)",
                ));
            }
        }
        if let Value::Array(features) = &self.target.value {
            if features.len() > 10 {
                return Err(MessageError::new(
                    Kind::Value,
                    "target.features",
                    format!(
                        "{} features, but the list holds at most 10 (LS 3.4.1.5)",
                        features.len()
                    ),
                ));
            }
            for (i, f) in features.iter().enumerate() {
                if features[..i].contains(f) {
                    let name = f
                        .as_str()
                        .map_or_else(|| f.to_string(), |s| format!("'{s}'"));
                    return Err(MessageError::new(
                        Kind::Value,
                        "target.features",
                        format!(
                            "{name} is listed twice; a producer MUST NOT repeat a feature (LS 3.4.1.5)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the rules of LS 3.3.1 that the types do not already enforce.
    pub fn validate(&self) -> Result<(), MessageError> {
        self.validate_at("")
    }

    /// [`Command::validate`] for a command found at `base`: the one check
    /// that both decoders and the encoder run, so that whatever decodes also
    /// encodes.
    pub(crate) fn validate_at(&self, base: &str) -> Result<(), MessageError> {
        // No allocation for a top-level command (the decoders' fast path).
        let at = |field: &'static str| -> std::borrow::Cow<'static, str> {
            if base.is_empty() {
                field.into()
            } else {
                join(base, field).into()
            }
        };
        if self.target.name.is_empty() {
            return Err(MessageError::new(
                Kind::Value,
                at("target"),
                "target type must not be empty",
            ));
        }
        if let Some(args) = &self.args {
            validate_args(args, &at("args"))?;
        }
        if let Some(a) = &self.actuator {
            if a.profile.is_empty() {
                return Err(MessageError::new(
                    Kind::Value,
                    at("actuator"),
                    "profile must not be empty",
                ));
            }
        }
        if let Some(id) = &self.command_id {
            validate_command_id(id, &at("command_id"))?;
        }
        Ok(())
    }
}

/// An OpenC2 response (LS 3.3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The status code, one of [`STATUS_CODES`].
    pub status: u16,
    /// Free-form description of the status.
    pub status_text: Option<String>,
    /// Results, keyed by result name (`versions`, `profiles`, `pairs`, profile namespaces).
    pub results: Option<JsonMap>,
    /// Keys of the response object that the language specification does not define.
    pub extra: JsonMap,
}

impl Response {
    /// A response with `status` and nothing else.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            status_text: None,
            results: None,
            extra: JsonMap::new(),
        }
    }

    /// Sets `status_text`.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.status_text = Some(text.into());
        self
    }

    /// Sets one result entry.
    pub fn with_result(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.results
            .get_or_insert_with(JsonMap::new)
            .insert(name.into(), value.into());
        self
    }

    /// Whether this response ends the responder's part of an exchange (not `102 Processing`).
    pub fn is_final(&self) -> bool {
        self.status != 102
    }

    /// Reads a response object (`{"status": 200, ...}`); error paths are relative to it.
    pub fn from_json_value(value: Value) -> Result<Self, MessageError> {
        match value {
            Value::Object(m) => response_from_map(m, ""),
            other => Err(MessageError::new(
                Kind::Type,
                "",
                format!("expected a response object, found {}", type_name(&other)),
            )),
        }
    }

    /// The response as a JSON object (`{"status": 200, ...}`).
    pub fn to_json_value(&self) -> Value {
        serde_json::to_value(self).expect("a response always serializes to JSON")
    }

    /// Checks the status code.
    pub fn validate(&self) -> Result<(), MessageError> {
        validate_status(self.status, "status")
    }
}

/// The three kinds of OpenC2 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgType {
    /// A command (`req`).
    Request,
    /// A response (`rsp`).
    Response,
    /// A notification (`ntf`).
    Notification,
}

impl MsgType {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::Request, Self::Response, Self::Notification];

    /// The value of the `msgType` MQTT user property.
    pub fn as_property(self) -> &'static str {
        match self {
            Self::Request => "req",
            Self::Response => "rsp",
            Self::Notification => "ntf",
        }
    }

    /// The key used inside the message body (`request`, `response`, `notification`).
    pub fn as_key(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
            Self::Notification => "notification",
        }
    }

    /// Parses a `msgType` property value: MQTT-T's `req`, `rsp`, `ntf`, and
    /// the spellings real peers send: LS 3.4.2.11's `command`/`response`/
    /// `notification`, the OIF orchestrator's `request`, the OIF device
    /// test producer's `cmd` (case is ignored).
    ///
    /// ```
    /// use oc2mqtt::message::MsgType;
    /// assert_eq!(MsgType::from_property("cmd"), Some(MsgType::Request));
    /// assert_eq!(MsgType::from_property("Response"), Some(MsgType::Response));
    /// assert_eq!(MsgType::from_property("event"), None);
    /// ```
    pub fn from_property(s: &str) -> Option<Self> {
        const SPELLINGS: [(&str, MsgType); 9] = [
            ("req", MsgType::Request),
            ("request", MsgType::Request),
            ("command", MsgType::Request),
            ("cmd", MsgType::Request),
            ("rsp", MsgType::Response),
            ("response", MsgType::Response),
            ("ntf", MsgType::Notification),
            ("notification", MsgType::Notification),
            ("notify", MsgType::Notification),
        ];
        SPELLINGS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, t)| *t)
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_key())
    }
}

/// The body of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A command.
    Request(Command),
    /// A response.
    Response(Response),
    /// A notification, kept as JSON (the specifications define no structure for it).
    Notification(JsonMap),
}

impl Body {
    /// The message type of this body.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Self::Request(_) => MsgType::Request,
            Self::Response(_) => MsgType::Response,
            Self::Notification(_) => MsgType::Notification,
        }
    }
}

/// Message headers (MQTT-T 2.4.2, LS 3.2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Headers {
    /// Identifier that correlates responses with their command.
    pub request_id: Option<String>,
    /// Creation time, milliseconds since the epoch.
    pub created: Option<i64>,
    /// Identifier of the sender.
    pub from: Option<String>,
    /// Identifiers of the intended recipients; `None` when absent.
    pub to: Option<Vec<String>>,
    /// Header keys the specification does not define, kept as received.
    pub extra: JsonMap,
}

/// An OpenC2 message: headers and a body.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The headers.
    pub headers: Headers,
    /// The body.
    pub body: Body,
    /// Top-level keys beside `headers` and `body` in the specification's
    /// shape, kept as received: MQTT-T 2.4.2's `signature`, and any other.
    pub extra: JsonMap,
}

impl Message {
    /// Gives a command without a `command_id` its `request_id` as one, as a
    /// consumer MUST (LS 3.3.1); anything else is left as it is.
    ///
    /// ```
    /// use oc2mqtt::message::{Command, Message, Target};
    /// let mut m = Message::request(Command::new("deny", Target::new("ipv4_net", "10.0.0.1/32")).unwrap());
    /// m.default_command_id();
    /// assert_eq!(m.command().unwrap().command_id, m.headers.request_id);
    /// ```
    pub fn default_command_id(&mut self) {
        if let (Body::Request(cmd), Some(id)) = (&mut self.body, &self.headers.request_id) {
            if cmd.command_id.is_none() {
                cmd.command_id = Some(id.clone());
            }
        }
    }

    /// A request with a fresh v4 UUID `request_id` and `created` set to now.
    pub fn request(command: Command) -> Self {
        Self {
            headers: Headers {
                request_id: Some(new_request_id()),
                created: Some(now_ms()),
                ..Headers::default()
            },
            body: Body::Request(command),
            extra: JsonMap::new(),
        }
    }

    /// A response to `command_msg`: copies its `request_id`, addresses it to
    /// its sender, and stamps `created`.
    pub fn response_to(command_msg: &Message, response: Response) -> Self {
        Self {
            headers: Headers {
                request_id: command_msg.headers.request_id.clone(),
                created: Some(now_ms()),
                from: None,
                to: command_msg.headers.from.clone().map(|f| vec![f]),
                extra: JsonMap::new(),
            },
            body: Body::Response(response),
            extra: JsonMap::new(),
        }
    }

    /// Sets the `from` header.
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.headers.from = Some(from.into());
        self
    }

    /// Sets the `to` header.
    pub fn to<I, S>(mut self, to: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.headers.to = Some(to.into_iter().map(Into::into).collect());
        self
    }

    /// The message type of the body.
    pub fn msg_type(&self) -> MsgType {
        self.body.msg_type()
    }

    /// The command, if this is a request.
    pub fn command(&self) -> Option<&Command> {
        match &self.body {
            Body::Request(c) => Some(c),
            _ => None,
        }
    }

    /// The response, if this is one.
    pub fn response(&self) -> Option<&Response> {
        match &self.body {
            Body::Response(r) => Some(r),
            _ => None,
        }
    }

    /// Checks the body against LS 3.3; paths are relative to the body content.
    pub fn validate(&self) -> Result<(), MessageError> {
        match &self.body {
            Body::Request(c) => c.validate(),
            Body::Response(r) => r.validate(),
            Body::Notification(_) => Ok(()),
        }
    }

    /// The message in the specification's headers/body shape, as a JSON value.
    ///
    /// This is the canonical form used by the bindings and the test vectors.
    pub fn to_json_value(&self) -> Value {
        serde_json::to_value(self).expect("a message always serializes to JSON")
    }

    /// Builds a message from the specification's headers/body shape.
    pub fn from_json_value(value: Value) -> Result<Self, MessageError> {
        crate::codec::decode_value(value, Some(crate::codec::Dialect::Spec)).map(|(m, _)| m)
    }
}

// ---------------------------------------------------------------------------
// Reading from JSON, with paths in errors.

pub(crate) fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_owned()
    } else {
        format!("{base}.{field}")
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(base: &str, field: &str, expected: &str, found: &Value) -> MessageError {
    MessageError::new(
        Kind::Type,
        join(base, field),
        format!("expected {expected}, found {}", type_name(found)),
    )
}

/// An optional field; `null` counts as absent (JSON writers send unset
/// optional fields as `null`: Python's `None`, the OIF device's `status_text`).
fn take_string(m: &mut JsonMap, base: &str, field: &str) -> Result<Option<String>, MessageError> {
    match m.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(base, field, "a string", &other)),
    }
}

/// An optional object field; `null` counts as absent, as in [`take_string`].
fn take_object(m: &mut JsonMap, base: &str, field: &str) -> Result<Option<JsonMap>, MessageError> {
    match m.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(wrong_type(base, field, "an object", &other)),
    }
}

/// Takes the single key of a one-key object (target, actuator).
fn take_single(
    m: &mut JsonMap,
    base: &str,
    field: &str,
) -> Result<Option<(String, Value)>, MessageError> {
    let Some(obj) = take_object(m, base, field)? else {
        return Ok(None);
    };
    if obj.len() != 1 {
        return Err(MessageError::new(
            Kind::Value,
            join(base, field),
            format!("expected exactly one key, found {}", obj.len()),
        ));
    }
    Ok(obj.into_iter().next())
}

/// `created`: milliseconds since the epoch. Values from 10^8 to 10^11 can only
/// be seconds (as milliseconds they would fall in 1970-1973) and are taken as
/// seconds, as in the MQTT-T examples. Values below 10^8 are kept as they
/// are: read as seconds they would become milliseconds that read back as
/// seconds again, so what we emit would not decode to what we sent.
pub(crate) fn read_created(v: Value, base: &str) -> Result<i64, MessageError> {
    const SECONDS: std::ops::Range<f64> = 100_000_000.0..100_000_000_000.0;
    let n = match &v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
    .ok_or_else(|| wrong_type(base, "created", "a number", &v))?;
    if !n.is_finite() || n < 0.0 {
        return Err(MessageError::new(
            Kind::Value,
            join(base, "created"),
            "expected a non-negative time",
        ));
    }
    let ms = if SECONDS.contains(&n) { n * 1000.0 } else { n };
    // Saturating float-to-int conversion is the intent here.
    Ok(ms.round() as i64)
}

pub(crate) fn read_to(v: Value, base: &str) -> Result<Vec<String>, MessageError> {
    match v {
        // Seen from real peers: a single id instead of a list.
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                other => Err(wrong_type(base, &format!("to[{i}]"), "a string", &other)),
            })
            .collect(),
        other => Err(wrong_type(
            base,
            "to",
            "a string or an array of strings",
            &other,
        )),
    }
}

/// Reads the header fields out of `m` (removing them); other keys stay in `m`.
/// A header whose value is `null` is taken as absent, as a JSON writer with an
/// unset optional field (Python's `None`, say) sends it.
pub(crate) fn take_headers(m: &mut JsonMap, base: &str) -> Result<Headers, MessageError> {
    for field in ["request_id", "created", "from", "to"] {
        if m.get(field).is_some_and(Value::is_null) {
            m.remove(field);
        }
    }
    let request_id = take_string(m, base, "request_id")?;
    let created = m
        .remove("created")
        .map(|v| read_created(v, base))
        .transpose()?;
    let from = take_string(m, base, "from")?;
    let to = m.remove("to").map(|v| read_to(v, base)).transpose()?;
    Ok(Headers {
        request_id,
        created,
        from,
        to,
        extra: JsonMap::new(),
    })
}

pub(crate) fn validate_command_id(id: &str, path: &str) -> Result<(), MessageError> {
    if id.chars().count() > MAX_COMMAND_ID_LEN {
        return Err(MessageError::new(
            Kind::Value,
            path,
            format!(
                "expected at most {MAX_COMMAND_ID_LEN} characters, found {}",
                id.chars().count()
            ),
        ));
    }
    // LS 3.4.2.16: `^\S{0,36}$`, so the empty string is a valid command_id.
    if id.chars().any(char::is_whitespace) {
        return Err(MessageError::new(
            Kind::Value,
            path,
            "expected an identifier without white space",
        ));
    }
    Ok(())
}

pub(crate) fn validate_status(status: u16, path: &str) -> Result<(), MessageError> {
    if STATUS_CODES.contains(&status) {
        Ok(())
    } else {
        Err(MessageError::new(
            Kind::Value,
            path,
            format!(
                "unknown status code {status}; expected one of {}",
                STATUS_CODES.map(|c| c.to_string()).join(", ")
            ),
        ))
    }
}

pub(crate) fn validate_args(args: &JsonMap, path: &str) -> Result<(), MessageError> {
    if args.is_empty() {
        return Err(MessageError::new(
            Kind::Value,
            path,
            "expected at least one argument when args is present",
        ));
    }
    let mut timing = 0;
    for key in ["start_time", "stop_time", "duration"] {
        if let Some(v) = args.get(key) {
            timing += 1;
            if v.as_u64().is_none() {
                return Err(MessageError::new(
                    Kind::Type,
                    join(path, key),
                    format!("expected a non-negative integer, found {}", type_name(v)),
                ));
            }
        }
    }
    if timing == 3 {
        return Err(MessageError::new(
            Kind::Value,
            path,
            "at most two of start_time, stop_time and duration may be given",
        ));
    }
    if let Some(v) = args.get("response_requested") {
        let s = v
            .as_str()
            .ok_or_else(|| wrong_type(path, "response_requested", "a string", v))?;
        s.parse::<ResponseRequested>().map_err(|e| MessageError {
            path: join(path, "response_requested"),
            ..e
        })?;
    }
    Ok(())
}

/// Reads a command object found at `base` (e.g. `body.openc2.request`).
pub(crate) fn command_from_map(mut m: JsonMap, base: &str) -> Result<Command, MessageError> {
    let action = match m.remove("action") {
        None => {
            return Err(MessageError::new(
                Kind::Missing,
                join(base, "action"),
                "required field is absent",
            ));
        }
        Some(Value::String(s)) => s.parse::<Action>().map_err(|e| MessageError {
            path: join(base, "action"),
            ..e
        })?,
        Some(other) => return Err(wrong_type(base, "action", "a string", &other)),
    };
    let (name, value) = take_single(&mut m, base, "target")?.ok_or_else(|| {
        MessageError::new(
            Kind::Missing,
            join(base, "target"),
            "required field is absent",
        )
    })?;
    let args = take_object(&mut m, base, "args")?;
    let actuator =
        take_single(&mut m, base, "actuator")?.map(|(profile, value)| Actuator { profile, value });
    let command_id = take_string(&mut m, base, "command_id")?;
    let command = Command {
        action,
        target: Target { name, value },
        args,
        actuator,
        command_id,
        extra: m,
    };
    command.validate_at(base)?;
    Ok(command)
}

/// Reads a response object found at `base`.
pub(crate) fn response_from_map(mut m: JsonMap, base: &str) -> Result<Response, MessageError> {
    let status = match m.remove("status") {
        None => {
            return Err(MessageError::new(
                Kind::Missing,
                join(base, "status"),
                "required field is absent",
            ));
        }
        Some(Value::Number(n)) => {
            let code = n
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .ok_or_else(|| {
                    MessageError::new(
                        Kind::Value,
                        join(base, "status"),
                        format!("unknown status code {n}"),
                    )
                })?;
            validate_status(code, &join(base, "status"))?;
            code
        }
        Some(other) => return Err(wrong_type(base, "status", "an integer", &other)),
    };
    let status_text = take_string(&mut m, base, "status_text")?;
    // `results` that is not a map (the OIF device sends `""`) harms nobody:
    // it stays in `extra` as received, and the codec warns about it.
    let results = match m.get("results") {
        Some(v) if !v.is_object() && !v.is_null() => None,
        _ => take_object(&mut m, base, "results")?,
    };
    Ok(Response {
        status,
        status_text,
        results,
        extra: m,
    })
}

// ---------------------------------------------------------------------------
// Writing: serde views, one per shape, so JSON and CBOR share them.

pub(crate) struct CommandView<'a>(pub &'a Command);
pub(crate) struct ResponseView<'a>(pub &'a Response);
pub(crate) struct SingleKey<'a>(pub &'a str, pub &'a Value);
pub(crate) struct ContentView<'a>(pub &'a Body);
pub(crate) struct SpecView<'a>(pub &'a Message);

impl Serialize for SingleKey<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}

fn command_len(c: &Command) -> usize {
    2 + usize::from(c.args.is_some())
        + usize::from(c.actuator.is_some())
        + usize::from(c.command_id.is_some())
        + c.extra.len()
}

fn serialize_command_entries<M: SerializeMap>(c: &Command, map: &mut M) -> Result<(), M::Error> {
    map.serialize_entry("action", c.action.as_str())?;
    map.serialize_entry("target", &SingleKey(&c.target.name, &c.target.value))?;
    if let Some(args) = &c.args {
        map.serialize_entry("args", args)?;
    }
    if let Some(a) = &c.actuator {
        map.serialize_entry("actuator", &SingleKey(&a.profile, &a.value))?;
    }
    if let Some(id) = &c.command_id {
        map.serialize_entry("command_id", id)?;
    }
    for (k, v) in &c.extra {
        map.serialize_entry(k, v)?;
    }
    Ok(())
}

impl Serialize for CommandView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(command_len(self.0)))?;
        serialize_command_entries(self.0, &mut map)?;
        map.end()
    }
}

fn response_len(r: &Response) -> usize {
    1 + usize::from(r.status_text.is_some()) + usize::from(r.results.is_some()) + r.extra.len()
}

fn serialize_response_entries<M: SerializeMap>(r: &Response, map: &mut M) -> Result<(), M::Error> {
    map.serialize_entry("status", &r.status)?;
    if let Some(t) = &r.status_text {
        map.serialize_entry("status_text", t)?;
    }
    if let Some(res) = &r.results {
        map.serialize_entry("results", res)?;
    }
    for (k, v) in &r.extra {
        map.serialize_entry(k, v)?;
    }
    Ok(())
}

impl Serialize for ResponseView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(response_len(self.0)))?;
        serialize_response_entries(self.0, &mut map)?;
        map.end()
    }
}

/// The content alone: the command, response or notification object (bare dialect).
impl Serialize for ContentView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Body::Request(c) => CommandView(c).serialize(s),
            Body::Response(r) => ResponseView(r).serialize(s),
            Body::Notification(n) => n.serialize(s),
        }
    }
}

/// `{"request": {...}}` and its siblings: the body's choice wrapper.
pub(crate) struct ChoiceView<'a>(pub &'a Body);

impl Serialize for ChoiceView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.0.msg_type().as_key(), &ContentView(self.0))?;
        map.end()
    }
}

pub(crate) fn header_len(h: &Headers) -> usize {
    usize::from(h.request_id.is_some())
        + usize::from(h.created.is_some())
        + usize::from(h.from.is_some())
        + usize::from(h.to.is_some())
        + h.extra.len()
}

/// The four headers the specifications define, those that are set.
fn serialize_defined_headers<M: SerializeMap>(h: &Headers, map: &mut M) -> Result<(), M::Error> {
    if let Some(id) = &h.request_id {
        map.serialize_entry("request_id", id)?;
    }
    if let Some(c) = &h.created {
        map.serialize_entry("created", c)?;
    }
    if let Some(f) = &h.from {
        map.serialize_entry("from", f)?;
    }
    if let Some(t) = &h.to {
        map.serialize_entry("to", t)?;
    }
    Ok(())
}

pub(crate) fn serialize_header_entries<M: SerializeMap>(
    h: &Headers,
    map: &mut M,
) -> Result<(), M::Error> {
    serialize_defined_headers(h, map)?;
    for (k, v) in &h.extra {
        map.serialize_entry(k, v)?;
    }
    Ok(())
}

struct HeadersView<'a>(&'a Headers);

impl Serialize for HeadersView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(header_len(self.0)))?;
        serialize_header_entries(self.0, &mut map)?;
        map.end()
    }
}

struct OpenC2View<'a>(&'a Body);

impl Serialize for OpenC2View<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("openc2", &ChoiceView(self.0))?;
        map.end()
    }
}

/// The canonical (specification) shape, the same as [`Message::to_json_value`],
/// so bindings can convert a message without an intermediate JSON tree.
impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SpecView(self).serialize(s)
    }
}

/// The command object (`{"action": .., "target": {..}, ...}`), as [`Command::to_json_value`] gives it.
impl Serialize for Command {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CommandView(self).serialize(s)
    }
}

/// The response object (`{"status": .., ...}`), as [`Response::to_json_value`] gives it.
impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ResponseView(self).serialize(s)
    }
}

/// `{"headers": {...}, "body": {"openc2": {...}}}`, then the message's
/// top-level extras (`signature`). Headers without an entry are left out
/// (LS 3.2: a headers map has at least one).
impl Serialize for SpecView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let has_headers = header_len(&m.headers) > 0;
        let mut map = s.serialize_map(Some(1 + usize::from(has_headers) + m.extra.len()))?;
        if has_headers {
            map.serialize_entry("headers", &HeadersView(&m.headers))?;
        }
        map.serialize_entry("body", &OpenC2View(&m.body))?;
        for (k, v) in &m.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `{"content": {"request": {...}}, "request_id": .., "created": .., "from": .., "to": [..]}`.
pub(crate) struct OtupyView<'a>(pub &'a Message);

impl Serialize for OtupyView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = &self.0.headers;
        let mut map = s.serialize_map(Some(1 + header_len(h) + self.0.extra.len()))?;
        map.serialize_entry("content", &ChoiceView(&self.0.body))?;
        serialize_header_entries(h, &mut map)?;
        for (k, v) in &self.0.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The bare dialect: the command or response object, with the headers set
/// (`request_id`, `created`, `from`, `to`) as keys beside its own, so that
/// every message carries its sender (MQTT-T 3.2) while a peer that reads
/// only `action`/`target` or `status` reads it as before. Other headers and
/// top-level keys have no place in it and are left out, as the body of a
/// notification is the notification.
/// `{"action": "deny", "target": {..}, "request_id": .., "from": ..}`.
pub(crate) struct BareView<'a>(pub &'a Message);

impl Serialize for BareView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let body_len = match &m.body {
            Body::Request(c) => command_len(c),
            Body::Response(r) => response_len(r),
            Body::Notification(n) => n.len(),
        };
        let h = &m.headers;
        let headers = usize::from(h.request_id.is_some())
            + usize::from(h.created.is_some())
            + usize::from(h.from.is_some())
            + usize::from(h.to.is_some());
        let mut map = s.serialize_map(Some(body_len + headers))?;
        match &m.body {
            Body::Request(c) => serialize_command_entries(c, &mut map)?,
            Body::Response(r) => serialize_response_entries(r, &mut map)?,
            Body::Notification(n) => {
                for (k, v) in n {
                    map.serialize_entry(k, v)?;
                }
            }
        }
        serialize_defined_headers(&m.headers, &mut map)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_has_its_name_and_no_other_does() {
        for code in STATUS_CODES {
            assert!(status_name(code).is_some_and(|n| !n.is_empty()), "{code}");
        }
        assert_eq!(status_name(501), Some("Not Implemented"));
        assert_eq!(status_name(999), None);
        assert_eq!(status_name(201), None);
    }

    #[test]
    fn a_producer_does_not_send_query_features_against_the_rules() {
        let q = |features: Vec<String>| {
            Command::new("query", Target::features(features)).expect("query")
        };
        let eleven: Vec<String> = (0..11).map(|i| format!("x-{i}")).collect();
        assert_eq!(
            q(eleven).check_before_sending().unwrap_err().to_string(),
            "target.features: 11 features, but the list holds at most 10 (LS 3.4.1.5)"
        );
        let timed = q(vec!["versions".into()]).with_arg("start_time", 1_700_000_000_000_i64);
        assert_eq!(
            timed.check_before_sending().unwrap_err().path,
            "args.start_time"
        );
        let complete =
            q(vec!["versions".into(), "pairs".into()]).with_arg("response_requested", "complete");
        assert!(complete.check_before_sending().is_ok());
        let deny = Command::new("deny", Target::new("ipv4_net", "10.0.0.1/32"))
            .expect("deny")
            .with_arg("start_time", 1_700_000_000_000_i64);
        assert!(
            deny.check_before_sending().is_ok(),
            "only query features has these rules"
        );
    }
    use serde_json::json;

    #[test]
    fn every_action_round_trips_through_its_name() {
        for name in ACTIONS {
            assert_eq!(name.parse::<Action>().expect("known action").as_str(), name);
        }
        assert_eq!(
            "explode"
                .parse::<Action>()
                .expect_err("not an action")
                .reason,
            "unknown action 'explode'"
        );
    }

    #[test]
    fn request_builder_makes_a_valid_stamped_command() {
        let cmd = Command::new(
            "deny",
            Target::new("ipv4_connection", json!({"protocol": "tcp"})),
        )
        .expect("deny is an action")
        .with_actuator("slpf")
        .with_arg("response_requested", "ack");
        let msg = Message::request(cmd).from("p1");
        let id = msg.headers.request_id.as_deref().expect("request id set");
        assert_eq!(
            uuid::Uuid::parse_str(id).expect("uuid").get_version_num(),
            4
        );
        assert!(msg.headers.created.expect("created set") > 1_600_000_000_000);
        assert_eq!(
            msg.command().expect("request").response_requested(),
            ResponseRequested::Ack
        );
        msg.validate().expect("valid");
    }

    #[test]
    fn response_to_copies_request_id_and_addresses_the_sender() {
        let req = Message::request(
            Command::new("query", Target::features(Vec::<String>::new())).expect("query"),
        )
        .from("producer-7");
        let rsp = Message::response_to(&req, Response::new(200)).from("dev-1");
        assert_eq!(rsp.headers.request_id, req.headers.request_id);
        assert_eq!(rsp.headers.to, Some(vec!["producer-7".to_owned()]));
    }

    #[test]
    fn three_timing_args_are_rejected() {
        let cmd = Command::new("deny", Target::new("ipv4_net", "10.0.0.0/8"))
            .expect("deny")
            .with_arg("start_time", 1)
            .with_arg("stop_time", 2)
            .with_arg("duration", 3);
        let err = cmd.validate().expect_err("three timing args");
        assert_eq!(err.path, "args");
        assert!(err.reason.contains("at most two"), "{err}");
    }

    #[test]
    fn response_status_is_checked() {
        assert_eq!(
            Response::new(999)
                .validate()
                .expect_err("999 is no status")
                .kind,
            Kind::Value
        );
        assert!(Response::new(102).validate().is_ok());
        assert!(!Response::new(102).is_final());
    }

    #[test]
    fn command_id_longer_than_36_is_rejected() {
        let mut cmd = Command::new("query", Target::features(["versions"])).expect("query");
        cmd.command_id = Some("x".repeat(37));
        assert!(
            cmd.validate()
                .expect_err("37 characters")
                .reason
                .contains("at most 36")
        );
    }
}
