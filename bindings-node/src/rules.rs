//! A consumer's OpenC2 rules without the network: wraps
//! `oc2mqtt::rules::{ConsumerRules, Request}` for scripts that keep their
//! own MQTT client (mqtt.js). Conversions only: every decision is the core's.

use napi::bindgen_prelude::{Buffer, Env, JavaScriptClassExt, JsValue, Object, Unknown};
use napi_derive::napi;

use oc2mqtt::message::Response;
use oc2mqtt::rules::{self, ConsumerOptions, Decision, Publish, Received};
use oc2mqtt::settings::Settings;
use oc2mqtt::topics::TopicScheme;

use crate::codec;
use crate::convert::{self, field};
use crate::error::OrThrow;
use crate::settings::{self, Known};

/// A consumer's options from the properties of `obj` (a `Consumer`'s
/// config, `ConsumerRules`' options) that the core's table lists; `path`
/// names `obj` in errors. `deviceId` is required.
pub(crate) fn consumer_options(
    env: &Env,
    obj: &Object<'_>,
    path: &str,
) -> napi::Result<ConsumerOptions> {
    let id = format!("{path}.deviceId");
    convert::string(env, field(env, obj, "deviceId")?, &id)?;
    let mut o = ConsumerOptions::default();
    settings::apply(env, obj, path, &mut o)?;
    Ok(o)
}

/// A response to publish, as a plain object ready for mqtt.js.
fn publish_to_js<'e>(env: &'e Env, p: &Publish) -> napi::Result<Object<'e>> {
    let mut o = Object::new(env)?;
    o.set("topics", p.topics.clone())?;
    o.set("payload", Buffer::from(p.payload.clone()))?;
    o.set("properties", codec::properties_to_js(env, &p.properties)?)?;
    o.set("message", convert::message_to_js(env, &p.message)?)?;
    Ok(o)
}

fn decision_to_js<'e>(env: &'e Env, d: Decision) -> napi::Result<Object<'e>> {
    let mut o = Object::new(env)?;
    let publish = d
        .publish
        .iter()
        .map(|p| publish_to_js(env, p))
        .collect::<napi::Result<Vec<_>>>()?;
    o.set("publish", publish)?;
    match d.execute {
        Some(inner) => o.set(
            "execute",
            Request { inner }.into_instance(env)?.to_unknown(),
        )?,
        None => o.set("execute", convert::to_js(env, &serde_json::Value::Null)?)?,
    }
    o.set("skipped", d.skipped.as_ref().map(|s| s.as_str()))?;
    o.set("reason", d.skipped.as_ref().and_then(|s| s.reason()))?;
    Ok(o)
}

/// A consumer's OpenC2 rules without the network, for scripts that keep
/// their own MQTT client: hand it each message received on a command
/// topic, with the time; publish what it says; run what it hands over;
/// give the application's answer back to `answer()`. It reads no clock.
///
/// ```js
/// const rules = new ConsumerRules({ deviceId: 'fw-1', pairs: [['deny', 'ipv4_net']] })
/// client.on('message', (topic, payload, packet) => {
///   const d = rules.onCommand(topic, payload, packet.properties, packet.retain, Date.now(), performance.now() | 0)
///   for (const p of d.publish) for (const t of p.topics) client.publish(t, p.payload, { qos: 1, properties: p.properties })
///   if (d.execute) {
///     const out = rules.answer(d.execute, { status: 200 })
///     if (out) for (const t of out.topics) client.publish(t, out.payload, { qos: 1, properties: out.properties })
///   }
/// })
/// ```
#[napi]
pub struct ConsumerRules {
    inner: rules::ConsumerRules,
}

#[napi]
impl ConsumerRules {
    /// `options`: a consumer's (`deviceId`, required; `profiles`, `pairs`,
    /// `args`, `rateLimit`, `group`, `handleFeatures`, `freshnessSecs`, as
    /// for `Consumer`) and the topic scheme's (core's `TopicScheme`: `peer`
    /// and `responseTopics`, as in `ClientConfig`). Throws `OC2_CONFIG` or
    /// `OC2_TOPIC` when they do not hold.
    #[napi(constructor, ts_args_type = "options: ConsumerRulesOptions")]
    pub fn new(env: Env, options: Unknown<'_>) -> napi::Result<Self> {
        const WHAT: &str = "\"options\" argument";
        let obj = convert::object(&env, options, WHAT)?;
        // A consumer's settings but those of a connected one (journal, handler
        // timeout), and those that make a topic scheme.
        let known = Known {
            first: &[],
            tables: &[ConsumerOptions::RULES_SETTINGS, TopicScheme::SETTINGS],
            last: &[],
        };
        settings::check_keys(&env, &obj, WHAT, &known)?;
        let options = consumer_options(&env, &obj, "options")?;
        let mut scheme = TopicScheme::default();
        settings::apply(&env, &obj, "options", &mut scheme)?;
        let inner = rules::ConsumerRules::new(options, scheme).or_throw(&env)?;
        Ok(Self { inner })
    }

    /// This consumer's device id.
    #[napi(getter)]
    pub fn device_id(&self) -> String {
        self.inner.options().device_id.clone()
    }

    /// Decides what to do with a message received on `topic`: its
    /// `payload`, its PUBLISH `properties` as mqtt.js delivers them
    /// (`packet.properties`; null over MQTT 3.1.1), whether it came
    /// `retained` (`packet.retain`), the wall clock `nowMs` (ms since the
    /// epoch, for `created`) and any monotonic clock `monotonicMs` (ms, for
    /// the duplicate windows). Returns `{ publish, execute, skipped, reason }`.
    #[napi(
        ts_args_type = "topic: string, payload: Buffer | Uint8Array, properties: PublishProperties | null | undefined, retained: boolean, nowMs: number, monotonicMs: number",
        ts_return_type = "Decision"
    )]
    #[allow(clippy::too_many_arguments)]
    pub fn on_command<'e>(
        &mut self,
        env: &'e Env,
        topic: Unknown<'_>,
        payload: Unknown<'_>,
        properties: Unknown<'_>,
        retained: Unknown<'_>,
        now_ms: Unknown<'_>,
        monotonic_ms: Unknown<'_>,
    ) -> napi::Result<Object<'e>> {
        let topic = convert::string(env, topic, "\"topic\" argument")?;
        let payload = convert::bytes(env, payload, "\"payload\" argument")?;
        let props = codec::properties(env, properties, "\"properties\" argument")?;
        let retained = convert::opt_bool(env, retained, "\"retained\" argument")?.unwrap_or(false);
        let now = convert::time_ms(env, now_ms, "\"nowMs\" argument")?;
        let monotonic = convert::time_ms(env, monotonic_ms, "\"monotonicMs\" argument")?;
        let received = Received {
            topic: &topic,
            payload,
            properties: props.as_ref(),
            retained,
        };
        // `time_ms` is at most 2^53 - 1: it fits an i64.
        let decision = self.inner.on_command(&received, now as i64, monotonic);
        decision_to_js(env, decision)
    }

    /// The application's answer to `request` (a response object, `{ status:
    /// 200, ... }`), addressed and encoded as its command came in; `null`
    /// when the producer asked not to get it (`response_requested` `none`,
    /// or `ack`, whose `102` was the answer). Throws `OC2_DECODE` for a
    /// response that is not valid.
    #[napi(
        ts_args_type = "request: Request, response: Response",
        ts_return_type = "Publish | null"
    )]
    pub fn answer<'e>(
        &self,
        env: &'e Env,
        request: &Request,
        response: Unknown<'_>,
    ) -> napi::Result<Unknown<'e>> {
        let obj = convert::object(env, response, "\"response\" argument")?;
        let value = convert::json(env, obj.to_unknown(), "response")?;
        let rsp = Response::from_json_value(value).or_throw(env)?;
        match self.inner.answer(&request.inner, rsp).or_throw(env)? {
            Some(p) => Ok(publish_to_js(env, &p)?.to_unknown()),
            None => convert::to_js(env, &serde_json::Value::Null),
        }
    }
}

/// A command for the application to run, handed over by
/// `ConsumerRules.onCommand()`; give it back to `ConsumerRules.answer()`.
#[napi]
pub struct Request {
    inner: rules::Request,
}

#[napi]
impl Request {
    /// The whole request message (`{ headers, body }`; `command_id` defaulted to `request_id`).
    #[napi(getter, ts_return_type = "Message")]
    pub fn message<'e>(&self, env: &'e Env) -> napi::Result<Unknown<'e>> {
        convert::message_to_js(env, &self.inner.message)
    }

    /// The command object (`{ action, target, args?, ... }`).
    #[napi(getter, ts_return_type = "Command")]
    pub fn command<'e>(&self, env: &'e Env) -> napi::Result<Unknown<'e>> {
        let content = oc2mqtt::codec::content_json(&self.inner.message.body);
        convert::to_js(
            env,
            content.get("request").unwrap_or(&serde_json::Value::Null),
        )
    }

    /// The topic it arrived on.
    #[napi(getter)]
    pub fn topic(&self) -> String {
        self.inner.topic.clone()
    }

    /// Its encoding; the answer uses the same.
    #[napi(getter, ts_return_type = "Encoding")]
    pub fn encoding(&self) -> &'static str {
        self.inner.encoding.as_str()
    }

    /// Its dialect; the answer uses the same.
    #[napi(getter, ts_return_type = "Dialect")]
    pub fn dialect(&self) -> &'static str {
        self.inner.dialect.as_str()
    }

    /// What the producer asked for: `'none'`, `'ack'`, `'status'` or `'complete'`.
    #[napi(getter, ts_return_type = "'none' | 'ack' | 'status' | 'complete'")]
    pub fn response_requested(&self) -> &'static str {
        self.inner.response_requested().as_str()
    }
}
