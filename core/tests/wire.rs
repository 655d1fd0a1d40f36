//! What goes on the wire, read by a recording proxy in front of a real
//! Mosquitto, and what the client makes of servers that are not brokers:
//! one that closes the connection on an MQTT v5 CONNECT (as RabbitMQ and
//! ActiveMQ do), one that never answers, an HTTP server, a TLS server that
//! offers only a suite MQTT-T forbids.
#![allow(missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::Broker;
use oc2mqtt::Error;
use oc2mqtt::client::{
    ClientConfig, Consumer, ConsumerOptions, MqttVersion, Producer, SendOptions,
};
use oc2mqtt::message::{Command, Target};
use serde_json::Value;

fn query() -> Command {
    Command::new("query", Target::features(["versions"])).expect("query")
}

fn to(id: &str) -> SendOptions {
    SendOptions {
        to: vec![id.to_owned()],
        timeout: Duration::from_secs(5),
        ..SendOptions::default()
    }
}

fn fake(kind: &str, upstream: Option<&Broker>) -> Broker {
    let port = upstream.map(|b| b.port().to_string());
    let mut args = vec!["--kind", kind];
    if let Some(p) = &port {
        args.extend(["--upstream", p.as_str()]);
    }
    Broker::start(&args)
}

fn packets(recorder: &Broker) -> Vec<Value> {
    let text = std::fs::read_to_string(recorder.file("packets")).expect("packets.jsonl");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn of_type<'a>(all: &'a [Value], t: &str) -> Vec<&'a Value> {
    all.iter().filter(|p| p["type"] == t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_3_1_1_when_the_broker_closes_on_a_v5_connect() {
    let broker = Broker::start(&[]);
    let proxy = fake("v311-proxy", Some(&broker));
    let _c = common::serving(ClientConfig::new(proxy.url()), "fw-1").await;
    let p = Producer::connect(ClientConfig::new(proxy.url()), "p1")
        .await
        .expect("auto connects as 3.1.1");
    assert_eq!(p.stats().mqtt_version, Some(MqttVersion::V311));
    common::completes(&p, query(), to("fw-1")).await;

    let mut v5 = ClientConfig::new(proxy.url());
    v5.mqtt_version = MqttVersion::V5;
    let e = Producer::connect(v5, "p2").await.expect_err("v5 only");
    let text = e.to_string();
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert!(
        text.contains("does not speak MQTT v5") && text.contains("--mqtt-version 3.1.1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_no_connack_within_the_timeout() {
    let silent = fake("silent", None);
    let mut c = ClientConfig::new(silent.url());
    c.connect_timeout_secs = 2;
    let started = Instant::now();
    let e = Producer::connect(c, "p1").await.expect_err("no CONNACK");
    let took = started.elapsed();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot connect to {}: no CONNACK within 2 s (is it an MQTT broker? connect_timeout_secs)",
            silent.url()
        )
    );
    assert!(took < Duration::from_millis(2900), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_is_not_an_mqtt_broker() {
    let http = fake("http", None);
    let e = Producer::connect(ClientConfig::new(http.url()), "p1")
        .await
        .expect_err("HTTP is not MQTT");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot connect to {}: not an MQTT broker (it answered with HTTP)",
            http.url()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_subscribe_and_publish_are_as_mqtt_t_says() {
    let broker = Broker::start(&[]);
    let rec = fake("recorder", Some(&broker));
    let c = Consumer::connect(
        ClientConfig::new(rec.url()),
        ConsumerOptions::new("fw-1").profile("slpf"),
    )
    .await
    .expect("consumer");
    let c2 = c.clone();
    tokio::spawn(async move { c2.serve(|_| Ok(None)).await });
    let mut stable = ClientConfig::new(rec.url());
    stable.client_id = Some("ctl-stable".into());
    let p = Producer::connect(stable, "p1").await.expect("producer");
    common::completes(&p, query(), to("fw-1")).await;
    p.close().await;
    c.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let all = packets(&rec);
    let connects = of_type(&all, "CONNECT");
    assert_eq!(connects.len(), 2, "{connects:?}");
    for c in &connects {
        assert_eq!(c["protocol_level"], 5, "{c}");
        assert_eq!(c["clean_start"], false, "MQTT-T 3.1: Clean Start 0: {c}");
        assert_eq!(c["will_flag"], false, "MQTT-T: no Will: {c}");
        assert!(c["keep_alive"].as_u64().expect("keep alive") <= 300, "{c}");
    }
    let expiry = |c: &Value| c["properties"]["17"].as_u64();
    let generated = connects
        .iter()
        .find(|c| c["client_id"] != "ctl-stable")
        .expect("consumer");
    assert_eq!(
        expiry(generated),
        Some(0),
        "a generated id keeps no session: {generated}"
    );
    let stable = connects
        .iter()
        .find(|c| c["client_id"] == "ctl-stable")
        .expect("producer");
    assert_eq!(
        expiry(stable),
        Some(3600),
        "a stable id keeps its session: {stable}"
    );

    let subs: Vec<&Value> = of_type(&all, "SUBSCRIBE")
        .into_iter()
        .flat_map(|s| s["subscriptions"].as_array().expect("subscriptions"))
        .collect();
    let filters: Vec<&str> = subs
        .iter()
        .map(|s| s["filter"].as_str().expect("filter"))
        .collect();
    for f in [
        "oc2/cmd/all",
        "oc2/cmd/ap/slpf",
        "oc2/cmd/device/fw-1",
        "oc2/rsp",
        "oc2/rsp/p1",
    ] {
        assert!(filters.contains(&f), "{f} not in {filters:?}");
    }
    for s in &subs {
        assert_eq!(s["max_qos"], 2, "MQTT-T 3.2: Maximum QoS 2: {s}");
        assert_eq!(s["no_local"], true, "{s}");
        assert_eq!(s["retain_as_published"], true, "{s}");
        assert_eq!(s["retain_handling"], 0, "{s}");
    }
    let publishes = of_type(&all, "PUBLISH");
    assert!(
        publishes.len() >= 2,
        "a command and its response (once, on oc2/rsp): {publishes:?}"
    );
    for p in &publishes {
        assert_eq!(
            (p["qos"].as_u64(), p["retain"].as_bool()),
            (Some(1), Some(false)),
            "{p}"
        );
        let props = &p["properties"];
        assert_eq!(props["3"], "application/openc2", "content type: {p}");
        assert_eq!(props["1"], 1, "payload format indicator: {p}");
        let user: Vec<&str> = props["38"]
            .as_array()
            .expect("user properties")
            .iter()
            .map(|kv| kv[0].as_str().expect("key"))
            .collect();
        assert_eq!(user, ["msgType", "encoding"], "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_1_1_session_is_clean_unless_the_client_id_is_stable() {
    let broker = Broker::start(&[]);
    let rec = fake("recorder", Some(&broker));
    let mut c = ClientConfig::new(rec.url());
    c.mqtt_version = MqttVersion::V311;
    let generated = Producer::connect(c.clone(), "p1")
        .await
        .expect("generated id");
    c.client_id = Some("ctl-stable".into());
    let stable = Producer::connect(c, "p2").await.expect("stable id");
    generated.close().await;
    stable.close().await;
    let all = packets(&rec);
    let connects = of_type(&all, "CONNECT");
    assert_eq!(connects.len(), 2);
    for c in connects {
        assert_eq!(c["protocol_level"], 4, "{c}");
        let want_clean = c["client_id"] != "ctl-stable";
        assert_eq!(c["clean_start"], want_clean, "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingreq_goes_out_within_95_percent_of_the_keep_alive() {
    let broker = Broker::start(&[]);
    let rec = fake("recorder", Some(&broker));
    let mut c = ClientConfig::new(rec.url());
    c.keep_alive_secs = 2;
    let p = Producer::connect(c, "p1").await.expect("producer");
    tokio::time::sleep(Duration::from_millis(6500)).await;
    p.close().await;
    let all = packets(&rec);
    let times: Vec<f64> = all
        .iter()
        .filter(|p| p["type"] != "DISCONNECT")
        .map(|p| p["t"].as_f64().expect("t"))
        .collect();
    let pings = of_type(&all, "PINGREQ").len();
    assert!(
        pings >= 3,
        "{pings} PINGREQs in 6.5 s idle with keep-alive 2 s: {all:?}"
    );
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        // 95 % of 2 s is 1.9 s; the proxy's and the scheduler's delays are small.
        assert!(
            gap <= 1.9 + 0.05,
            "a {gap:.3} s gap between packets (keep-alive 2 s)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_move_the_pingreq_later_and_it_goes_out_once_idle() {
    // The connection keeps one PINGREQ timer and moves it on each send
    // (connection.rs): while publishes come more often than 95 % of the
    // keep-alive no PINGREQ is due, and once they stop one goes out in time.
    let broker = Broker::start(&[]);
    let rec = fake("recorder", Some(&broker));
    let mut c = ClientConfig::new(rec.url());
    c.keep_alive_secs = 2;
    let p = Producer::connect(c, "p1").await.expect("producer");
    let nobody = SendOptions {
        timeout: Duration::from_millis(500),
        ..to("nobody")
    };
    for _ in 0..5 {
        drop(p.send(query(), nobody.clone()).await.expect("acknowledged"));
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    p.close().await;
    let all = packets(&rec);
    let t = |p: &Value| p["t"].as_f64().expect("t");
    let publishes: Vec<f64> = of_type(&all, "PUBLISH").into_iter().map(t).collect();
    let pings: Vec<f64> = of_type(&all, "PINGREQ").into_iter().map(t).collect();
    assert_eq!(publishes.len(), 5, "{all:?}");
    let (first, last) = (publishes[0], publishes[4]);
    assert!(
        pings.iter().all(|&at| at < first || at > last),
        "a PINGREQ while publishes went out every 0.8 s (keep-alive 2 s): {all:?}"
    );
    let after: Vec<f64> = pings.iter().copied().filter(|&at| at > last).collect();
    assert!(
        after.first().is_some_and(|&at| at - last <= 1.9 + 0.05),
        "no PINGREQ within 1.9 s of the last publish: {all:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_suites_without_forward_secrecy_or_aead_are_refused() {
    // MQTT-T Appendix B: none of RFC 7540's blacklisted TLS 1.2 suites. A
    // server offering only one of them (static RSA key exchange, CBC) must
    // not get a connection.
    let broker = Broker::start(&["--tls"]);
    for suite in ["AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA256"] {
        let server = common::TlsServer::start(&broker, &["-tls1_2", "-cipher", suite]);
        let mut c = ClientConfig::new(format!("mqtts://localhost:{}", server.port));
        c.ca_file = Some(broker.file("ca"));
        c.connect_timeout_secs = 3;
        let e = Producer::connect(c, "p1").await.expect_err(suite);
        assert!(matches!(e, Error::Tls(_)), "{suite}: {e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("TLS: ") && text.ends_with("for localhost"),
            "{suite}: {text}"
        );
    }
    // A forward-secret AEAD suite on TLS 1.2 is fine: the handshake passes
    // (s_server is no MQTT broker, so what fails is the wait for CONNACK).
    let server = common::TlsServer::start(
        &broker,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
    );
    let mut c = ClientConfig::new(format!("mqtts://localhost:{}", server.port));
    c.ca_file = Some(broker.file("ca"));
    c.connect_timeout_secs = 2;
    let e = Producer::connect(c, "p1").await.expect_err("not a broker");
    assert!(
        matches!(e, Error::Connect(_)),
        "TLS 1.2 with ECDHE and GCM is accepted: {e:?}"
    );
}
