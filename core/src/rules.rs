//! A consumer's OpenC2 rules, sans-IO: a command in, the responses out.
//!
//! [`ConsumerRules`] decides everything a consumer does with a message on a
//! command topic before and after the application runs it: decode it
//! (answering `400` to a malformed command it can address), ignore it when
//! its `to` names other devices, drop duplicates (the same command on
//! `oc2/cmd/all`, `oc2/cmd/ap/<p>` and `oc2/cmd/device/<id>`, or
//! redelivered) while answering deliberate repeats, skip stale and
//! retained commands, honour `response_requested` (LS 3.3.1.4), answer
//! `query features` (LS 4.1), `501` to action/target pairs and arguments it
//! did not declare (SLPF 2.3), and address and encode every response in the
//! dialect and encoding of its command. It does no I/O and reads no clock:
//! the caller passes the message and the time, and publishes what comes
//! out. [`crate::client::Consumer`] drives it over MQTT; the bindings
//! expose it to scripts that keep their own MQTT client; the shared rule
//! vectors in `tests/vectors/rules/` prove it in every language.
//!
//! ```
//! use oc2mqtt::rules::{ConsumerOptions, ConsumerRules, Received};
//! use oc2mqtt::message::Response;
//! use oc2mqtt::topics::TopicScheme;
//!
//! let mut rules = ConsumerRules::new(ConsumerOptions::new("fw-1"), TopicScheme::default()).unwrap();
//! let cmd = br#"{"headers":{"request_id":"r1","from":"p1"},
//!   "body":{"openc2":{"request":{"action":"deny","target":{"ipv4_net":"10.0.0.0/8"}}}}}"#;
//! let d = rules.on_command(&Received::new("oc2/cmd/device/fw-1", cmd), 0, 0);
//! let request = d.execute.expect("for the application");
//! let reply = rules.answer(&request, Response::new(200)).unwrap().expect("a response");
//! assert_eq!(reply.topics, ["oc2/rsp"]);
//! assert_eq!(reply.message.headers.to.as_deref(), Some(&["p1".to_owned()][..]));
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::codec::{self, DEFAULT_MAX_PAYLOAD, Dialect, Encoding, PublishProperties};
use crate::dedup::{DEFAULT_CAPACITY, DEFAULT_WINDOW_MS, DedupKey, Deduplicator};
use crate::error::{Error, MessageError, Result};
use crate::lock;
use crate::message::{
    Action, Body, Command, Headers, JsonMap, Message, MsgType, Response, ResponseRequested,
    STATUS_CODES,
};
use crate::topics::{Topics, shared, validate_id};

/// How old a command may be, by its `created`, and still run: 15 minutes.
///
/// A device that was offline may legitimately receive commands queued for
/// it (its broker session kept them), and clocks drift by seconds, not
/// minutes; but a `deny` from yesterday, replayed by a broker that kept it
/// for a dead session, must not run. Fifteen minutes covers a reboot or a
/// network outage and is far beyond any exchange's timeout.
pub const DEFAULT_FRESHNESS_SECS: u64 = 900;

/// How long a command that carries no `created` is remembered: 1 s.
///
/// Without `created`, a redelivery cannot be told from a deliberate repeat
/// (the bare `query features` heartbeat of LS 3.4.1.5, a script reusing the
/// examples' `uuid_1`). The copies of one publish on several topics arrive
/// within milliseconds of each other; a heartbeat comes seconds apart.
pub const REPEAT_WINDOW_MS: u64 = 1_000;

/// The arguments of the Language Specification (LS 3.3.1.4), which every
/// consumer takes.
pub const LANGUAGE_ARGS: [&str; 4] = ["start_time", "stop_time", "duration", "response_requested"];

/// What a value of a declared argument may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgValue {
    OneOf(&'static [&'static str]),
    Boolean,
    Integer,
}

/// The arguments an actuator profile defines, for profiles the core knows:
/// SLPF v1.0 CS01 2.1.3.2 (`args.slpf`).
fn profile_args(profile: &str) -> Option<&'static [(&'static str, ArgValue)]> {
    const SLPF: [(&str, ArgValue); 4] = [
        (
            "drop_process",
            ArgValue::OneOf(&["none", "reject", "false_ack"]),
        ),
        ("persistent", ArgValue::Boolean),
        ("direction", ArgValue::OneOf(&["both", "ingress", "egress"])),
        ("insert_rule", ArgValue::Integer),
    ];
    (profile == "slpf").then_some(&SLPF[..])
}

/// What a consumer is and what it implements.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerOptions {
    /// This device's id: its topic is `oc2/cmd/device/<id>` and the `from` of its responses.
    pub device_id: String,
    /// Actuator profiles implemented (`slpf`, ...): one `oc2/cmd/ap/<p>` subscription each.
    pub profiles: Vec<String>,
    /// Action/target pairs implemented; when any are declared, others get `501`.
    /// `query features` is always implemented.
    pub pairs: Vec<(String, String)>,
    /// Command arguments implemented beyond the Language Specification's
    /// (`start_time`, `stop_time`, `duration`, `response_requested`) and the
    /// declared profiles' (SLPF's `drop_process`, `persistent`, `direction`,
    /// `insert_rule` for `slpf`): a top-level name (`x-acme`, any value
    /// beneath it) or `namespace.name` (`x-acme.mode`). Once a consumer
    /// declares pairs, profiles or arguments, an argument outside them gets
    /// `501` (SLPF 2.3: an unsupported argument MUST NOT get `200`).
    pub args: Vec<String>,
    /// Maximum commands per minute, reported by `query features` when set.
    pub rate_limit: Option<f64>,
    /// Consumer group: subscribe through `$share/<group>/...` so each command
    /// reaches one member of the group.
    pub group: Option<String>,
    /// Deliver `query features` to the application instead of answering it.
    pub handle_features: bool,
    /// Commands whose `created` is older than this many seconds are stale:
    /// logged, counted in `stale` and not executed (nor answered). 0 = off.
    /// Default [`DEFAULT_FRESHNESS_SECS`]. Commands are also remembered this
    /// long (at least 60 s, [`dedup_window_ms`]), so that a replay is a
    /// duplicate or stale, never run twice.
    pub freshness_secs: u64,
    /// How long [`crate::client::Consumer::serve`]'s handler may take: past
    /// it, the command is answered `500 handler timed out` and another
    /// thread takes the handler's place; the handler is left to finish and
    /// its late answer is dropped. The same for `serve_async`, and for a
    /// command handed to a callback that answers it later
    /// ([`crate::client::Incoming::with_handler_timeout`], C's
    /// `oc2_consumer_serve`); not for `serve_inline` (its handler holds the
    /// network thread and cannot be interrupted) nor for commands the
    /// application pulls with `next`. `None` (the default): no limit (a
    /// binding's 0 sets `None`).
    pub handler_timeout: Option<std::time::Duration>,
    /// A file where [`crate::client::Consumer`] keeps the commands it took
    /// and those it finished: started again with the same file after it was
    /// killed, it runs the commands it had taken and not finished, and
    /// runs nothing it had finished again (see `journal.rs`). `None` (the
    /// default): in memory only.
    pub journal: Option<std::path::PathBuf>,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            device_id: String::new(),
            profiles: Vec::new(),
            pairs: Vec::new(),
            args: Vec::new(),
            rate_limit: None,
            group: None,
            handle_features: false,
            freshness_secs: DEFAULT_FRESHNESS_SECS,
            handler_timeout: None,
            journal: None,
        }
    }
}

impl ConsumerOptions {
    /// Options for device `device_id`, no profiles, no pairs.
    pub fn new(device_id: impl Into<String>) -> Self {
        Self {
            device_id: device_id.into(),
            ..Self::default()
        }
    }

    /// Adds a profile.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profiles.push(profile.into());
        self
    }

    /// Adds an action/target pair.
    pub fn pair(mut self, action: impl Into<String>, target: impl Into<String>) -> Self {
        self.pairs.push((action.into(), target.into()));
        self
    }

    /// Adds a pair written `action:target` (`deny:ipv4_net`), as the CLI's
    /// `--pair` and C's `oc2_consumer_connect` take them.
    ///
    /// ```
    /// let o = oc2mqtt::client::ConsumerOptions::new("fw-1").pair_str("deny:ipv4_net").unwrap();
    /// assert_eq!(o.pairs, [("deny".to_owned(), "ipv4_net".to_owned())]);
    /// assert_eq!(
    ///     oc2mqtt::client::ConsumerOptions::new("fw-1").pair_str("deny").unwrap_err().to_string(),
    ///     "configuration: pair 'deny': expected ACTION:TARGET, e.g. deny:ipv4_connection"
    /// );
    /// ```
    pub fn pair_str(self, pair: &str) -> Result<Self> {
        let (action, target) = parse_pair(pair)?;
        Ok(self.pair(action, target))
    }

    /// Adds an argument (`x-acme` or `x-acme.mode`).
    pub fn arg(mut self, name: impl Into<String>) -> Self {
        self.args.push(name.into());
        self
    }

    /// Checks the ids, actions and argument names.
    pub fn validate(&self) -> Result<()> {
        validate_id("device id", &self.device_id)?;
        for p in &self.profiles {
            validate_id("profile", p)?;
        }
        for (action, target) in &self.pairs {
            action
                .parse::<Action>()
                .map_err(|e| Error::Config(format!("pair {action}:{target}: {}", e.reason)))?;
            if target.is_empty() {
                return Err(Error::Config(format!(
                    "pair {action}:{target}: empty target"
                )));
            }
        }
        for a in &self.args {
            if a.is_empty() || a.split('.').any(str::is_empty) || a.split('.').count() > 2 {
                return Err(Error::Config(format!(
                    "argument '{a}': expected a name or namespace.name"
                )));
            }
        }
        if let Some(g) = &self.group {
            shared(g, "x")?;
        }
        if let Some(r) = self.rate_limit {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::Config(format!(
                    "rate limit {r}: expected a positive number of commands per minute"
                )));
            }
        }
        Ok(())
    }

    /// The `pairs` result of `query features`: action → targets, `query: [features]` included.
    pub fn pairs_result(&self) -> Value {
        let mut map: Map<String, Value> = Map::new();
        let mut add = |a: &str, t: &str| {
            let list = map
                .entry(a.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = list {
                if !items.iter().any(|i| i == t) {
                    items.push(Value::String(t.to_owned()));
                }
            }
        };
        add("query", "features");
        for (a, t) in &self.pairs {
            add(a, t);
        }
        Value::Object(map)
    }

    fn implements(&self, cmd: &Command) -> bool {
        self.pairs.is_empty()
            || self
                .pairs
                .iter()
                .any(|(a, t)| a == cmd.action.as_str() && *t == cmd.target.name)
    }

    /// Whether the consumer said what it implements, so that arguments
    /// outside it are refused.
    fn declares_arguments(&self) -> bool {
        !(self.pairs.is_empty() && self.profiles.is_empty() && self.args.is_empty())
    }

    /// The answer to an argument this consumer does not take, or a value of
    /// a known profile's argument it cannot be: `501` or `400`.
    fn refuse_argument(&self, cmd: &Command) -> Option<Response> {
        let args = cmd.args.as_ref()?;
        if !self.declares_arguments() {
            return None;
        }
        let declared = |name: &str| self.args.iter().any(|a| a == name);
        for (name, value) in args {
            if LANGUAGE_ARGS.contains(&name.as_str()) || declared(name) {
                continue;
            }
            let known = self.profiles.iter().any(|p| p == name);
            let Some(table) = known.then(|| profile_args(name)) else {
                return Some(unsupported_argument(name));
            };
            let Some(table) = table else {
                continue; // a declared profile the core has no table for: its own business
            };
            let Value::Object(inner) = value else {
                return Some(Response::new(400).with_text(format!(
                    "args.{name}: expected an object of {name} arguments"
                )));
            };
            for (key, v) in inner {
                let path = format!("{name}.{key}");
                if declared(&path) {
                    continue;
                }
                let Some((_, kind)) = table.iter().find(|(k, _)| k == key) else {
                    return Some(unsupported_argument(&path));
                };
                let ok = match kind {
                    ArgValue::OneOf(values) => v.as_str().is_some_and(|s| values.contains(&s)),
                    ArgValue::Boolean => v.is_boolean(),
                    ArgValue::Integer => v.is_u64(),
                };
                if !ok {
                    let expected = match kind {
                        ArgValue::OneOf(values) => format!("one of {}", values.join(", ")),
                        ArgValue::Boolean => "true or false".to_owned(),
                        ArgValue::Integer => "a non-negative integer".to_owned(),
                    };
                    return Some(Response::new(400).with_text(format!(
                        "args.{path}: {v} is not valid; expected {expected} ({} profile)",
                        name.to_uppercase()
                    )));
                }
            }
        }
        None
    }
}

fn unsupported_argument(path: &str) -> Response {
    Response::new(501).with_text(format!(
        "Option not supported: argument {path} is not implemented by this consumer"
    ))
}

fn is_query_features(cmd: &Command) -> bool {
    cmd.action.as_str() == "query" && cmd.target.name == "features"
}

/// The answer to `query features` (LS 4.1) from the consumer's options.
pub fn features_response(options: &ConsumerOptions, cmd: &Command) -> Response {
    if let Some(args) = &cmd.args {
        if args
            .iter()
            .any(|(k, v)| !(k == "response_requested" && v == "complete"))
        {
            return Response::new(400).with_text(
                "query features accepts no argument other than response_requested: complete (LS 4.1)",
            );
        }
    }
    let Value::Array(features) = &cmd.target.value else {
        return Response::new(400).with_text("target.features: expected an array of feature names");
    };
    let mut rsp = Response::new(200);
    for f in features {
        rsp = match f.as_str() {
            Some("versions") => rsp.with_result("versions", Value::from(vec!["1.0"])),
            Some("profiles") => rsp.with_result("profiles", Value::from(options.profiles.clone())),
            Some("pairs") => rsp.with_result("pairs", options.pairs_result()),
            Some("rate_limit") => match options.rate_limit {
                Some(r) => rsp.with_result("rate_limit", r),
                None => rsp,
            },
            _ => {
                return Response::new(400)
                    .with_text(format!("target.features: unknown feature {f}; expected versions, profiles, pairs or rate_limit"));
            }
        };
    }
    rsp
}

/// What the consumer answers by itself, before the application sees the
/// command: `query features` (unless the application takes it), `501` to
/// an undeclared pair or argument, `400` to a known profile's argument with
/// a value it cannot have.
pub fn builtin_response(options: &ConsumerOptions, cmd: &Command) -> Option<Response> {
    if is_query_features(cmd) {
        return (!options.handle_features).then(|| features_response(options, cmd));
    }
    if !options.implements(cmd) {
        return Some(Response::new(501).with_text(format!(
            "{} {} is not implemented by this consumer",
            cmd.action, cmd.target.name
        )));
    }
    options.refuse_argument(cmd)
}

/// Why a received command must not run although it is well-formed: it
/// arrived retained (a stored message, not a live command; MQTT-T publishes
/// with Retain 0), or its `created` is more than `freshness_secs` before or
/// after `now_ms` (0 turns the age check off). A command without `created`
/// cannot be judged by age and is fresh.
///
/// ```
/// use oc2mqtt::rules::stale_reason;
/// use oc2mqtt::message::Headers;
/// let mut h = Headers::default();
/// h.created = Some(1_700_000_000_000);
/// assert_eq!(stale_reason(&h, false, 1_700_000_060_000, 900), None);
/// assert_eq!(
///     stale_reason(&h, false, 1_700_003_600_000, 900).as_deref(),
///     Some("created 3600 s ago, older than the freshness window of 900 s")
/// );
/// assert!(stale_reason(&h, true, 1_700_000_000_000, 900).is_some());
/// assert_eq!(
///     stale_reason(&h, false, 1_699_999_000_000, 900).as_deref(),
///     Some("created 1000 s in the future, beyond the freshness window of 900 s")
/// );
/// ```
pub fn stale_reason(
    headers: &Headers,
    retained: bool,
    now_ms: i64,
    freshness_secs: u64,
) -> Option<String> {
    if retained {
        return Some("delivered as a retained message".to_owned());
    }
    let created = headers.created?;
    if freshness_secs == 0 {
        return None;
    }
    let age_ms = now_ms.saturating_sub(created);
    let window_ms = i64::try_from(freshness_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if age_ms > window_ms {
        return Some(format!(
            "created {} s ago, older than the freshness window of {freshness_secs} s",
            age_ms / 1000
        ));
    }
    // A `created` further ahead than the window is no clock drift: such a
    // command would never turn stale, so a replay of it after the duplicate
    // window would run again.
    (age_ms < -window_ms).then(|| {
        format!(
            "created {} s in the future, beyond the freshness window of {freshness_secs} s",
            age_ms.saturating_neg() / 1000
        )
    })
}

/// How long a consumer remembers a command that carries `created`: as long
/// as the command is fresh (`freshness_secs`), and at least the default
/// dedup window. A replay is then either still remembered (a duplicate) or
/// older than the freshness window (stale): it never runs twice, as long as
/// the table's capacity holds.
///
/// ```
/// use oc2mqtt::rules::dedup_window_ms;
/// assert_eq!(dedup_window_ms(900), 900_000);
/// assert_eq!(dedup_window_ms(0), 60_000); // freshness off: the default window
/// assert_eq!(dedup_window_ms(5), 60_000);
/// ```
pub fn dedup_window_ms(freshness_secs: u64) -> u64 {
    freshness_secs.saturating_mul(1000).max(DEFAULT_WINDOW_MS)
}

/// The id an address names, in the forms peers write: the id itself,
/// `<id>@<host:port>` (the OIF orchestrator), or a topic ending in the id
/// (`oc2/cmd/device/c01`, `oc2/rsp/p01`: the CASP scripts).
///
/// ```
/// use oc2mqtt::rules::address_id;
/// assert_eq!(address_id("c01"), "c01");
/// assert_eq!(address_id("c01@10.0.0.5:1883"), "c01");
/// assert_eq!(address_id("oc2/cmd/device/c01"), "c01");
/// ```
pub fn address_id(address: &str) -> &str {
    let id = address.rsplit('/').next().unwrap_or(address);
    id.split_once('@').map_or(id, |(id, _)| id)
}

/// Whether this device should execute a command addressed to `to`: absent
/// or empty means everyone; else one entry must name `device_id`, in any
/// of the forms of [`address_id`].
pub fn addressed_to(headers: &Headers, device_id: &str) -> bool {
    match headers.to.as_deref() {
        Some(to) if !to.is_empty() => to
            .iter()
            .any(|t| t == device_id || address_id(t) == device_id),
        _ => true,
    }
}

/// A message as it arrived on a command topic.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The topic it was published to.
    pub topic: &'a str,
    /// The payload.
    pub payload: &'a [u8],
    /// Its MQTT v5 properties; `None` over MQTT 3.1.1.
    pub properties: Option<&'a PublishProperties>,
    /// Whether the broker delivered it as a retained message.
    pub retained: bool,
}

impl<'a> Received<'a> {
    /// A live (not retained) message without properties.
    pub fn new(topic: &'a str, payload: &'a [u8]) -> Self {
        Self {
            topic,
            payload,
            properties: None,
            retained: false,
        }
    }
}

/// A command for the application, with what its answer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The whole request message (`command_id` defaulted to `request_id`).
    pub message: Message,
    /// The topic it arrived on.
    pub topic: String,
    /// Its encoding; the answer uses the same.
    pub encoding: Encoding,
    /// Its dialect; the answer uses the same.
    pub dialect: Dialect,
    /// Its identity among the commands seen, and when it was first seen
    /// (monotonic ms): the answers are recorded under it.
    seen: Option<(DedupKey, u64)>,
}

impl Request {
    /// The command.
    pub fn command(&self) -> &Command {
        self.message
            .command()
            .expect("a Request always holds a command")
    }

    /// Its identity among the commands seen (for a consumer's journal).
    pub(crate) fn key(&self) -> Option<DedupKey> {
        self.seen.map(|(k, _)| k)
    }

    /// What the producer asked for.
    pub fn response_requested(&self) -> ResponseRequested {
        self.command().response_requested()
    }
}

/// A response to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    /// The topics to publish it on (each gets the same payload).
    pub topics: Vec<String>,
    /// The encoded payload.
    pub payload: Vec<u8>,
    /// The MQTT v5 properties (ignored over 3.1.1).
    pub properties: PublishProperties,
    /// The response message the payload encodes.
    pub message: Message,
}

/// Why a message leads to no execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// Seen before (another topic, a redelivery, a replay).
    Duplicate,
    /// Its `to` names other devices.
    NotAddressed,
    /// Retained, or older than the freshness window; the reason.
    Stale(String),
    /// A response or notification on a command topic.
    NotACommand,
    /// The consumer answered it itself (see [`Decision::publish`]): `query
    /// features`, a `501`, a `400`.
    Answered(u16),
    /// It does not decode; answered `400` when [`Decision::publish`] holds
    /// the answer, else no sender could be addressed or it asked for none.
    Undecodable(MessageError),
}

impl Skip {
    /// The names of [`Skip::as_str`].
    pub const KINDS: [&'static str; 6] = [
        "duplicate",
        "not_addressed",
        "stale",
        "not_a_command",
        "answered",
        "undecodable",
    ];

    /// A stable name: `duplicate`, `not_addressed`, `stale`, `not_a_command`,
    /// `answered`, `undecodable` (the rule vectors use it).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Duplicate => Self::KINDS[0],
            Self::NotAddressed => Self::KINDS[1],
            Self::Stale(_) => Self::KINDS[2],
            Self::NotACommand => Self::KINDS[3],
            Self::Answered(_) => Self::KINDS[4],
            Self::Undecodable(_) => Self::KINDS[5],
        }
    }

    /// The detail, where there is one: why it is stale, the decoding
    /// error, the status the consumer answered with.
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Stale(why) => Some(why.clone()),
            Self::Undecodable(e) => Some(e.to_string()),
            Self::Answered(status) => Some(status.to_string()),
            Self::Duplicate | Self::NotAddressed | Self::NotACommand => None,
        }
    }
}

/// What to do with one received message.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Responses to publish now, in this order (a `102`, a `400`, `query
    /// features`...).
    pub publish: Vec<Publish>,
    /// The command for the application, if it is to run.
    pub execute: Option<Request>,
    /// Why nothing runs, when `execute` is `None`.
    pub skipped: Option<Skip>,
}

impl Decision {
    fn skip(why: Skip) -> Self {
        Self {
            publish: Vec::new(),
            execute: None,
            skipped: Some(why),
        }
    }
}

/// The rules of one consumer. See the module documentation.
#[derive(Debug)]
pub struct ConsumerRules {
    options: ConsumerOptions,
    /// Addresses, encodes and records every response (built once: it is
    /// used for every command).
    responder: Responder,
    max_payload: usize,
    /// Commands with `created`, by (from, request_id, created), for as long
    /// as they are fresh.
    by_created: Deduplicator,
    /// Commands without `created`, by (from, request_id) or payload, for
    /// [`REPEAT_WINDOW_MS`].
    repeats: Deduplicator,
}

impl ConsumerRules {
    /// Rules for a consumer with `options` on the topic scheme `topics`
    /// (a [`crate::topics::TopicScheme`]: the settings that make one, as every binding
    /// takes them; or [`Topics`] made otherwise, a client's with its
    /// prefix), decoding payloads up to [`DEFAULT_MAX_PAYLOAD`].
    pub fn new(options: ConsumerOptions, topics: impl Into<Topics>) -> Result<Self> {
        Self::with_max_payload(options, topics.into(), DEFAULT_MAX_PAYLOAD)
    }

    /// [`ConsumerRules::new`] with a payload limit.
    pub fn with_max_payload(
        options: ConsumerOptions,
        topics: Topics,
        max_payload: usize,
    ) -> Result<Self> {
        options.validate()?;
        Ok(Self {
            by_created: Deduplicator::new(
                dedup_window_ms(options.freshness_secs),
                DEFAULT_CAPACITY,
            ),
            repeats: Deduplicator::new(REPEAT_WINDOW_MS, DEFAULT_CAPACITY),
            responder: Responder {
                device_id: options.device_id.clone(),
                topics,
                answers: Arc::new(Mutex::new(AnswerBook::new(dedup_window_ms(
                    options.freshness_secs,
                )))),
            },
            options,
            max_payload,
        })
    }

    /// The options.
    pub fn options(&self) -> &ConsumerOptions {
        &self.options
    }

    /// A responder for answers given outside the rules' lock (it shares
    /// the record of answers).
    pub fn responder(&self) -> Responder {
        self.responder.clone()
    }

    /// Decides what to do with a message received on a command topic at
    /// `now_ms` (milliseconds since the epoch, for `created`) and
    /// `monotonic_ms` (any monotonic clock, for the duplicate windows).
    pub fn on_command(&mut self, m: &Received<'_>, now_ms: i64, monotonic_ms: u64) -> Decision {
        let decoded = match codec::decode_with_limit(m.payload, m.properties, self.max_payload) {
            Ok(d) => d,
            Err(e) => return self.on_undecodable(m, e, monotonic_ms),
        };
        let mut message = decoded.message;
        if message.msg_type() != MsgType::Request {
            return Decision::skip(Skip::NotACommand);
        }
        message.default_command_id();
        if !addressed_to(&message.headers, &self.options.device_id) {
            return Decision::skip(Skip::NotAddressed);
        }
        let (key, first) = self.first_sighting(&message.headers, m.payload, monotonic_ms);
        if !first {
            return self.on_duplicate(key, monotonic_ms);
        }
        if let Some(why) = stale_reason(
            &message.headers,
            m.retained,
            now_ms,
            self.options.freshness_secs,
        )
        .or_else(|| self.beyond_memory(&message.headers, now_ms, monotonic_ms))
        {
            return Decision::skip(Skip::Stale(why));
        }
        let request = Request {
            message,
            topic: m.topic.to_owned(),
            encoding: decoded.encoding,
            dialect: decoded.dialect,
            seen: Some((key, monotonic_ms)),
        };
        let responder = &self.responder;
        let rr = request.response_requested();
        let builtin = builtin_response(&self.options, request.command());
        let mut publish = Vec::new();
        // A refusal at receipt (400, 501) is the answer, in place of the
        // `102` of ack or status; only `none` silences it.
        let refused = builtin.as_ref().is_some_and(|r| r.status >= 400);
        if matches!(rr, ResponseRequested::Ack | ResponseRequested::Status) && !refused {
            publish.extend(responder.encode(&request, Response::new(102)));
        }
        match builtin {
            Some(rsp) => {
                let status = rsp.status;
                let send = match rr {
                    ResponseRequested::None => false,
                    ResponseRequested::Ack => refused,
                    ResponseRequested::Status | ResponseRequested::Complete => true,
                };
                if send {
                    publish.extend(responder.encode(&request, rsp));
                }
                Decision {
                    publish,
                    execute: None,
                    skipped: Some(Skip::Answered(status)),
                }
            }
            None => Decision {
                publish,
                execute: Some(request),
                skipped: None,
            },
        }
    }

    /// Remembers a command finished before this process started (from a
    /// consumer's journal): sent again, it is a duplicate.
    pub(crate) fn remember(&mut self, key: DedupKey, monotonic_ms: u64) {
        self.by_created.check(key, monotonic_ms);
    }

    /// Answers `response` to `request` (see [`Responder::answer`]).
    pub fn answer(&self, request: &Request, response: Response) -> Result<Option<Publish>> {
        self.responder.answer(request, response)
    }

    /// Why a fresh command must still not run: at a rate the duplicate
    /// table cannot hold for the whole freshness window, commands are
    /// remembered for less, and one created before that could be a replay
    /// that is no longer recognised.
    fn beyond_memory(&self, headers: &Headers, now_ms: i64, monotonic_ms: u64) -> Option<String> {
        let created = headers.created?;
        if self.options.freshness_secs == 0 {
            return None;
        }
        let memory_ms = self.by_created.memory_ms(monotonic_ms);
        let age_ms = now_ms.saturating_sub(created);
        (u64::try_from(age_ms).is_ok_and(|age| age > memory_ms)).then(|| {
            format!(
                "created {} s ago, and at this rate commands are remembered only {:.1} s \
                 (at most {DEFAULT_CAPACITY}): it could be a replay no longer recognised",
                age_ms / 1000,
                memory_ms as f64 / 1000.0
            )
        })
    }

    /// A command's identity, and whether it is seen for the first time.
    fn first_sighting(
        &mut self,
        headers: &Headers,
        payload: &[u8],
        monotonic_ms: u64,
    ) -> (DedupKey, bool) {
        let from = headers.from.as_deref();
        let (key, table) = match (headers.request_id.as_deref(), headers.created) {
            (Some(id), Some(created)) => (
                DedupKey::command_created(from, id, created),
                &mut self.by_created,
            ),
            (Some(id), None) => (DedupKey::command(from, id), &mut self.repeats),
            (None, _) => (DedupKey::payload(payload), &mut self.repeats),
        };
        (key, table.check(key, monotonic_ms))
    }

    /// A duplicate: nothing runs; but a command sent again (a producer
    /// re-sends what is unanswered after it reconnects) gets the answers it
    /// already had, since the broker may have lost them. Copies of one
    /// publish on several topics (within [`REPEAT_WINDOW_MS`]) get nothing.
    fn on_duplicate(&self, key: DedupKey, monotonic_ms: u64) -> Decision {
        let publish = lock(&self.responder.answers).again(key, monotonic_ms);
        Decision {
            publish,
            execute: None,
            skipped: Some(Skip::Duplicate),
        }
    }

    fn on_undecodable(&mut self, m: &Received<'_>, e: MessageError, monotonic_ms: u64) -> Decision {
        let s = &e.salvage;
        let addressable = s.request_id.is_some() || s.from.is_some();
        let quiet = !addressable
            || !matches!(s.msg_type, None | Some(MsgType::Request))
            || s.response_requested == Some(ResponseRequested::None)
            || !addressed_to(
                &Headers {
                    to: s.to.as_deref().map(<[String]>::to_vec),
                    ..Headers::default()
                },
                &self.options.device_id,
            );
        if quiet {
            return Decision::skip(Skip::Undecodable(e));
        }
        let headers = Headers {
            request_id: s.request_id.clone(),
            from: s.from.clone(),
            ..Headers::default()
        };
        let (key, first) = self.first_sighting(&headers, m.payload, monotonic_ms);
        if !first {
            return self.on_duplicate(key, monotonic_ms);
        }
        let request = Request {
            message: Message {
                headers,
                body: Body::Notification(JsonMap::new()),
                extra: JsonMap::new(),
            },
            topic: m.topic.to_owned(),
            encoding: s.encoding.unwrap_or_default(),
            dialect: s.dialect.unwrap_or_default(),
            seen: Some((key, monotonic_ms)),
        };
        let publish = self
            .responder
            .encode(&request, Response::new(400).with_text(e.to_string()))
            .into_iter()
            .collect();
        Decision {
            publish,
            execute: None,
            skipped: Some(Skip::Undecodable(e)),
        }
    }
}

/// Addresses and encodes a consumer's responses: `from` its device id, `to`
/// the command's sender, on the response topics, in the command's dialect
/// and encoding.
#[derive(Debug, Clone)]
pub struct Responder {
    device_id: String,
    topics: Topics,
    answers: Arc<Mutex<AnswerBook>>,
}

impl Responder {
    /// The application's answer to `request`, or `None` when
    /// `response_requested` says not to send it: nothing for `none`, and
    /// for `ack` the consumer's own `102` was the answer. Fails only on a
    /// response that is not valid (an unknown status code).
    pub fn answer(&self, request: &Request, response: Response) -> Result<Option<Publish>> {
        response.validate()?;
        let send = match request.response_requested() {
            ResponseRequested::None | ResponseRequested::Ack => false,
            ResponseRequested::Status | ResponseRequested::Complete => true,
        };
        if !send {
            return Ok(None);
        }
        let msg = self.message(request, response);
        let publish = self.encode_message(request, msg)?;
        self.record(request, &publish);
        Ok(Some(publish))
    }

    /// Keeps `publish` as an answer to `request`, for a copy sent again.
    fn record(&self, request: &Request, publish: &Publish) {
        if let Some((key, seen_ms)) = request.seen {
            lock(&self.answers).record(key, seen_ms, publish);
        }
    }

    /// The response message to `request`: request_id copied, `to` its
    /// sender, `from` this device.
    fn message(&self, request: &Request, response: Response) -> Message {
        Message::response_to(&request.message, response).from(self.device_id.as_str())
    }

    fn encode_message(&self, request: &Request, msg: Message) -> Result<Publish> {
        let (payload, mut properties) = codec::encode(&msg, request.encoding, request.dialect)?;
        self.topics.spell_msg_type(&mut properties);
        Ok(Publish {
            topics: self.topics.response_topics(&msg),
            payload,
            properties,
            message: msg,
        })
    }

    /// A response of the consumer's own; it cannot fail to encode (a
    /// status of ours, a text), so a failure is logged and nothing sent.
    fn encode(&self, request: &Request, response: Response) -> Option<Publish> {
        let msg = self.message(request, response);
        let publish = self
            .encode_message(request, msg)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot encode a response"))
            .ok()?;
        self.record(request, &publish);
        Some(publish)
    }
}

/// An action/target pair written `action:target` (`deny:ipv4_net`).
pub fn parse_pair(pair: &str) -> Result<(&str, &str)> {
    match pair.split_once(':') {
        Some((a, t)) if !a.is_empty() && !t.is_empty() => Ok((a, t)),
        _ => Err(Error::Config(format!(
            "pair '{pair}': expected ACTION:TARGET, e.g. deny:ipv4_connection"
        ))),
    }
}

/// Most answers kept for commands sent again: at 800 commands/s, those of
/// the last 20 s (a broker restart and a reconnect).
const ANSWERS_KEPT: usize = 16_384;
/// Most bytes of answers kept (payloads, topics, properties): a consumer's
/// memory stays flat however many commands it answers (1 000 consumers in
/// one process hold at most this each).
const ANSWER_BYTES_KEPT: usize = 2 << 20;

/// An answer as it went on the wire: what a command sent again gets. The
/// decoded message is not kept (a `Message` is several times its payload);
/// it is read back from the payload on the rare replay.
#[derive(Debug)]
struct KeptAnswer {
    topics: Vec<String>,
    payload: Vec<u8>,
    properties: PublishProperties,
}

impl KeptAnswer {
    fn size(&self) -> usize {
        self.payload.len()
            + self.topics.iter().map(|t| t.len() + 24).sum::<usize>()
            + std::mem::size_of::<Self>()
    }

    fn publish(&self) -> Option<Publish> {
        let message = codec::decode(&self.payload, Some(&self.properties))
            .inspect_err(|e| tracing::warn!(error = %e, "a kept answer no longer decodes"))
            .ok()?
            .message;
        Some(Publish {
            topics: self.topics.clone(),
            payload: self.payload.clone(),
            properties: self.properties.clone(),
            message,
        })
    }
}

/// The answers given, by command, so that a command sent again after a
/// reconnect (its answer lost with a broker that kept no sessions) gets
/// them again without running twice. Bounded: [`ANSWERS_KEPT`] commands and
/// [`ANSWER_BYTES_KEPT`] bytes, for as long as commands are remembered
/// (`dedup_window_ms`).
#[derive(Debug)]
struct AnswerBook {
    by_key: HashMap<u128, (u64, Vec<KeptAnswer>)>,
    order: VecDeque<(u128, u64)>,
    window_ms: u64,
    bytes: usize,
}

impl AnswerBook {
    fn new(window_ms: u64) -> Self {
        Self {
            by_key: HashMap::new(),
            order: VecDeque::new(),
            window_ms,
            bytes: 0,
        }
    }

    fn record(&mut self, key: DedupKey, seen_ms: u64, publish: &Publish) {
        let k = key.as_u128();
        let kept = KeptAnswer {
            topics: publish.topics.clone(),
            payload: publish.payload.clone(),
            properties: publish.properties.clone(),
        };
        self.bytes += kept.size();
        if let Some((_, list)) = self.by_key.get_mut(&k) {
            list.push(kept);
        } else {
            self.by_key.insert(k, (seen_ms, vec![kept]));
            self.order.push_back((k, seen_ms));
        }
        while self.order.len() > ANSWERS_KEPT
            || (self.bytes > ANSWER_BYTES_KEPT && self.order.len() > 1)
            || self
                .order
                .front()
                .is_some_and(|(_, t)| seen_ms.saturating_sub(*t) > self.window_ms)
        {
            let Some((old, _)) = self.order.pop_front() else {
                break;
            };
            if let Some((_, list)) = self.by_key.remove(&old) {
                self.bytes -= list.iter().map(KeptAnswer::size).sum::<usize>();
            }
        }
    }

    /// The answers to send again for a duplicate of `key` seen at `now_ms`.
    fn again(&self, key: DedupKey, now_ms: u64) -> Vec<Publish> {
        match self.by_key.get(&key.as_u128()) {
            Some((seen_ms, list)) if now_ms.saturating_sub(*seen_ms) >= REPEAT_WINDOW_MS => {
                list.iter().filter_map(KeptAnswer::publish).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// A handler's outcome: the response it gave (`None`: a plain `200`) or
/// the text of its failure (a `500`); [`outcome_response`] makes it the
/// command's answer.
pub type Outcome = std::result::Result<Option<Response>, String>;

/// What a handler gave back, as its host read it: the one input of
/// [`handler_outcome`], which holds what each means and every text of a
/// result that is not a response. One rule for every host: nothing is a
/// plain `200`, a number is that status, an object is a response.
#[derive(Debug, Clone, PartialEq)]
pub enum HandlerResult {
    /// Nothing (Python's `None`, JavaScript's `undefined` or `null`).
    Nothing,
    /// A number: the status of a response with nothing else. Any number the
    /// host has, so that a fraction or an out-of-range one is named.
    Status(f64),
    /// A response object (a Python dict, a JavaScript object), as JSON.
    Object(Value),
    /// A response the host built itself (C's status, text and results).
    Response(Response),
    /// A response object the host could not read as JSON; why.
    Unreadable(String),
    /// The handler raised, threw or rejected: its message (may be empty)
    /// and, when the host has one, the name of the error's kind (a Python
    /// exception class, a JavaScript error's `name`).
    Failed {
        /// The error's message.
        text: String,
        /// Its kind's name, said when the message is empty.
        kind: Option<String>,
    },
    /// Anything else: the host's name for its type (`str`, `string`).
    Other(String),
}

/// What a handler's result means, the rule every binding shares (then
/// [`outcome_response`]): see [`HandlerResult`]. Every text a handler's
/// result can be answered with is here.
pub fn handler_outcome(result: HandlerResult) -> Outcome {
    let invalid = |e: MessageError| format!("the handler returned an invalid response: {e}");
    match result {
        HandlerResult::Nothing => Ok(None),
        HandlerResult::Status(n) => status_of(n).map(|s| Some(Response::new(s))),
        HandlerResult::Object(v) => Response::from_json_value(v).map(Some).map_err(invalid),
        HandlerResult::Response(r) => {
            status_of(f64::from(r.status))?;
            r.validate().map_err(invalid)?;
            Ok(Some(r))
        }
        HandlerResult::Unreadable(why) => {
            Err(format!("the handler returned an invalid response: {why}"))
        }
        HandlerResult::Failed { text, kind } => Err(match (text.is_empty(), kind) {
            (false, _) => text,
            (true, Some(kind)) if !kind.is_empty() => format!("the handler failed: {kind}"),
            (true, _) => "the handler failed".to_owned(),
        }),
        HandlerResult::Other(what) => Err(format!(
            "the handler returned a value of type {what}; expected nothing, a status code or a \
             response object"
        )),
    }
}

/// A handler's number as a status code, or the text naming it.
fn status_of(n: f64) -> std::result::Result<u16, String> {
    let code = (n.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&n)).then_some(n as u16);
    match code {
        Some(c) if STATUS_CODES.contains(&c) => Ok(c),
        _ => Err(format!(
            "the handler returned an invalid status: {n}; expected one of {}",
            STATUS_CODES.map(|c| c.to_string()).join(", ")
        )),
    }
}

/// The outcome of a Rust handler that panicked with this message.
pub fn panicked(message: &str) -> Outcome {
    Err(format!("handler panicked: {message}"))
}

/// The response for a handler's outcome, the one rule every binding
/// shares: the response as given, `Ok(None)` as a plain `200`, `Err(text)`
/// as a `500` with that text. A handler's outcome is its command's final
/// answer, so an interim `102` given as the outcome is a `500` naming it
/// (the command would otherwise never get a final response; a handler that
/// works long sends its `102` itself, then returns the final response).
pub fn outcome_response(outcome: Outcome) -> Response {
    match outcome {
        Ok(Some(r)) if !r.is_final() => Response::new(500).with_text(format!(
            "the handler returned the interim status {} as its final answer",
            r.status
        )),
        Ok(Some(r)) => r,
        Ok(None) => Response::new(200),
        Err(text) => Response::new(500).with_text(text),
    }
}

/// The answer to a command whose handler was stopped before it finished,
/// because its serve loop was stopped (an asyncio `serve_async` cancelled):
/// a `500` saying so, as a handler past its time gets `500 handler timed
/// out after N s`. Without it the producer would wait out its timeout.
pub fn stopped_response() -> Response {
    Response::new(500).with_text("serving stopped before the handler finished")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Target;
    use serde_json::json;

    #[test]
    fn a_stopped_handler_is_answered_500_saying_so() {
        let r = stopped_response();
        assert_eq!(
            (r.status, r.status_text.as_deref()),
            (500, Some("serving stopped before the handler finished"))
        );
        assert!(r.is_final());
    }

    #[test]
    fn a_handler_outcome_is_a_final_answer() {
        assert_eq!(outcome_response(Ok(None)).status, 200);
        let given = Response::new(404).with_text("no such rule");
        assert_eq!(outcome_response(Ok(Some(given.clone()))), given);
        let failed = outcome_response(Err("boom".into()));
        assert_eq!(
            (failed.status, failed.status_text.as_deref()),
            (500, Some("boom"))
        );
        let interim = outcome_response(Ok(Some(Response::new(102))));
        assert_eq!(interim.status, 500);
        assert_eq!(
            interim.status_text.as_deref(),
            Some("the handler returned the interim status 102 as its final answer")
        );
    }

    #[test]
    fn a_handler_result_means_the_same_in_every_host() {
        use HandlerResult as R;
        let codes = "expected one of 102, 200, 400, 401, 403, 404, 500, 501, 503";
        let err = |r: R| handler_outcome(r).expect_err("a 500");
        // Nothing: a plain 200; a number: that status; an object: a response.
        assert_eq!(handler_outcome(R::Nothing), Ok(None));
        assert_eq!(
            handler_outcome(R::Status(404.0)),
            Ok(Some(Response::new(404)))
        );
        let given = json!({"status": 200, "status_text": "done", "results": {"x-acme": 1}});
        assert_eq!(
            handler_outcome(R::Object(given.clone())),
            Ok(Some(Response::from_json_value(given).unwrap()))
        );
        let built = Response::new(404).with_text("no such rule");
        assert_eq!(handler_outcome(R::Response(built.clone())), Ok(Some(built)));
        // An interim status is a status: outcome_response refuses it as a final answer.
        let interim = outcome_response(handler_outcome(R::Status(102.0)));
        assert_eq!(
            (interim.status, interim.status_text.as_deref()),
            (
                500,
                Some("the handler returned the interim status 102 as its final answer")
            )
        );
        // A number that is no status code, whatever the host's number is.
        for (n, shown) in [
            (99.0, "99"),
            (1000.0, "1000"),
            (0.0, "0"),
            (-200.0, "-200"),
            (200.5, "200.5"),
            (65736.0, "65736"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(
                err(R::Status(n)),
                format!("the handler returned an invalid status: {shown}; {codes}")
            );
        }
        assert_eq!(
            err(R::Response(Response::new(999).with_text("x"))),
            format!("the handler returned an invalid status: 999; {codes}")
        );
        // An object that is no response names what is wrong with it.
        assert_eq!(
            err(R::Object(json!({"status": 999}))),
            format!(
                "the handler returned an invalid response: status: unknown status code 999; {codes}"
            )
        );
        assert_eq!(
            err(R::Object(json!({"status_text": "no status"}))),
            "the handler returned an invalid response: status: required field is absent"
        );
        assert_eq!(
            err(R::Object(json!([200]))),
            "the handler returned an invalid response: expected a response object, found an array"
        );
        assert_eq!(
            err(R::Unreadable("results.x: cannot convert a set".into())),
            "the handler returned an invalid response: results.x: cannot convert a set"
        );
        // A failure: its message, else its kind, else core's words.
        let failed = |text: &str, kind: Option<&str>| {
            err(R::Failed {
                text: text.into(),
                kind: kind.map(str::to_owned),
            })
        };
        assert_eq!(failed("disk on fire", Some("OSError")), "disk on fire");
        assert_eq!(
            failed("", Some("RuntimeError")),
            "the handler failed: RuntimeError"
        );
        assert_eq!(failed("", Some("")), "the handler failed");
        assert_eq!(failed("", None), "the handler failed");
        // Anything else names its type, in its host's words.
        assert_eq!(
            err(R::Other("str".into())),
            "the handler returned a value of type str; expected nothing, a status code or a response object"
        );
        assert_eq!(panicked("boom"), Err("handler panicked: boom".to_owned()));
    }

    #[test]
    fn the_answer_book_keeps_its_byte_budget_and_answers_a_replay_as_before() {
        let topics = Topics::default();
        let responder = Responder {
            device_id: "fw-1".into(),
            topics,
            answers: Arc::new(Mutex::new(AnswerBook::new(60_000))),
        };
        let request = |i: usize| {
            let mut cmd = Message::request(
                Command::new("deny", Target::new("ipv4_net", json!("10.0.0.0/8"))).expect("deny"),
            )
            .from("p1");
            cmd.headers.request_id = Some(format!("r{i}"));
            let (payload, props) =
                codec::encode(&cmd, Encoding::Json, Dialect::Spec).expect("encodes");
            let d = codec::decode(&payload, Some(&props)).expect("decodes");
            let key = DedupKey::command(Some("p1"), &format!("r{i}"));
            Request {
                topic: "oc2/cmd/device/fw-1".into(),
                message: d.message,
                encoding: d.encoding,
                dialect: d.dialect,
                seen: Some((key, i as u64)),
            }
        };
        let first = request(0);
        let sent = responder
            .answer(&first, Response::new(200).with_text("x".repeat(1000)))
            .expect("valid")
            .expect("sent");
        // 20 000 answers of about 1.2 kB: far past the budget.
        for i in 1..20_000 {
            responder
                .answer(&request(i), Response::new(200).with_text("x".repeat(1000)))
                .expect("valid");
        }
        let book = lock(&responder.answers);
        assert!(book.bytes <= ANSWER_BYTES_KEPT, "{} bytes", book.bytes);
        assert!(book.order.len() < 20_000 && book.order.len() > 1000);
        // The latest is still kept, and a replay gets the very same publish.
        let last = DedupKey::command(Some("p1"), "r19999");
        let again = book.again(last, 19_999 + REPEAT_WINDOW_MS);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].topics, sent.topics);
        assert_eq!(
            again[0].message.headers.request_id.as_deref(),
            Some("r19999")
        );
        assert_eq!(again[0].message.response().map(|r| r.status), Some(200));
        assert!(
            book.again(DedupKey::command(Some("p1"), "r0"), 30_000)
                .is_empty(),
            "evicted"
        );
    }

    #[test]
    fn a_replayed_command_never_runs_twice() {
        // The consumer's two checks, in its order: seen before (by request_id,
        // for dedup_window_ms), then stale (by created). Sent at 0 s, then
        // replayed at 2 s, 62 s (past the old 60 s window) and 901 s.
        let freshness = DEFAULT_FRESHNESS_SECS;
        let mut seen = Deduplicator::new(dedup_window_ms(freshness), DEFAULT_CAPACITY);
        let created = 1_700_000_000_000_i64;
        let headers = Headers {
            request_id: Some("r1".into()),
            from: Some("p1".into()),
            created: Some(created),
            ..Headers::default()
        };
        let key = DedupKey::command(Some("p1"), "r1");
        let mut runs = |after_s: u64| {
            let monotonic = after_s * 1000;
            let wall = created + i64::try_from(monotonic).expect("small");
            seen.check(key, monotonic) && stale_reason(&headers, false, wall, freshness).is_none()
        };
        assert!(runs(0));
        assert!(!runs(2), "a duplicate");
        assert!(
            !runs(62),
            "still remembered: the window is the freshness window"
        );
        assert!(!runs(901), "forgotten, but stale");
    }

    fn opts() -> ConsumerOptions {
        ConsumerOptions::new("fw-1")
            .profile("slpf")
            .pair("deny", "ipv4_connection")
    }

    #[test]
    fn query_features_is_answered_from_the_options() {
        let cmd = Command::new("query", Target::features(["versions", "profiles", "pairs"]))
            .expect("query");
        let rsp = builtin_response(&opts(), &cmd).expect("answered by the consumer");
        assert_eq!(rsp.status, 200);
        let results = Value::Object(rsp.results.expect("results"));
        assert_eq!(
            results,
            json!({"versions": ["1.0"], "profiles": ["slpf"], "pairs": {"query": ["features"], "deny": ["ipv4_connection"]}})
        );
    }

    #[test]
    fn query_features_with_no_features_is_a_bare_200() {
        let cmd = Command::new("query", Target::features(Vec::<String>::new())).expect("query");
        let rsp = builtin_response(&opts(), &cmd).expect("answered");
        assert_eq!((rsp.status, rsp.results), (200, None));
    }

    #[test]
    fn query_features_with_other_arguments_is_400() {
        let cmd = Command::new("query", Target::features(["versions"]))
            .expect("query")
            .with_arg("duration", 5);
        let rsp = features_response(&opts(), &cmd);
        assert_eq!(rsp.status, 400);
        let cmd = Command::new("query", Target::features(["colour"])).expect("query");
        assert!(
            features_response(&opts(), &cmd)
                .status_text
                .expect("text")
                .contains("unknown feature \"colour\"")
        );
    }

    #[test]
    fn undeclared_pairs_get_501_and_declared_ones_reach_the_app() {
        let deny6 = Command::new("deny", Target::new("ipv6_connection", json!({}))).expect("deny");
        let rsp = builtin_response(&opts(), &deny6).expect("501");
        assert_eq!(rsp.status, 501);
        assert_eq!(
            rsp.status_text.as_deref(),
            Some("deny ipv6_connection is not implemented by this consumer")
        );
        let deny4 = Command::new("deny", Target::new("ipv4_connection", json!({}))).expect("deny");
        assert!(builtin_response(&opts(), &deny4).is_none());
        assert!(
            builtin_response(&ConsumerOptions::new("x"), &deny6).is_none(),
            "no pairs declared: all reach the app"
        );
    }

    #[test]
    fn to_filter() {
        let mut h = Headers::default();
        assert!(addressed_to(&h, "fw-1"));
        h.to = Some(vec!["fw-2".into()]);
        assert!(!addressed_to(&h, "fw-1"));
        h.to = Some(vec!["fw-2".into(), "fw-1".into()]);
        assert!(addressed_to(&h, "fw-1"));
    }

    #[test]
    fn a_command_older_than_what_the_table_still_holds_is_stale() {
        let mut rules =
            ConsumerRules::new(ConsumerOptions::new("c01"), Topics::new()).expect("rules");
        // A table of 2: at this "rate" commands are remembered for about a second.
        rules.by_created = Deduplicator::new(dedup_window_ms(DEFAULT_FRESHNESS_SECS), 2);
        let t0 = 1_700_000_000_000_i64;
        let cmd = |id: &str, created: i64| {
            serde_json::to_vec(&json!({"headers": {"request_id": id, "from": "p1", "created": created},
                "body": {"openc2": {"request": {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}}}}))
            .expect("json")
        };
        for (i, at) in [0_u64, 1000, 2000].into_iter().enumerate() {
            let p = cmd(&format!("r{i}"), t0 + i64::try_from(at).expect("small"));
            let d = rules.on_command(&Received::new("oc2/cmd/all", &p), t0 + 2000, at);
            assert!(d.execute.is_some(), "{d:?}");
        }
        let old = cmd("late", t0 - 5000);
        let d = rules.on_command(&Received::new("oc2/cmd/all", &old), t0 + 2100, 2100);
        match d.skipped {
            Some(Skip::Stale(why)) => assert!(why.contains("remembered only 0.1 s"), "{why}"),
            other => panic!("expected stale, got {other:?}"),
        }
        let new = cmd("now", t0 + 2100);
        let d = rules.on_command(&Received::new("oc2/cmd/all", &new), t0 + 2100, 2100);
        assert!(d.execute.is_some(), "{d:?}");
    }

    #[test]
    fn a_rate_limit_is_a_positive_number() {
        let mut o = ConsumerOptions::new("a");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            o.rate_limit = Some(bad);
            assert!(o.validate().is_err(), "{bad}");
        }
        o.rate_limit = Some(60.0);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(ConsumerOptions::new("a#b").validate().is_err());
        let e = ConsumerOptions::new("a")
            .pair("explode", "x")
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration: pair explode:x: unknown action 'explode'"
        );
    }
}
