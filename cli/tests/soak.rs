//! Soak: `oc2mqtt serve` processes under a steady stream of commands from
//! one producer, as an operator runs them: every exchange completes, none
//! runs twice, no process dies, and the consumers' memory stays flat.
//!
//! `make test` runs it for 15 s; `make soak` for 10 minutes at 800
//! commands/s (`OC2MQTT_SOAK_SECS`, `OC2MQTT_SOAK_RATE`), printing the RSS
//! curve.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oc2mqtt::client::{ClientConfig, Producer, SendOptions};
use oc2mqtt::message::{Command as Oc2Command, Target};

mod common;

use common::Broker;

const BIN: &str = env!("CARGO_BIN_EXE_oc2mqtt");

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A `serve` process and the request ids its handler ran, from its stdout.
struct Device {
    child: Child,
    runs: Arc<Mutex<HashMap<String, u32>>>,
}

impl Device {
    fn start(url: &str, id: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--broker", url, "--device-id", id])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut lines = err.lines();
        loop {
            let line = lines.next().expect("serve says ready").expect("line");
            if line.contains("ready") {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let seen = Arc::clone(&runs);
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Some(id) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("request_id="))
                {
                    *seen.lock().expect("lock").entry(id.to_owned()).or_default() += 1;
                }
            }
        });
        Self { child, runs }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_stream_loses_nothing_runs_nothing_twice_and_memory_stays_flat() {
    let seconds = env_u64("OC2MQTT_SOAK_SECS", 15);
    let rate = env_u64("OC2MQTT_SOAK_RATE", 400);
    let broker = Broker::start();
    let url = broker.url();
    let mut devices: Vec<Device> = (0..2)
        .map(|i| Device::start(&url, &format!("soak-{i}")))
        .collect();
    let producer = Producer::connect(ClientConfig::new(url.as_str()), "soak-ctl")
        .await
        .expect("producer");
    let command = Oc2Command::new("deny", Target::new("ipv4_net", "10.0.0.0/8")).expect("deny");
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(String, bool)>();
    let started = Instant::now();
    let mut curve = Vec::new();
    let mut next_sample = Duration::ZERO;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut sent = 0_u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        if started.elapsed() >= next_sample {
            let rss: Vec<u64> = devices
                .iter()
                .map(|d| rss_kib(d.child.id()).unwrap_or(0))
                .collect();
            curve.push((started.elapsed().as_secs(), rss));
            next_sample += Duration::from_secs((seconds / 10).max(1));
        }
        let to = format!("soak-{}", sent % 2);
        let options = SendOptions {
            to: vec![to],
            timeout: Duration::from_secs(10),
            ..SendOptions::default()
        };
        let exchange = producer.send(command.clone(), options).await.expect("sent");
        let done = done_tx.clone();
        tokio::spawn(async move {
            let id = exchange.request_id().to_owned();
            let s = exchange.collect().await;
            let _ = done.send((id, s.complete));
        });
        sent += 1;
        let due = interval.mul_f64(sent as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    drop(done_tx);
    let mut incomplete = Vec::new();
    let mut completed = 0_u64;
    while let Some((id, complete)) = done_rx.recv().await {
        if complete {
            completed += 1;
        } else {
            incomplete.push(id);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_end: Vec<u64> = devices
        .iter()
        .map(|d| rss_kib(d.child.id()).unwrap_or(0))
        .collect();
    curve.push((started.elapsed().as_secs(), rss_end));
    let crashed = devices
        .iter_mut()
        .map(|d| d.child.try_wait().ok().flatten().is_some())
        .filter(|exited| *exited)
        .count();
    let mut runs: HashMap<String, u32> = HashMap::new();
    for d in &devices {
        for (id, n) in d.runs.lock().expect("lock").iter() {
            *runs.entry(id.clone()).or_default() += n;
        }
    }
    let doubled = runs.values().filter(|n| **n > 1).count();
    let achieved = sent as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "soak: {seconds} s at {achieved:.0} commands/s: {sent} sent, {completed} complete, {} lost, {doubled} run twice, {crashed} crashed; serve RSS KiB over time {curve:?}",
        incomplete.len()
    );
    assert_eq!(crashed, 0, "a serve process died");
    assert!(incomplete.is_empty(), "lost: {incomplete:?}");
    assert_eq!(doubled, 0, "run twice");
    assert_eq!(runs.len() as u64, sent, "each command ran once");
    // Flat: the last sample within 16 MiB and 50 % of the one after warm-up.
    let warm = &curve[curve.len().min(2) - 1].1;
    let last = &curve[curve.len() - 1].1;
    for (w, l) in warm.iter().zip(last) {
        assert!(
            *l <= w + 16 * 1024 && *l <= w * 3 / 2 + 4096,
            "RSS grew: {curve:?}"
        );
    }
}
