//! OpenC2 topic names (MQTT-T 2.2, 3.3): subscriptions per role, the topics
//! a command or response is published on, id validation, and MQTT filter
//! matching.
//!
//! ```
//! use oc2mqtt::topics::{Role, Topics};
//!
//! let topics = Topics::new();
//! let subs = topics.subscriptions(Role::Consumer, Some("fw-1"), &["slpf"]).unwrap();
//! assert_eq!(subs, ["oc2/cmd/all", "oc2/cmd", "oc2/cmd/ap/slpf", "oc2/cmd/device/fw-1"]);
//! assert!(oc2mqtt::topics::filter_matches("oc2/#", "oc2/rsp/p1"));
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::message::Message;

/// Longest MQTT topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 65_535;

/// The part an MQTT client plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends commands, receives responses.
    Producer,
    /// Receives commands, sends responses.
    Consumer,
    /// Watches all OpenC2 traffic.
    Monitor,
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "producer" => Ok(Self::Producer),
            "consumer" => Ok(Self::Consumer),
            "monitor" => Ok(Self::Monitor),
            _ => Err(Error::Config(format!(
                "unknown role '{s}'; expected producer, consumer or monitor"
            ))),
        }
    }
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 3] = [Self::Producer, Self::Consumer, Self::Monitor];

    /// Its name: `producer`, `consumer`, `monitor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Producer => "producer",
            Self::Consumer => "consumer",
            Self::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks that `id` can stand in a topic name: non-empty, no `+`, `#` or
/// NUL, and short enough. `what` names the id in the error (`device id`).
pub fn validate_id(what: &str, id: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::Topic(format!(
            "{what} '{}' {reason}",
            id.escape_debug()
        )))
    };
    if id.is_empty() {
        return Err(Error::Topic(format!("{what} must not be empty")));
    }
    if let Some(c) = id.chars().find(|c| matches!(c, '+' | '#' | '\0')) {
        return bad(&format!(
            "contains '{}', which MQTT topic names forbid",
            c.escape_debug()
        ));
    }
    if id.len() > MAX_TOPIC_LEN - 32 {
        return bad("is too long for an MQTT topic name");
    }
    Ok(())
}

/// Peers whose conventions oc2mqtt adopts beside the specification's: one
/// switch that sets the topics, dialect and message-type spelling a family
/// of peers needs (what `--otupy-compat` did for otupy alone). Decoding
/// accepts every peer's forms whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Peer {
    /// MQTT-T as written: responses on `oc2/rsp`, the spec dialect.
    #[default]
    Spec,
    /// otupy 1.1: its flat dialect, and its producers' `oc2/rsp/device/<id>`
    /// subscribed as well.
    Otupy,
    /// yuuki consumers listen on `oc2/cmd`: every command goes there too.
    Yuuki,
    /// The OIF orchestrator listens on `oc2/rsp/<its id>` (and `+/oc2/rsp`),
    /// not `oc2/rsp`: responses go to both, and `msgType` is spelled
    /// `request`/`response`.
    Oif,
}

impl Peer {
    /// Every peer, for help texts.
    pub const ALL: [Peer; 4] = [Peer::Spec, Peer::Otupy, Peer::Yuuki, Peer::Oif];

    /// Every peer's name, in [`Peer::ALL`]'s order: what `peer` takes in
    /// every language (the settings table's choice, the CLI's `--peer`).
    pub const NAMES: [&'static str; 4] = [
        Self::Spec.as_str(),
        Self::Otupy.as_str(),
        Self::Yuuki.as_str(),
        Self::Oif.as_str(),
    ];

    /// Its name: `spec`, `otupy`, `yuuki`, `oif`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Otupy => "otupy",
            Self::Yuuki => "yuuki",
            Self::Oif => "oif",
        }
    }

    /// The dialect its peers read and write.
    pub fn dialect(self) -> crate::codec::Dialect {
        match self {
            Self::Otupy => crate::codec::Dialect::Otupy,
            Self::Spec | Self::Yuuki | Self::Oif => crate::codec::Dialect::Spec,
        }
    }

    /// Where responses go for its peers.
    pub fn response_topics(self) -> ResponseTopics {
        match self {
            Self::Oif => ResponseTopics::Both,
            Self::Spec | Self::Otupy | Self::Yuuki => ResponseTopics::Shared,
        }
    }

    /// The `msgType` user property for `t`: MQTT-T's `req`/`rsp`/`ntf`, or
    /// the OIF spelling.
    pub fn msg_type_property(self, t: crate::message::MsgType) -> &'static str {
        match self {
            Self::Oif => t.as_key(),
            Self::Spec | Self::Otupy | Self::Yuuki => t.as_property(),
        }
    }
}

impl FromStr for Peer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown peer '{s}'; expected {}",
                    crate::settings::one_of(&Self::NAMES)
                ))
            })
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// otupy 1.1's MQTT transfer, as `oc2mqtt.otupy` (Python's drop-in for it)
/// keeps it, beside [`Peer::Otupy`]'s topics and dialect. The MQTT Content
/// Type an otupy message carries is every peer's, [`crate::codec::CONTENT_TYPE`].
pub mod otupy {
    use super::Role;
    use crate::codec::Dialect;
    use crate::error::{Error, Result};

    /// The dialects a drop-in transfer speaks (its `wire` keyword): otupy's
    /// own, and the specification's for a fleet that has moved on.
    pub const WIRES: [Dialect; 2] = [Dialect::Otupy, Dialect::Spec];

    /// A drop-in's `wire`, or why it is not one.
    ///
    /// ```
    /// use oc2mqtt::topics::otupy;
    /// assert_eq!(otupy::wire("spec").unwrap(), oc2mqtt::Dialect::Spec);
    /// assert_eq!(
    ///     otupy::wire("bare").unwrap_err().to_string(),
    ///     "configuration: wire: expected otupy or spec, found 'bare'"
    /// );
    /// ```
    pub fn wire(name: &str) -> Result<Dialect> {
        WIRES
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| {
                Error::Config(format!(
                    "wire: expected {}, found '{}'",
                    crate::settings::one_of(&WIRES),
                    name.escape_debug()
                ))
            })
    }

    /// The MQTT v5 Message Expiry Interval otupy's transfer puts on every
    /// publish, in seconds (its `MQTT_MESSAGEEXPIRYINTERVAL`); the drop-in
    /// puts the same, so that the wire is unchanged.
    pub const MESSAGE_EXPIRY_SECS: u32 = 10;

    /// The MQTT client id of a drop-in transfer given none:
    /// `oc2mqtt-<role>-<device_id>`, stable, so that a restarted transfer
    /// resumes its session (otupy's own draws `openc2client-<n>` at random).
    ///
    /// ```
    /// use oc2mqtt::topics::{Role, otupy};
    /// assert_eq!(otupy::client_id(Role::Consumer, "fw-1"), "oc2mqtt-consumer-fw-1");
    /// ```
    pub fn client_id(role: Role, device_id: &str) -> String {
        format!("oc2mqtt-{role}-{device_id}")
    }
}

/// Where a consumer publishes its responses.
///
/// MQTT-T 3.2 has producers subscribe `oc2/rsp` (MUST) and `oc2/rsp/<id>`
/// (SHOULD), so one publish on `oc2/rsp` reaches every conforming producer
/// once; publishing on both topics makes every producer and monitor that
/// follows the spec receive each response twice (measured in
/// `bench/RESULTS.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ResponseTopics {
    /// `oc2/rsp` only (the default).
    #[default]
    Shared,
    /// `oc2/rsp/<producer>` only (`oc2/rsp` when the producer is unknown):
    /// less traffic with many producers, but a producer that subscribes
    /// only `oc2/rsp` hears nothing.
    Producer,
    /// Both, as oc2mqtt did before 0.3 and the OIF orchestrator needs.
    Both,
}

impl ResponseTopics {
    /// Every value, in the order of [`ResponseTopics::NAMES`].
    pub const ALL: [Self; 3] = [Self::Shared, Self::Producer, Self::Both];

    /// Every value's name: what `response_topics` takes in every language.
    pub const NAMES: [&'static str; 3] = [
        Self::Shared.as_str(),
        Self::Producer.as_str(),
        Self::Both.as_str(),
    ];

    /// Its name: `shared`, `producer`, `both`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Producer => "producer",
            Self::Both => "both",
        }
    }
}

impl FromStr for ResponseTopics {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown response topics '{s}'; expected {}",
                    crate::settings::one_of(&Self::NAMES)
                ))
            })
    }
}

impl fmt::Display for ResponseTopics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings that make a topic scheme: the peers to suit and where
/// responses go, as a client's configuration has them (its `peer` and
/// `response_topics`), for what takes a scheme without a connection
/// ([`crate::rules::ConsumerRules`]). Set by name through
/// [`crate::settings::Settings`] (its table is in `settings.rs`), so every
/// binding takes the same two settings with the same texts.
///
/// ```
/// use oc2mqtt::settings::{Settings, Spelling, Value};
/// use oc2mqtt::topics::{Peer, ResponseTopics, TopicScheme, Topics};
/// let mut scheme = TopicScheme::default();
/// scheme.set(Spelling::Camel, "peer", Value::Text("oif".into())).unwrap();
/// let topics = Topics::from(scheme);
/// assert_eq!(topics.peer(), Peer::Oif);
/// assert_eq!(topics.responses(), ResponseTopics::Both, "as the peer has it");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicScheme {
    /// The peers to suit.
    pub peer: Peer,
    /// Where responses go; `None`: as the peer has it ([`Peer::response_topics`]).
    pub response_topics: Option<ResponseTopics>,
}

impl From<TopicScheme> for Topics {
    fn from(scheme: TopicScheme) -> Self {
        let t = Topics::new().with_peer(scheme.peer);
        match scheme.response_topics {
            Some(r) => t.with_response_topics(r),
            None => t,
        }
    }
}

/// The topic scheme in use: an optional site prefix, the peers to suit,
/// and where responses go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    peer: Peer,
    responses: ResponseTopics,
}

impl Topics {
    /// The specification's topics, no prefix.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `prefix` before `oc2/` in every topic (for brokers shared between sites).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self> {
        let trimmed = prefix.trim_end_matches('/');
        if trimmed.is_empty() {
            self.prefix.clear();
            return Ok(self);
        }
        validate_id("topic prefix", trimmed)?;
        if trimmed.starts_with('$') {
            return Err(Error::Topic(format!(
                "topic prefix '{trimmed}' must not start with '$'"
            )));
        }
        self.prefix = format!("{trimmed}/");
        Ok(self)
    }

    /// Suits `peer`: its topics, and its response topics (until
    /// [`Topics::with_response_topics`] says otherwise).
    pub fn with_peer(mut self, peer: Peer) -> Self {
        self.peer = peer;
        self.responses = peer.response_topics();
        self
    }

    /// Publishes responses on `responses`.
    pub fn with_response_topics(mut self, responses: ResponseTopics) -> Self {
        self.responses = responses;
        self
    }

    /// [`Topics::with_peer`] with [`Peer::Otupy`] when `on` (the switch this replaced).
    pub fn otupy_compatible(self, on: bool) -> Self {
        self.with_peer(if on { Peer::Otupy } else { Peer::Spec })
    }

    /// The peers suited.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// Spells the `msgType` user property of `props` as the peers expect
    /// ([`Peer::msg_type_property`]).
    pub fn spell_msg_type(&self, props: &mut crate::codec::PublishProperties) {
        for (k, v) in &mut props.user_properties {
            if k == crate::codec::PROP_MSG_TYPE {
                if let Some(t) = crate::message::MsgType::from_property(v) {
                    self.peer.msg_type_property(t).clone_into(v);
                }
            }
        }
    }

    /// Where responses go.
    pub fn responses(&self) -> ResponseTopics {
        self.responses
    }

    /// The prefix, with its trailing `/`, or empty.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn topic(&self, rest: &str) -> String {
        format!("{}oc2/{rest}", self.prefix)
    }

    /// `oc2/cmd/all`.
    pub fn all_commands(&self) -> String {
        self.topic("cmd/all")
    }

    /// `oc2/cmd/ap/<profile>`.
    pub fn profile_commands(&self, profile: &str) -> Result<String> {
        validate_id("profile", profile)?;
        Ok(self.topic(&format!("cmd/ap/{profile}")))
    }

    /// `oc2/cmd/device/<device_id>`.
    pub fn device_commands(&self, device_id: &str) -> Result<String> {
        validate_id("device id", device_id)?;
        Ok(self.topic(&format!("cmd/device/{device_id}")))
    }

    /// `oc2/rsp`.
    pub fn all_responses(&self) -> String {
        self.topic("rsp")
    }

    /// The filters a client in `role` subscribes to (MQTT-T 2.2).
    ///
    /// A consumer needs its device id and takes `oc2/cmd/all`, `oc2/cmd` (a
    /// variant seen at plugfests), one `oc2/cmd/ap/<p>` per profile and
    /// `oc2/cmd/device/<id>`. A producer takes `oc2/rsp` and, with an id,
    /// `oc2/rsp/<id>` (and otupy's `oc2/rsp/device/<id>` for [`Peer::Otupy`]).
    /// A monitor takes `oc2/#`.
    pub fn subscriptions<S: AsRef<str>>(
        &self,
        role: Role,
        id: Option<&str>,
        profiles: &[S],
    ) -> Result<Vec<String>> {
        match role {
            Role::Consumer => {
                let id =
                    id.ok_or_else(|| Error::Config("a consumer needs a device id".to_owned()))?;
                let mut subs = vec![self.all_commands(), self.topic("cmd")];
                for p in profiles {
                    subs.push(self.profile_commands(p.as_ref())?);
                }
                subs.push(self.device_commands(id)?);
                subs.dedup();
                Ok(subs)
            }
            Role::Producer => {
                let mut subs = vec![self.all_responses()];
                if let Some(id) = id {
                    validate_id("producer id", id)?;
                    subs.push(self.topic(&format!("rsp/{id}")));
                    if self.peer == Peer::Otupy {
                        subs.push(self.topic(&format!("rsp/device/{id}")));
                    }
                }
                Ok(subs)
            }
            Role::Monitor => Ok(vec![self.topic("#")]),
        }
    }

    /// The topics a command is published on (the polite rule of SPEC-NOTES §1):
    /// one per `to` entry, else the actuator's profile topic, else
    /// `oc2/cmd/all`; and `oc2/cmd` as well for [`Peer::Yuuki`].
    pub fn command_topics(&self, msg: &Message) -> Result<Vec<String>> {
        let mut topics = if let Some(to) = msg.headers.to.as_deref().filter(|t| !t.is_empty()) {
            let mut topics = to
                .iter()
                .map(|id| self.device_commands(id))
                .collect::<Result<Vec<_>>>()?;
            topics.dedup();
            topics
        } else {
            match msg.command().and_then(|c| c.profile()) {
                Some(profile) => vec![self.profile_commands(profile)?],
                None => vec![self.all_commands()],
            }
        };
        if self.peer == Peer::Yuuki {
            topics.push(self.topic("cmd"));
        }
        Ok(topics)
    }

    /// The topics a response to `producer` is published on, as
    /// [`ResponseTopics`] says: `oc2/rsp`, `oc2/rsp/<producer>`, or both.
    ///
    /// The producer is named as its `from` said: `p01`, `p01@host:port`
    /// (the part before `@` is the topic level), or a response topic of its
    /// own (`oc2/rsp/p01`, used as it is). One that cannot be a topic level
    /// is skipped, so the answer still goes out on `oc2/rsp`.
    pub fn response_topics_to(&self, producer: Option<&str>) -> Vec<String> {
        let shared = self.all_responses();
        let rsp_base = self.topic("rsp/");
        let own = producer
            .map(|id| {
                if id.starts_with(&rsp_base) {
                    id.to_owned()
                } else {
                    let id = id.split_once('@').map_or(id, |(id, _)| id);
                    format!("{rsp_base}{id}")
                }
            })
            .filter(|t| validate_id("producer id", &t[rsp_base.len()..]).is_ok());
        match (self.responses, own) {
            (ResponseTopics::Shared, _) | (_, None) => vec![shared],
            (ResponseTopics::Producer, Some(own)) => vec![own],
            (ResponseTopics::Both, Some(own)) => vec![shared, own],
        }
    }

    /// The topics a response message is published on, from its `to` header.
    pub fn response_topics(&self, msg: &Message) -> Vec<String> {
        let to = msg.headers.to.as_deref().unwrap_or_default();
        let mut topics = self.response_topics_to(to.first().map(String::as_str));
        for extra in to.iter().skip(1) {
            for t in self.response_topics_to(Some(extra)) {
                if !topics.contains(&t) {
                    topics.push(t);
                }
            }
        }
        topics
    }
}

/// The filter of a shared subscription (`$share/<group>/<filter>`), or the filter itself.
pub fn strip_share(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, f)| f)
}

/// `$share/<group>/<filter>`: a subscription shared by a consumer group.
pub fn shared(group: &str, filter: &str) -> Result<String> {
    validate_id("consumer group", group)?;
    if group.contains('/') {
        return Err(Error::Topic(format!(
            "consumer group '{group}' must not contain '/'"
        )));
    }
    Ok(format!("$share/{group}/{filter}"))
}

/// Whether the MQTT topic filter `filter` (with `+`, `#`, or a `$share/`
/// prefix) matches the topic name `topic`.
///
/// As in MQTT 4.7: `#` also matches the parent level, and wildcards at the
/// first level do not match topics starting with `$`.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let filter = strip_share(filter);
    if topic.starts_with('$') && matches!(filter.chars().next(), Some('+' | '#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Command, Target};

    fn query() -> Message {
        Message::request(Command::new("query", Target::features(["profiles"])).expect("query"))
    }

    #[test]
    fn command_topics_follow_the_polite_rule() {
        let t = Topics::new();
        assert_eq!(t.command_topics(&query()).expect("ok"), ["oc2/cmd/all"]);
        let mut with_actuator = query();
        if let crate::message::Body::Request(c) = &mut with_actuator.body {
            *c = c.clone().with_actuator("slpf");
        }
        assert_eq!(
            t.command_topics(&with_actuator).expect("ok"),
            ["oc2/cmd/ap/slpf"]
        );
        let addressed = with_actuator.to(["d1", "d2"]);
        assert_eq!(
            t.command_topics(&addressed).expect("ok"),
            ["oc2/cmd/device/d1", "oc2/cmd/device/d2"]
        );
    }

    #[test]
    fn bad_ids_are_refused_with_the_reason() {
        let err = Topics::new()
            .subscriptions(Role::Consumer, Some("dev#1"), &[] as &[&str])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid topic: device id 'dev#1' contains '#', which MQTT topic names forbid"
        );
        assert!(validate_id("device id", "").is_err());
        assert!(validate_id("device id", "a\0b").is_err());
        assert!(validate_id("device id", "site/a").is_ok());
    }

    #[test]
    fn prefix_applies_to_every_topic() {
        let t = Topics::new().with_prefix("site-a/").expect("valid prefix");
        assert_eq!(
            t.subscriptions(Role::Producer, Some("p1"), &[] as &[&str])
                .expect("ok"),
            ["site-a/oc2/rsp", "site-a/oc2/rsp/p1"]
        );
        assert_eq!(
            t.subscriptions(Role::Monitor, None, &[] as &[&str])
                .expect("ok"),
            ["site-a/oc2/#"]
        );
        assert!(Topics::new().with_prefix("a/+").is_err());
    }

    #[test]
    fn responses_go_out_once_on_oc2_rsp_unless_told_otherwise() {
        let t = Topics::new();
        assert_eq!(t.response_topics_to(Some("p1")), ["oc2/rsp"]);
        let both = Topics::new().with_response_topics(ResponseTopics::Both);
        assert_eq!(
            both.response_topics_to(Some("p1")),
            ["oc2/rsp", "oc2/rsp/p1"]
        );
        assert_eq!(
            both.response_topics_to(Some("oc2/rsp/p01")),
            ["oc2/rsp", "oc2/rsp/p01"]
        );
        assert_eq!(
            both.response_topics_to(Some("5f0c@10.0.0.1:8080")),
            ["oc2/rsp", "oc2/rsp/5f0c"]
        );
        assert_eq!(both.response_topics_to(Some("bad+id")), ["oc2/rsp"]);
        let own = Topics::new().with_response_topics(ResponseTopics::Producer);
        assert_eq!(own.response_topics_to(Some("p1")), ["oc2/rsp/p1"]);
        assert_eq!(own.response_topics_to(None), ["oc2/rsp"]);
    }

    #[test]
    fn peer_profiles_set_topics_together() {
        let otupy = Topics::new().with_peer("otupy".parse().expect("a peer"));
        assert_eq!(
            otupy
                .subscriptions(Role::Producer, Some("p1"), &[] as &[&str])
                .expect("ok"),
            ["oc2/rsp", "oc2/rsp/p1", "oc2/rsp/device/p1"]
        );
        assert_eq!(otupy.response_topics_to(Some("p1")), ["oc2/rsp"]);
        let yuuki = Topics::new().with_peer(Peer::Yuuki);
        assert_eq!(
            yuuki.command_topics(&query().to(["c01"])).expect("ok"),
            ["oc2/cmd/device/c01", "oc2/cmd"]
        );
        let oif = Topics::new().with_peer(Peer::Oif);
        assert_eq!(
            oif.response_topics_to(Some("orch-1@10.0.0.9:8080")),
            ["oc2/rsp", "oc2/rsp/orch-1"]
        );
        assert_eq!(
            Peer::Oif.msg_type_property(crate::message::MsgType::Response),
            "response"
        );
        assert_eq!(
            "acme".parse::<Peer>().unwrap_err().to_string(),
            "configuration: unknown peer 'acme'; expected spec, otupy, yuuki or oif"
        );
    }

    #[test]
    fn filters_match_like_mqtt() {
        assert!(filter_matches("oc2/#", "oc2"));
        assert!(filter_matches("oc2/#", "oc2/cmd/all"));
        assert!(filter_matches("oc2/cmd/+", "oc2/cmd/all"));
        assert!(!filter_matches("oc2/cmd/+", "oc2/cmd/ap/slpf"));
        assert!(filter_matches("+/+/ap/+", "oc2/cmd/ap/slpf"));
        assert!(!filter_matches("#", "$SYS/broker/uptime"));
        assert!(filter_matches("$share/g1/oc2/cmd/all", "oc2/cmd/all"));
        assert!(!filter_matches("oc2/rsp", "oc2/rsp/p1"));
        assert_eq!(strip_share("$share/g/oc2/#"), "oc2/#");
        assert_eq!(
            shared("g", "oc2/cmd/all").expect("ok"),
            "$share/g/oc2/cmd/all"
        );
    }
}
