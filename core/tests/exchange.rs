//! Producer ↔ consumer exchanges through a real Mosquitto started per test.
#![allow(missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Broker, RawClient};
use oc2mqtt::client::{
    ClientConfig, Consumer, ConsumerOptions, Monitor, MonitorEvent, MqttVersion, Producer,
    SendOptions, SharedExchange,
};
use oc2mqtt::codec::{self, Dialect, Encoding};
use oc2mqtt::message::{Command, Message, Response, Target};
use serde_json::json;

type Executions = Arc<Mutex<HashMap<String, usize>>>;

fn deny() -> Command {
    Command::new(
        "deny",
        Target::new(
            "ipv4_connection",
            json!({"protocol": "tcp", "src_addr": "1.2.3.4", "dst_port": 80}),
        ),
    )
    .expect("deny is an action")
    .with_actuator("slpf")
}

fn query_features() -> Command {
    Command::new("query", Target::features(["versions", "profiles", "pairs"])).expect("query")
}

/// A consumer that answers 200 to deny, counting executions per request id.
async fn device(url: &str, id: &str) -> (Consumer, Executions) {
    let opts = ConsumerOptions::new(id)
        .profile("slpf")
        .pair("deny", "ipv4_connection");
    let consumer = Consumer::connect(ClientConfig::new(url), opts)
        .await
        .expect("consumer connects");
    let runs: Executions = Arc::default();
    let (c, r, me) = (consumer.clone(), Arc::clone(&runs), id.to_owned());
    tokio::spawn(async move {
        c.serve(move |msg: &Message| {
            let rid = msg.headers.request_id.clone().unwrap_or_default();
            *r.lock().expect("lock").entry(rid).or_default() += 1;
            Ok(Some(
                Response::new(200)
                    .with_result("slpf", json!({"rule_number": 1}))
                    .with_text(me.clone()),
            ))
        })
        .await
    });
    (consumer, runs)
}

fn opts_to(to: &[&str]) -> SendOptions {
    SendOptions {
        to: to.iter().map(|s| s.to_string()).collect(),
        timeout: Duration::from_secs(5),
        ..SendOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_in_every_dialect_and_encoding() {
    let broker = Broker::start(&[]);
    let (_consumer, runs) = device(&broker.url(), "fw-1").await;
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer connects");
    for dialect in [Dialect::Spec, Dialect::Otupy] {
        for encoding in [Encoding::Json, Encoding::Cbor] {
            let options = SendOptions {
                encoding,
                dialect: Some(dialect),
                ..opts_to(&["fw-1"])
            };
            let summary = producer
                .send(deny(), options)
                .await
                .expect("sent")
                .collect()
                .await;
            assert!(summary.complete, "{dialect}/{encoding}: {summary:?}");
            assert_eq!(summary.responses.len(), 1);
            let reply = &summary.responses[0];
            assert_eq!(
                (reply.dialect, reply.encoding),
                (dialect, encoding),
                "replies in the command's dialect"
            );
            assert_eq!(reply.message.response().expect("a response").status, 200);
            assert_eq!(reply.message.headers.from.as_deref(), Some("fw-1"));
            assert_eq!(
                reply.message.headers.request_id.as_deref(),
                Some(summary.request_id.as_str())
            );
        }
    }
    assert_eq!(runs.lock().expect("lock").len(), 4);
    let features = producer
        .send(query_features(), opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    let results = features.responses[0]
        .message
        .response()
        .expect("response")
        .results
        .clone()
        .expect("results");
    assert_eq!(results["profiles"], json!(["slpf"]));
    assert_eq!(
        results["pairs"],
        json!({"query": ["features"], "deny": ["ipv4_connection"]})
    );
    assert_eq!(
        runs.lock().expect("lock").len(),
        4,
        "query features is answered by the core, not the handler"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_command_is_answered_bare() {
    let broker = Broker::start(&[]);
    let (_consumer, runs) = device(&broker.url(), "fw-1").await;
    let monitor = Monitor::connect(ClientConfig::new(broker.url()), None)
        .await
        .expect("monitor");
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let options = SendOptions {
        dialect: Some(Dialect::Bare),
        timeout: Duration::from_millis(300),
        ..opts_to(&[])
    };
    producer
        .send(deny(), options)
        .await
        .expect("sent")
        .collect()
        .await;
    let response = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(MonitorEvent::Response { observed, .. }) = monitor.next().await {
                return observed;
            }
        }
    })
    .await
    .expect("the consumer answered");
    assert_eq!(response.dialect, Dialect::Bare);
    assert_eq!(response.message.response().expect("response").status, 200);
    assert_eq!(runs.lock().expect("lock").values().sum::<usize>(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_to_five_consumers_completes_as_soon_as_all_answered() {
    let broker = Broker::start(&[]);
    let ids: Vec<String> = (1..=5).map(|i| format!("fw-{i}")).collect();
    let mut devices = Vec::new();
    for id in &ids {
        devices.push(device(&broker.url(), id).await);
    }
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let long = Duration::from_secs(10);

    // With `to`: one publish per device, complete when all five answered.
    let to: Vec<&str> = ids.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let s = producer
        .send(
            deny(),
            SendOptions {
                timeout: long,
                ..opts_to(&to)
            },
        )
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete && s.missing.is_empty());
    assert_eq!(s.responses.len(), 5);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for the timeout: {:?}",
        started.elapsed()
    );

    // Without `to` but with an expected count: oc2/cmd/ap/slpf, complete at the fifth.
    let started = std::time::Instant::now();
    let s = producer
        .send(
            deny(),
            SendOptions {
                expect: Some(5),
                timeout: long,
                ..SendOptions::default()
            },
        )
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete);
    assert_eq!(s.responses.len(), 5);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Unknown audience: ends at the timeout with every answer.
    let q = Command::new("query", Target::features(["versions"])).expect("query");
    let s = producer
        .send(
            q,
            SendOptions {
                timeout: Duration::from_millis(700),
                ..SendOptions::default()
            },
        )
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(!s.complete);
    assert_eq!(s.responses.len(), 5);
    for (_, runs) in &devices {
        assert_eq!(
            runs.lock().expect("lock").len(),
            2,
            "each device ran each deny once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_device_is_reported_missing() {
    let broker = Broker::start(&[]);
    let _d = device(&broker.url(), "fw-1").await;
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let options = SendOptions {
        timeout: Duration::from_millis(500),
        ..opts_to(&["fw-1", "fw-9"])
    };
    let s = producer
        .send(deny(), options)
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(!s.complete);
    assert_eq!(s.missing, ["fw-9"]);
    assert_eq!(s.responses.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_collect_ends_as_send_then_collect_does() {
    let broker = Broker::start(&[]);
    let (_d, runs) = device(&broker.url(), "fw-1").await;
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    // Answered: complete with the device's final response, run once.
    let s = producer
        .send_collect(deny(), opts_to(&["fw-1"]))
        .await
        .expect("sent");
    assert!(s.complete && s.missing.is_empty(), "{s:?}");
    assert_eq!(s.responses.len(), 1);
    assert_eq!(
        s.responses[0].message.response().expect("response").status,
        200
    );
    assert_eq!(runs.lock().expect("lock").get(&s.request_id), Some(&1));
    // No response requested: complete on the acknowledgement.
    let started = std::time::Instant::now();
    let none = deny().with_arg("response_requested", "none");
    let s = producer
        .send_collect(none, opts_to(&["fw-1"]))
        .await
        .expect("sent");
    assert!(s.complete && s.responses.is_empty(), "{s:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "not at the timeout"
    );
    // An absent device: incomplete at the timeout, named missing.
    let options = SendOptions {
        timeout: Duration::from_millis(500),
        ..opts_to(&["fw-1", "fw-9"])
    };
    let s = producer.send_collect(deny(), options).await.expect("sent");
    assert!(!s.complete);
    assert_eq!(s.missing, ["fw-9"]);
    assert_eq!(s.responses.len(), 1);
    assert_eq!(producer.open_exchanges(), 0, "every exchange closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_exchange_is_read_by_several_owners_and_a_cancel_ends_a_wait_at_once() {
    let broker = Broker::start(&[]);
    let _d = device(&broker.url(), "fw-1").await;
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let options = SendOptions {
        timeout: Duration::from_secs(30),
        ..opts_to(&["fw-1", "fw-9"])
    };
    let shared = SharedExchange::from(producer.send(deny(), options.clone()).await.expect("sent"));
    let reader = shared.clone();
    // fw-1 answers; fw-9 never does: the second read waits for the 30 s timeout...
    let first = reader.next().await.expect("fw-1 answers");
    assert_eq!(first.message.headers.from.as_deref(), Some("fw-1"));
    let waiting = tokio::spawn(async move { reader.next().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished() && !shared.is_closed());
    // ... until another owner cancels it, from a plain thread.
    let started = std::time::Instant::now();
    let canceller = shared.clone();
    std::thread::spawn(move || canceller.cancel())
        .join()
        .expect("cancel");
    let last = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("the wait ends at the cancel")
        .expect("task");
    assert!(last.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(shared.is_closed() && !shared.is_complete());
    assert_eq!(shared.missing(), ["fw-9"]);
    let summary = shared.collect().await.expect("not collected yet");
    assert_eq!(summary.missing, ["fw-9"]);
    assert!(
        summary.responses.is_empty(),
        "fw-1's answer was read already"
    );
    let again = shared.collect().await.expect_err("collected once");
    assert_eq!(
        again.to_string(),
        format!(
            "closed: exchange {}: already collected",
            shared.request_id()
        )
    );
    assert!(shared.next().await.is_none());

    // Cancelled before anyone reads: collect returns at once, what had arrived kept.
    let shared = SharedExchange::from(producer.send(deny(), options).await.expect("sent"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    shared.cancel();
    let started = std::time::Instant::now();
    let summary = shared.collect().await.expect("summary");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(summary.missing, ["fw-9"]);
    assert!(!summary.complete);
    assert_eq!(
        summary.responses.len(),
        1,
        "fw-1 had answered before the cancel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_shared_exchange_is_read_once_sent_and_reports_a_send_that_failed() {
    let broker = Broker::start(&[]);
    let _d = device(&broker.url(), "fw-1").await;
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");

    // Handed out before the send: reads wait for it.
    let (shared, settle) = SharedExchange::pending();
    assert_eq!(shared.request_id(), "");
    let reader = shared.clone();
    let first = tokio::spawn(async move { reader.next().await });
    let sending = producer.send(deny(), opts_to(&["fw-1"]));
    settle.settle(sending.await).await;
    let id = shared.sent().await.expect("sent").expect("not cancelled");
    assert_eq!(id, shared.request_id());
    let reply = first.await.expect("task").expect("fw-1 answers");
    assert_eq!(
        reply.message.headers.request_id.as_deref(),
        Some(id.as_str())
    );

    // A send that failed: sent() says why, reads end.
    let (shared, settle) = SharedExchange::pending();
    settle
        .settle(Err(oc2mqtt::Error::Publish("refused".into())))
        .await;
    assert!(
        shared
            .sent()
            .await
            .expect_err("failed")
            .to_string()
            .contains("refused")
    );
    assert!(shared.next().await.is_none() && shared.is_closed());

    // Cancelled while being sent: sent() returns at once; the exchange is closed when it arrives.
    let (shared, settle) = SharedExchange::pending();
    let waiter = shared.clone();
    let waiting = tokio::spawn(async move { waiter.sent().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    shared.cancel();
    assert!(matches!(waiting.await.expect("task"), Ok(None)));
    let sending = producer.send(
        deny(),
        SendOptions {
            timeout: Duration::from_secs(30),
            ..opts_to(&["fw-9"])
        },
    );
    settle.settle(sending.await).await;
    assert!(shared.is_closed());
    assert_eq!(shared.missing(), ["fw-9"]);

    // A send abandoned without an outcome fails the waits.
    let (shared, settle) = SharedExchange::pending();
    drop(settle);
    assert!(
        shared
            .sent()
            .await
            .expect_err("abandoned")
            .to_string()
            .contains("abandoned")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_102_does_not_end_the_exchange() {
    let broker = Broker::start(&[]);
    let consumer = Consumer::connect(
        ClientConfig::new(broker.url()),
        ConsumerOptions::new("slow-1"),
    )
    .await
    .expect("consumer");
    let c = consumer.clone();
    tokio::spawn(async move {
        while let Some(cmd) = c.next().await {
            cmd.reply(Response::new(102).with_text("working"))
                .await
                .expect("102 sent");
            tokio::time::sleep(Duration::from_millis(200)).await;
            cmd.reply(Response::new(200)).await.expect("200 sent");
        }
    });
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let mut ex = producer
        .send(deny(), opts_to(&["slow-1"]))
        .await
        .expect("sent");
    let first = ex.next().await.expect("interim");
    assert_eq!(first.message.response().expect("response").status, 102);
    assert!(!ex.is_closed());
    let second = ex.next().await.expect("final");
    assert_eq!(second.message.response().expect("response").status, 200);
    assert!(ex.next().await.is_none());
    assert!(ex.is_complete());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_requested_ack_and_none() {
    let broker = Broker::start(&[]);
    let (_c, runs) = device(&broker.url(), "fw-1").await;
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let ack = deny().with_arg("response_requested", "ack");
    let s = producer
        .send(ack, opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete);
    assert_eq!(s.responses.len(), 1);
    assert_eq!(
        s.responses[0].message.response().expect("response").status,
        102
    );
    let started = std::time::Instant::now();
    let none = deny().with_arg("response_requested", "none");
    let s = producer
        .send(none, opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete && s.responses.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "none completes on PUBACK"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs.lock().expect("lock").len(), 2, "both commands ran");
    assert_eq!(
        producer.stats().unsolicited,
        0,
        "nothing was answered to `none`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_exchanges_from_one_producer() {
    let broker = Broker::start(&[]);
    let (_c, runs) = device(&broker.url(), "fw-1").await;
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let p = producer.clone();
        tasks.push(tokio::spawn(async move {
            p.send(deny(), opts_to(&["fw-1"]))
                .await
                .expect("sent")
                .collect()
                .await
        }));
    }
    for t in tasks {
        let s = t.await.expect("task");
        assert!(s.complete);
        assert_eq!(s.responses.len(), 1);
        assert_eq!(
            s.responses[0].message.headers.request_id.as_deref(),
            Some(s.request_id.as_str())
        );
    }
    assert_eq!(runs.lock().expect("lock").len(), 50);
    assert_eq!(producer.open_exchanges(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_for_another_producer_never_leak_in() {
    let broker = Broker::start(&[]);
    let _d = device(&broker.url(), "fw-1").await;
    let p1 = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("p1");
    let p2 = Producer::connect(ClientConfig::new(broker.url()), "p2")
        .await
        .expect("p2");
    let (a, b) = tokio::join!(
        async {
            p1.send(deny(), opts_to(&["fw-1"]))
                .await
                .expect("sent")
                .collect()
                .await
        },
        async {
            p2.send(deny(), opts_to(&["fw-1"]))
                .await
                .expect("sent")
                .collect()
                .await
        },
    );
    for s in [&a, &b] {
        assert_eq!(s.responses.len(), 1);
        assert_eq!(
            s.responses[0].message.headers.request_id.as_deref(),
            Some(s.request_id.as_str())
        );
    }
    assert_ne!(a.request_id, b.request_id);
    // Both hear the other's response on oc2/rsp: addressed to another
    // producer, it is neither delivered nor unsolicited.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for p in [&p1, &p2] {
        assert_eq!(p.stats().received, 2, "its own and the other's");
        assert_eq!(p.stats().unsolicited, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_on_three_topics_and_redelivered_runs_once() {
    let broker = Broker::start(&[]);
    let (consumer, runs) = device(&broker.url(), "fw-1").await;
    let raw = RawClient::connect(&broker.url(), true, &["oc2/rsp/#"]).await;
    let msg = Message::request(deny()).from("p1");
    let (payload, props) = codec::encode(&msg, Encoding::Json, Dialect::Spec).expect("encodes");
    for topic in [
        "oc2/cmd/all",
        "oc2/cmd/ap/slpf",
        "oc2/cmd/device/fw-1",
        "oc2/cmd/device/fw-1",
    ] {
        raw.publish(topic, &payload, Some(&props)).await;
    }
    let mut answers = 0;
    while let Some(m) = raw.next(Duration::from_millis(700)).await {
        if m.topic() == "oc2/rsp" {
            answers += 1;
        }
    }
    assert_eq!(answers, 1, "one answer");
    assert_eq!(
        runs.lock()
            .expect("lock")
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [1],
        "one execution"
    );
    assert_eq!(consumer.stats().duplicates, 3);
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// Every invalid shared vector is published to `oc2/cmd/all` (with its
/// properties when it has some): the consumer answers `400` to each one it
/// can address (a request id or sender could be salvaged), in the command's
/// dialect, with the path and reason, and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_commands_get_400_and_the_consumer_keeps_serving() {
    let broker = Broker::start(&[]);
    let (consumer, runs) = device(&broker.url(), "fw-1").await;
    let raw = RawClient::connect(&broker.url(), true, &["oc2/rsp"]).await;
    let (mut published, mut answered) = (0, 0);
    for (i, (name, path)) in common::vectors::vector_files().into_iter().enumerate() {
        if !name.starts_with("invalid/") {
            continue;
        }
        let mut case = common::vectors::load(&path).expect("vector loads");
        // Many vectors reuse the spec's example request id, and a repeated
        // (from, request_id) is rightly dropped as a duplicate: give each one
        // its own id of the same length, so JSON and CBOR framing stay intact.
        if let Some(id) = codec::decode(&case.payload, case.properties.as_ref())
            .expect_err("invalid")
            .salvage
            .request_id
        {
            let unique = format!("{i:04}");
            if id.len() >= unique.len() {
                let fresh = format!("{}{unique}", &id[..id.len() - unique.len()]);
                case.payload = replace_bytes(&case.payload, id.as_bytes(), fresh.as_bytes());
            }
        }
        let err =
            codec::decode(&case.payload, case.properties.as_ref()).expect_err("still invalid");
        let s = &err.salvage;
        let addressable = (s.request_id.is_some() || s.from.is_some())
            && matches!(s.msg_type, None | Some(oc2mqtt::MsgType::Request));
        raw.publish("oc2/cmd/all", &case.payload, case.properties.as_ref())
            .await;
        published += 1;
        if addressable {
            let m = raw
                .next(Duration::from_secs(3))
                .await
                .unwrap_or_else(|| panic!("{name}: no 400"));
            let d = codec::decode(m.payload(), None).expect("a 400 is well-formed");
            let r = d.message.response().expect("response");
            assert_eq!(r.status, 400, "{name}");
            assert_eq!(
                r.status_text.as_deref(),
                Some(err.to_string().as_str()),
                "{name}: the decoder's path and reason"
            );
            assert_eq!(
                d.message.headers.request_id, s.request_id,
                "{name}: request id copied"
            );
            answered += 1;
        } else {
            assert!(
                raw.next(Duration::from_millis(150)).await.is_none(),
                "{name}: nothing to answer"
            );
        }
    }
    assert!(
        published >= 25 && answered >= 10,
        "published {published}, answered {answered}"
    );
    assert_eq!(consumer.stats().decode_errors, published);
    assert!(
        runs.lock().expect("lock").is_empty(),
        "nothing malformed reached the handler"
    );
    // Still serving.
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let s = producer
        .send(deny(), opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_peers_without_properties_get_answers() {
    let broker = Broker::start(&[]);
    let (_c, runs) = device(&broker.url(), "fw-1").await;
    let raw = RawClient::connect(&broker.url(), false, &["oc2/rsp/#", "oc2/rsp"]).await;
    raw.publish(
        "oc2/cmd/all",
        br#"{"action":"deny","target":{"ipv4_connection":{"protocol":"tcp"}}}"#,
        None,
    )
    .await;
    raw.publish(
        "oc2/cmd/device/fw-1",
        b"{\n  \"content\": {\"request\": {\"action\": \"deny\", \"target\": {\"ipv4_connection\": {}}}},\n  \"request_id\": \"0badf00d\",\n  \"from\": \"legacy\",\n  \"to\": \"fw-1\"\n}",
        None,
    )
    .await;
    let mut dialects = Vec::new();
    while let Some(m) = raw.next(Duration::from_millis(700)).await {
        let d = codec::decode(m.payload(), None).expect("answer decodes");
        assert_eq!(d.message.response().expect("response").status, 200);
        // MQTT-T 3.2: from on every message, the bare reply too.
        assert_eq!(d.message.headers.from.as_deref(), Some("fw-1"), "{d:?}");
        dialects.push((m.topic().to_owned(), d.dialect, d.message.headers.to));
    }
    // Each answered once, on oc2/rsp, in its own dialect (in either order:
    // the two commands are handled side by side).
    dialects.sort_by_key(|(_, d, _)| *d != Dialect::Bare);
    assert_eq!(
        dialects,
        [
            ("oc2/rsp".to_owned(), Dialect::Bare, None),
            (
                "oc2/rsp".to_owned(),
                Dialect::Otupy,
                Some(vec!["legacy".to_owned()])
            )
        ],
    );
    assert_eq!(runs.lock().expect("lock").values().sum::<usize>(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v311_client_talks_to_a_v5_consumer() {
    let broker = Broker::start(&[]);
    let _d = device(&broker.url(), "fw-1").await;
    let mut config = ClientConfig::new(broker.url());
    config.mqtt_version = MqttVersion::V311;
    let producer = Producer::connect(config, "old-p")
        .await
        .expect("v3.1.1 producer");
    let s = producer
        .send(deny(), opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_pairs_responses_with_their_command() {
    let broker = Broker::start(&[]);
    let _d = device(&broker.url(), "fw-1").await;
    let monitor = Monitor::connect(ClientConfig::new(broker.url()), None)
        .await
        .expect("monitor");
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    producer
        .send(deny(), opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    let (mut requests, mut latencies) = (0, Vec::new());
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(500), monitor.next()).await
    {
        match ev {
            MonitorEvent::Request(_) => requests += 1,
            MonitorEvent::Response { latency, .. } => latencies.push(latency),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(requests, 1);
    assert_eq!(latencies.len(), 1, "one response, shown once");
    assert!(
        latencies.iter().all(Option::is_some),
        "paired with the command"
    );
    monitor.close().await;
    assert!(monitor.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_shows_undecodable_payloads_and_unanswered_commands() {
    let broker = Broker::start(&[]);
    let config = ClientConfig::new(broker.url());
    let monitor = Monitor::connect_with_window(config, None, Duration::from_millis(300))
        .await
        .expect("monitor");
    let raw = RawClient::connect(&broker.url(), true, &[]).await;
    raw.publish("oc2/cmd/all", b"not json", None).await;
    let msg = Message::request(deny()).from("p1").to(["ghost"]);
    let (payload, props) = codec::encode(&msg, Encoding::Json, Dialect::Spec).expect("encodes");
    raw.publish("oc2/cmd/device/ghost", &payload, Some(&props))
        .await;
    let mut seen = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(2), monitor.next()).await {
        let done = matches!(ev, MonitorEvent::Unanswered { .. });
        seen.push(ev);
        if done {
            break;
        }
    }
    assert!(
        matches!(&seen[0], MonitorEvent::Undecodable { error, .. } if error.kind.as_str() == "syntax")
    );
    assert!(matches!(&seen[1], MonitorEvent::Request(_)));
    assert!(matches!(&seen[2], MonitorEvent::Unanswered { missing, .. } if missing == &["ghost"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_groups_share_the_work() {
    let broker = Broker::start(&[]);
    let mut members = Vec::new();
    for i in 0..2 {
        let mut opts = ConsumerOptions::new(format!("worker-{i}")).profile("slpf");
        opts.group = Some("pool".into());
        let c = Consumer::connect(ClientConfig::new(broker.url()), opts)
            .await
            .expect("member");
        let count = Arc::new(Mutex::new(0usize));
        let (cc, n) = (c.clone(), Arc::clone(&count));
        tokio::spawn(async move {
            cc.serve(move |_| {
                *n.lock().expect("lock") += 1;
                Ok(None)
            })
            .await
        });
        members.push((c, count));
    }
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    for _ in 0..20 {
        let s = producer
            .send(
                deny(),
                SendOptions {
                    expect: Some(1),
                    timeout: Duration::from_secs(5),
                    ..SendOptions::default()
                },
            )
            .await
            .expect("sent")
            .collect()
            .await;
        assert!(s.complete);
    }
    let counts: Vec<usize> = members
        .iter()
        .map(|(_, n)| *n.lock().expect("lock"))
        .collect();
    assert_eq!(
        counts.iter().sum::<usize>(),
        20,
        "each command ran once in the group: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_counts_the_102_of_an_ack_command_as_its_answer() {
    let broker = Broker::start(&[]);
    let _d = device(&broker.url(), "fw-1").await;
    let config = ClientConfig::new(broker.url());
    let monitor = Monitor::connect_with_window(config, None, Duration::from_millis(300))
        .await
        .expect("monitor");
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let ack = deny().with_arg("response_requested", "ack");
    assert!(
        producer
            .send(ack, opts_to(&["fw-1"]))
            .await
            .expect("sent")
            .collect()
            .await
            .complete
    );
    let none = deny().with_arg("response_requested", "none");
    producer
        .send(none, opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(1), monitor.next()).await {
        assert!(!matches!(ev, MonitorEvent::Unanswered { .. }), "{ev:?}");
    }
    assert!(monitor.pending().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replying_after_close_is_an_error_not_a_hang() {
    let broker = Broker::start(&[]);
    let consumer = Consumer::connect(
        ClientConfig::new(broker.url()),
        ConsumerOptions::new("fw-1"),
    )
    .await
    .expect("consumer");
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let _ex = producer
        .send(
            deny(),
            SendOptions {
                timeout: Duration::from_millis(200),
                ..opts_to(&["fw-1"])
            },
        )
        .await
        .expect("sent");
    let incoming = consumer.next().await.expect("a command");
    consumer.close().await;
    let outcome = tokio::time::timeout(Duration::from_secs(5), incoming.reply(Response::new(200)))
        .await
        .expect("no hang");
    let e = outcome.expect_err("closed");
    assert!(matches!(e, oc2mqtt::Error::Closed(_)), "{e:?}");
}

/// A consumer whose handler takes `slow` for commands with a `duration`
/// argument and answers the others at once.
async fn slow_device(url: &str, id: &str, slow: Duration) -> (Consumer, Arc<Mutex<usize>>) {
    let consumer = Consumer::connect(
        ClientConfig::new(url),
        ConsumerOptions::new(id).profile("slpf"),
    )
    .await
    .expect("consumer connects");
    let handled = Arc::new(Mutex::new(0usize));
    let (c, n) = (consumer.clone(), Arc::clone(&handled));
    tokio::spawn(async move {
        c.serve(move |msg: &Message| {
            *n.lock().expect("lock") += 1;
            if msg
                .command()
                .and_then(|c| c.args.as_ref())
                .is_some_and(|a| a.contains_key("duration"))
            {
                std::thread::sleep(slow);
            }
            Ok(None)
        })
        .await
    });
    (consumer, handled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_does_not_hold_up_the_next_command() {
    let broker = Broker::start(&[]);
    let (_consumer, _) = slow_device(&broker.url(), "fw-1", Duration::from_secs(2)).await;
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let slow = producer
        .send(deny().with_arg("duration", 60_000), opts_to(&["fw-1"]))
        .await
        .expect("sent");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let quick = producer
        .send(deny(), opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(quick.complete, "the quick command was answered");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered while the slow handler still runs: {:?}",
        started.elapsed()
    );
    let slow = slow.collect().await;
    assert!(slow.complete, "the slow command was answered too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_serve_future_stops_serving() {
    let broker = Broker::start(&[]);
    let consumer = Consumer::connect(
        ClientConfig::new(broker.url()),
        ConsumerOptions::new("fw-1").profile("slpf"),
    )
    .await
    .expect("consumer connects");
    let handled = Arc::new(Mutex::new(0usize));
    let (c, n) = (consumer.clone(), Arc::clone(&handled));
    let serving = tokio::spawn(async move {
        c.serve(move |_| {
            *n.lock().expect("lock") += 1;
            Ok(None)
        })
        .await
    });
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let first = producer
        .send(deny(), opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(first.complete, "served while the future lives");
    serving.abort();
    let _ = serving.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut options = opts_to(&["fw-1"]);
    options.timeout = Duration::from_millis(500);
    let after = producer
        .send(deny(), options)
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(!after.complete && after.responses.is_empty(), "{after:?}");
    assert_eq!(
        *handled.lock().expect("lock"),
        1,
        "no handler ran after the drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_without_command_id_reaches_the_handler_with_its_request_id_as_one() {
    let broker = Broker::start(&[]);
    let consumer = Consumer::connect(
        ClientConfig::new(broker.url()),
        ConsumerOptions::new("fw-1"),
    )
    .await
    .expect("consumer");
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let ex = producer
        .send(deny(), opts_to(&["fw-1"]))
        .await
        .expect("sent");
    let incoming = consumer.next().await.expect("a command");
    let msg = incoming.message();
    let cmd = msg.command().expect("a command");
    assert_eq!(cmd.command_id.as_deref(), Some(ex.request_id()), "LS 3.3.1");
}

/// `n` denies to fw-1, each awaiting its answer for `timeout`.
async fn send_denies(
    producer: &Producer,
    n: usize,
    timeout: Duration,
) -> Vec<oc2mqtt::client::Exchange> {
    let mut exchanges = Vec::new();
    for _ in 0..n {
        let mut options = opts_to(&["fw-1"]);
        options.timeout = timeout;
        exchanges.push(producer.send(deny(), options).await.expect("sent"));
    }
    exchanges
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_handlers_get_503_for_the_overflow_and_500_at_their_timeout() {
    // Handlers that never return: once 64 run and 64 more wait, new
    // commands are refused 503 at once; each running one is answered 500
    // at the timeout, and the waiting ones take the freed places.
    let broker = Broker::start(&[]);
    let mut opts = ConsumerOptions::new("fw-1");
    opts.handler_timeout = Some(Duration::from_secs(3));
    let consumer = Consumer::connect(ClientConfig::new(broker.url()), opts)
        .await
        .expect("consumer");
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Whatever happens, the stuck handlers end with the test.
    struct Release(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let _release = Release(Arc::clone(&release));
    let stuck = Arc::clone(&release);
    let entered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let entering = Arc::clone(&entered);
    let serving = consumer.clone();
    tokio::spawn(async move {
        serving
            .serve(move |msg: &Message| {
                if msg.command().is_some_and(|c| c.action.as_str() == "deny") {
                    entering.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    while !stuck.load(std::sync::atomic::Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                Ok(None)
            })
            .await
    });
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let send_batch = |n: usize| send_denies(&producer, n, Duration::from_secs(12));
    let answers = |exchanges: Vec<oc2mqtt::client::Exchange>, started: std::time::Instant| async move {
        let mut out = Vec::new();
        for (i, mut x) in exchanges.into_iter().enumerate() {
            let reply = x
                .next()
                .await
                .unwrap_or_else(|| panic!("no answer to command {i}"));
            let rsp = reply.message.response().expect("response").clone();
            out.push((
                rsp.status,
                rsp.status_text.unwrap_or_default(),
                started.elapsed(),
            ));
        }
        out
    };
    // 128 commands: the handlers start, take 64 of them and hang; 64 wait.
    let started = std::time::Instant::now();
    let first = send_batch(128).await;
    // Every handler thread started and hung (before the first timeout);
    // a second later the consumer counts as stalled, not slow.
    while entered.load(std::sync::atomic::Ordering::SeqCst) < 64 {
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "handlers start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Saturated: 50 more are refused at once (before the timeouts free places).
    let second_started = std::time::Instant::now();
    let second = answers(send_batch(50).await, second_started).await;
    assert!(
        second.iter().all(|(status, text, t)| *status == 503
            && text.starts_with("consumer busy: all 64 handlers are running, none finished for")
            && *t < Duration::from_millis(500)),
        "{second:?}"
    );
    // Each of the first 128 is answered 500 at the timeout, in waves of 64
    // as the waiting ones take the places of the timed-out handlers.
    let first = answers(first, started).await;
    assert!(
        first.iter().all(|(status, text, t)| *status == 500
            && text == "handler timed out after 3.0 s"
            && *t >= Duration::from_millis(2900)),
        "{first:?}"
    );
    // Released, the late answers are dropped; the consumer still serves.
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    let s = producer
        .send(query_features(), opts_to(&["fw-1"]))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete, "{s:?}");
    assert_eq!(s.responses.len(), 1);
}

fn deny_net(net: &str) -> Command {
    Command::new("deny", Target::new("ipv4_net", json!(net))).expect("deny is an action")
}

fn net_of(incoming: &oc2mqtt::client::Incoming) -> String {
    let target = &incoming.command().target;
    target.value.as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_async_answers_each_outcome_by_the_core_rule() {
    // One serve loop in core for asynchronous handlers (the Node and Python
    // bindings' coroutines): the same outcome rule as the threaded serve.
    let broker = Broker::start(&[]);
    let mut opts = ConsumerOptions::new("fw-1");
    opts.handler_timeout = Some(Duration::from_millis(800));
    let consumer = Consumer::connect(ClientConfig::new(broker.url()), opts)
        .await
        .expect("consumer");
    let serving = consumer.clone();
    let served = tokio::spawn(async move {
        serving
            .serve_async(|incoming: Arc<oc2mqtt::client::Incoming>| async move {
                match net_of(&incoming).as_str() {
                    "10.0.0.1/32" => Ok(Some(Response::new(200).with_text("denied"))),
                    "10.0.0.2/32" => Ok(None),
                    "10.0.0.3/32" => Err("no such rule".to_owned()),
                    "10.0.0.4/32" => panic!("the handler broke"),
                    "10.0.0.5/32" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(None)
                    }
                    _ => {
                        incoming
                            .reply(Response::new(102).with_text("working"))
                            .await
                            .expect("102 sent");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Some(Response::new(200).with_text("done")))
                    }
                }
            })
            .await
    });
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let status_of = |net: &'static str| {
        let producer = producer.clone();
        async move {
            let s = producer
                .send(deny_net(net), opts_to(&["fw-1"]))
                .await
                .expect("sent")
                .collect()
                .await;
            s.responses
                .iter()
                .map(|r| {
                    let rsp = r.message.response().expect("a response");
                    (rsp.status, rsp.status_text.clone().unwrap_or_default())
                })
                .collect::<Vec<_>>()
        }
    };
    let started = std::time::Instant::now();
    let (a, b, c, d, e, f) = tokio::join!(
        status_of("10.0.0.1/32"),
        status_of("10.0.0.2/32"),
        status_of("10.0.0.3/32"),
        status_of("10.0.0.4/32"),
        status_of("10.0.0.5/32"),
        status_of("10.0.0.6/32"),
    );
    let final_of = |v: &Vec<(u16, String)>| v.iter().find(|(s, _)| *s != 102).cloned();
    assert_eq!(final_of(&a), Some((200, "denied".to_owned())), "{a:?}");
    assert_eq!(final_of(&b), Some((200, String::new())), "{b:?}");
    assert_eq!(
        final_of(&c),
        Some((500, "no such rule".to_owned())),
        "{c:?}"
    );
    assert_eq!(
        final_of(&d),
        Some((500, "handler panicked: the handler broke".to_owned())),
        "{d:?}"
    );
    assert_eq!(
        final_of(&e),
        Some((500, "handler timed out after 0.8 s".to_owned())),
        "{e:?}"
    );
    assert!(f.contains(&(102, "working".to_owned())), "{f:?}");
    assert_eq!(final_of(&f), Some((200, "done".to_owned())), "{f:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timed-out handler held nothing up"
    );
    // Closed, serve_async returns.
    consumer.close().await;
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("serve_async returns after close")
        .expect("task")
        .expect("no error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_async_runs_64_handlers_at_once_and_refuses_a_stalled_overflow_503() {
    let broker = Broker::start(&[]);
    let consumer = Consumer::connect(
        ClientConfig::new(broker.url()),
        ConsumerOptions::new("fw-1"),
    )
    .await
    .expect("consumer");
    let release = Arc::new(tokio::sync::Notify::new());
    let entered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (gate, entering) = (Arc::clone(&release), Arc::clone(&entered));
    let serving = consumer.clone();
    tokio::spawn(async move {
        serving
            .serve_async(move |_incoming| {
                let (gate, entering) = (Arc::clone(&gate), Arc::clone(&entering));
                async move {
                    entering.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    gate.notified().await;
                    Ok(None)
                }
            })
            .await
    });
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let send_batch = |n: usize| send_denies(&producer, n, Duration::from_secs(15));
    let first = send_batch(128).await;
    let started = std::time::Instant::now();
    while entered.load(std::sync::atomic::Ordering::SeqCst) < 64 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "64 handlers start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        entered.load(std::sync::atomic::Ordering::SeqCst),
        64,
        "no more than 64 at once"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    // Stalled for a second with 64 waiting: new commands are refused at once.
    for mut x in send_batch(20).await {
        let reply = tokio::time::timeout(Duration::from_millis(1500), x.next())
            .await
            .expect("refused at once")
            .expect("an answer");
        let rsp = reply.message.response().expect("response");
        assert_eq!(rsp.status, 503, "{rsp:?}");
    }
    // Released (the waiting ones run as places free up), every one of the
    // first 128 is answered 200.
    let releasing = tokio::spawn(async move {
        loop {
            release.notify_waiters();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    for (i, mut x) in first.into_iter().enumerate() {
        let reply = x
            .next()
            .await
            .unwrap_or_else(|| panic!("no answer to command {i}"));
        assert_eq!(reply.message.response().expect("response").status, 200);
    }
    releasing.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_handed_to_a_callback_is_answered_500_past_the_handler_timeout() {
    // A binding's callback loop (C's `oc2_consumer_serve`) hands each command
    // over and the application answers it later: the handler timeout applies
    // as in the serve loops, and the late answer is dropped.
    let broker = Broker::start(&[]);
    let mut opts = ConsumerOptions::new("fw-1");
    opts.handler_timeout = Some(Duration::from_millis(300));
    let consumer = Consumer::connect(ClientConfig::new(broker.url()), opts)
        .await
        .expect("consumer");
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let late = producer
        .send(deny_net("10.0.0.1/32"), opts_to(&["fw-1"]))
        .await
        .expect("sent");
    let held = consumer
        .next()
        .await
        .expect("a command")
        .with_handler_timeout();
    let s = late.collect().await;
    let finals: Vec<_> = s
        .responses
        .iter()
        .map(|r| {
            let rsp = r.message.response().expect("a response");
            (rsp.status, rsp.status_text.clone().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        finals,
        [(500, "handler timed out after 0.3 s".to_owned())],
        "{s:?}"
    );
    let e = held
        .respond(Response::new(200))
        .expect_err("a late answer is dropped");
    assert_eq!(
        e.to_string(),
        "timed out: the command was answered 500 at its handler timeout (0.3 s); this answer was dropped"
    );

    // Answered in time: the answer goes, and no 500 follows it.
    let in_time = producer
        .send(deny_net("10.0.0.2/32"), opts_to(&["fw-1"]))
        .await
        .expect("sent");
    let held = consumer
        .next()
        .await
        .expect("a command")
        .with_handler_timeout();
    held.respond(Response::new(102)).expect("an interim answer");
    held.respond(Response::new(200).with_text("done"))
        .expect("answered in time");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = in_time.collect().await;
    let statuses: Vec<_> = s
        .responses
        .iter()
        .map(|r| r.message.response().expect("a response").status)
        .collect();
    assert_eq!(statuses, [102, 200], "{s:?}");
    // Past the timeout: the 500 of the first command, the 102 and 200 of
    // the second, and no 500 after an answer in time.
    assert_eq!(consumer.stats().published, 3);
    assert_eq!(producer.stats().unsolicited, 0);
}
