//! What peers that are not ours put on the wire, against our consumer and
//! producer through a real Mosquitto: a raw MQTT client (rumqttc) plays
//! otupy-less scripts, the OIF orchestrator and device, yuuki, the CASP
//! plugfest scripts (SPEC-NOTES §4).

mod common;

use std::time::{Duration, Instant};

use common::{Broker, RawClient, serving};
use oc2mqtt::client::{ClientConfig, Producer, SendOptions};
use oc2mqtt::codec::{self, Dialect, PublishProperties};
use oc2mqtt::message::{Command, Target};
use serde_json::{Value, json};

fn deny() -> Command {
    Command::new("deny", Target::new("ipv4_net", "10.0.0.0/8")).expect("deny")
}

fn to(id: &str) -> SendOptions {
    SendOptions {
        to: vec![id.to_owned()],
        timeout: Duration::from_secs(5),
        ..SendOptions::default()
    }
}

fn req_props(msg_type: &str) -> PublishProperties {
    PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("application/openc2".into()),
        user_properties: vec![
            ("msgType".into(), msg_type.into()),
            ("encoding".into(), "json".into()),
        ],
    }
}

/// Every message the raw client receives within `quiet`, as JSON with its topic.
async fn drain(raw: &RawClient, quiet: Duration) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while let Some(m) = raw.next(quiet).await {
        let v: Value = serde_json::from_slice(m.payload()).expect("JSON");
        out.push((m.topic().to_owned(), v));
    }
    out
}

fn cmd(rid: &str, from: &str, to: Value, request: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "headers": {"request_id": rid, "from": from, "to": to, "created": oc2mqtt::message::now_ms()},
        "body": {"openc2": {"request": request}},
    }))
    .expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_command_carries_from_and_a_bare_answer_completes_it() {
    // Item 1: `send --dialect bare` names its sender; a bare peer reads the
    // command by its keys and answers bare, request_id and from beside status.
    let broker = Broker::start(&[]);
    let raw = RawClient::connect(&broker.url(), false, &["oc2/cmd/#"]).await;
    let p = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let options = SendOptions {
        dialect: Some(Dialect::Bare),
        ..to("c01")
    };
    let exchange = p.send(deny(), options).await.expect("sent");
    let m = raw.next(Duration::from_secs(3)).await.expect("the command");
    let v: Value = serde_json::from_slice(m.payload()).expect("JSON");
    assert_eq!(v["action"], "deny", "{v}");
    assert_eq!(v["from"], "p1", "MQTT-T 3.2: from on every message: {v}");
    let answer = json!({"status": 200, "request_id": v["request_id"], "from": "c01"});
    raw.publish("oc2/rsp", answer.to_string().as_bytes(), None)
        .await;
    let s = exchange.collect().await;
    assert!(s.complete, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_requested_and_addressing_decide_what_is_answered() {
    // Item 4: status is 102 then the final response; ack with another
    // argument to query features is a 400 alone; a malformed command for
    // another device, or asking for none, is not answered.
    let broker = Broker::start(&[]);
    let _c = serving(ClientConfig::new(broker.url()), "c01").await;
    let raw = RawClient::connect(&broker.url(), true, &["oc2/rsp/#"]).await;
    let send = |rid: &str, to: Value, request: Value| {
        let payload = cmd(rid, "p9", to, request);
        let raw = &raw;
        async move {
            raw.publish("oc2/cmd/all", &payload, Some(&req_props("req")))
                .await;
        }
    };
    send(
        "st",
        json!(["c01"]),
        json!({"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}, "args": {"response_requested": "status"}}),
    )
    .await;
    send(
        "qf",
        json!(["c01"]),
        json!({"action": "query", "target": {"features": []}, "args": {"response_requested": "ack", "duration": 5}}),
    )
    .await;
    send(
        "other",
        json!(["c99"]),
        json!({"action": "deny", "target": {"a": 1, "b": 2}}),
    )
    .await;
    send(
        "none",
        json!(["c01"]),
        json!({"action": "deny", "target": {"a": 1, "b": 2}, "args": {"response_requested": "none"}}),
    )
    .await;
    let mut got: Vec<(String, u64)> = drain(&raw, Duration::from_millis(800))
        .await
        .into_iter()
        .map(|(_, v)| {
            (
                v["headers"]["request_id"].as_str().expect("id").to_owned(),
                v["body"]["openc2"]["response"]["status"]
                    .as_u64()
                    .expect("status"),
            )
        })
        .collect();
    // By command, each command's answers in the order they came.
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [("qf".into(), 400), ("st".into(), 102), ("st".into(), 200)],
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oif_and_casp_forms_of_msgtype_and_address_are_answered() {
    // Items 8 and 9: msgType request/cmd, `to` as id@host:port or as the
    // device topic, `from` as a topic.
    let broker = Broker::start(&[]);
    let _c = serving(ClientConfig::new(broker.url()), "c01").await;
    let raw = RawClient::connect(&broker.url(), true, &["oc2/rsp/#"]).await;
    let deny = json!({"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}});
    for (rid, from, to, msg_type) in [
        (
            "oif",
            "orch-1@10.0.0.9:8080",
            "c01@10.0.0.5:1883",
            "request",
        ),
        ("cmd", "p9", "c01", "cmd"),
        ("dki", "oc2/rsp/p01", "oc2/cmd/device/c01", "req"),
    ] {
        raw.publish(
            "oc2/cmd/device/c01",
            &cmd(rid, from, json!([to]), deny.clone()),
            Some(&req_props(msg_type)),
        )
        .await;
    }
    let got = drain(&raw, Duration::from_millis(800)).await;
    let mut answered: Vec<(&str, &str, &Value)> = got
        .iter()
        .map(|(topic, v)| {
            (
                topic.as_str(),
                v["headers"]["request_id"].as_str().expect("id"),
                &v["headers"]["to"],
            )
        })
        .collect();
    // The handlers run in parallel: compare by request id.
    answered.sort_by_key(|a| a.1);
    assert_eq!(
        answered,
        [
            ("oc2/rsp", "cmd", &json!(["p9"])),
            ("oc2/rsp", "dki", &json!(["oc2/rsp/p01"])),
            ("oc2/rsp", "oif", &json!(["orch-1@10.0.0.9:8080"])),
        ]
    );
}

/// A raw consumer `c01` answering each command with `answer(command)`.
async fn raw_device(broker: &Broker, answer: fn(&Value) -> Value) -> tokio::task::JoinHandle<()> {
    let raw = RawClient::connect(&broker.url(), false, &["oc2/cmd/#"]).await;
    tokio::spawn(async move {
        while let Some(m) = raw.next(Duration::from_secs(10)).await {
            let v: Value = serde_json::from_slice(m.payload()).expect("JSON");
            raw.publish("oc2/rsp", answer(&v).to_string().as_bytes(), None)
                .await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_under_another_name_completes_the_exchange() {
    // Item 10: yuuki answers as "Yuuki"; before, `send --to c01` waited out its timeout.
    let broker = Broker::start(&[]);
    let _d = raw_device(&broker, |v| {
        json!({"headers": {"request_id": v["headers"]["request_id"], "from": "Yuuki", "to": "p1"},
               "body": {"openc2": {"response": {"status": 200}}}})
    })
    .await;
    let p = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let started = Instant::now();
    let s = p
        .send(deny(), to("c01"))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete, "{s:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not the timeout"
    );
    assert_eq!(
        s.responses[0].message.headers.from.as_deref(),
        Some("Yuuki")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oif_device_nulls_and_string_results_are_delivered() {
    // Item 11: the OIF device's results "", status_text null: delivered, not dropped.
    let broker = Broker::start(&[]);
    let _d = raw_device(&broker, |v| {
        json!({"headers": {"request_id": v["headers"]["request_id"], "from": "c01", "to": ["p1"]},
               "body": {"openc2": {"response": {"status": 200, "status_text": null, "results": ""}}}})
    })
    .await;
    let p = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let s = p
        .send(deny(), to("c01"))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete, "{s:?}");
    let rsp = s.responses[0].message.response().expect("response");
    assert_eq!((rsp.status, rsp.status_text.as_deref()), (200, None));
    assert_eq!(rsp.extra["results"], "", "kept as received");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_answer_without_request_id_is_handed_over_as_unsolicited() {
    // Item 12: the NSA consumer answers {"status":200} on oc2/rsp, no request_id.
    let broker = Broker::start(&[]);
    let _d = raw_device(&broker, |_| json!({"status": 200, "status_text": "OK"})).await;
    let p = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let options = SendOptions {
        timeout: Duration::from_millis(800),
        ..to("c01")
    };
    let exchange = p.send(deny(), options).await.expect("sent");
    let unsolicited = tokio::time::timeout(Duration::from_secs(3), p.next_unsolicited())
        .await
        .expect("within 3 s")
        .expect("a reply");
    assert_eq!(unsolicited.dialect, Dialect::Bare);
    assert_eq!(unsolicited.topic, "oc2/rsp");
    assert_eq!(
        unsolicited.message.response().expect("response").status,
        200
    );
    assert!(
        !exchange.collect().await.complete,
        "it cannot be correlated"
    );
    assert_eq!(p.stats().unsolicited, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_is_answered_each_time_and_its_copies_once() {
    // Item 13: the bare `query features []` heartbeat every 1.5 s, and once on three topics.
    let broker = Broker::start(&[]);
    let _c = serving(ClientConfig::new(broker.url()), "c01").await;
    let raw = RawClient::connect(&broker.url(), false, &["oc2/rsp/#"]).await;
    let heartbeat = br#"{"action":"query","target":{"features":[]}}"#;
    for topic in ["oc2/cmd/all", "oc2/cmd", "oc2/cmd/device/c01"] {
        raw.publish(topic, heartbeat, None).await;
    }
    let first = drain(&raw, Duration::from_millis(700)).await;
    assert_eq!(first.len(), 1, "the copies run once: {first:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    raw.publish("oc2/cmd/all", heartbeat, None).await;
    let second = drain(&raw, Duration::from_millis(700)).await;
    assert_eq!(second.len(), 1, "the next beat is answered: {second:?}");
    let d = codec::decode(second[0].1.to_string().as_bytes(), None).expect("decodes");
    assert_eq!(d.dialect, Dialect::Bare);
    assert_eq!(d.message.headers.from.as_deref(), Some("c01"));
}

/// `peer: otupy` suits otupy's consumers, as the setting says: a command
/// goes out in otupy's flat dialect unless the send names another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_for_otupy_peers_sends_otupys_dialect_unless_told() {
    let broker = Broker::start(&[]);
    let raw = RawClient::connect(&broker.url(), false, &["oc2/cmd/#"]).await;
    let mut config = ClientConfig::new(broker.url());
    config.peer = oc2mqtt::topics::Peer::Otupy;
    let p = Producer::connect(config, "p1").await.expect("producer");
    let quick = |dialect| SendOptions {
        dialect,
        timeout: Duration::from_millis(100),
        ..to("c01")
    };
    for (dialect, flat) in [(None, true), (Some(Dialect::Spec), false)] {
        let _exchange = p.send(deny(), quick(dialect)).await.expect("sent");
        let m = raw.next(Duration::from_secs(3)).await.expect("the command");
        let v: Value = serde_json::from_slice(m.payload()).expect("JSON");
        assert_eq!(v.get("content").is_some(), flat, "{dialect:?}: {v}");
        assert_eq!(v.get("body").is_some(), !flat, "{dialect:?}: {v}");
    }
}
