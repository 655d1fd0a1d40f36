//! What the monitor says of a command's exchange with each event
//! (`Monitor::next_with_pairing`), through a real Mosquitto: who is awaited
//! and until when from the moment the command is seen, then complete or
//! unanswered; a response seen on two topics once.
#![allow(missing_docs)]

mod common;

use std::time::Duration;

use common::{Broker, RawClient};
use oc2mqtt::client::{ClientConfig, Monitor, MonitorEvent};
use oc2mqtt::codec::{self, Dialect, Encoding};
use oc2mqtt::message::{Command, Message, Response, Target};
use oc2mqtt::monitor::Pairing;
use serde_json::json;

const WINDOW: Duration = Duration::from_millis(600);

fn deny() -> Command {
    Command::new("deny", Target::new("ipv4_net", json!("10.0.0.0/8"))).expect("deny is an action")
}

async fn publish(raw: &RawClient, topic: &str, msg: &Message) {
    let (payload, props) = codec::encode(msg, Encoding::Json, Dialect::Spec).expect("encodes");
    raw.publish(topic, &payload, Some(&props)).await;
}

async fn next(monitor: &Monitor) -> (MonitorEvent, Pairing) {
    tokio::time::timeout(Duration::from_secs(3), monitor.next_with_pairing())
        .await
        .expect("an event in time")
        .expect("not closed")
}

fn awaited(p: &Pairing) -> Vec<String> {
    match p {
        Pairing::Open { awaiting, .. } => awaiting.clone(),
        other => panic!("not open: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_says_who_is_awaited_from_the_command_on() {
    let broker = Broker::start(&[]);
    let monitor = Monitor::connect_with_window(ClientConfig::new(broker.url()), None, WINDOW)
        .await
        .expect("monitor");
    assert_eq!(monitor.pairing_window(), WINDOW);
    let raw = RawClient::connect(&broker.url(), true, &[]).await;

    // Addressed to fw-2 and fw-1: both awaited, with the window's deadline.
    let cmd = Message::request(deny()).from("p1").to(["fw-2", "fw-1"]);
    publish(&raw, "oc2/cmd/device/fw-1", &cmd).await;
    let (event, pairing) = next(&monitor).await;
    let MonitorEvent::Request(seen) = event else {
        panic!("{event:?}")
    };
    let Pairing::Open {
        awaiting,
        deadline_ms,
    } = &pairing
    else {
        panic!("{pairing:?}")
    };
    assert_eq!(awaiting, &["fw-1", "fw-2"]);
    assert_eq!(*deadline_ms, seen.received_ms + 600);

    // fw-1 answers, on oc2/rsp and oc2/rsp/p1: one event, fw-2 still awaited.
    let rsp = Message::response_to(&cmd, Response::new(200)).from("fw-1");
    publish(&raw, "oc2/rsp", &rsp).await;
    publish(&raw, "oc2/rsp/p1", &rsp).await;
    let (event, pairing) = next(&monitor).await;
    assert!(
        matches!(
            event,
            MonitorEvent::Response {
                latency: Some(_),
                ..
            }
        ),
        "{event:?}"
    );
    assert_eq!(awaited(&pairing), ["fw-2"]);

    // An interim 102 from fw-2 leaves it awaited; its 200 completes.
    publish(
        &raw,
        "oc2/rsp",
        &Message::response_to(&cmd, Response::new(102)).from("fw-2"),
    )
    .await;
    assert_eq!(awaited(&next(&monitor).await.1), ["fw-2"]);
    publish(
        &raw,
        "oc2/rsp",
        &Message::response_to(&cmd, Response::new(200)).from("fw-2"),
    )
    .await;
    assert_eq!(next(&monitor).await.1, Pairing::Complete);

    // A broadcast is open to anyone; a command wanting no response and a
    // response to a command never seen are not paired.
    publish(&raw, "oc2/cmd/all", &Message::request(deny()).from("p1")).await;
    let (_, pairing) = next(&monitor).await;
    assert!(
        matches!(&pairing, Pairing::Open { awaiting, .. } if awaiting.is_empty()),
        "{pairing:?}"
    );
    let quiet = Message::request(deny().with_arg("response_requested", "none")).to(["fw-1"]);
    publish(&raw, "oc2/cmd/device/fw-1", &quiet).await;
    assert_eq!(next(&monitor).await.1, Pairing::Unpaired);
    let stray = Message::response_to(&Message::request(deny()), Response::new(200)).from("fw-9");
    publish(&raw, "oc2/rsp", &stray).await;
    assert_eq!(next(&monitor).await.1, Pairing::Unpaired);

    // A responder that never answers: reported when the window ends.
    let ghost = Message::request(deny()).from("p1").to(["ghost"]);
    publish(&raw, "oc2/cmd/device/ghost", &ghost).await;
    assert_eq!(awaited(&next(&monitor).await.1), ["ghost"]);
    let (event, pairing) = next(&monitor).await;
    assert!(
        matches!(&event, MonitorEvent::Unanswered { missing, .. } if missing == &["ghost"]),
        "{event:?}"
    );
    assert_eq!(
        pairing,
        Pairing::Unanswered {
            missing: vec!["ghost".to_owned()]
        }
    );
    monitor.close().await;
}

/// A broker that dispatches each topic on its own (ActiveMQ) can hand the
/// monitor a device's response before the command it answers: the response
/// waits for its command and pairs with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_seen_before_its_command_pairs_with_it() {
    let broker = Broker::start(&[]);
    let monitor = Monitor::connect(ClientConfig::new(broker.url()), None)
        .await
        .expect("monitor");
    let raw = RawClient::connect(&broker.url(), true, &[]).await;
    let cmd = Message::request(deny()).from("p1").to(["fw-1"]);
    let rsp = Message::response_to(&cmd, Response::new(200)).from("fw-1");
    publish(&raw, "oc2/rsp/p1", &rsp).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    publish(&raw, "oc2/cmd/device/fw-1", &cmd).await;
    let (event, pairing) = next(&monitor).await;
    assert!(matches!(event, MonitorEvent::Request(_)), "{event:?}");
    assert_eq!(awaited(&pairing), ["fw-1"]);
    let (event, pairing) = next(&monitor).await;
    assert!(
        matches!(event, MonitorEvent::Response { latency: Some(l), .. } if l.is_zero()),
        "{event:?}"
    );
    assert_eq!(pairing, Pairing::Complete);
    assert_eq!(monitor.stats().unsolicited, 0);

    // One whose command never comes shows unpaired, counted, after the hold.
    let stray = Message::response_to(&Message::request(deny()), Response::new(200)).from("fw-9");
    let sent = std::time::Instant::now();
    publish(&raw, "oc2/rsp", &stray).await;
    let (event, pairing) = next(&monitor).await;
    assert!(
        matches!(event, MonitorEvent::Response { latency: None, .. }),
        "{event:?}"
    );
    assert_eq!(pairing, Pairing::Unpaired);
    assert!(sent.elapsed() >= oc2mqtt::monitor::EARLY_RESPONSE_HOLD);
    assert_eq!(monitor.stats().unsolicited, 1);
}
