//! Every setting a binding takes, described once: its name, the kind of
//! value it takes, whether it is secret, and what it means. Defaults are the
//! types' own `Default`; nothing here repeats them.
//!
//! A binding converts a host value (a Python keyword argument, a JavaScript
//! property, a C string) to a [`Value`] of the setting's [`Kind`] with its
//! host's error texts, then calls [`Settings::set`]; unknown names are
//! refused with the caller's own spelling ([`Spelling`]). Reading back goes
//! through [`Settings::get`] and [`Settings::changed`] (for a `repr` that
//! shows what differs from the defaults). So a new option is one field (and
//! its default), one row in its table, one arm in `set` and `get`, here;
//! then `make generate` writes what the bindings declare of it (Python's
//! keyword argument, getter and stub, Node's TypeScript property, C's list of
//! settings) from these tables (`core/tests/generated.rs`, which fails when
//! they are stale), and every binding has it.
//!
//! ```
//! use oc2mqtt::client::ClientConfig;
//! use oc2mqtt::settings::{Settings, Spelling, Value};
//! let mut c = ClientConfig::default();
//! c.set(Spelling::Camel, "keepAliveSecs", Value::Count(30)).unwrap();
//! assert_eq!(c.keep_alive_secs, 30);
//! let e = c.set(Spelling::Camel, "keepalive", Value::Count(30)).unwrap_err();
//! assert!(e.to_string().starts_with("configuration: unknown setting 'keepalive'"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::client::{ClientConfig, MqttVersion};
use crate::codec::{Dialect, Encoding};
use crate::dedup::DedupOptions;
use crate::error::{Error, Result};
use crate::producer::SendOptions;
use crate::rules::{self, ConsumerOptions};
use crate::topics::{Peer, ResponseTopics, TopicScheme};

/// The kind of value a setting takes; a binding converts its host's value to
/// the matching [`Value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `true` or `false` ([`Value::Flag`]).
    Flag,
    /// A whole number from `min` to `max` ([`Value::Count`]).
    Count {
        /// The smallest value taken (0 for most).
        min: u64,
        /// The largest value taken.
        max: u64,
    },
    /// A number of seconds, fractions allowed, finite and not negative
    /// ([`Value::Number`], or [`Value::Count`]); the name says `_secs` in every language.
    Seconds,
    /// A span of time in the host's own unit: seconds in Python, milliseconds
    /// in JavaScript and C ([`Value::Number`] in seconds after conversion).
    Duration,
    /// A number, finite and greater than 0 ([`Value::Number`]).
    Number,
    /// Text ([`Value::Text`]).
    Text,
    /// A file path ([`Value::Text`]).
    Path,
    /// One text or a list of texts ([`Value::Texts`], or [`Value::Text`] for one).
    Texts,
    /// Action/target pairs, as `action:target` texts ([`Value::Texts`]; made by
    /// [`Value::pairs`]). Hosts take them in their own shape too: a map
    /// `{action: [targets]}` (the Language Specification's 4.1, and what
    /// `query features` answers) or a list of `(action, target)`.
    Pairs,
    /// One of `values` ([`Value::Text`]); where `numeric`, a number is read
    /// as its decimal text (`mqtt_version: 5`).
    Choice {
        /// The texts taken.
        values: &'static [&'static str],
        /// Whether a number is taken too.
        numeric: bool,
    },
}

/// Names as a message lists them: `a`, `a or b`, `a, b or c`.
///
/// ```
/// assert_eq!(oc2mqtt::settings::one_of(&["spec", "otupy", "bare"]), "spec, otupy or bare");
/// ```
pub fn one_of<T: fmt::Display>(names: &[T]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(T::to_string).collect();
            format!("{} or {last}", rest.join(", "))
        }
    }
}

impl Kind {
    /// What the kind takes, for messages: "a whole number from 0 to 300".
    pub fn expected(self) -> Cow<'static, str> {
        match self {
            Self::Flag => "true or false".into(),
            Self::Count { min, max } => format!("a whole number from {min} to {max}").into(),
            Self::Seconds | Self::Duration => "a finite, non-negative number of seconds".into(),
            Self::Number => "a finite number greater than 0".into(),
            Self::Text => "a text".into(),
            Self::Path => "a path".into(),
            Self::Texts => "a text or a list of texts".into(),
            Self::Pairs => "action:target pairs".into(),
            Self::Choice { values, .. } => one_of(values).into(),
        }
    }
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Its name in snake case (`keep_alive_secs`); see [`Spelling`].
    pub name: &'static str,
    /// What it takes.
    pub kind: Kind,
    /// Never shown (a password): [`Settings::changed`] reports it as set, not its value.
    pub secret: bool,
    /// A list ([`Kind::Texts`]) that hosts also take as one text alone (`to: "fw-1"`);
    /// other lists refuse a lone text, the usual slip (`profiles: "slpf"`).
    pub single: bool,
    /// What it means, for every binding's documentation: lower case first,
    /// no final period, the default left out (each binding shows it in its
    /// units); a setting named in backticks is respelled for each language.
    pub doc: &'static str,
}

const fn s(name: &'static str, kind: Kind, doc: &'static str) -> Setting {
    Setting {
        name,
        kind,
        secret: false,
        single: false,
        doc,
    }
}

/// A setting's value, as a binding hands it over.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// For [`Kind::Flag`].
    Flag(bool),
    /// For [`Kind::Count`] (and whole seconds).
    Count(u64),
    /// For [`Kind::Seconds`], [`Kind::Duration`] (in seconds) and [`Kind::Number`].
    Number(f64),
    /// For [`Kind::Text`], [`Kind::Path`], [`Kind::Choice`], and one of [`Kind::Texts`].
    Text(String),
    /// For [`Kind::Texts`] and [`Kind::Pairs`].
    Texts(Vec<String>),
}

impl Value {
    /// Reads `text` as a value of `kind`: how C and command lines hand settings over
    /// (`"true"`, `"60"`, `"2.5"`, `"a,b"` for a list, `"json"`).
    pub fn parse(kind: Kind, text: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "expected {}, found '{}'",
                kind.expected(),
                text.escape_debug()
            ))
        };
        Ok(match kind {
            Kind::Flag => match text {
                "true" | "1" | "yes" | "on" => Self::Flag(true),
                "false" | "0" | "no" | "off" => Self::Flag(false),
                _ => return Err(bad()),
            },
            Kind::Count { .. } => Self::Count(text.trim().parse().map_err(|_| bad())?),
            Kind::Seconds | Kind::Duration | Kind::Number => {
                Self::Number(text.trim().parse().map_err(|_| bad())?)
            }
            Kind::Texts | Kind::Pairs => Self::Texts(
                text.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            Kind::Text | Kind::Path | Kind::Choice { .. } => Self::Text(text.to_owned()),
        })
    }
}

impl Value {
    /// A [`Kind::Pairs`] value from `(action, target)` pairs, however a host hands them over.
    ///
    /// ```
    /// use oc2mqtt::settings::Value;
    /// let v = Value::pairs([("deny", "ipv4_net"), ("allow", "ipv4_net")]);
    /// assert_eq!(v.to_string(), "deny:ipv4_net,allow:ipv4_net");
    /// ```
    pub fn pairs<A: fmt::Display, T: fmt::Display>(
        pairs: impl IntoIterator<Item = (A, T)>,
    ) -> Self {
        Self::Texts(pairs.into_iter().map(|(a, t)| format!("{a}:{t}")).collect())
    }

    /// A [`Kind::Pairs`] value from the JSON shapes hosts hand pairs over
    /// in: a map `{"deny": ["ipv4_net"]}` (the Language Specification's
    /// 4.1, and what `query features` answers) or a list of
    /// `["deny", "ipv4_net"]` pairs. Python and Node read their objects as
    /// JSON and take the value, or the reason, from here.
    ///
    /// ```
    /// use oc2mqtt::settings::Value;
    /// let v = Value::pairs_from_json(serde_json::json!({"deny": ["ipv4_net", "ipv6_net"]})).unwrap();
    /// assert_eq!(v.to_string(), "deny:ipv4_net,deny:ipv6_net");
    /// let v = Value::pairs_from_json(serde_json::json!([["query", "features"]])).unwrap();
    /// assert_eq!(v.to_string(), "query:features");
    /// assert_eq!(
    ///     Value::pairs_from_json(serde_json::json!("deny:ipv4_net")).unwrap_err().to_string(),
    ///     "configuration: expected {action: [targets]} or a list of [action, target] pairs, found a text"
    /// );
    /// ```
    pub fn pairs_from_json(value: serde_json::Value) -> Result<Self> {
        use serde_json::Value as Json;
        let kind = |v: &Json| match v {
            Json::Null => "null".to_owned(),
            Json::Bool(_) => "a boolean".to_owned(),
            Json::Number(_) => "a number".to_owned(),
            Json::String(_) => "a text".to_owned(),
            Json::Array(items) if items.len() == 1 => "a list of 1 item".to_owned(),
            Json::Array(items) => format!("a list of {} items", items.len()),
            Json::Object(_) => "a map".to_owned(),
        };
        let bad = |why: String| Error::Config(why);
        let mut out = Vec::new();
        match value {
            Json::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_array().map(Vec::as_slice) {
                        Some([Json::String(a), Json::String(t)]) => {
                            out.push((a.clone(), t.clone()));
                        }
                        _ => {
                            return Err(bad(format!(
                                "[{i}]: expected an [action, target] pair of texts, found {}",
                                kind(item)
                            )));
                        }
                    }
                }
            }
            Json::Object(map) => {
                for (action, targets) in map {
                    let Json::Array(targets) = targets else {
                        return Err(bad(format!(
                            "{action}: expected a list of targets, found {}",
                            kind(&targets)
                        )));
                    };
                    for (j, t) in targets.into_iter().enumerate() {
                        let Json::String(t) = t else {
                            return Err(bad(format!(
                                "{action}[{j}]: expected a target's name, found {}",
                                kind(&t)
                            )));
                        };
                        out.push((action.clone(), t));
                    }
                }
            }
            other => {
                return Err(bad(format!(
                    "expected {{action: [targets]}} or a list of [action, target] pairs, found {}",
                    kind(&other)
                )));
            }
        }
        Ok(Self::pairs(out))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(b) => write!(f, "{b}"),
            Self::Count(n) => write!(f, "{n}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
            Self::Texts(t) => f.write_str(&t.join(",")),
        }
    }
}

/// How the caller spells names: `keep_alive_secs` (Rust, Python, C) or
/// `keepAliveSecs` (JavaScript). Messages name settings the caller's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spelling {
    /// `keep_alive_secs`.
    #[default]
    Snake,
    /// `keepAliveSecs`.
    Camel,
}

impl Spelling {
    /// Whether `key` is `name` (snake case) spelled this way; unlike
    /// [`Spelling::spell`], without building the spelling (for per-call option lookups).
    pub fn matches(self, name: &str, key: &str) -> bool {
        match self {
            Self::Snake => name == key,
            Self::Camel => {
                let mut key = key.bytes();
                let mut upper = false;
                for b in name.bytes() {
                    if b == b'_' {
                        upper = true;
                        continue;
                    }
                    let want = if upper { b.to_ascii_uppercase() } else { b };
                    upper = false;
                    if key.next() != Some(want) {
                        return false;
                    }
                }
                key.next().is_none()
            }
        }
    }

    /// `name` (snake case) spelled this way.
    pub fn spell(self, name: &str) -> Cow<'_, str> {
        match self {
            Self::Snake => name.into(),
            Self::Camel => {
                let mut out = String::with_capacity(name.len());
                let mut upper = false;
                for ch in name.chars() {
                    match ch {
                        '_' => upper = true,
                        c if upper => {
                            out.push(c.to_ascii_uppercase());
                            upper = false;
                        }
                        c => out.push(c),
                    }
                }
                out.into()
            }
        }
    }
}

/// A type whose fields are set by name: [`ClientConfig`], [`ConsumerOptions`],
/// [`SendOptions`], [`TopicScheme`], [`DedupOptions`].
pub trait Settings: Default {
    /// The type's name in messages.
    const NAME: &'static str;
    /// Its settings, in the order they are documented.
    const SETTINGS: &'static [Setting];

    /// Sets `name` (snake case, from [`Self::SETTINGS`]) to `value`, already of the setting's kind.
    /// Errors say why without naming the setting; [`Settings::set`] adds the name.
    fn set_value(&mut self, name: &str, value: Value) -> Result<()>;

    /// The value of `name`; `None` when it is unset (an absent optional).
    fn get_value(&self, name: &str) -> Option<Value>;

    /// The setting the caller calls `key`, or an error listing the known ones their way.
    fn setting(spelling: Spelling, key: &str) -> Result<&'static Setting> {
        Self::SETTINGS
            .iter()
            .find(|s| spelling.matches(s.name, key))
            .ok_or_else(|| {
                let known: Vec<_> = Self::SETTINGS
                    .iter()
                    .map(|s| spelling.spell(s.name))
                    .collect();
                Error::Config(format!(
                    "unknown setting '{}' for {}; known: {}",
                    key.escape_debug(),
                    Self::NAME,
                    known.join(", ")
                ))
            })
    }

    /// Sets the setting the caller calls `key`: checks the value against its kind
    /// (a count's range, a choice's values, finite seconds) and names `key` as given in an error.
    fn set(&mut self, spelling: Spelling, key: &str, value: Value) -> Result<()> {
        let setting = Self::setting(spelling, key)?;
        check(setting.kind, value)
            .and_then(|v| self.set_value(setting.name, v))
            .map_err(|e| match e {
                Error::Config(why) => Error::Config(format!("{key}: {why}")),
                other => other,
            })
    }

    /// Sets the setting the caller calls `key` from text ([`Value::parse`] by its kind):
    /// how C and command lines hand settings over. Errors name `key` as [`Settings::set`]'s do.
    fn set_text(&mut self, spelling: Spelling, key: &str, text: &str) -> Result<()> {
        let setting = Self::setting(spelling, key)?;
        let value = Value::parse(setting.kind, text).map_err(|e| match e {
            Error::Config(why) => Error::Config(format!("{key}: {why}")),
            other => other,
        })?;
        self.set(spelling, key, value)
    }

    /// Clears `name` (snake case), a setting whose default is unset (`get_value` gives `None`).
    fn clear_value(&mut self, name: &str) -> Result<()> {
        Err(Error::Config(format!("no optional setting '{name}'")))
    }

    /// Puts the setting the caller calls `key` back to its default; an optional
    /// one is unset (C's `NULL`, a message expiry of 0).
    fn unset(&mut self, spelling: Spelling, key: &str) -> Result<()> {
        let setting = Self::setting(spelling, key)?;
        match Self::default().get_value(setting.name) {
            Some(v) => self.set_value(setting.name, v),
            None => self.clear_value(setting.name),
        }
    }

    /// The value of the setting the caller calls `key` (`None`: unset).
    fn get(&self, spelling: Spelling, key: &str) -> Result<Option<Value>> {
        Self::setting(spelling, key).map(|s| self.get_value(s.name))
    }

    /// Checks every value against its setting's kind (a count's range, a
    /// choice's values), for a value built in Rust rather than set by name:
    /// both ways refuse the same values with the same text, naming the
    /// setting in snake case.
    fn check_values(&self) -> Result<()> {
        for s in Self::SETTINGS {
            if let Some(v) = self.get_value(s.name) {
                check(s.kind, v).map_err(|e| match e {
                    Error::Config(why) => Error::Config(format!("{}: {why}", s.name)),
                    other => other,
                })?;
            }
        }
        Ok(())
    }

    /// The settings whose value differs from the default, in order, with
    /// their values; a secret one's value is `None`.
    fn changed(&self) -> Vec<(&'static Setting, Option<Value>)> {
        let default = Self::default();
        Self::SETTINGS
            .iter()
            .filter_map(|s| {
                let v = self.get_value(s.name);
                (v != default.get_value(s.name)).then_some((s, if s.secret { None } else { v }))
            })
            .collect()
    }
}

/// `value` brought to `kind`, or why it does not fit.
fn check(kind: Kind, value: Value) -> Result<Value> {
    let mismatch = |v: &Value| {
        Error::Config(format!(
            "expected {}, found {}",
            kind.expected(),
            match v {
                Value::Flag(_) => "true/false",
                Value::Count(_) | Value::Number(_) => "a number",
                Value::Text(_) => "a text",
                Value::Texts(_) => "a list",
            }
        ))
    };
    Ok(match (kind, value) {
        (Kind::Flag, v @ Value::Flag(_)) => v,
        (Kind::Count { min, .. }, Value::Count(n)) if n < min => {
            return Err(Error::Config(format!("must be at least {min}")));
        }
        (Kind::Count { max, .. }, Value::Count(n)) if n <= max => Value::Count(n),
        (Kind::Count { max, .. }, Value::Count(n)) => {
            return Err(Error::Config(format!("{n} is too large (at most {max})")));
        }
        (Kind::Seconds | Kind::Duration, Value::Count(n)) => Value::Number(n as f64),
        (Kind::Seconds | Kind::Duration, Value::Number(n)) if n.is_finite() && n >= 0.0 => {
            Value::Number(n)
        }
        (Kind::Number, Value::Count(n)) if n > 0 => Value::Number(n as f64),
        (Kind::Number, Value::Number(n)) if n.is_finite() && n > 0.0 => Value::Number(n),
        (
            Kind::Seconds | Kind::Duration | Kind::Number,
            v @ (Value::Count(_) | Value::Number(_)),
        ) => {
            return Err(Error::Config(format!(
                "expected {}, found {v}",
                kind.expected()
            )));
        }
        (Kind::Text | Kind::Path, v @ Value::Text(_)) => v,
        (Kind::Texts | Kind::Pairs, Value::Text(t)) => Value::Texts(vec![t]),
        (Kind::Texts | Kind::Pairs, v @ Value::Texts(_)) => v,
        (Kind::Choice { numeric: true, .. }, Value::Count(n)) => Value::Text(n.to_string()),
        (Kind::Choice { values, .. }, Value::Text(t)) if values.contains(&t.as_str()) => {
            Value::Text(t)
        }
        // A choice's own parser names what it takes (and takes aliases: "v5", "JSON").
        (Kind::Choice { .. }, v @ Value::Text(_)) => v,
        (_, v) => return Err(mismatch(&v)),
    })
}

fn flag(v: Value) -> bool {
    matches!(v, Value::Flag(true))
}

fn count(v: Value) -> u64 {
    match v {
        Value::Count(n) => n,
        _ => 0,
    }
}

fn number(v: Value) -> f64 {
    match v {
        Value::Number(n) => n,
        Value::Count(n) => n as f64,
        _ => 0.0,
    }
}

fn text(v: Value) -> String {
    match v {
        Value::Text(t) => t,
        other => other.to_string(),
    }
}

fn texts(v: Value) -> Vec<String> {
    match v {
        Value::Texts(t) => t,
        Value::Text(t) => vec![t],
        _ => Vec::new(),
    }
}

fn duration(v: Value) -> Duration {
    Duration::try_from_secs_f64(number(v)).unwrap_or(Duration::MAX)
}

fn of_text(t: &Option<String>) -> Option<Value> {
    t.clone().map(Value::Text)
}

fn of_path(p: &Option<PathBuf>) -> Option<Value> {
    p.as_ref()
        .map(|p| Value::Text(p.to_string_lossy().into_owned()))
}

fn unknown(name: &str) -> Error {
    Error::Config(format!("no setting '{name}'"))
}

const U32: Kind = Kind::Count {
    min: 0,
    max: u32::MAX as u64,
};

/// The settings that make a topic scheme ([`TopicScheme`]), rows of
/// [`ClientConfig`]'s table as well.
const PEER: Setting = s(
    "peer",
    Kind::Choice {
        values: &Peer::NAMES,
        numeric: false,
    },
    "the peers to suit: their topics, dialect and `msgType` spelling; every peer's forms are decoded whatever this says. `spec`: MQTT-T as written; `otupy`: otupy 1.1, its flat dialect and `oc2/rsp/device/<id>`; `yuuki`: yuuki consumers, commands on `oc2/cmd` too; `oif`: the OIF orchestrator, responses on `oc2/rsp/<its id>` too, `msgType` spelled `request`/`response`",
);
const RESPONSE_TOPICS: Setting = s(
    "response_topics",
    Kind::Choice {
        values: &ResponseTopics::NAMES,
        numeric: false,
    },
    "where a consumer's responses go: `shared` (`oc2/rsp`), `producer` (`oc2/rsp/<producer>`) or `both`; when absent, as the peer has it (`oc2/rsp` only for the specification's peers)",
);

impl Settings for TopicScheme {
    const NAME: &'static str = "TopicScheme";
    const SETTINGS: &'static [Setting] = &[PEER, RESPONSE_TOPICS];

    fn set_value(&mut self, name: &str, v: Value) -> Result<()> {
        match name {
            "peer" => self.peer = text(v).parse::<Peer>().map_err(bare)?,
            "response_topics" => {
                self.response_topics = Some(text(v).parse::<ResponseTopics>().map_err(bare)?);
            }
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    fn clear_value(&mut self, name: &str) -> Result<()> {
        match name {
            "response_topics" => self.response_topics = None,
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    fn get_value(&self, name: &str) -> Option<Value> {
        Some(match name {
            "peer" => Value::Text(self.peer.as_str().to_owned()),
            "response_topics" => {
                return self
                    .response_topics
                    .map(|r| Value::Text(r.as_str().to_owned()));
            }
            _ => return None,
        })
    }
}

impl Settings for DedupOptions {
    const NAME: &'static str = "DedupOptions";
    const SETTINGS: &'static [Setting] = &[
        s(
            "window_ms",
            Kind::Count {
                min: 0,
                max: u64::MAX,
            },
            "how long a message is remembered, in milliseconds",
        ),
        s(
            "capacity",
            Kind::Count {
                min: 1,
                max: usize::MAX as u64,
            },
            "the most messages remembered; past it the oldest is forgotten first",
        ),
    ];

    fn set_value(&mut self, name: &str, v: Value) -> Result<()> {
        match name {
            "window_ms" => self.window_ms = count(v),
            "capacity" => self.capacity = usize::try_from(count(v)).unwrap_or(usize::MAX),
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    fn get_value(&self, name: &str) -> Option<Value> {
        Some(match name {
            "window_ms" => Value::Count(self.window_ms),
            "capacity" => Value::Count(self.capacity as u64),
            _ => return None,
        })
    }
}

impl Settings for ClientConfig {
    const NAME: &'static str = "ClientConfig";
    const SETTINGS: &'static [Setting] = &[
        s(
            "brokers",
            Kind::Texts,
            "broker URLs (`mqtt://host:port`, `mqtts://host:port`, `ws://host:port/path`, `wss://host:port/path`); several are tried in order (failover)",
        ),
        s(
            "client_id",
            Kind::Text,
            "the MQTT client id; when absent, one is generated (`oc2mqtt-<uuid>`) and the session ends with the connection: give one (or `client_id_file`) to keep a session on the broker",
        ),
        s(
            "client_id_file",
            Kind::Path,
            "a file holding the client id: read if it exists, else written with the generated one, so the broker can resume the session after a restart",
        ),
        s("username", Kind::Text, "user name for the broker"),
        Setting {
            secret: true,
            ..s(
                "password",
                Kind::Text,
                "password for the broker; never logged nor shown",
            )
        },
        s(
            "ca_file",
            Kind::Path,
            "CA certificates (PEM) the broker's certificate must chain to; when absent, the system's",
        ),
        s(
            "cert_file",
            Kind::Path,
            "client certificate (PEM) for mutual TLS, with `key_file`",
        ),
        s(
            "key_file",
            Kind::Path,
            "client private key (PEM) for mutual TLS",
        ),
        s(
            "insecure_skip_verify",
            Kind::Flag,
            "skip the check of the broker's certificate and host name; testing only: anyone can then impersonate the broker",
        ),
        s(
            "keep_alive_secs",
            U32,
            "keep-alive interval in seconds, at most 300 as MQTT-T 3.4 requires",
        ),
        s(
            "session_expiry_secs",
            U32,
            "how long the broker keeps the session after a disconnect (MQTT v5 Session Expiry), for a given `client_id` or `client_id_file`: a generated client id's session ends with the connection",
        ),
        s(
            "qos",
            Kind::Count { min: 0, max: 255 },
            "QoS for publishing: 1 or 2",
        ),
        s(
            "mqtt_version",
            Kind::Choice {
                values: &MqttVersion::NAMES,
                numeric: true,
            },
            "the MQTT version: `5`, `3.1.1`, or `auto`: 5, falling back to 3.1.1 when the broker refuses it",
        ),
        s(
            "message_expiry_secs",
            U32,
            "MQTT v5 Message Expiry Interval put on every publish, so that a broker drops messages nobody received in time; when absent, none",
        ),
        s(
            "topic_prefix",
            Kind::Text,
            "a prefix before `oc2/` in every topic (brokers shared between sites)",
        ),
        s(
            "otupy_compat",
            Kind::Flag,
            "the same as peer `otupy`, kept for existing callers",
        ),
        PEER,
        RESPONSE_TOPICS,
        s(
            "connect_timeout_secs",
            U32,
            "how long one connection attempt may take, in seconds: TCP, TLS and WebSocket together, then again for the CONNACK",
        ),
        s(
            "max_payload",
            Kind::Count {
                min: 0,
                max: usize::MAX as u64,
            },
            "largest payload decoded, in bytes; larger ones are refused before parsing",
        ),
    ];

    fn set_value(&mut self, name: &str, v: Value) -> Result<()> {
        match name {
            "brokers" => self.brokers = texts(v),
            "client_id" => self.client_id = Some(text(v)),
            "client_id_file" => self.client_id_file = Some(text(v).into()),
            "username" => self.username = Some(text(v)),
            "password" => self.password = Some(text(v)),
            "ca_file" => self.ca_file = Some(text(v).into()),
            "cert_file" => self.cert_file = Some(text(v).into()),
            "key_file" => self.key_file = Some(text(v).into()),
            "insecure_skip_verify" => self.insecure_skip_verify = flag(v),
            "keep_alive_secs" => self.keep_alive_secs = count(v) as u32,
            "session_expiry_secs" => self.session_expiry_secs = count(v) as u32,
            "qos" => self.qos = count(v) as u8,
            "mqtt_version" => self.mqtt_version = text(v).parse::<MqttVersion>().map_err(bare)?,
            "message_expiry_secs" => self.message_expiry_secs = Some(count(v) as u32),
            "topic_prefix" => self.topic_prefix = Some(text(v)),
            "otupy_compat" => self.otupy_compat = flag(v),
            "peer" => self.peer = text(v).parse::<Peer>().map_err(bare)?,
            "response_topics" => {
                self.response_topics = Some(text(v).parse::<ResponseTopics>().map_err(bare)?);
            }
            "connect_timeout_secs" => self.connect_timeout_secs = count(v) as u32,
            "max_payload" => self.max_payload = usize::try_from(count(v)).unwrap_or(usize::MAX),
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    fn clear_value(&mut self, name: &str) -> Result<()> {
        match name {
            "client_id" => self.client_id = None,
            "client_id_file" => self.client_id_file = None,
            "username" => self.username = None,
            "password" => self.password = None,
            "ca_file" => self.ca_file = None,
            "cert_file" => self.cert_file = None,
            "key_file" => self.key_file = None,
            "message_expiry_secs" => self.message_expiry_secs = None,
            "topic_prefix" => self.topic_prefix = None,
            "response_topics" => self.response_topics = None,
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    fn get_value(&self, name: &str) -> Option<Value> {
        Some(match name {
            "brokers" => Value::Texts(self.brokers.clone()),
            "client_id" => return of_text(&self.client_id),
            "client_id_file" => return of_path(&self.client_id_file),
            "username" => return of_text(&self.username),
            "password" => return of_text(&self.password),
            "ca_file" => return of_path(&self.ca_file),
            "cert_file" => return of_path(&self.cert_file),
            "key_file" => return of_path(&self.key_file),
            "insecure_skip_verify" => Value::Flag(self.insecure_skip_verify),
            "keep_alive_secs" => Value::Count(self.keep_alive_secs.into()),
            "session_expiry_secs" => Value::Count(self.session_expiry_secs.into()),
            "qos" => Value::Count(self.qos.into()),
            "mqtt_version" => Value::Text(self.mqtt_version.to_string()),
            "message_expiry_secs" => {
                return self.message_expiry_secs.map(|n| Value::Count(n.into()));
            }
            "topic_prefix" => return of_text(&self.topic_prefix),
            "otupy_compat" => Value::Flag(self.otupy_compat),
            "peer" => Value::Text(self.peer.as_str().to_owned()),
            "response_topics" => {
                return self
                    .response_topics
                    .map(|r| Value::Text(r.as_str().to_owned()));
            }
            "connect_timeout_secs" => Value::Count(self.connect_timeout_secs.into()),
            "max_payload" => Value::Count(self.max_payload as u64),
            _ => return None,
        })
    }
}

impl Settings for ConsumerOptions {
    const NAME: &'static str = "ConsumerOptions";
    const SETTINGS: &'static [Setting] = &[
        s(
            "device_id",
            Kind::Text,
            "this device's id: its topic `oc2/cmd/device/<id>` and the `from` of its responses",
        ),
        s(
            "profiles",
            Kind::Texts,
            "actuator profiles implemented (`slpf`, ...): one `oc2/cmd/ap/<profile>` subscription each",
        ),
        s(
            "pairs",
            Kind::Pairs,
            "action/target pairs implemented; when any are declared, other pairs are answered 501 (`query features` is always implemented)",
        ),
        s(
            "args",
            Kind::Texts,
            "command arguments implemented beyond the Language Specification's and the profiles' (`x-acme` or `x-acme.mode`); once pairs, profiles or args are declared, other arguments are answered 501",
        ),
        s(
            "rate_limit",
            Kind::Number,
            "commands per minute, reported by `query features`",
        ),
        s(
            "group",
            Kind::Text,
            "consumer group: each command reaches one member (`$share/<group>/...`)",
        ),
        s(
            "handle_features",
            Kind::Flag,
            "deliver `query features` to the application instead of answering it from this configuration",
        ),
        s(
            "freshness_secs",
            Kind::Count {
                min: 0,
                max: u64::MAX,
            },
            "commands whose `created` is older than this many seconds are not run nor answered, only counted in the `stale` statistic; 0 turns the check off",
        ),
        s(
            "handler_timeout_secs",
            Kind::Seconds,
            "seconds a `serve()` handler may take; past it the command is answered 500 and the handler's late result is dropped; when absent or 0, no limit",
        ),
        s(
            "journal",
            Kind::Path,
            "a file where each command is written before the handler sees it and marked finished once answered: started again with the same file (and a stable client id) after a kill, the consumer runs what it had taken and not finished, and nothing it had finished; not synced, so an operating system crash may lose the last lines; when absent, in memory only",
        ),
    ];

    fn set_value(&mut self, name: &str, v: Value) -> Result<()> {
        match name {
            "device_id" => self.device_id = text(v),
            "profiles" => self.profiles = texts(v),
            "pairs" => {
                self.pairs = texts(v)
                    .iter()
                    .map(|p| rules::parse_pair(p).map(|(a, t)| (a.to_owned(), t.to_owned())))
                    .collect::<Result<_>>()
                    .map_err(bare)?;
            }
            "args" => self.args = texts(v),
            "rate_limit" => self.rate_limit = Some(number(v)),
            "group" => self.group = Some(text(v)),
            "handle_features" => self.handle_features = flag(v),
            "freshness_secs" => self.freshness_secs = count(v),
            // 0 is no limit, as for freshness_secs: a limit of nothing would
            // answer every command 500 before its handler could run.
            "handler_timeout_secs" => {
                self.handler_timeout = Some(duration(v)).filter(|d| !d.is_zero());
            }
            "journal" => self.journal = Some(text(v).into()),
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    fn clear_value(&mut self, name: &str) -> Result<()> {
        match name {
            "rate_limit" => self.rate_limit = None,
            "group" => self.group = None,
            "handler_timeout_secs" => self.handler_timeout = None,
            "journal" => self.journal = None,
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    fn get_value(&self, name: &str) -> Option<Value> {
        Some(match name {
            "device_id" => Value::Text(self.device_id.clone()),
            "profiles" => Value::Texts(self.profiles.clone()),
            "pairs" => Value::pairs(self.pairs.iter().map(|(a, t)| (a, t))),
            "args" => Value::Texts(self.args.clone()),
            "rate_limit" => return self.rate_limit.map(Value::Number),
            "group" => return of_text(&self.group),
            "handle_features" => Value::Flag(self.handle_features),
            "freshness_secs" => Value::Count(self.freshness_secs),
            "handler_timeout_secs" => {
                return self.handler_timeout.map(|d| Value::Number(d.as_secs_f64()));
            }
            "journal" => return of_path(&self.journal),
            _ => return None,
        })
    }
}

impl ConsumerOptions {
    /// The settings [`rules::ConsumerRules`] takes: all but the last two,
    /// `handler_timeout_secs` and `journal`, which only a connected consumer
    /// (`client::Consumer`, its `serve` and its restarts) uses.
    pub const RULES_SETTINGS: &'static [Setting] = <Self as Settings>::SETTINGS
        .split_at(<Self as Settings>::SETTINGS.len() - 2)
        .0;
}

impl Settings for SendOptions {
    const NAME: &'static str = "SendOptions";
    const SETTINGS: &'static [Setting] = &[
        Setting {
            single: true,
            ..s(
                "to",
                Kind::Texts,
                "recipient ids: one publish each on `oc2/cmd/device/<id>`; the exchange completes when each sent a final response",
            )
        },
        s(
            "profile",
            Kind::Text,
            "actuator profile: sets the command's actuator if it has none (topic `oc2/cmd/ap/<profile>` when there is no `to`)",
        ),
        s(
            "timeout",
            Kind::Duration,
            "how long to wait for responses; it also bounds the wait for the broker's acknowledgement",
        ),
        s(
            "expect",
            Kind::Count {
                min: 1,
                max: u32::MAX as u64,
            },
            "complete after this many distinct responders sent a final response (broadcasts)",
        ),
        s(
            "encoding",
            Kind::Choice {
                values: &Encoding::NAMES,
                numeric: false,
            },
            "payload encoding",
        ),
        s(
            "dialect",
            Kind::Choice {
                values: &Dialect::NAMES,
                numeric: false,
            },
            "wire dialect; when absent, as the peer has it (otupy's flat dialect for `otupy`, the specification's for the others); `bare` carries no request id, so its responses cannot be correlated",
        ),
    ];

    fn set_value(&mut self, name: &str, v: Value) -> Result<()> {
        match name {
            "to" => self.to = texts(v),
            "profile" => self.profile = Some(text(v)),
            "timeout" => self.timeout = duration(v),
            "expect" => self.expect = Some(count(v) as usize),
            "encoding" => {
                self.encoding = text(v)
                    .parse::<Encoding>()
                    .map_err(|e| Error::Config(e.to_string()))?;
            }
            "dialect" => {
                self.dialect = Some(
                    text(v)
                        .parse::<Dialect>()
                        .map_err(|e| Error::Config(e.to_string()))?,
                );
            }
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    fn clear_value(&mut self, name: &str) -> Result<()> {
        match name {
            "profile" => self.profile = None,
            "expect" => self.expect = None,
            "dialect" => self.dialect = None,
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    fn get_value(&self, name: &str) -> Option<Value> {
        Some(match name {
            "to" => Value::Texts(self.to.clone()),
            "profile" => return of_text(&self.profile),
            "timeout" => Value::Number(self.timeout.as_secs_f64()),
            "expect" => return self.expect.map(|n| Value::Count(n as u64)),
            "encoding" => Value::Text(self.encoding.as_str().to_owned()),
            "dialect" => return self.dialect.map(|d| Value::Text(d.as_str().to_owned())),
            _ => return None,
        })
    }
}

/// A parser's configuration error without its `configuration: ` prefix
/// (the setting's name goes there instead).
fn bare(e: Error) -> Error {
    match e {
        Error::Config(why) => Error::Config(why),
        other => Error::Config(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every setting of `T` can be read back after it is set to what `get` returned.
    fn round_trips<T: Settings>() {
        let d = T::default();
        for st in T::SETTINGS {
            let mut t = T::default();
            if let Some(v) = d.get_value(st.name) {
                t.set(Spelling::Snake, st.name, v.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", st.name));
                assert_eq!(t.get_value(st.name), Some(v), "{}", st.name);
            }
            assert!(
                T::setting(Spelling::Camel, &Spelling::Camel.spell(st.name)).is_ok(),
                "{}",
                st.name
            );
        }
    }

    #[test]
    fn every_setting_is_read_back_as_it_was_set() {
        round_trips::<ClientConfig>();
        round_trips::<ConsumerOptions>();
        round_trips::<SendOptions>();
        round_trips::<TopicScheme>();
        round_trips::<DedupOptions>();
    }

    #[test]
    fn every_setting_in_a_table_is_one_that_set_and_get_know() {
        fn known<T: Settings>() {
            for st in T::SETTINGS {
                let sample = match st.kind {
                    Kind::Flag => Value::Flag(true),
                    Kind::Count { .. } => Value::Count(1),
                    Kind::Seconds | Kind::Duration | Kind::Number => Value::Number(1.5),
                    Kind::Text | Kind::Path => Value::Text("x".into()),
                    Kind::Texts => Value::Texts(vec!["x".into()]),
                    Kind::Pairs => Value::pairs([("deny", "ipv4_net")]),
                    Kind::Choice { values, .. } => Value::Text(values[0].into()),
                };
                let mut t = T::default();
                t.set(Spelling::Snake, st.name, sample.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", st.name));
                assert!(t.get_value(st.name).is_some(), "{}", st.name);
            }
        }
        known::<ClientConfig>();
        known::<ConsumerOptions>();
        known::<SendOptions>();
        known::<TopicScheme>();
        known::<DedupOptions>();
    }

    #[test]
    fn unknown_names_are_refused_in_the_callers_spelling() {
        let mut c = ClientConfig::default();
        let e = c
            .set(Spelling::Camel, "keep_alive_secs", Value::Count(1))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("configuration: unknown setting 'keep_alive_secs' for ClientConfig; known: brokers, clientId, clientIdFile,"),
            "{e}"
        );
        let e = c
            .set(Spelling::Snake, "keepalive", Value::Count(1))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("known: brokers, client_id, client_id_file,"),
            "{e}"
        );
    }

    #[test]
    fn values_are_checked_against_their_kind_and_named_as_given() {
        let mut c = ClientConfig::default();
        let e = |r: Result<()>| r.unwrap_err().to_string();
        assert_eq!(
            e(c.set(Spelling::Camel, "qos", Value::Count(256))),
            "configuration: qos: 256 is too large (at most 255)"
        );
        assert_eq!(
            e(c.set(Spelling::Camel, "keepAliveSecs", Value::Text("60".into()))),
            "configuration: keepAliveSecs: expected a whole number from 0 to 4294967295, found a text"
        );
        assert_eq!(
            e(c.set(Spelling::Snake, "mqtt_version", Value::Text("6".into()))),
            "configuration: mqtt_version: unknown MQTT version '6'; expected 5, 3.1.1 or auto"
        );
        c.set(Spelling::Snake, "mqtt_version", Value::Count(5))
            .unwrap();
        assert_eq!(c.mqtt_version, MqttVersion::V5);
        let mut o = ConsumerOptions::default();
        assert_eq!(
            e(o.set(Spelling::Snake, "pairs", Value::Text("deny".into()))),
            "configuration: pairs: pair 'deny': expected ACTION:TARGET, e.g. deny:ipv4_connection"
        );
        assert_eq!(
            e(o.set(Spelling::Camel, "rateLimit", Value::Number(f64::NAN))),
            "configuration: rateLimit: expected a finite number greater than 0, found NaN"
        );
        o.set(Spelling::Camel, "handlerTimeoutSecs", Value::Number(0.5))
            .unwrap();
        assert_eq!(o.handler_timeout, Some(Duration::from_millis(500)));
        o.set(Spelling::Snake, "handler_timeout_secs", Value::Number(0.0))
            .unwrap();
        assert_eq!(o.handler_timeout, None, "0 is no limit");
        let mut s = SendOptions::default();
        assert_eq!(
            e(s.set(Spelling::Snake, "dialect", Value::Text("xml".into()))),
            "configuration: dialect: unknown dialect 'xml'; expected spec, otupy or bare"
        );
        s.set(Spelling::Snake, "to", Value::Text("fw-1".into()))
            .unwrap();
        assert_eq!(s.to, ["fw-1"]);
    }

    #[test]
    fn changed_lists_what_differs_from_the_default_and_hides_secrets() {
        let mut c = ClientConfig::new("mqtt://h:1883");
        c.username = Some("ops".into());
        c.password = Some("s3cret".into());
        c.qos = 2;
        let changed: Vec<_> = c
            .changed()
            .into_iter()
            .map(|(s, v)| (s.name, v.map(|v| v.to_string())))
            .collect();
        assert_eq!(
            changed,
            [
                ("brokers", Some("mqtt://h:1883".into())),
                ("username", Some("ops".into())),
                ("password", None),
                ("qos", Some("2".into())),
            ]
        );
    }

    #[test]
    fn every_setting_can_be_put_back_to_its_default() {
        fn resets<T: Settings + PartialEq + fmt::Debug>() {
            for st in T::SETTINGS {
                let mut t = T::default();
                let sample = match st.kind {
                    Kind::Flag => Value::Flag(true),
                    Kind::Count { .. } => Value::Count(1),
                    Kind::Seconds | Kind::Duration | Kind::Number => Value::Number(1.5),
                    Kind::Text | Kind::Path => Value::Text("x".into()),
                    Kind::Pairs => Value::Text("deny:ipv4_net".into()),
                    Kind::Texts => Value::Text("x".into()),
                    Kind::Choice { values, .. } => Value::Text(values[1].into()),
                };
                t.set(Spelling::Snake, st.name, sample)
                    .unwrap_or_else(|e| panic!("{}: {e}", st.name));
                t.unset(Spelling::Snake, st.name)
                    .unwrap_or_else(|e| panic!("{}: {e}", st.name));
                assert_eq!(t, T::default(), "{}", st.name);
            }
        }
        resets::<ClientConfig>();
        resets::<ConsumerOptions>();
        resets::<SendOptions>();
        resets::<TopicScheme>();
        resets::<DedupOptions>();
    }

    #[test]
    fn text_is_set_by_the_kind_of_its_setting_and_errors_name_the_key() {
        let mut c = ClientConfig::default();
        c.set_text(Spelling::Snake, "keep_alive_secs", "30")
            .unwrap();
        assert_eq!(c.keep_alive_secs, 30);
        c.set_text(Spelling::Snake, "brokers", "mqtt://a:1, mqtt://b:2")
            .unwrap();
        assert_eq!(c.brokers, ["mqtt://a:1", "mqtt://b:2"]);
        assert_eq!(
            c.set_text(Spelling::Snake, "qos", "two")
                .unwrap_err()
                .to_string(),
            "configuration: qos: expected a whole number from 0 to 255, found 'two'"
        );
        assert!(
            c.set_text(Spelling::Snake, "qos2", "1")
                .unwrap_err()
                .to_string()
                .starts_with("configuration: unknown setting 'qos2' for ClientConfig")
        );
    }

    #[test]
    fn matches_agrees_with_spell_for_every_setting() {
        fn agrees<T: Settings>() {
            for st in T::SETTINGS {
                for sp in [Spelling::Snake, Spelling::Camel] {
                    let spelt = sp.spell(st.name);
                    assert!(sp.matches(st.name, &spelt), "{}", st.name);
                    assert!(!sp.matches(st.name, &spelt[1..]), "{}", st.name);
                    assert!(!sp.matches(st.name, &format!("{spelt}x")), "{}", st.name);
                }
            }
        }
        agrees::<ClientConfig>();
        agrees::<ConsumerOptions>();
        agrees::<SendOptions>();
        agrees::<TopicScheme>();
        agrees::<DedupOptions>();
        assert!(!Spelling::Camel.matches("keep_alive_secs", "keep_alive_secs"));
        assert!(!Spelling::Camel.matches("keep_alive_secs", "keepalivesecs"));
    }

    #[test]
    fn consumer_rules_take_every_consumer_setting_but_serves_own() {
        let names: Vec<_> = ConsumerOptions::RULES_SETTINGS
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [
                "device_id",
                "profiles",
                "pairs",
                "args",
                "rate_limit",
                "group",
                "handle_features",
                "freshness_secs"
            ]
        );
    }

    #[test]
    fn only_recipients_take_one_text_alone() {
        let single = |t: &[Setting]| -> Vec<&str> {
            t.iter().filter(|s| s.single).map(|s| s.name).collect()
        };
        assert!(single(ClientConfig::SETTINGS).is_empty());
        assert!(single(ConsumerOptions::SETTINGS).is_empty());
        assert_eq!(single(SendOptions::SETTINGS), ["to"]);
    }

    #[test]
    fn pairs_are_a_kind_of_their_own_taken_from_pairs_or_text() {
        let kinds: Vec<_> = ConsumerOptions::SETTINGS
            .iter()
            .filter(|s| s.kind == Kind::Pairs)
            .map(|s| s.name)
            .collect();
        assert_eq!(kinds, ["pairs"]);
        let mut o = ConsumerOptions::default();
        o.set(
            Spelling::Snake,
            "pairs",
            Value::pairs([("deny", "ipv4_net"), ("allow", "ipv4_net")]),
        )
        .unwrap();
        assert_eq!(
            o.pairs,
            [
                ("deny".to_owned(), "ipv4_net".to_owned()),
                ("allow".to_owned(), "ipv4_net".to_owned())
            ]
        );
        o.set_text(Spelling::Snake, "pairs", "query:features, deny:ipv4_net")
            .unwrap();
        assert_eq!(o.pairs.len(), 2);
        assert_eq!(
            o.set(Spelling::Snake, "pairs", Value::Flag(true))
                .unwrap_err()
                .to_string(),
            "configuration: pairs: expected action:target pairs, found true/false"
        );
    }

    #[test]
    fn a_count_below_its_minimum_is_refused_set_or_built() {
        let mut d = DedupOptions::default();
        assert_eq!(
            d.set(Spelling::Camel, "capacity", Value::Count(0))
                .unwrap_err()
                .to_string(),
            "configuration: capacity: must be at least 1"
        );
        assert_eq!(d, DedupOptions::default(), "nothing changed");
        d.set(Spelling::Camel, "windowMs", Value::Count(0)).unwrap();
        assert_eq!(d.window_ms, 0, "a window may be 0 (nothing is a duplicate)");
        d.capacity = 0;
        assert_eq!(
            d.check_values().unwrap_err().to_string(),
            "configuration: capacity: must be at least 1"
        );
        assert!(ClientConfig::default().check_values().is_ok());
        assert!(ConsumerOptions::default().check_values().is_ok());
    }

    #[test]
    fn a_topic_scheme_takes_the_client_configs_own_rows() {
        for st in TopicScheme::SETTINGS {
            assert_eq!(
                ClientConfig::setting(Spelling::Snake, st.name).ok(),
                Some(st),
                "{}",
                st.name
            );
        }
        let mut t = TopicScheme::default();
        t.set(
            Spelling::Camel,
            "responseTopics",
            Value::Text("both".into()),
        )
        .unwrap();
        t.set(Spelling::Snake, "peer", Value::Text("otupy".into()))
            .unwrap();
        assert_eq!(t.peer, Peer::Otupy);
        assert_eq!(t.response_topics, Some(ResponseTopics::Both));
        assert_eq!(
            t.set(Spelling::Snake, "peer", Value::Text("acme".into()))
                .unwrap_err()
                .to_string(),
            "configuration: peer: unknown peer 'acme'; expected spec, otupy, yuuki or oif"
        );
    }

    #[test]
    fn text_is_parsed_by_kind_as_c_and_command_lines_hand_it_over() {
        assert_eq!(Value::parse(Kind::Flag, "yes").unwrap(), Value::Flag(true));
        assert_eq!(Value::parse(U32, "60").unwrap(), Value::Count(60));
        assert_eq!(
            Value::parse(Kind::Texts, "a, b").unwrap(),
            Value::Texts(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            Value::parse(Kind::Flag, "maybe").unwrap_err().to_string(),
            "configuration: expected true or false, found 'maybe'"
        );
    }
}
