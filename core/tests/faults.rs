//! Faults under load: the broker SIGKILLed and restarted without
//! persistence (every session lost) in the middle of a stream of commands
//! from 16 producer tasks to 4 consumers. Nothing crashes, no command that
//! was sent is lost, none runs twice, and every exchange completes or fails
//! with an error within its timeout.
//!
//! `make test` kills the broker 3 times; `make soak` 20 times
//! (`OC2MQTT_FAULT_KILLS`).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Broker;
use oc2mqtt::client::{ClientConfig, Consumer, ConsumerOptions, Producer, SendOptions};
use oc2mqtt::message::{Command, Message, Target};

const CONSUMERS: usize = 4;
const PRODUCER_TASKS: usize = 16;
const TIMEOUT: Duration = Duration::from_secs(15);

fn kills() -> usize {
    std::env::var("OC2MQTT_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn sigkill(broker: &Broker) {
    let pid = broker.info["pid"].as_u64().expect("broker pid");
    let ok = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -KILL {pid}");
}

#[derive(Default, Debug)]
struct Tally {
    sent: Vec<String>,
    completed: usize,
    failed_in_time: usize,
    late: Vec<(String, Duration)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_without_sessions_under_load_loses_nothing_and_runs_nothing_twice() {
    killed_under_load(&[], false, kills()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (about a minute): make soak runs it"]
async fn broker_killed_with_persistence_and_stable_ids_loses_nothing_and_runs_nothing_twice() {
    // Sessions survive: the broker redelivers what it had; nothing runs twice.
    killed_under_load(&["--persistence"], true, kills()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (ActiveMQ restarts take seconds): make soak runs it"]
async fn activemq_killed_under_load_loses_nothing_and_runs_nothing_twice() {
    // ActiveMQ keeps sessions and replays stored messages (MQTT 3.1.1).
    killed_under_load(&["--kind", "activemq"], true, kills().min(3)).await;
}

/// The stream, the kills, the counts; `stable` gives every client a stable
/// id, so that a broker that keeps sessions resumes them.
async fn killed_under_load(broker_args: &[&str], stable: bool, kills: usize) {
    let mut broker = Broker::start(broker_args);
    let url = broker.url();
    let config = |id: &str| {
        let mut c = ClientConfig::new(url.as_str());
        if stable {
            c.client_id = Some(format!("faults-{id}"));
        }
        c
    };
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut consumers = Vec::new();
    for i in 0..CONSUMERS {
        let c = Consumer::connect(
            config(&format!("c{i}")),
            ConsumerOptions::new(format!("c{i}")),
        )
        .await
        .expect("consumer");
        let (serving, r) = (c.clone(), Arc::clone(&runs));
        tokio::spawn(async move {
            serving
                .serve(move |m: &Message| {
                    let id = m.headers.request_id.clone().unwrap_or_default();
                    *r.lock().expect("lock").entry(id).or_default() += 1;
                    Ok(None)
                })
                .await
        });
        consumers.push(c);
    }
    let producer = Producer::connect(config("p1"), "p1")
        .await
        .expect("producer");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..PRODUCER_TASKS {
        let (producer, stop, tally) = (producer.clone(), Arc::clone(&stop), Arc::clone(&tally));
        tasks.push(tokio::spawn(async move {
            let mut n = 0_usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let cmd = Command::new(
                    "deny",
                    Target::new("ipv4_net", format!("10.{t}.{}.0/24", n % 250)),
                )
                .expect("deny");
                let options = SendOptions {
                    to: vec![format!("c{}", (t + n) % CONSUMERS)],
                    timeout: TIMEOUT,
                    ..SendOptions::default()
                };
                n += 1;
                let started = Instant::now();
                match producer.send(cmd, options).await {
                    Ok(x) => {
                        let id = x.request_id().to_owned();
                        let s = x.collect().await;
                        let took = started.elapsed();
                        let mut t = tally.lock().expect("lock");
                        t.sent.push(id.clone());
                        if s.complete {
                            t.completed += 1;
                        } else if took <= TIMEOUT + Duration::from_secs(2) {
                            t.failed_in_time += 1;
                        } else {
                            t.late.push((id, took));
                        }
                    }
                    Err(_) if started.elapsed() <= TIMEOUT + Duration::from_secs(2) => {
                        tally.lock().expect("lock").failed_in_time += 1;
                    }
                    Err(e) => tally
                        .lock()
                        .expect("lock")
                        .late
                        .push((format!("send failed late: {e}"), started.elapsed())),
                }
            }
        }));
    }
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sigkill(&broker);
        tokio::time::sleep(Duration::from_millis(300)).await;
        broker.restart();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.expect("a producer task panicked");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tally = tally.lock().expect("lock");
    let runs = runs.lock().expect("lock");
    let lost: Vec<&String> = tally
        .sent
        .iter()
        .filter(|id| !runs.contains_key(*id))
        .collect();
    let doubled: Vec<(&String, &usize)> = runs.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "faults ({broker_args:?}, stable ids {stable}): {kills} kills; {} commands sent, {} complete, {} failed within their timeout, {} late; {} lost, {} run twice; producer reconnects {}",
        tally.sent.len(),
        tally.completed,
        tally.failed_in_time,
        tally.late.len(),
        lost.len(),
        doubled.len(),
        producer.stats().reconnects
    );
    assert!(
        tally.sent.len() > 100,
        "a stream under load: {}",
        tally.sent.len()
    );
    assert!(
        lost.is_empty(),
        "lost: {} of {}: {lost:?}",
        lost.len(),
        tally.sent.len()
    );
    assert!(doubled.is_empty(), "run twice: {doubled:?}");
    assert!(
        tally.late.is_empty(),
        "past their timeout: {:?}",
        tally.late
    );
    assert_eq!(
        tally.completed,
        tally.sent.len(),
        "every exchange completed (failed within the timeout: {})",
        tally.failed_in_time
    );
}
