//! A RabbitMQ 3.10 cluster (nodes of Debian's rabbitmq-server on one
//! machine, one epmd, joined with `rabbitmqctl join_cluster`; started by
//! tests/broker/broker.py `--cluster N`): the producer connected to one
//! node, the consumer to another, commands and responses crossing nodes;
//! the consumer's node stopped in the middle of a stream, the consumer
//! failing over through its list of broker URLs to a node that survives.
//! Counted as `faults.rs` counts: every command sent ran exactly once, every
//! exchange completed.
//!
//! Whether a command waiting in the consumer's session survives its node is
//! the broker's business: a session's messages live in one queue, by default
//! a classic queue on the node the client was connected to, unreachable
//! while that node is down. Mirrored (policy `ha-mode: all`) or quorum
//! queues (`mqtt.durable_queue_type = quorum`, which needs a majority of its
//! replicas, so 3 nodes) keep them; `make test` runs a 2-node cluster with
//! mirrored queues, `make cluster` (`--include-ignored`) every setting.

mod common;

use std::collections::HashMap;
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Broker, repo_root};
use oc2mqtt::client::{
    ClientConfig, ConnectionEvent, Consumer, ConsumerOptions, Producer, SendOptions,
};
use oc2mqtt::message::{Command, Message, Target};

/// An exchange's timeout: longer than a fail-over (a quorum queue elects a
/// new leader in a few seconds).
const TIMEOUT: Duration = Duration::from_secs(20);

/// The cluster, stopped (every node, then its epmd) when dropped.
struct Cluster {
    broker: Broker,
}

impl Cluster {
    fn start(nodes: usize, queues: &str) -> Self {
        let n = nodes.to_string();
        let broker = Broker::start(&["--kind", "rabbitmq", "--cluster", &n, "--queues", queues]);
        Self { broker }
    }

    fn size(&self) -> usize {
        self.nodes().len()
    }

    fn nodes(&self) -> &Vec<serde_json::Value> {
        self.broker.info["nodes"].as_array().expect("nodes")
    }

    fn url(&self, i: usize) -> String {
        format!(
            "mqtt://127.0.0.1:{}",
            self.nodes()[i]["port"].as_u64().expect("port")
        )
    }

    /// The node a client is connected to, by its URL.
    fn index_of(&self, url: &str) -> usize {
        (0..self.size())
            .find(|&i| self.url(i) == url)
            .unwrap_or_else(|| panic!("{url} is no node of the cluster"))
    }

    fn pid(&self, i: usize) -> u64 {
        self.nodes()[i]["pid"].as_u64().expect("node pid")
    }

    /// Stops node i: SIGKILL, or SIGTERM and a clean shutdown.
    fn stop_node(&self, i: usize, how: Stop) {
        let pid = self.pid(i).to_string();
        let ok = match how {
            Stop::Kill => Process::new("kill").args(["-KILL", &pid]).status(),
            Stop::Graceful => Process::new("python3")
                .arg(repo_root().join("tests/broker/broker.py"))
                .args(["stop", "--pid", &pid])
                .status(),
        }
        .expect("stop runs")
        .success();
        assert!(ok, "stopping node {i} ({how:?})");
    }

    /// Starts node i again (same name, ports and node database): it rejoins.
    fn start_node(&mut self, i: usize) {
        let out = Process::new("python3")
            .arg(repo_root().join("tests/broker/broker.py"))
            .args(["start-node", "--dir"])
            .arg(self.broker.info["dir"].as_str().expect("dir"))
            .args(["--index", &(i + 1).to_string()])
            .output()
            .expect("python3 runs broker.py");
        assert!(
            out.status.success(),
            "node {i} did not start again: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.broker.info["nodes"][i] = serde_json::from_slice(&out.stdout).expect("one JSON line");
    }

    /// `rabbitmqctl` against node i.
    fn ctl(&self, i: usize, args: &[&str]) -> String {
        let env = self.nodes()[i]["env"].as_object().expect("env");
        let out = Process::new("/usr/lib/rabbitmq/bin/rabbitmqctl")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v.as_str().expect("string"))))
            .output()
            .expect("rabbitmqctl runs");
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Kill,
    Graceful,
}

/// A client config trying these nodes in this order.
fn config(cluster: &Cluster, order: &[usize], client_id: Option<String>) -> ClientConfig {
    let mut c = ClientConfig::new(cluster.url(order[0]));
    c.brokers = order.iter().map(|&i| cluster.url(i)).collect();
    c.client_id = client_id;
    c.connect_timeout_secs = 5;
    c
}

fn deny(n: usize) -> Command {
    Command::new(
        "deny",
        Target::new("ipv4_net", format!("10.{}.{}.0/24", n / 250 % 250, n % 250)),
    )
    .expect("deny")
}

/// How often each producer task sends a command.
const PACE: Duration = Duration::from_millis(20);

/// The producer's side of a run.
#[derive(Debug, Default)]
struct Tally {
    sent: Vec<String>,
    completed: usize,
    failed_in_time: usize,
    late: usize,
    /// `send` refused the command (it never went out, or the broker refused it).
    send_errors: Vec<String>,
}

impl Tally {
    fn count(&mut self, id: String, complete: bool, started: Instant) {
        self.sent.push(id);
        if complete {
            self.completed += 1;
        } else if started.elapsed() <= TIMEOUT + Duration::from_secs(2) {
            self.failed_in_time += 1;
        } else {
            self.late += 1;
        }
    }
}

/// What one run measured.
#[derive(Debug, Default)]
struct Figures {
    sent: usize,
    completed: usize,
    failed_in_time: usize,
    late: usize,
    send_errors: Vec<String>,
    lost: usize,
    twice: usize,
    /// From each stop to the consumer's next `Connected`.
    failovers: Vec<Duration>,
    consumer_reconnects: u64,
    producer_reconnects: u64,
}

struct Run {
    nodes: usize,
    queues: &'static str,
    /// The consumer keeps its session (a stable client id, Clean Session 0).
    stable: bool,
    stops: usize,
    how: Stop,
    producer_tasks: usize,
}

/// A consumer "fw.b" (a `.` in its topics: RabbitMQ maps `/` ↔ `.`) on node
/// 1 with the list [1, 2, .., 0], the producer on node 0 with [0, 2, .., 1];
/// a stream of commands from `producer_tasks` tasks; `stops` times, the node
/// the consumer is on is stopped, then started again once the consumer has
/// moved (or, with nothing to move to, after 5 s).
async fn failover_under_stream(run: &Run) -> Figures {
    let mut cluster = Cluster::start(run.nodes, run.queues);
    let n = cluster.size();
    let consumer_order: Vec<usize> = (1..n).chain([0]).collect();
    let producer_order: Vec<usize> = [0].into_iter().chain((1..n).rev()).collect();
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let consumer = Consumer::connect(
        config(
            &cluster,
            &consumer_order,
            run.stable.then(|| "cluster-fw.b".to_owned()),
        ),
        ConsumerOptions::new("fw.b"),
    )
    .await
    .expect("consumer connects");
    assert_eq!(cluster.index_of(&consumer.broker()), 1);
    let connected: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut events = consumer.events();
    let seen = Arc::clone(&connected);
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            if matches!(e, ConnectionEvent::Connected { .. }) {
                seen.lock().expect("lock").push(Instant::now());
            }
        }
    });
    let (serving, r) = (consumer.clone(), Arc::clone(&runs));
    tokio::spawn(async move {
        serving
            .serve(move |m: &Message| {
                let id = m.headers.request_id.clone().unwrap_or_default();
                *r.lock().expect("lock").entry(id).or_default() += 1;
                Ok(None)
            })
            .await
    });
    let producer = Producer::connect(config(&cluster, &producer_order, None), "soc")
        .await
        .expect("producer connects");
    assert_eq!(cluster.index_of(&producer.broker()), 0);

    // Across nodes, before anything fails.
    let first = producer
        .send(deny(0), to_fw_b())
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(first.complete, "a cross-node exchange: {first:?}");

    // An open stream: each task sends a command every PACE without waiting
    // for the previous one, so commands are in flight while the consumer moves.
    let stop = Arc::new(AtomicBool::new(false));
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..run.producer_tasks {
        let (producer, stop, tally) = (producer.clone(), Arc::clone(&stop), Arc::clone(&tally));
        tasks.push(tokio::spawn(async move {
            let mut exchanges = Vec::new();
            let mut k = 0;
            while !stop.load(Ordering::SeqCst) {
                k += 1;
                let started = Instant::now();
                let tally = Arc::clone(&tally);
                match producer.send(deny(t * 100_000 + k), to_fw_b()).await {
                    Ok(x) => exchanges.push(tokio::spawn(async move {
                        let id = x.request_id().to_owned();
                        let complete = x.collect().await.complete;
                        tally.lock().expect("lock").count(id, complete, started);
                    })),
                    Err(e) => tally.lock().expect("lock").send_errors.push(e.to_string()),
                }
                tokio::time::sleep(PACE).await;
            }
            for x in exchanges {
                x.await.expect("an exchange task panicked");
            }
        }));
    }
    let mut failovers = Vec::new();
    for _ in 0..run.stops {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let victim = cluster.index_of(&consumer.broker());
        let before = connected.lock().expect("lock").len();
        let stopped = Instant::now();
        tokio::task::block_in_place(|| cluster.stop_node(victim, run.how));
        // The consumer moves to another node (or waits for this one).
        let deadline = stopped + Duration::from_secs(5);
        while connected.lock().expect("lock").len() == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::task::block_in_place(|| cluster.start_node(victim));
        while connected.lock().expect("lock").len() == before {
            assert!(
                stopped.elapsed() < Duration::from_secs(60),
                "the consumer did not reconnect within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let at = connected.lock().expect("lock")[before];
        failovers.push(at - stopped);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("a producer task panicked");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tally = tally.lock().expect("lock");
    let runs = runs.lock().expect("lock");
    let f = Figures {
        sent: tally.sent.len(),
        completed: tally.completed,
        failed_in_time: tally.failed_in_time,
        late: tally.late,
        send_errors: tally.send_errors.clone(),
        lost: tally
            .sent
            .iter()
            .filter(|id| !runs.contains_key(*id))
            .count(),
        twice: runs.values().filter(|n| **n > 1).count(),
        failovers,
        consumer_reconnects: consumer.stats().reconnects,
        producer_reconnects: producer.stats().reconnects,
    };
    eprintln!(
        "cluster of {} ({} queues, consumer session {}, {} x {:?}): {} commands sent, {} complete, {} incomplete within their timeout, {} late, {} refused by send {:?}; {} lost, {} run twice; fail-over (stop to the consumer's reconnect) {:?}; reconnects: consumer {}, producer {}",
        run.nodes,
        run.queues,
        if run.stable {
            "kept (stable id)"
        } else {
            "none (generated id)"
        },
        run.stops,
        run.how,
        f.sent,
        f.completed,
        f.failed_in_time,
        f.late,
        f.send_errors.len(),
        f.send_errors.iter().take(3).collect::<Vec<_>>(),
        f.lost,
        f.twice,
        f.failovers,
        f.consumer_reconnects,
        f.producer_reconnects,
    );
    let status = cluster.ctl(0, &["cluster_status", "--formatter", "json"]);
    assert!(
        status.contains(&format!("oc2c{n}@localhost")),
        "all nodes back in the cluster: {status}"
    );
    f
}

fn to_fw_b() -> SendOptions {
    SendOptions {
        to: vec!["fw.b".to_owned()],
        timeout: TIMEOUT,
        ..SendOptions::default()
    }
}

/// What every setting keeps, however the broker treats the session: the
/// stream goes on, nothing runs twice, no exchange outlives its timeout.
fn assert_live(f: &Figures) {
    assert!(f.sent > 20, "a stream: {f:?}");
    assert_eq!(f.twice, 0, "run twice: {f:?}");
    assert_eq!(f.late, 0, "past their timeout: {f:?}");
    assert!(
        f.send_errors.is_empty(),
        "send refused: {:?}",
        f.send_errors
    );
}

/// And what a setting that keeps the session's messages adds: nothing lost.
fn assert_nothing_lost(f: &Figures) {
    assert_live(f);
    assert_eq!(f.lost, 0, "lost: {f:?}");
    assert_eq!(f.completed, f.sent, "every exchange completed: {f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_fails_over_to_another_node_of_a_two_node_cluster_losing_nothing() {
    let f = failover_under_stream(&Run {
        nodes: 2,
        queues: "mirrored",
        stable: true,
        stops: 1,
        how: Stop::Kill,
        producer_tasks: 4,
    })
    .await;
    assert_nothing_lost(&f);
    assert!(f.consumer_reconnects >= 1, "{f:?}");
}

fn stops() -> usize {
    std::env::var("OC2MQTT_CLUSTER_STOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (minutes): make cluster runs it"]
async fn three_nodes_with_quorum_queues_lose_nothing_when_nodes_are_killed() {
    let f = failover_under_stream(&Run {
        nodes: 3,
        queues: "quorum",
        stable: true,
        stops: stops(),
        how: Stop::Kill,
        producer_tasks: 8,
    })
    .await;
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (minutes): make cluster runs it"]
async fn three_nodes_with_quorum_queues_lose_nothing_when_nodes_are_stopped_cleanly() {
    let f = failover_under_stream(&Run {
        nodes: 3,
        queues: "quorum",
        stable: true,
        stops: stops(),
        how: Stop::Graceful,
        producer_tasks: 8,
    })
    .await;
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (minutes): make cluster runs it"]
async fn three_nodes_with_mirrored_queues_lose_nothing_when_nodes_are_killed() {
    let f = failover_under_stream(&Run {
        nodes: 3,
        queues: "mirrored",
        stable: true,
        stops: stops(),
        how: Stop::Kill,
        producer_tasks: 8,
    })
    .await;
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (minutes): make cluster runs it"]
async fn three_nodes_with_classic_queues_keep_the_stream_going_when_nodes_are_killed() {
    // The default queues: a session's queue is on one node, so what it held
    // when its node died is the broker's loss; measured, not asserted.
    let f = failover_under_stream(&Run {
        nodes: 3,
        queues: "classic",
        stable: true,
        stops: stops(),
        how: Stop::Kill,
        producer_tasks: 8,
    })
    .await;
    assert_live(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (minutes): make cluster runs it"]
async fn a_consumer_without_a_session_keeps_the_stream_going_when_nodes_are_killed() {
    // A generated client id: the consumer's queue ends with its connection,
    // so what is published while it moves has no queue to wait in.
    let f = failover_under_stream(&Run {
        nodes: 3,
        queues: "quorum",
        stable: false,
        stops: stops(),
        how: Stop::Kill,
        producer_tasks: 8,
    })
    .await;
    assert_live(&f);
}

/// What a cluster does for a moment when a node dies, made to last: a
/// RabbitMQ node that closes the connection on each publish to a topic
/// (a topic permission refuses it) until `rabbitmqctl` grants it about a
/// second later. The command goes out once granted: neither lost nor
/// refused as "not authorized" (the refusal needs 3 s of closures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_the_broker_closes_the_connection_on_for_a_moment_goes_out_once_it_is_over() {
    let broker = Broker::start(&[
        "--kind",
        "rabbitmq",
        "--user",
        "soc:soc-pw",
        "--deny",
        "soc:write:oc2/cmd/device/fw-late",
    ]);
    let mut config = ClientConfig::new(broker.url());
    config.username = Some("soc".to_owned());
    config.password = Some("soc-pw".to_owned());
    let consumer = common::serving(config.clone(), "fw-late").await;
    let producer = Producer::connect(config, "soc").await.expect("producer");
    let env: Vec<(String, String)> = broker.info["env"]
        .as_object()
        .expect("env")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
        .collect();
    let started = Instant::now();
    let grant = tokio::task::spawn_blocking(move || {
        let out = Process::new("/usr/lib/rabbitmq/bin/rabbitmqctl")
            .args([
                "set_topic_permissions",
                "-p",
                "/",
                "soc",
                "amq.topic",
                ".*",
                ".*",
            ])
            .envs(env)
            .output()
            .expect("rabbitmqctl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    });
    let options = SendOptions {
        to: vec!["fw-late".to_owned()],
        timeout: Duration::from_secs(15),
        ..SendOptions::default()
    };
    let s = producer
        .send(deny(1), options)
        .await
        .expect("sent, not refused")
        .collect()
        .await;
    let granted_after = grant.await.expect("rabbitmqctl thread");
    eprintln!(
        "granted after {granted_after:?}; complete after {:?}; producer reconnects {}",
        started.elapsed(),
        producer.stats().reconnects
    );
    assert!(s.complete, "{s:?}");
    assert!(
        producer.stats().reconnects >= 2,
        "the broker closed the connection on the publish meanwhile"
    );
    consumer.close().await;
}
