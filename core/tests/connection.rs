//! Connecting: TLS, authentication, authorisation, failover, and a broker
//! restart in the middle of a stream of commands. Real Mosquitto per test.
#![allow(missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Broker;
use oc2mqtt::Error;
use oc2mqtt::client::{
    ClientConfig, ConnectionEvent, ConnectionEvents, Consumer, ConsumerOptions, LogLevel,
    LogRecord, Monitor, MqttVersion, Producer, SendOptions, set_logger,
};
use oc2mqtt::message::{Command, Response, Target};

fn query() -> Command {
    Command::new("query", Target::features(["versions"])).expect("query")
}

fn deny(n: usize) -> Command {
    Command::new(
        "deny",
        Target::new("ipv4_net", format!("10.0.{}.{}/32", n / 256, n % 256)),
    )
    .expect("deny")
}

fn to(id: &str) -> SendOptions {
    SendOptions {
        to: vec![id.to_owned()],
        timeout: Duration::from_secs(5),
        ..SendOptions::default()
    }
}

fn tls_config(b: &Broker) -> ClientConfig {
    let mut c = ClientConfig::new(b.tls_url());
    c.ca_file = Some(b.file("ca"));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_server_authentication_works() {
    let broker = Broker::start(&["--tls"]);
    let _c = Consumer::connect(tls_config(&broker), ConsumerOptions::new("fw-1"))
        .await
        .expect("TLS consumer");
    let p = Producer::connect(tls_config(&broker), "p1")
        .await
        .expect("TLS producer");
    let s = p
        .send(query(), to("fw-1"))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(s.complete, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_refused_with_a_clear_error() {
    let broker = Broker::start(&["--tls"]);
    let mut c = tls_config(&broker);
    c.ca_file = Some(broker.file("wrong_ca"));
    c.connect_timeout_secs = 3;
    let e = Producer::connect(c, "p1")
        .await
        .expect_err("must not connect");
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with("TLS: certificate verify failed"), "{text}");
    assert!(text.ends_with("for localhost"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_works_and_is_required() {
    let broker = Broker::start(&["--tls", "--require-cert"]);
    let mut c = tls_config(&broker);
    c.connect_timeout_secs = 3;
    let without = Producer::connect(c.clone(), "p1")
        .await
        .expect_err("a client certificate is required");
    assert!(
        matches!(without, Error::Tls(_) | Error::Connect(_)),
        "{without:?}"
    );
    c.cert_file = Some(broker.file("client_cert"));
    c.key_file = Some(broker.file("client_key"));
    let p = Producer::connect(c.clone(), "p1")
        .await
        .expect("mutual TLS");
    let _consumer = Consumer::connect(c, ConsumerOptions::new("fw-1"))
        .await
        .expect("consumer");
    assert!(
        p.send(query(), to("fw-1"))
            .await
            .expect("sent")
            .collect()
            .await
            .complete
    );
}

/// A TLS 1.1-only server (`openssl s_server -tls1_1`, which Mosquitto cannot
/// be: its `tls_version tlsv1.1` means "1.1 or newer").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_1_1_only_server_is_refused() {
    let broker = Broker::start(&["--tls"]);
    let server = common::TlsServer::start(&broker, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    let port = server.port;
    let mut c = ClientConfig::new(format!("mqtts://localhost:{port}"));
    c.ca_file = Some(broker.file("ca"));
    c.connect_timeout_secs = 3;
    let e = Producer::connect(c, "p1")
        .await
        .expect_err("TLS 1.1 is below the minimum");
    drop(server);
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("protocol") && text.ends_with("for localhost"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_error() {
    let broker = Broker::start(&["--user", "alice:right"]);
    let mut c = ClientConfig::new(broker.url());
    c.username = Some("alice".into());
    c.password = Some("wrong".into());
    let e = Producer::connect(c.clone(), "p1")
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::Auth(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "broker refused the connection: bad user name or password"
    );
    assert!(
        !e.to_string().contains("wrong"),
        "the password is never shown"
    );
    c.password = Some("right".into());
    Producer::connect(c, "p1")
        .await
        .expect("the right password works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_names_the_broker() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("mqtt://127.0.0.1:{port}");
    let mut c = ClientConfig::new(url.clone());
    c.connect_timeout_secs = 2;
    let e = Producer::connect(c, "p1")
        .await
        .expect_err("nothing listens");
    assert_eq!(
        e.to_string(),
        format!("cannot connect to {url}: connection refused")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_denied_publish_is_an_error_not_silence() {
    let broker = Broker::start(&[
        "--user",
        "p:pw",
        "--user",
        "d:pw",
        "--acl",
        "user p",
        "--acl",
        "topic read oc2/rsp/#",
        "--acl",
        "topic read oc2/rsp",
        "--acl",
        "topic write oc2/cmd/device/allowed",
        "--acl",
        "user d",
        "--acl",
        "topic readwrite oc2/#",
    ]);
    let mut c = ClientConfig::new(broker.url());
    c.username = Some("p".into());
    c.password = Some("pw".into());
    let p = Producer::connect(c, "p1").await.expect("producer");
    let e = p
        .send(query(), to("forbidden"))
        .await
        .expect_err("ACL denies oc2/cmd/device/forbidden");
    assert!(matches!(e, Error::Publish(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "broker refused the publish to oc2/cmd/device/forbidden: not authorized"
    );
    assert_eq!(p.open_exchanges(), 0, "the failed exchange is closed");
    assert_eq!((p.stats().publish_errors, p.stats().published), (1, 0));
    // `send` returns at the PUBACK (the exchange is dropped unread): a
    // 100 ms timeout here ran out once on a machine at load 8.7.
    p.send(query(), to("allowed")).await.expect("allowed topic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reply_is_not_counted_and_the_consumer_keeps_serving() {
    // The consumer may answer on oc2/rsp but not on oc2/rsp/p1.
    let broker = Broker::start(&[
        "--user",
        "p:pw",
        "--user",
        "d:pw",
        "--acl",
        "user p",
        "--acl",
        "topic readwrite oc2/#",
        "--acl",
        "user d",
        "--acl",
        "topic read oc2/cmd/#",
        "--acl",
        "topic write oc2/rsp",
    ]);
    let login = |user: &str| {
        let mut c = ClientConfig::new(broker.url());
        c.username = Some(user.into());
        c.password = Some("pw".into());
        c
    };
    // Responses on both topics, so that the one on oc2/rsp/p1 is refused.
    let mut both = login("d");
    both.response_topics = Some(oc2mqtt::topics::ResponseTopics::Both);
    let consumer = Consumer::connect(both, ConsumerOptions::new("fw-1"))
        .await
        .expect("consumer");
    let p = Producer::connect(login("p"), "p1").await.expect("producer");
    for round in 0..3 {
        // Answered by the consumer itself, then by the application.
        let s = p
            .send(query(), to("fw-1"))
            .await
            .expect("sent")
            .collect()
            .await;
        assert!(
            s.complete,
            "round {round}: the answer on oc2/rsp arrives: {s:?}"
        );
        let exchange = p.send(deny(round), to("fw-1")).await.expect("sent");
        let incoming = consumer.next().await.expect("command");
        incoming
            .reply(Response::new(200))
            .await
            .expect("a reply returns once the client has it, refused or not");
        let s = exchange.collect().await;
        assert!(s.complete, "round {round}: {s:?}");
    }
    let mut published = 0;
    for _ in 0..50 {
        published = consumer.stats().published;
        if published >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        (published, consumer.stats().published),
        (6, 6),
        "6 answers on oc2/rsp acknowledged; the 6 on oc2/rsp/p1 refused and not counted"
    );
    assert_eq!(
        consumer.stats().publish_errors,
        6,
        "the 6 refusals are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_second_broker() {
    let broker = Broker::start(&[]);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut c = ClientConfig::new(format!("mqtt://127.0.0.1:{dead}"));
    c.brokers.push(broker.url());
    let _consumer = Consumer::connect(
        ClientConfig::new(broker.url()),
        ConsumerOptions::new("fw-1"),
    )
    .await
    .expect("consumer");
    let p = Producer::connect(c, "p1")
        .await
        .expect("connects to the second URL");
    assert!(
        p.send(query(), to("fw-1"))
            .await
            .expect("sent")
            .collect()
            .await
            .complete
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_refused_before_connecting() {
    let mut c = ClientConfig::new("mqtt://127.0.0.1:1");
    c.keep_alive_secs = 301;
    let e = Producer::connect(c, "p1")
        .await
        .expect_err("keep-alive above 300");
    assert_eq!(
        e.to_string(),
        "configuration: keep_alive_secs is 301, but MQTT-T allows at most 300"
    );
    let e = Producer::connect(ClientConfig::new("mqtt://127.0.0.1:1"), "p+1")
        .await
        .expect_err("bad id");
    assert_eq!(
        e.to_string(),
        "invalid topic: producer id 'p+1' contains '+', which MQTT topic names forbid"
    );
}

/// 1 000 commands; the broker is killed and restarted (with persistence)
/// after the first 300: none lost, none executed twice, every exchange completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing_and_runs_nothing_twice() {
    let mut broker = Broker::start(&["--persistence"]);
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut cc = ClientConfig::new(broker.url());
    cc.client_id = Some("restart-consumer".into());
    let consumer = Consumer::connect(cc, ConsumerOptions::new("fw-1"))
        .await
        .expect("consumer");
    let (c, r) = (consumer.clone(), Arc::clone(&runs));
    tokio::spawn(async move {
        c.serve(move |m| {
            *r.lock()
                .expect("lock")
                .entry(m.headers.request_id.clone().unwrap_or_default())
                .or_default() += 1;
            Ok(Some(Response::new(200)))
        })
        .await
    });
    let mut pc = ClientConfig::new(broker.url());
    pc.client_id = Some("restart-producer".into());
    let producer = Producer::connect(pc, "p1").await.expect("producer");
    let options = SendOptions {
        timeout: Duration::from_secs(60),
        ..to("fw-1")
    };
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let inflight = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..1000 {
        if i == 300 {
            broker.stop();
            tokio::time::sleep(Duration::from_millis(300)).await;
            broker.restart();
        }
        let permit = Arc::clone(&inflight)
            .acquire_owned()
            .await
            .expect("semaphore");
        let (p, o, tx) = (producer.clone(), options.clone(), done_tx.clone());
        tokio::spawn(async move {
            let s = match p.send(deny(i), o).await {
                Ok(ex) => Ok(ex.collect().await),
                Err(e) => Err(format!("send {i} failed: {e}")),
            };
            drop(permit);
            let _ = tx.send(s);
        });
    }
    drop(done_tx);
    let mut complete = 0;
    let mut failed = Vec::new();
    while let Some(s) = tokio::time::timeout(Duration::from_secs(90), done_rx.recv())
        .await
        .expect("all finish")
    {
        match s {
            Ok(s) if s.complete => complete += 1,
            Ok(s) => failed.push(format!(
                "incomplete: {} missing {:?}",
                s.request_id, s.missing
            )),
            Err(e) => failed.push(e),
        }
    }
    let runs = runs.lock().expect("lock");
    assert_eq!(
        runs.len(),
        1000,
        "every command ran; producer {:?}, consumer {:?}, failures {:?}",
        producer.stats(),
        consumer.stats(),
        &failed[..failed.len().min(5)]
    );
    assert!(runs.values().all(|n| *n == 1), "none ran twice");
    assert_eq!(complete, 1000, "every exchange completed after the restart");
    assert!(producer.stats().reconnects >= 1 && consumer.stats().reconnects >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_answering_ends_a_send_at_its_timeout() {
    let broker = Broker::start(&[]);
    let _c = common::serving(ClientConfig::new(broker.url()), "fw-1").await;
    let p = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let pid = broker.info["pid"].as_u64().expect("pid").to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill runs")
    };
    assert!(signal("-STOP").success());
    let started = std::time::Instant::now();
    let r = p
        .send(
            query(),
            SendOptions {
                timeout: Duration::from_secs(2),
                ..to("fw-1")
            },
        )
        .await;
    let took = started.elapsed();
    assert!(signal("-CONT").success());
    let e = r.expect_err("no PUBACK from a stopped broker");
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("timed out: the broker did not acknowledge the command within 2.0 s"),
        "{e}"
    );
    assert!(took < Duration::from_millis(2600), "took {took:?}");
    // Once the broker answers again, so does the producer.
    common::completes(&p, query(), to("fw-1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_dropped_by_the_client_are_counted_apart_from_refusals() {
    // A consumer answers into a broker that stopped reading; it is closed
    // before the answers are acknowledged: discarded by the client, not
    // refused by the broker.
    let broker = Broker::start(&[]);
    let consumer = oc2mqtt::client::Consumer::connect(
        ClientConfig::new(broker.url()),
        oc2mqtt::client::ConsumerOptions::new("fw-1"),
    )
    .await
    .expect("consumer");
    let p = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let _x = p.send(deny(1), to("fw-1")).await.expect("sent");
    let incoming = consumer.next().await.expect("the command");
    let pid = broker.info["pid"].as_u64().expect("pid").to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill runs")
    };
    assert!(signal("-STOP").success());
    incoming
        .reply(oc2mqtt::message::Response::new(200))
        .await
        .expect("handed to the client");
    consumer.close().await;
    assert!(signal("-CONT").success());
    let s = consumer.stats();
    assert_eq!(
        (s.discarded, s.publish_errors, s.published),
        (1, 0, 0),
        "{s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_delivers_every_command_queued_while_offline() {
    let broker = Broker::start(&[]);
    let mut cc = ClientConfig::new(broker.url());
    cc.client_id = Some("resume-consumer".into());
    // Connect once to create the session, then go offline.
    let first = Consumer::connect(cc.clone(), ConsumerOptions::new("fw-1"))
        .await
        .expect("consumer");
    first.close().await;
    drop(first);
    let p = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer");
    let quick = SendOptions {
        timeout: Duration::from_millis(50),
        ..to("fw-1")
    };
    let mut ids = Vec::new();
    for i in 0..40 {
        let ex = p
            .send(deny(i), quick.clone())
            .await
            .expect("queued by the broker");
        ids.push(ex.request_id().to_owned());
    }
    // Back online: the broker sends the 40 right after CONNACK, most of them
    // in the same read as the CONNACK itself.
    let runs: Arc<Mutex<Vec<String>>> = Arc::default();
    let consumer = Consumer::connect(cc, ConsumerOptions::new("fw-1"))
        .await
        .expect("consumer resumes");
    let (c, r) = (consumer.clone(), Arc::clone(&runs));
    tokio::spawn(async move {
        c.serve(move |m| {
            r.lock()
                .expect("lock")
                .push(m.headers.request_id.clone().unwrap_or_default());
            Ok(None)
        })
        .await
    });
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while runs.lock().expect("lock").len() < ids.len() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ran = runs.lock().expect("lock").clone();
    ran.sort();
    ids.sort();
    assert_eq!(
        ran.len(),
        ids.len(),
        "every command queued while offline ran (before the fix, those that came in the CONNACK's read were lost)"
    );
    assert_eq!(ran, ids, "each exactly once");
}

/// The next connection event within 20 s (reconnect backoff included).
async fn next_event(events: &mut ConnectionEvents) -> ConnectionEvent {
    tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("an event within 20 s")
        .expect("the stream has not ended")
}

/// Events until `want` (kind), returned with the ones before it.
async fn until_kind(
    events: &mut ConnectionEvents,
    want: &str,
) -> (Vec<ConnectionEvent>, ConnectionEvent) {
    let mut before = Vec::new();
    loop {
        let e = next_event(events).await;
        if e.kind() == want {
            return (before, e);
        }
        before.push(e);
    }
}

/// Every role reports the broker going away (with why), each reconnect
/// attempt and its failure, being back (a stable consumer with its session
/// resumed), and finally being closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_events_follow_a_broker_restart() {
    let mut broker = Broker::start(&["--persistence"]);
    let url = broker.url();
    // The core's log records reach a logger of the program's choosing.
    let logged: Arc<Mutex<Vec<LogRecord>>> = Arc::default();
    let sink = Arc::clone(&logged);
    set_logger(
        LogLevel::Warn,
        Some(Box::new(move |r| {
            sink.lock().expect("lock").push(r.clone())
        })),
    )
    .expect("no other tracing subscriber in this test binary");
    let mut cc = ClientConfig::new(&url);
    cc.client_id = Some("events-consumer".into());
    let consumer = Consumer::connect(cc, ConsumerOptions::new("fw-1"))
        .await
        .expect("consumer");
    let serving = consumer.clone();
    tokio::spawn(async move { serving.serve(|_| Ok(None)).await });
    let producer = Producer::connect(ClientConfig::new(&url), "p1")
        .await
        .expect("producer");
    let monitor = Monitor::connect(ClientConfig::new(&url), None)
        .await
        .expect("monitor");
    let mut streams = [consumer.events(), producer.events(), monitor.events()];
    for events in &mut streams {
        match next_event(events).await {
            ConnectionEvent::Connected {
                broker,
                mqtt_version,
                session_resumed,
            } => {
                assert_eq!(broker, url);
                assert_eq!(mqtt_version, MqttVersion::V5);
                assert!(!session_resumed, "a first connection resumes nothing");
            }
            other => panic!("first event: {other:?}"),
        }
    }

    broker.stop();
    for events in &mut streams {
        match next_event(events).await {
            ConnectionEvent::Offline { reason } => assert!(!reason.is_empty()),
            other => panic!("after the broker stopped: {other:?}"),
        }
        match next_event(events).await {
            ConnectionEvent::Reconnecting { broker, attempt } => {
                assert_eq!((broker.as_str(), attempt), (url.as_str(), 1));
            }
            other => panic!("after offline: {other:?}"),
        }
        match next_event(events).await {
            ConnectionEvent::ReconnectFailed { attempt, error, .. } => {
                assert_eq!(attempt, 1);
                assert!(matches!(*error, Error::Connect(_)), "{error:?}");
                assert!(error.to_string().contains(&url), "{error}");
            }
            other => panic!("with the broker down: {other:?}"),
        }
    }

    broker.restart();
    let mut resumed = Vec::new();
    for events in &mut streams {
        let (steps, connected) = until_kind(events, "connected").await;
        assert!(
            steps
                .iter()
                .all(|e| matches!(e.kind(), "reconnecting" | "reconnect_failed")),
            "{steps:?}"
        );
        let ConnectionEvent::Connected {
            session_resumed, ..
        } = connected
        else {
            unreachable!("until_kind returns a connected event")
        };
        resumed.push(session_resumed);
    }
    assert_eq!(
        resumed,
        [true, false, false],
        "only the consumer has a stable client id (and the broker persistence)"
    );
    assert!(consumer.stats().reconnects >= 1);
    common::completes(&producer, query(), to("fw-1")).await;
    set_logger(LogLevel::Warn, None).expect("logging off");
    {
        let logged = logged.lock().expect("lock");
        let lost = logged
            .iter()
            .find(|r| r.message == "connection lost; reconnecting")
            .unwrap_or_else(|| panic!("the loss was logged: {logged:?}"));
        assert_eq!(lost.level, LogLevel::Warn);
        assert_eq!(lost.target, "oc2mqtt::client::connection");
        assert!(lost.fields.iter().any(|(k, _)| k == "why"), "{lost:?}");
        assert!(logged.iter().all(|r| r.level <= LogLevel::Warn));
    }

    consumer.close().await;
    producer.close().await;
    monitor.close().await;
    for events in &mut streams {
        let (_, closed) = until_kind(events, "closed").await;
        assert_eq!(closed.to_string(), "closed");
        assert!(events.next().await.is_none(), "nothing after closed");
    }
    // A stream made after the close says so at once, and ends.
    let mut late = producer.events();
    assert_eq!(late.try_next().map(|e| e.kind()), Some("closed"));
    assert!(late.next().await.is_none());
}
