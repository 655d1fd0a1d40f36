//! A consumer killed in the middle of its work: `oc2mqtt serve` with a
//! stable client id and a journal, handlers taking 0.5 s, SIGKILLed while
//! 1 500 commands stream in and started again. Every command runs; none
//! twice but those the journal held as taken and not answered at the kill
//! (a handler that ran and was killed before its answer was journaled:
//! at least once, as documented), read with `oc2mqtt::journal::read`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oc2mqtt::client::{ClientConfig, Producer, SendOptions};
use oc2mqtt::message::{Command as Oc2Command, Target};

mod common;

use common::Broker;

const BIN: &str = env!("CARGO_BIN_EXE_oc2mqtt");

/// `serve` with the journal and client id file in `dir`; the request ids
/// its handler ran go to `runs`.
fn serve(url: &str, dir: &Path, runs: &Arc<Mutex<HashMap<String, u32>>>) -> Child {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--broker",
            url,
            "--device-id",
            "fw-1",
            "--work-ms",
            "500",
        ])
        .arg("--client-id-file")
        .arg(dir.join("client-id"))
        .arg("--journal")
        .arg(dir.join("journal"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    loop {
        let line = err.next().expect("serve says ready").expect("line");
        if line.contains("ready") {
            break;
        }
    }
    std::thread::spawn(move || err.for_each(drop));
    let (out, seen) = (child.stdout.take().expect("stdout"), Arc::clone(runs));
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(id) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("request_id="))
            {
                *seen.lock().expect("lock").entry(id.to_owned()).or_default() += 1;
            }
        }
    });
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_and_started_again_loses_nothing_and_runs_nothing_twice() {
    let broker = Broker::start();
    let url = broker.url();
    let dir = tempfile::tempdir().expect("dir");
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let mut first = serve(&url, dir.path(), &runs);
    let producer = Producer::connect(ClientConfig::new(url.as_str()), "p1")
        .await
        .expect("producer");
    let started = Instant::now();
    let mut exchanges = Vec::new();
    let mut killed = None;
    let mut rerun_allowed = HashSet::new();
    for i in 0..1500_u32 {
        let cmd = Oc2Command::new(
            "deny",
            Target::new("ipv4_net", format!("10.0.{}.{}/32", i / 250, i % 250)),
        )
        .expect("deny");
        let options = SendOptions {
            to: vec!["fw-1".into()],
            timeout: Duration::from_secs(90),
            ..SendOptions::default()
        };
        exchanges.push(producer.send(cmd, options).await.expect("sent"));
        tokio::time::sleep(Duration::from_millis(4)).await;
        if i == 700 {
            first.kill().expect("SIGKILL serve");
            let _ = first.wait();
            killed = Some(runs.lock().expect("lock").len());
            let journal = oc2mqtt::journal::read(&dir.path().join("journal")).expect("journal");
            rerun_allowed.extend(journal.to_run.iter().filter_map(|p| {
                oc2mqtt::decode(&p.payload, None)
                    .ok()?
                    .message
                    .headers
                    .request_id
            }));
        }
        if i == 900 {
            // Started again while commands keep coming (its session kept them).
            drop(std::mem::replace(
                &mut first,
                serve(&url, dir.path(), &runs),
            ));
        }
    }
    let mut incomplete = 0;
    for x in exchanges {
        if !x.collect().await.complete {
            incomplete += 1;
        }
    }
    let _ = first.kill();
    let _ = first.wait();
    let runs = runs.lock().expect("lock");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "crash: 1500 commands, serve killed after {killed:?} had run; {} ran in all, {} twice, \
         {} taken and not answered at the kill, {incomplete} exchanges incomplete, {:.1} s",
        runs.len(),
        twice.len(),
        rerun_allowed.len(),
        started.elapsed().as_secs_f64()
    );
    let finished_twice: Vec<_> = twice
        .iter()
        .filter(|(id, _)| !rerun_allowed.contains(*id))
        .collect();
    assert!(
        finished_twice.is_empty(),
        "answered before the kill, run again: {finished_twice:?}"
    );
    assert_eq!(runs.len(), 1500, "every command ran");
    assert_eq!(incomplete, 0);
}
