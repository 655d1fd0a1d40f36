//! The brokers users run: Mosquitto 2, RabbitMQ 3.10 (MQTT plugin, 3.1.1
//! only) and Apache ActiveMQ 5.17 (3.1.1 only), each started by the test
//! (own config, data dir, free ports; stopped by PID).
//!
//! One test per broker runs the same checks in order, so each broker starts
//! once: default settings exchange, broadcast, monitor, TLS + password,
//! wrong password, refused subscribe and publish, QoS 2, no session left
//! after `send`, no retained or stale command executed, WebSocket.
#![allow(missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Broker, RawClient};
use oc2mqtt::Error;
use oc2mqtt::client::{
    ClientConfig, Consumer, ConsumerOptions, Monitor, MonitorEvent, MqttVersion, Producer,
    SendOptions,
};
use oc2mqtt::codec::{self, Dialect, Encoding};
use oc2mqtt::message::{Command, Message, Target};

const OK: (&str, &str) = ("ctl", "ctl-pw");
/// May not subscribe to `oc2/cmd/device/fw-nosub`.
const NOSUB: (&str, &str) = ("nosub", "nosub-pw");
/// May not publish to `oc2/cmd/device/fw-nopub`.
const NOPUB: (&str, &str) = ("nopub", "nopub-pw");

fn start(kind: &str) -> Broker {
    // WebSocket where the broker has it (Debian's ActiveMQ lacks its HTTP transport).
    let ws = if kind == "activemq" { "--tls" } else { "--ws" };
    Broker::start(&[
        "--kind",
        kind,
        ws,
        "--tls",
        "--user",
        &format!("{}:{}", OK.0, OK.1),
        "--user",
        &format!("{}:{}", NOSUB.0, NOSUB.1),
        "--user",
        &format!("{}:{}", NOPUB.0, NOPUB.1),
        "--deny",
        &format!("{}:read:oc2/cmd/device/fw-nosub", NOSUB.0),
        "--deny",
        &format!("{}:write:oc2/cmd/device/fw-nopub", NOPUB.0),
    ])
}

fn config(url: String, user: (&str, &str)) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.username = Some(user.0.to_owned());
    c.password = Some(user.1.to_owned());
    c.connect_timeout_secs = 5;
    c
}

fn deny() -> Command {
    Command::new("deny", Target::new("ipv4_net", "10.0.0.1/32")).expect("deny")
}

fn to(ids: &[&str], secs: u64) -> SendOptions {
    SendOptions {
        to: ids.iter().map(|s| (*s).to_owned()).collect(),
        timeout: Duration::from_secs(secs),
        ..SendOptions::default()
    }
}

/// A `deny` to fw-1 completes within 5 s.
async fn completes(p: &Producer, what: &str) {
    let s = p
        .send(deny(), to(&["fw-1"], 5))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete, "{what}: {s:?}");
}

/// A consumer that counts the commands its handler ran.
async fn serve(c: ClientConfig, id: &str, freshness: u64) -> (Consumer, Arc<AtomicUsize>) {
    let mut options = ConsumerOptions::new(id);
    options.freshness_secs = freshness;
    let consumer = Consumer::connect(c, options)
        .await
        .expect("consumer connects");
    let ran = Arc::new(AtomicUsize::new(0));
    let (c2, count) = (consumer.clone(), Arc::clone(&ran));
    tokio::spawn(async move {
        let _ = c2
            .serve(move |_m| {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            })
            .await;
    });
    (consumer, ran)
}

async fn run_checks(kind: &str) {
    let broker = start(kind);
    let url = broker.url();
    let v5 = kind == "mosquitto";
    let expected = if v5 {
        MqttVersion::V5
    } else {
        MqttVersion::V311
    };

    // 1. Default settings (mqtt_version auto): an exchange completes.
    let (fw1, fw1_ran) = serve(config(url.clone(), OK), "fw-1", 900).await;
    assert_eq!(fw1.stats().mqtt_version, Some(expected), "{kind}: version");
    let p = Producer::connect(config(url.clone(), OK), "ctl-1")
        .await
        .expect("producer connects with the default version");
    completes(&p, &format!("{kind}: default exchange")).await;
    assert_eq!(fw1_ran.load(Ordering::SeqCst), 1, "{kind}: ran once");

    // 2. Broadcast to three, with a monitor watching.
    let monitor = Monitor::connect(config(url.clone(), OK), None)
        .await
        .expect("monitor connects");
    let (_fw2, _) = serve(config(url.clone(), OK), "fw-2", 900).await;
    let (_fw3, _) = serve(config(url.clone(), OK), "fw-3", 900).await;
    let started = Instant::now();
    let s = p
        .send(
            deny(),
            SendOptions {
                expect: Some(3),
                timeout: Duration::from_secs(8),
                ..SendOptions::default()
            },
        )
        .await
        .expect("broadcast sent")
        .collect()
        .await;
    assert!(s.complete, "{kind}: broadcast: {s:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{kind}: broadcast returned early"
    );
    let mut requests = 0;
    let mut paired = 0;
    let until = Instant::now() + Duration::from_secs(5);
    while paired < 3 && Instant::now() < until {
        match tokio::time::timeout(Duration::from_secs(1), monitor.next()).await {
            Ok(Some(MonitorEvent::Request(_))) => requests += 1,
            Ok(Some(MonitorEvent::Response {
                latency: Some(_), ..
            })) => paired += 1,
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => break,
        }
    }
    assert!(
        requests >= 1 && paired >= 3,
        "{kind}: monitor saw {requests} requests, {paired} paired responses"
    );
    monitor.close().await;

    // 3. TLS and password.
    let mut tls = config(broker.tls_url(), OK);
    tls.ca_file = Some(broker.file("ca"));
    let pt = Producer::connect(tls, "ctl-tls")
        .await
        .expect("TLS producer");
    completes(&pt, &format!("{kind}: TLS exchange")).await;
    pt.close().await;

    // 4. A wrong password.
    let e = Producer::connect(config(url.clone(), (OK.0, "wrong")), "ctl-x")
        .await
        .expect_err("wrong password");
    assert!(matches!(e, Error::Auth(_)), "{kind}: {e:?}");
    assert_eq!(
        e.to_string(),
        "broker refused the connection: bad user name or password",
        "{kind}"
    );

    // 5. A subscription the ACL refuses: an error naming the topic, quickly.
    let started = Instant::now();
    let e = Consumer::connect(config(url.clone(), NOSUB), ConsumerOptions::new("fw-nosub"))
        .await
        .expect_err("subscription refused");
    let text = e.to_string();
    assert!(
        text.contains("oc2/cmd/device/fw-nosub") && text.contains("not authorized"),
        "{kind}: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{kind}: refused in {:?}",
        started.elapsed()
    );

    // 6. A publish the ACL refuses: the send ends with an error, no loop.
    let pn = Producer::connect(config(url.clone(), NOPUB), "ctl-nopub")
        .await
        .expect("producer");
    let started = Instant::now();
    let r = pn.send(deny(), to(&["fw-nopub"], 5)).await;
    match r {
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("oc2/cmd/device/fw-nopub"), "{kind}: {text}");
        }
        Ok(ex) => {
            // A broker that drops a refused publish silently (and
            // acknowledges it) leaves nothing to report: the exchange then
            // times out, and nobody ran it.
            let s = ex.collect().await;
            assert!(
                !s.complete,
                "{kind}: a refused publish was delivered: {s:?}"
            );
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{kind}: refusal took {:?}",
        started.elapsed()
    );
    // The producer still works for topics it may use.
    completes(&pn, &format!("{kind}: after a refusal")).await;
    pn.close().await;

    // 7. QoS 2 (RabbitMQ grants 1): exchanges work, no loop.
    let mut q2 = config(url.clone(), OK);
    q2.qos = 2;
    let p2 = Producer::connect(q2, "ctl-q2")
        .await
        .expect("QoS 2 producer");
    completes(&p2, &format!("{kind}: QoS 2 exchange")).await;
    p2.close().await;

    // 8. No session left behind by a producer with a generated client id:
    // connecting again with its id finds no session.
    let ps = Producer::connect(config(url.clone(), OK), "ctl-gone")
        .await
        .expect("producer");
    let id = ps.client_id().to_owned();
    assert!(id.starts_with("oc2mqtt-"), "{id}");
    completes(&ps, &format!("{kind}: before closing")).await;
    ps.close().await;
    let present = common::session_present(&url, &id, OK).await;
    assert!(!present, "{kind}: the broker kept the session of {id}");

    // 9. Retained and stale commands are not executed.
    let before = fw1_ran.load(Ordering::SeqCst);
    let raw = RawClient::connect_as(&url, v5, OK).await;
    let mut old = Message::request(deny()).from("ctl-old");
    old.headers.to = Some(vec!["fw-1".to_owned()]);
    old.headers.created = Some(1_690_000_000_000);
    let (payload, props) = codec::encode(&old, Encoding::Json, Dialect::Spec).expect("encode");
    raw.publish("oc2/cmd/device/fw-1", &payload, Some(&props))
        .await;
    let mut retained = Message::request(deny()).from("ctl-ret");
    retained.headers.to = Some(vec!["fw-late".to_owned()]);
    let (payload, props) = codec::encode(&retained, Encoding::Json, Dialect::Spec).expect("encode");
    raw.publish_retained("oc2/cmd/device/fw-late", &payload, Some(&props))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A consumer that subscribes after the retained command was stored.
    let (late, late_ran) = serve(config(url.clone(), OK), "fw-late", 900).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fw1_ran.load(Ordering::SeqCst),
        before,
        "{kind}: a stale command ran"
    );
    assert_eq!(
        late_ran.load(Ordering::SeqCst),
        0,
        "{kind}: a retained command ran"
    );
    assert!(fw1.stats().stale >= 1, "{kind}: {:?}", fw1.stats());
    assert_eq!(
        late.stats().stale,
        1,
        "{kind}: the retained command arrived and was skipped: {:?}",
        late.stats()
    );
    // Clear the retained message (an empty retained publish).
    raw.publish_retained("oc2/cmd/device/fw-late", b"", None)
        .await;
    late.close().await;

    // 10. MQTT over WebSocket, where the broker serves it (Mosquitto's
    // websockets listener, RabbitMQ's web_mqtt; Debian's ActiveMQ lacks its
    // HTTP transport).
    assert_eq!(
        broker.ws_url().is_some(),
        kind != "activemq",
        "{kind}: {:?}",
        broker.ws_url()
    );
    if let Some(ws) = broker.ws_url() {
        let pw = Producer::connect(config(ws, OK), "ctl-ws")
            .await
            .expect("WebSocket producer");
        completes(&pw, &format!("{kind}: WebSocket exchange")).await;
        pw.close().await;
    }
    // wss:// on Mosquitto's TLS websockets listener (broker.py sets one up there).
    assert_eq!(broker.wss_url().is_some(), kind == "mosquitto");
    if let Some(wss) = broker.wss_url() {
        let mut c = config(wss, OK);
        c.ca_file = Some(broker.file("ca"));
        let pw = Producer::connect(c, "ctl-wss")
            .await
            .expect("WebSocket over TLS producer");
        completes(&pw, &format!("{kind}: wss exchange")).await;
        pw.close().await;
    }
    p.close().await;
    fw1.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_works_by_default() {
    run_checks("mosquitto").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_works_by_default() {
    run_checks("rabbitmq").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_works_by_default() {
    run_checks("activemq").await;
}
