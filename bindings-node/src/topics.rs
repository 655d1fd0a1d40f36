//! Topic names: wraps `oc2mqtt::topics`.

use napi::bindgen_prelude::{Env, Unknown};
use napi_derive::napi;

use oc2mqtt::client::ClientConfig;
use oc2mqtt::topics::{self, Role};

use crate::convert;
use crate::error::OrThrow;
use crate::settings;

/// The options `Topics` takes, and the client setting each is: (property, setting).
const OPTIONS: &[(&str, &str)] = &[
    ("prefix", "topicPrefix"),
    ("otupyCompatible", "otupyCompat"),
    ("peer", "peer"),
    ("responseTopics", "responseTopics"),
];

/// The OpenC2 topic scheme in use: an optional site prefix, the peers to
/// suit, and where responses go (MQTT-T 2.2, 3.2).
///
/// ```js
/// const t = new Topics({ prefix: 'site-a' })
/// t.subscriptions('consumer', 'fw-1', ['slpf'])
/// // ['site-a/oc2/cmd/all', 'site-a/oc2/cmd', 'site-a/oc2/cmd/ap/slpf', 'site-a/oc2/cmd/device/fw-1']
/// new Topics({ responseTopics: 'both' }).responseTopicsTo('p1')
/// // ['oc2/rsp', 'oc2/rsp/p1']
/// ```
#[napi]
pub struct Topics {
    inner: topics::Topics,
}

#[napi]
impl Topics {
    /// Options: `prefix` (put before `oc2/` in every topic), `peer` and
    /// `responseTopics` (as in the clients' config), and `otupyCompatible`
    /// (the same as `peer: 'otupy'`). Throws `OC2_TOPIC` for a prefix that
    /// cannot be part of a topic.
    #[napi(constructor, ts_args_type = "options?: TopicsOptions")]
    pub fn new(env: Env, options: Unknown<'_>) -> napi::Result<Self> {
        // The same settings as a client's, resolved by the core the same way.
        let config: ClientConfig = settings::pick(&env, options, OPTIONS)?.unwrap_or_default();
        let inner = config.topics().or_throw(&env)?;
        Ok(Self { inner })
    }

    /// The prefix, with its trailing `/`, or `''`.
    #[napi(getter)]
    pub fn prefix(&self) -> String {
        self.inner.prefix().to_owned()
    }

    /// The peers suited: `'spec'`, `'otupy'`, `'yuuki'` or `'oif'`.
    #[napi(getter, ts_return_type = "Peer")]
    pub fn peer(&self) -> &'static str {
        self.inner.peer().as_str()
    }

    /// Where responses go: `'shared'`, `'producer'` or `'both'` (the
    /// peer's choice unless `responseTopics` was given).
    #[napi(getter, ts_return_type = "ResponseTopics")]
    pub fn responses(&self) -> &'static str {
        self.inner.responses().as_str()
    }

    /// The filters a client in `role` subscribes to. A consumer needs its
    /// device id (and lists its profiles); a producer may give its id.
    #[napi(ts_args_type = "role: Role, id?: string | null, profiles?: string[] | null")]
    pub fn subscriptions(
        &self,
        env: Env,
        role: Unknown<'_>,
        id: Unknown<'_>,
        profiles: Unknown<'_>,
    ) -> napi::Result<Vec<String>> {
        let role_name = convert::string(&env, role, "\"role\" argument")?;
        let role: Role = role_name.parse().map_err(|_: oc2mqtt::Error| {
            let names: Vec<String> = Role::ALL.iter().map(|r| format!("'{r}'")).collect();
            convert::value_error(
                &env,
                &format!(
                    "The \"role\" argument must be one of {}. Received '{role_name}'",
                    names.join(", ")
                ),
            )
        })?;
        let id = convert::opt_string(&env, id, "\"id\" argument")?;
        let profiles =
            convert::opt_string_list(&env, profiles, "\"profiles\" argument")?.unwrap_or_default();
        self.inner
            .subscriptions(role, id.as_deref(), &profiles)
            .or_throw(&env)
    }

    /// The topics a command message is published on: one per `to` entry,
    /// else its actuator's profile topic, else `oc2/cmd/all`.
    #[napi(ts_args_type = "message: Message")]
    pub fn command_topics(&self, env: Env, message: Unknown<'_>) -> napi::Result<Vec<String>> {
        let msg = convert::message(&env, message, "\"message\" argument")?;
        self.inner.command_topics(&msg).or_throw(&env)
    }

    /// The topics a response message is published on, from its `to` header:
    /// `oc2/rsp` unless `responseTopics` (or the peer) says otherwise.
    #[napi(ts_args_type = "message: Message")]
    pub fn response_topics(&self, env: Env, message: Unknown<'_>) -> napi::Result<Vec<String>> {
        let msg = convert::message(&env, message, "\"message\" argument")?;
        Ok(self.inner.response_topics(&msg))
    }

    /// The topics a response to `producer` is published on.
    #[napi(ts_args_type = "producer?: string | null")]
    pub fn response_topics_to(&self, env: Env, producer: Unknown<'_>) -> napi::Result<Vec<String>> {
        let producer = convert::opt_string(&env, producer, "\"producer\" argument")?;
        Ok(self.inner.response_topics_to(producer.as_deref()))
    }

    /// `oc2/cmd/all`.
    #[napi]
    pub fn all_commands(&self) -> String {
        self.inner.all_commands()
    }

    /// `oc2/rsp`.
    #[napi]
    pub fn all_responses(&self) -> String {
        self.inner.all_responses()
    }

    /// `oc2/cmd/ap/<profile>`; throws `OC2_TOPIC` for an invalid profile.
    #[napi(ts_args_type = "profile: string")]
    pub fn profile_commands(&self, env: Env, profile: Unknown<'_>) -> napi::Result<String> {
        let profile = convert::string(&env, profile, "\"profile\" argument")?;
        self.inner.profile_commands(&profile).or_throw(&env)
    }

    /// `oc2/cmd/device/<deviceId>`; throws `OC2_TOPIC` for an invalid id.
    #[napi(ts_args_type = "deviceId: string")]
    pub fn device_commands(&self, env: Env, device_id: Unknown<'_>) -> napi::Result<String> {
        let id = convert::string(&env, device_id, "\"deviceId\" argument")?;
        self.inner.device_commands(&id).or_throw(&env)
    }
}

/// Whether the MQTT topic filter `filter` (with `+`, `#`, or a `$share/`
/// prefix) matches the topic name `topic`.
#[napi(ts_args_type = "filter: string, topic: string")]
pub fn filter_matches(env: Env, filter: Unknown<'_>, topic: Unknown<'_>) -> napi::Result<bool> {
    let filter = convert::string(&env, filter, "\"filter\" argument")?;
    let topic = convert::string(&env, topic, "\"topic\" argument")?;
    Ok(topics::filter_matches(&filter, &topic))
}

/// Checks that `id` can stand in a topic name (non-empty, no `+`, `#` or
/// NUL); throws `OC2_TOPIC` saying why not. `what` names the id in the
/// message (`'device id'`).
#[napi(ts_args_type = "what: string, id: string")]
pub fn validate_id(env: Env, what: Unknown<'_>, id: Unknown<'_>) -> napi::Result<()> {
    let what = convert::string(&env, what, "\"what\" argument")?;
    let id = convert::string(&env, id, "\"id\" argument")?;
    topics::validate_id(&what, &id).or_throw(&env)
}

/// `$share/<group>/<filter>`: a subscription shared by a consumer group.
#[napi(ts_args_type = "group: string, filter: string")]
pub fn shared_subscription(
    env: Env,
    group: Unknown<'_>,
    filter: Unknown<'_>,
) -> napi::Result<String> {
    let group = convert::string(&env, group, "\"group\" argument")?;
    let filter = convert::string(&env, filter, "\"filter\" argument")?;
    topics::shared(&group, &filter).or_throw(&env)
}
