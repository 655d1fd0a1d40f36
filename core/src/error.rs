//! The one error type of the crate.
//!
//! Every failure is an [`Error`]; bindings map its variants to their own
//! exception classes, result codes or `code` strings, one arm per variant.
//! The enums are exhaustive on purpose: a variant added here fails every
//! binding's build until its mapping names it.

use std::fmt;

/// What went wrong with a message, as a stable, machine-readable kind.
///
/// The names (see [`MessageErrorKind::as_str`]) are used by the shared test
/// vectors in `tests/vectors/` and by every binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageErrorKind {
    /// The payload is larger than the configured limit; it was not parsed.
    TooLarge,
    /// The bytes are not well-formed JSON or CBOR.
    Syntax,
    /// A JSON payload is not valid UTF-8.
    Utf8,
    /// The MQTT properties announce a content type or encoding we do not speak.
    ContentType,
    /// The document is well-formed but is none of the known message shapes.
    Dialect,
    /// A field has the wrong JSON type.
    Type,
    /// A required field is absent.
    Missing,
    /// A field has the right type but a value the specification forbids.
    Value,
}

impl MessageErrorKind {
    /// Every kind.
    pub const ALL: [Self; 8] = [
        Self::TooLarge,
        Self::Syntax,
        Self::Utf8,
        Self::ContentType,
        Self::Dialect,
        Self::Type,
        Self::Missing,
        Self::Value,
    ];

    /// The stable name of this kind (`"too_large"`, `"syntax"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Syntax => "syntax",
            Self::Utf8 => "utf8",
            Self::ContentType => "content_type",
            Self::Dialect => "dialect",
            Self::Type => "type",
            Self::Missing => "missing",
            Self::Value => "value",
        }
    }
}

impl fmt::Display for MessageErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What could be read from a message that failed to decode, so that a
/// consumer can still answer `400` to the right producer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvage {
    /// The `request_id` header, if it could be read.
    pub request_id: Option<String>,
    /// The `from` header, if it could be read.
    pub from: Option<String>,
    /// The dialect the message appeared to be in.
    pub dialect: Option<crate::codec::Dialect>,
    /// The encoding the payload was (or was announced to be) in.
    pub encoding: Option<crate::codec::Encoding>,
    /// Whether the message appeared to be a request, response or notification.
    pub msg_type: Option<crate::message::MsgType>,
    /// The `to` header, if it could be read: a consumer does not answer a
    /// malformed command addressed to other devices.
    pub to: Option<Box<[String]>>,
    /// The command's `response_requested`, if it could be read: a consumer
    /// answers nothing to a malformed command that asked for `none`.
    pub response_requested: Option<crate::message::ResponseRequested>,
}

/// One definition of what a binding shows: every field, `null` when unread,
/// in snake case (`request_id`, `from`, `dialect`, `encoding`, `msg_type`,
/// `to`, `response_requested`); Node turns the keys to camel case, as for
/// everything it returns.
impl serde::Serialize for Salvage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("Salvage", 7)?;
        m.serialize_field("request_id", &self.request_id)?;
        m.serialize_field("from", &self.from)?;
        m.serialize_field("dialect", &self.dialect.map(|d| d.as_str()))?;
        m.serialize_field("encoding", &self.encoding.map(|e| e.as_str()))?;
        m.serialize_field("msg_type", &self.msg_type.map(|t| t.as_key()))?;
        m.serialize_field("to", &self.to)?;
        m.serialize_field(
            "response_requested",
            &self.response_requested.map(|r| r.as_str()),
        )?;
        m.end()
    }
}

/// A message that could not be decoded or does not satisfy the specification.
///
/// `path` names the offending field in the wire document (for example
/// `body.openc2.request.target`); it is empty when the problem is the
/// payload as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    /// The kind of problem.
    pub kind: MessageErrorKind,
    /// Dotted path of the offending field, empty for the whole payload.
    pub path: String,
    /// Human-readable reason.
    pub reason: String,
    /// Whatever could be read despite the error.
    pub salvage: Salvage,
}

impl MessageError {
    /// Creates an error for the field at `path`.
    pub fn new(kind: MessageErrorKind, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.into(),
            reason: reason.into(),
            salvage: Salvage::default(),
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for MessageError {}

/// What a binding shows when it shows the error as data (a monitor's
/// undecodable event): `kind` ([`MessageErrorKind::as_str`]), `path`, `reason`.
impl serde::Serialize for MessageError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("MessageError", 3)?;
        m.serialize_field("kind", self.kind.as_str())?;
        m.serialize_field("path", &self.path)?;
        m.serialize_field("reason", &self.reason)?;
        m.end()
    }
}

/// Every error this crate returns.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A message is malformed or invalid (on decode or before encode).
    #[error("{0}")]
    Message(Box<MessageError>),
    /// An identifier or topic cannot be used as an MQTT topic (level).
    #[error("invalid topic: {0}")]
    Topic(String),
    /// The configuration is inconsistent or out of range.
    #[error("configuration: {0}")]
    Config(String),
    /// The broker could not be reached or the connection was lost.
    #[error("{0}")]
    Connect(String),
    /// The broker refused our credentials or authorisation (bad password, ACL).
    #[error("{0}")]
    Auth(String),
    /// The TLS handshake failed (certificate, protocol version).
    #[error("TLS: {0}")]
    Tls(String),
    /// A wait ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The broker did not accept a publish or subscribe.
    #[error("{0}")]
    Publish(String),
    /// The object was closed or its connection shut down.
    #[error("closed: {0}")]
    Closed(String),
    /// A user-supplied handler failed.
    #[error("handler failed: {0}")]
    Handler(String),
    /// A local I/O operation failed (reading a file named in the config).
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// Every kind's name ([`Error::kind`]), in the enum's order: the names
    /// bindings show (Node's `ErrorCode` type is made from them).
    pub const KINDS: [&'static str; 11] = [
        "decode", "topic", "config", "connect", "auth", "tls", "timeout", "publish", "closed",
        "handler", "io",
    ];

    /// The stable name of this error's kind, for logs and machine-readable
    /// output; Node's error `code` is `OC2_` and this name in capitals
    /// (`OC2_DECODE`, `OC2_TIMEOUT`, ...).
    pub fn kind(&self) -> &'static str {
        Self::KINDS[match self {
            Self::Message(_) => 0,
            Self::Topic(_) => 1,
            Self::Config(_) => 2,
            Self::Connect(_) => 3,
            Self::Auth(_) => 4,
            Self::Tls(_) => 5,
            Self::Timeout(_) => 6,
            Self::Publish(_) => 7,
            Self::Closed(_) => 8,
            Self::Handler(_) => 9,
            Self::Io(_) => 10,
        }]
    }

    /// The message error inside, if this is one.
    pub fn as_message(&self) -> Option<&MessageError> {
        match self {
            Self::Message(e) => Some(e),
            _ => None,
        }
    }
}

impl From<MessageError> for Error {
    fn from(e: MessageError) -> Self {
        Self::Message(Box::new(e))
    }
}

/// Shorthand for `std::result::Result<T, oc2mqtt::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
