//! A fleet of 100 devices on one real Mosquitto (issue 22, item 3, the short
//! version of `make fleet`): a `deny` with `to` naming all of them and a
//! broadcast with `expect` 100 reach every device, each runs it exactly once
//! and answers exactly once. Correctness only: speed is measured by
//! `make fleet` (bench/fleet), never asserted.
#![allow(missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Broker;
use oc2mqtt::client::{ClientConfig, Consumer, ConsumerOptions, Producer, SendOptions, Summary};
use oc2mqtt::message::{Command, Message, Response, Target};
use serde_json::json;

const DEVICES: usize = 100;

/// Executions per (request id, device).
type Runs = Arc<Mutex<HashMap<(String, String), usize>>>;

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

fn device_id(i: usize) -> String {
    format!("fw-{:04}", i + 1)
}

/// `DEVICES` consumers, each its own connection, serving deny with a handler
/// that counts its runs.
async fn fleet(url: &str, runs: &Runs) -> Vec<Consumer> {
    let mut consumers = Vec::with_capacity(DEVICES);
    for i in 0..DEVICES {
        let id = device_id(i);
        let opts = ConsumerOptions::new(id.clone())
            .profile("slpf")
            .pair("deny", "ipv4_connection");
        let consumer = Consumer::connect(ClientConfig::new(url), opts)
            .await
            .unwrap_or_else(|e| panic!("{id} connects: {e}"));
        let (c, r) = (consumer.clone(), Arc::clone(runs));
        tokio::spawn(async move {
            c.serve(move |msg: &Message| {
                let rid = msg.headers.request_id.clone().unwrap_or_default();
                *r.lock()
                    .expect("lock")
                    .entry((rid, id.clone()))
                    .or_default() += 1;
                Ok(Some(Response::new(200).with_text(id.clone())))
            })
            .await
        });
        consumers.push(consumer);
    }
    consumers
}

/// Every device answered 200 exactly once in `s`, and ran its request exactly once.
fn assert_each_answered_and_ran_once(what: &str, s: &Summary, runs: &Runs) {
    assert!(
        s.complete,
        "{what}: incomplete, missing {:?} / {} by count",
        s.missing, s.missing_count
    );
    let mut answers: HashMap<String, usize> = HashMap::new();
    for r in &s.responses {
        assert_eq!(
            r.message.response().map(|x| x.status),
            Some(200),
            "{what}: {r:?}"
        );
        *answers
            .entry(r.message.headers.from.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let expected: Vec<String> = (0..DEVICES).map(device_id).collect();
    let mut answered: Vec<String> = answers.keys().cloned().collect();
    answered.sort();
    assert_eq!(answered, expected, "{what}: every device answered");
    assert!(
        answers.values().all(|&n| n == 1),
        "{what}: a device answered twice: {answers:?}"
    );
    let runs = runs.lock().expect("lock");
    for id in &expected {
        assert_eq!(
            runs.get(&(s.request_id.clone(), id.clone())),
            Some(&1),
            "{what}: {id} ran the command once"
        );
    }
    assert_eq!(
        runs.keys().filter(|(rid, _)| rid == &s.request_id).count(),
        DEVICES,
        "{what}: no one else ran it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_to_100_devices_and_a_broadcast_expecting_100_each_run_once_per_device() {
    let broker = Broker::start(&[]);
    let runs: Runs = Arc::default();
    let consumers = fleet(&broker.url(), &runs).await;
    let producer = Producer::connect(ClientConfig::new(broker.url()), "fleet-p")
        .await
        .expect("producer connects");
    let timeout = Duration::from_secs(10);

    let to = SendOptions {
        to: (0..DEVICES).map(device_id).collect(),
        timeout,
        ..SendOptions::default()
    };
    let s = producer
        .send(deny(), to)
        .await
        .expect("sent")
        .collect()
        .await;
    assert_each_answered_and_ran_once("deny to all 100", &s, &runs);

    let broadcast = SendOptions {
        expect: Some(DEVICES),
        timeout,
        ..SendOptions::default()
    };
    let s = producer
        .send(deny(), broadcast)
        .await
        .expect("sent")
        .collect()
        .await;
    assert_each_answered_and_ran_once("broadcast expecting 100", &s, &runs);

    // Nothing ran twice late either: every count is still 1.
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let runs = runs.lock().expect("lock");
        assert_eq!(runs.len(), 2 * DEVICES);
        assert!(runs.values().all(|&n| n == 1), "{runs:?}");
    }
    producer.close().await;
    for c in consumers {
        c.close().await;
    }
}
