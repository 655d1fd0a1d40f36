//! A consumer's journal across a stop at the worst moment: after its handler
//! answered, before the broker acknowledged the answer. Started again, the
//! consumer sends that answer again and does not run the command again.

mod common;

use std::time::Duration;

use common::{Broker, RawClient};
use oc2mqtt::client::{ClientConfig, Consumer, ConsumerOptions};
use oc2mqtt::codec::{self, Dialect, Encoding};
use oc2mqtt::message::{Command, Message, Response, Target};

fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.client_id = Some(format!("journal-{}", common::uuid_like()));
    c.connect_timeout_secs = 2;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_broker_never_acknowledged_is_sent_again_after_a_restart_and_the_command_is_not_run_again()
 {
    let mut broker = Broker::start(&[]);
    let dir = tempfile::tempdir().expect("dir");
    let config = config(&broker.url());
    let mut options = ConsumerOptions::new("fw-j");
    options.journal = Some(dir.path().join("journal"));

    let first = Consumer::connect(config.clone(), options.clone())
        .await
        .expect("consumer connects");
    let command = Message::request(
        Command::new("deny", Target::new("ipv4_net", "10.0.0.1")).expect("command"),
    )
    .from("p1")
    .to(["fw-j"]);
    let request_id = command.headers.request_id.clone().expect("request id");
    let (payload, props) = codec::encode(&command, Encoding::Json, Dialect::Spec).expect("encode");
    let producer = RawClient::connect(&broker.url(), true, &[]).await;
    producer
        .publish("oc2/cmd/device/fw-j", &payload, Some(&props))
        .await;
    let incoming = tokio::time::timeout(Duration::from_secs(5), first.next())
        .await
        .expect("the command arrives")
        .expect("a command");

    // The broker goes away; the handler answers; the consumer stops before
    // the answer could reach any broker.
    broker.stop();
    // From a thread of the application's own, outside any runtime, as C and
    // JavaScript answer.
    std::thread::spawn(move || incoming.respond(Response::new(200)))
        .join()
        .expect("no panic")
        .expect("the answer is queued");
    first.close().await;
    drop(first);

    broker.restart();
    let watcher = RawClient::connect(&broker.url(), true, &["oc2/rsp", "oc2/rsp/#"]).await;
    let second = Consumer::connect(config, options)
        .await
        .expect("consumer connects again");
    let answer = watcher
        .next(Duration::from_secs(5))
        .await
        .expect("the unacknowledged answer is sent again");
    let decoded = codec::decode(answer.payload(), None).expect("a response");
    assert_eq!(
        decoded.message.headers.request_id.as_deref(),
        Some(request_id.as_str())
    );
    assert_eq!(decoded.message.response().expect("response").status, 200);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), second.next())
            .await
            .is_err(),
        "the command was answered already: it must not run again"
    );
    second.close().await;
}
