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

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Producer => "producer",
            Self::Consumer => "consumer",
            Self::Monitor => "monitor",
        })
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

/// The topic scheme in use: an optional site prefix and otupy compatibility.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    otupy_compat: bool,
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

    /// Also uses otupy's response topic `oc2/rsp/device/<id>` (subscribe and publish).
    pub fn otupy_compatible(mut self, on: bool) -> Self {
        self.otupy_compat = on;
        self
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
    /// `oc2/rsp/<id>` (and otupy's `oc2/rsp/device/<id>` when compatible).
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
                    if self.otupy_compat {
                        subs.push(self.topic(&format!("rsp/device/{id}")));
                    }
                }
                Ok(subs)
            }
            Role::Monitor => Ok(vec![self.topic("#")]),
        }
    }

    /// The topics a command is published on (the polite rule of SPEC-NOTES §1):
    /// one per `to` entry, else the actuator's profile topic, else `oc2/cmd/all`.
    pub fn command_topics(&self, msg: &Message) -> Result<Vec<String>> {
        if let Some(to) = msg.headers.to.as_deref().filter(|t| !t.is_empty()) {
            let mut topics = to
                .iter()
                .map(|id| self.device_commands(id))
                .collect::<Result<Vec<_>>>()?;
            topics.dedup();
            return Ok(topics);
        }
        match msg.command().and_then(|c| c.profile()) {
            Some(profile) => Ok(vec![self.profile_commands(profile)?]),
            None => Ok(vec![self.all_commands()]),
        }
    }

    /// The topics a response to `producer` is published on: `oc2/rsp`, and
    /// `oc2/rsp/<producer>` (plus `oc2/rsp/device/<producer>` when otupy
    /// compatible).
    ///
    /// A producer id that already is a response topic (some peers put
    /// `oc2/rsp/p01` in `from`) is used as it is; one that cannot be a topic
    /// level is skipped, so the answer still goes out on `oc2/rsp`.
    pub fn response_topics_to(&self, producer: Option<&str>) -> Vec<String> {
        let mut topics = vec![self.all_responses()];
        let Some(id) = producer.filter(|id| validate_id("producer id", id).is_ok()) else {
            return topics;
        };
        let rsp_base = self.topic("rsp/");
        if id.starts_with(&rsp_base) {
            topics.push(id.to_owned());
            return topics;
        }
        topics.push(format!("{rsp_base}{id}"));
        if self.otupy_compat {
            topics.push(format!("{rsp_base}device/{id}"));
        }
        topics
    }

    /// The topics a response message is published on, from its `to` header.
    pub fn response_topics(&self, msg: &Message) -> Vec<String> {
        let to = msg.headers.to.as_deref().unwrap_or_default();
        let mut topics = self.response_topics_to(to.first().map(String::as_str));
        for extra in to.iter().skip(1) {
            for t in self.response_topics_to(Some(extra)).into_iter().skip(1) {
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
    fn response_topics_include_otupy_variant_when_compatible() {
        let t = Topics::new().otupy_compatible(true);
        assert_eq!(
            t.response_topics_to(Some("p1")),
            ["oc2/rsp", "oc2/rsp/p1", "oc2/rsp/device/p1"]
        );
        assert_eq!(
            Topics::new().response_topics_to(Some("oc2/rsp/p01")),
            ["oc2/rsp", "oc2/rsp/p01"]
        );
        assert_eq!(
            Topics::new().response_topics_to(Some("bad+id")),
            ["oc2/rsp"]
        );
        assert_eq!(
            t.subscriptions(Role::Producer, Some("p1"), &[] as &[&str])
                .expect("ok"),
            ["oc2/rsp", "oc2/rsp/p1", "oc2/rsp/device/p1"]
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
