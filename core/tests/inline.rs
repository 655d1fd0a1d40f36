//! `Consumer::serve_inline`: handlers run on the connection's task, through a
//! real Mosquitto started per test. The same rules as `serve` (outcome,
//! duplicates, journal), one serve at a time, and the commands queued
//! before it started answered first.
#![allow(missing_docs)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Broker, RawClient};
use oc2mqtt::Error;
use oc2mqtt::client::{ClientConfig, Consumer, ConsumerOptions, Producer, SendOptions};
use oc2mqtt::codec::{self, Dialect, Encoding};
use oc2mqtt::message::{Command, Message, Response, Target};
use serde_json::json;

fn deny_net(net: &str) -> Command {
    Command::new("deny", Target::new("ipv4_net", json!(net))).expect("deny is an action")
}

fn net_of(msg: &Message) -> String {
    let command = msg.command().expect("a command");
    command.target.value.as_str().unwrap_or_default().to_owned()
}

fn opts_to(to: &[&str], timeout: Duration) -> SendOptions {
    SendOptions {
        to: to.iter().map(|s| s.to_string()).collect(),
        timeout,
        ..SendOptions::default()
    }
}

/// The final statuses and texts of one exchange (none: no answer in time).
async fn answers(producer: &Producer, net: &str, timeout: Duration) -> Vec<(u16, String)> {
    let s = producer
        .send(deny_net(net), opts_to(&["fw-1"], timeout))
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
        .collect()
}

async fn consumer(url: &str) -> Consumer {
    Consumer::connect(ClientConfig::new(url), ConsumerOptions::new("fw-1"))
        .await
        .expect("consumer connects")
}

async fn producer(url: &str) -> Producer {
    Producer::connect(ClientConfig::new(url), "p1")
        .await
        .expect("producer connects")
}

/// Serves `consumer` inline, recording the net of each command handled.
fn serve_recording(
    consumer: &Consumer,
) -> (
    tokio::task::JoinHandle<oc2mqtt::Result<()>>,
    Arc<Mutex<Vec<String>>>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (consumer.clone(), Arc::clone(&seen));
    let served = tokio::spawn(async move {
        c.serve_inline(move |msg: &Message| {
            s.lock().expect("lock").push(net_of(msg));
            Ok(None)
        })
        .await
    });
    (served, seen)
}

const FIVE_S: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_inline_answers_each_outcome_by_the_core_rule_and_serves_on_after_a_panic() {
    let broker = Broker::start(&[]);
    let consumer = consumer(&broker.url()).await;
    let serving = consumer.clone();
    let served = tokio::spawn(async move {
        serving
            .serve_inline(|msg: &Message| match net_of(msg).as_str() {
                "10.0.0.1/32" => Ok(Some(Response::new(200).with_text("denied"))),
                "10.0.0.2/32" => Ok(None),
                "10.0.0.3/32" => Err("no such rule".to_owned()),
                "10.0.0.4/32" => panic!("the handler broke"),
                other => Ok(Some(Response::new(404).with_text(other.to_owned()))),
            })
            .await
    });
    let producer = producer(&broker.url()).await;
    assert_eq!(
        answers(&producer, "10.0.0.1/32", FIVE_S).await,
        [(200, "denied".to_owned())]
    );
    assert_eq!(
        answers(&producer, "10.0.0.2/32", FIVE_S).await,
        [(200, String::new())]
    );
    assert_eq!(
        answers(&producer, "10.0.0.3/32", FIVE_S).await,
        [(500, "no such rule".to_owned())]
    );
    assert_eq!(
        answers(&producer, "10.0.0.4/32", FIVE_S).await,
        [(500, "handler panicked: the handler broke".to_owned())]
    );
    assert_eq!(
        answers(&producer, "10.0.0.9/32", FIVE_S).await,
        [(404, "10.0.0.9/32".to_owned())],
        "served on after the panic"
    );
    consumer.close().await;
    tokio::time::timeout(FIVE_S, served)
        .await
        .expect("serve_inline returns after close")
        .expect("task")
        .expect("no error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_on_three_topics_and_redelivered_runs_once_inline() {
    let broker = Broker::start(&[]);
    let consumer = Consumer::connect(
        ClientConfig::new(broker.url()),
        ConsumerOptions::new("fw-1").profile("slpf"),
    )
    .await
    .expect("consumer connects");
    let (_served, seen) = serve_recording(&consumer);
    let raw = RawClient::connect(&broker.url(), true, &["oc2/rsp/#"]).await;
    let msg = Message::request(deny_net("10.0.0.1/32")).from("p1");
    let (payload, props) = codec::encode(&msg, Encoding::Json, Dialect::Spec).expect("encodes");
    for topic in [
        "oc2/cmd/all",
        "oc2/cmd/ap/slpf",
        "oc2/cmd/device/fw-1",
        "oc2/cmd/device/fw-1",
    ] {
        raw.publish(topic, &payload, Some(&props)).await;
    }
    let mut answered = 0;
    while let Some(m) = raw.next(Duration::from_millis(700)).await {
        if m.topic() == "oc2/rsp" {
            answered += 1;
        }
    }
    assert_eq!(answered, 1, "one answer");
    assert_eq!(
        *seen.lock().expect("lock"),
        ["10.0.0.1/32"],
        "one execution"
    );
    assert_eq!(consumer.stats().duplicates, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_of_any_style_is_refused_while_one_runs() {
    let broker = Broker::start(&[]);
    let consumer = consumer(&broker.url()).await;
    let (served, _seen) = serve_recording(&consumer);
    // Let serve_inline start.
    let producer = producer(&broker.url()).await;
    assert_eq!(
        answers(&producer, "10.0.0.1/32", FIVE_S).await,
        [(200, String::new())]
    );
    let refused = |r: oc2mqtt::Result<()>| match r {
        Err(Error::Config(text)) => assert!(text.contains("already serves"), "{text}"),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let second = async |f: std::pin::Pin<
        Box<dyn std::future::Future<Output = oc2mqtt::Result<()>> + Send + '_>,
    >| {
        tokio::time::timeout(FIVE_S, f)
            .await
            .expect("refused at once")
    };
    refused(second(Box::pin(consumer.serve_inline(|_| Ok(None)))).await);
    refused(second(Box::pin(consumer.serve(|_| Ok(None)))).await);
    refused(second(Box::pin(consumer.serve_async(|_| async { Ok(None) }))).await);
    // The first still serves.
    assert_eq!(
        answers(&producer, "10.0.0.2/32", FIVE_S).await,
        [(200, String::new())]
    );

    // And the other way round: serve_inline while serve runs.
    served.abort();
    let _ = served.await;
    let serving = consumer.clone();
    let threaded = tokio::spawn(async move { serving.serve(|_| Ok(None)).await });
    assert_eq!(
        answers(&producer, "10.0.0.3/32", FIVE_S).await,
        [(200, String::new())]
    );
    refused(second(Box::pin(consumer.serve_inline(|_| Ok(None)))).await);
    threaded.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_serve_inline_and_dropping_its_future_uninstalls_it() {
    let broker = Broker::start(&[]);
    let consumer = consumer(&broker.url()).await;
    let (served, seen) = serve_recording(&consumer);
    let producer = producer(&broker.url()).await;
    assert_eq!(
        answers(&producer, "10.0.0.1/32", FIVE_S).await,
        [(200, String::new())]
    );

    // Dropped: commands queue again, unanswered, and the handler is let go.
    served.abort();
    let _ = served.await;
    assert_eq!(
        answers(&producer, "10.0.0.2/32", Duration::from_millis(500)).await,
        [],
        "no handler after the future was dropped"
    );
    assert_eq!(Arc::strong_count(&seen), 1, "the handler was dropped");

    // A new serve_inline answers what waited, then serves on; close ends it.
    let (served, seen) = serve_recording(&consumer);
    assert_eq!(
        answers(&producer, "10.0.0.3/32", FIVE_S).await,
        [(200, String::new())]
    );
    assert_eq!(*seen.lock().expect("lock"), ["10.0.0.2/32", "10.0.0.3/32"]);
    consumer.close().await;
    tokio::time::timeout(FIVE_S, served)
        .await
        .expect("serve_inline returns after close")
        .expect("task")
        .expect("no error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_queued_before_serve_inline_starts_are_answered_first_in_order() {
    let broker = Broker::start(&[]);
    let consumer = consumer(&broker.url()).await;
    let producer = producer(&broker.url()).await;
    let nets = ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"];
    let mut exchanges = Vec::new();
    for net in nets {
        let e = producer
            .send(deny_net(net), opts_to(&["fw-1"], FIVE_S))
            .await
            .expect("sent");
        exchanges.push(e);
    }
    // All three received (and queued) before anyone serves.
    let deadline = std::time::Instant::now() + FIVE_S;
    while consumer.stats().received < 3 {
        assert!(std::time::Instant::now() < deadline, "the commands arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_served, seen) = serve_recording(&consumer);
    assert_eq!(
        answers(&producer, "10.0.0.4/32", FIVE_S).await,
        [(200, String::new())]
    );
    for e in exchanges {
        assert!(e.collect().await.complete, "a queued command is answered");
    }
    assert_eq!(
        *seen.lock().expect("lock"),
        ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32", "10.0.0.4/32"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_inline_writes_the_journal_before_and_after_the_handler() {
    let broker = Broker::start(&[]);
    let dir = tempfile::tempdir().expect("dir");
    let mut config = ClientConfig::new(broker.url());
    config.client_id = Some(format!("inline-{}", common::uuid_like()));
    let mut options = ConsumerOptions::new("fw-1");
    options.journal = Some(dir.path().join("journal"));
    let first = Consumer::connect(config.clone(), options.clone())
        .await
        .expect("consumer connects");
    let (_served, seen) = serve_recording(&first);
    let producer = producer(&broker.url()).await;
    assert_eq!(
        answers(&producer, "10.0.0.1/32", FIVE_S).await,
        [(200, String::new())]
    );
    first.close().await;
    assert_eq!(seen.lock().expect("lock").len(), 1);
    // Taken before the handler ran, answered after: the lines a restart reads.
    let journal = std::fs::read_to_string(dir.path().join("journal")).expect("journal");
    let kinds: Vec<&str> = journal
        .lines()
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(kinds.starts_with(&["T", "A"]), "{journal}");
    let contents = oc2mqtt::journal::read(&dir.path().join("journal")).expect("reads");
    assert!(
        contents.to_run.is_empty(),
        "nothing left to run again: {journal}"
    );
}

/// Warnings logged anywhere in this test binary (the inline handler runs on
/// a runtime worker, so a thread-local subscriber would not see them).
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CaptureWarnings;

struct MessageText<'a>(&'a mut String);

impl tracing::field::Visit for MessageText<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for CaptureWarnings {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut text = String::new();
        e.record(&mut MessageText(&mut text));
        WARNINGS.lock().expect("lock").push(text);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_blocks_is_not_timed_out_and_is_logged_once() {
    tracing::subscriber::set_global_default(CaptureWarnings).expect("the only subscriber");
    let broker = Broker::start(&[]);
    let mut options = ConsumerOptions::new("fw-1");
    options.handler_timeout = Some(Duration::from_millis(50));
    let consumer = Consumer::connect(ClientConfig::new(broker.url()), options)
        .await
        .expect("consumer connects");
    let serving = consumer.clone();
    tokio::spawn(async move {
        serving
            .serve_inline(|_| {
                // The wrong mode for this handler: it holds the network thread.
                std::thread::sleep(Duration::from_millis(150));
                Ok(Some(Response::new(200).with_text("late but answered")))
            })
            .await
    });
    let producer = producer(&broker.url()).await;
    for net in ["10.0.0.1/32", "10.0.0.2/32"] {
        assert_eq!(
            answers(&producer, net, FIVE_S).await,
            [(200, "late but answered".to_owned())],
            "no timeout interrupts an inline handler"
        );
    }
    let slow: Vec<String> = WARNINGS
        .lock()
        .expect("lock")
        .iter()
        .filter(|w| w.contains("held the network thread"))
        .cloned()
        .collect();
    assert_eq!(slow.len(), 1, "one warning for two slow calls: {slow:?}");
    assert!(
        slow[0].contains("use serve for handlers that block"),
        "{slow:?}"
    );
}
