//! Consumer groups (`$share/<group>/...`): members share one stream of
//! commands, each run by exactly one of them, and a member that dies has its
//! share taken over (Mosquitto 2). Where the broker has no shared
//! subscriptions (RabbitMQ 3.10, ActiveMQ 5.17), a consumer with a group
//! refuses to start, saying so, instead of receiving nothing.
#![allow(missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Broker, RawClient};
use oc2mqtt::Error;
use oc2mqtt::client::{
    ClientConfig, Consumer, ConsumerOptions, Monitor, MqttVersion, Producer, SendOptions,
};
use oc2mqtt::message::{Command, Response, Target};

const GROUP: &str = "firewalls";
const DEVICE: &str = "fw-pool";

/// Commands per run: 300, or `OC2MQTT_GROUP_COMMANDS` (`make groups` runs more).
fn commands() -> usize {
    std::env::var("OC2MQTT_GROUP_COMMANDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 100)
        .unwrap_or(300)
}

fn deny(n: usize) -> Command {
    Command::new(
        "deny",
        Target::new("ipv4_net", format!("10.1.{}.{}/32", n / 256, n % 256)),
    )
    .expect("deny")
}

fn to_pool(secs: u64) -> SendOptions {
    SendOptions {
        to: vec![DEVICE.to_owned()],
        timeout: Duration::from_secs(secs),
        ..SendOptions::default()
    }
}

fn grouped() -> ConsumerOptions {
    let mut o = ConsumerOptions::new(DEVICE);
    o.group = Some(GROUP.to_owned());
    o
}

/// Which member ran which command (by request id), in order.
type Ran = Arc<Mutex<Vec<(usize, String)>>>;

/// Takes commands from `consumer` as member `member`: records each, then
/// answers 200. With `die_at`, the member takes that many and, on the
/// last, tells `dying` and never answers it (its runtime is then shut down).
async fn work(
    consumer: Consumer,
    member: usize,
    ran: Ran,
    die_at: Option<(usize, std::sync::mpsc::Sender<()>)>,
) {
    let mut taken = 0;
    while let Some(incoming) = consumer.next().await {
        taken += 1;
        let id = incoming.message().headers.request_id.clone().expect("id");
        if let Some((at, dying)) = &die_at {
            if taken == *at {
                let _ = dying.send(());
                std::future::pending::<()>().await;
            }
        }
        ran.lock().expect("lock").push((member, id));
        incoming.reply(Response::new(200)).await.expect("reply");
    }
}

/// Sends `n` commands to the group, `window` at a time; every summary with
/// its send time, in order.
async fn stream(
    p: &Producer,
    n: usize,
    window: usize,
    secs: u64,
) -> Vec<(Instant, oc2mqtt::client::Summary)> {
    let slots = Arc::new(tokio::sync::Semaphore::new(window));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let slot = Arc::clone(&slots).acquire_owned().await.expect("slot");
        // Taken before the publish: a member may receive the command before
        // `send` returns.
        let sent = Instant::now();
        let exchange = p.send(deny(i), to_pool(secs)).await.expect("sent");
        tasks.push(tokio::spawn(async move {
            let s = exchange.collect().await;
            drop(slot);
            (sent, s)
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("exchange task"));
    }
    out
}

/// Each command ran at most once; the number run per member.
fn per_member(ran: &Ran, members: usize) -> (HashSet<String>, Vec<usize>) {
    let ran = ran.lock().expect("lock");
    let mut once = HashSet::new();
    let mut counts = vec![0; members];
    for (m, id) in ran.iter() {
        assert!(once.insert(id.clone()), "command {id} ran twice");
        counts[*m] += 1;
    }
    (once, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_a_stream_each_command_run_exactly_once() {
    let n = commands();
    let broker = Broker::start(&[]);
    let ran: Ran = Arc::default();
    let mut members = Vec::new();
    for m in 0..3 {
        let c = Consumer::connect(ClientConfig::new(broker.url()), grouped())
            .await
            .expect("group member connects");
        assert_eq!(c.stats().mqtt_version, Some(MqttVersion::V5));
        tokio::spawn(work(c.clone(), m, Arc::clone(&ran), None));
        members.push(c);
    }
    let p = Producer::connect(ClientConfig::new(broker.url()), "ctl")
        .await
        .expect("producer");
    let started = Instant::now();
    let summaries = stream(&p, n, 20, 10).await;
    let took = started.elapsed();
    let incomplete = summaries.iter().filter(|(_, s)| !s.complete).count();
    assert_eq!(incomplete, 0, "every exchange completes");
    let (once, counts) = per_member(&ran, 3);
    assert_eq!(once.len(), n, "each of the {n} commands ran once");
    for (m, ran) in counts.iter().enumerate() {
        assert!(*ran > 0, "member {m} ran none: {counts:?}");
    }
    println!(
        "{n} commands over 3 members in {:.2} s (20 in flight): {counts:?}",
        took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_dies_mid_stream_has_its_share_taken_over() {
    const WINDOW: usize = 10;
    let n = commands();
    let die_at = n / 10;
    let broker = Broker::start(&[]);
    let ran: Ran = Arc::default();
    let mut members = Vec::new();
    for m in [0, 2] {
        let c = Consumer::connect(ClientConfig::new(broker.url()), grouped())
            .await
            .expect("group member connects");
        tokio::spawn(work(c.clone(), m, Arc::clone(&ran), None));
        members.push(c);
    }
    // Member 1 on a runtime of its own: shutting it down drops its socket
    // without DISCONNECT, as a killed process does.
    let (dying_tx, dying) = std::sync::mpsc::channel();
    let (url, ran1) = (broker.url(), Arc::clone(&ran));
    let doomed = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let c = rt
            .block_on(Consumer::connect(ClientConfig::new(url), grouped()))
            .expect("member 1 connects");
        rt.spawn(work(c, 1, ran1, Some((die_at, dying_tx))));
        rt
    })
    .await
    .expect("member 1");
    let killed_at = tokio::task::spawn_blocking(move || {
        dying.recv().expect("member 1 takes its last command");
        let at = Instant::now();
        doomed.shutdown_background();
        at
    });
    let p = Producer::connect(ClientConfig::new(broker.url()), "ctl")
        .await
        .expect("producer");
    let summaries = stream(&p, n, WINDOW, 3).await;
    let killed_at = killed_at.await.expect("killed");
    let (once, counts) = per_member(&ran, 3);
    let lost: Vec<_> = summaries
        .iter()
        .filter(|(_, s)| !once.contains(&s.request_id))
        .collect();
    let incomplete = summaries.iter().filter(|(_, s)| !s.complete).count();
    println!(
        "member 1 killed after taking {die_at} commands ({} answered): ran per member {counts:?}, \
         {} of {n} lost (never run by anyone), {incomplete} exchanges incomplete",
        die_at - 1,
        lost.len()
    );
    assert_eq!(counts[1], die_at - 1, "member 1 answered all but its last");
    assert!(counts[0] > 0 && counts[2] > 0, "{counts:?}");
    // Lost: the command member 1 held when it died, and what the broker had
    // sent it meanwhile; never more than the producer had in flight.
    assert!(
        (1..=WINDOW).contains(&lost.len()),
        "lost {} (window {WINDOW})",
        lost.len()
    );
    for (sent, s) in &lost {
        assert!(
            *sent <= killed_at,
            "a command sent after the kill was lost: {s:?}"
        );
        assert!(!s.complete, "a lost command reported complete: {s:?}");
    }
    // Everything sent from the kill on ran, on the members left.
    let after = summaries.iter().filter(|(t, _)| *t > killed_at).count();
    assert!(after > n / 3, "the stream went on after the kill ({after})");
    assert_eq!(once.len() + lost.len(), n, "every other command ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mqtt_3_1_1_a_probe_checks_mosquitto_and_reaches_no_one() {
    let broker = Broker::start(&[]);
    let v311 = || {
        let mut c = ClientConfig::new(broker.url());
        c.mqtt_version = MqttVersion::V311;
        c
    };
    let monitor = Monitor::connect(ClientConfig::new(broker.url()), None)
        .await
        .expect("monitor");
    let raw = RawClient::connect(&broker.url(), true, &["#"]).await;
    // What the probe costs at start: a group member against a plain one.
    let mut plain = Duration::ZERO;
    let mut probed = Duration::ZERO;
    let rounds: u32 = 5;
    let mut members = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let c = Consumer::connect(v311(), ConsumerOptions::new("fw-solo"))
            .await
            .expect("plain consumer");
        plain += t.elapsed();
        c.close().await;
        let t = Instant::now();
        let c = Consumer::connect(v311(), grouped())
            .await
            .expect("a 3.1.1 group member on Mosquitto starts");
        probed += t.elapsed();
        members.push(c);
    }
    println!(
        "MQTT 3.1.1 connect on Mosquitto: {:.1} ms without a group, {:.1} ms with one (probe), mean of {rounds}",
        plain.as_secs_f64() * 1000.0 / f64::from(rounds),
        probed.as_secs_f64() * 1000.0 / f64::from(rounds)
    );
    // The probes went out (the raw `#` subscriber saw them), on their own
    // topics, and no member, nor the monitor, got one.
    let mut probes = 0;
    while let Some(m) = raw.next(Duration::from_millis(300)).await {
        assert!(
            m.topic().starts_with("oc2mqtt/probe/"),
            "unexpected {}",
            m.topic()
        );
        probes += 1;
    }
    assert_eq!(probes, rounds, "one probe per group member");
    for c in &members {
        assert_eq!(c.stats().received, 0, "a probe reached a member");
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), monitor.next())
            .await
            .is_err(),
        "the monitor saw a probe"
    );
    // And the group works.
    let ran: Ran = Arc::default();
    for (m, c) in members.iter().enumerate() {
        tokio::spawn(work(c.clone(), m, Arc::clone(&ran), None));
    }
    let p = Producer::connect(v311(), "ctl").await.expect("producer");
    let summaries = stream(&p, 20, 5, 5).await;
    assert!(summaries.iter().all(|(_, s)| s.complete));
    let (once, _) = per_member(&ran, members.len());
    assert_eq!(once.len(), 20);
}

/// A group member against `kind` fails at start, with the text.
async fn refused_by(kind: &str) {
    let broker = Broker::start(&["--kind", kind]);
    let url = broker.url();
    let started = Instant::now();
    let e = Consumer::connect(ClientConfig::new(url.clone()), grouped())
        .await
        .expect_err("a group needs shared subscriptions");
    let took = started.elapsed();
    assert!(matches!(e, Error::Config(_)), "{kind}: {e:?}");
    let text = e.to_string();
    println!("{kind}: refused in {took:?}: {text}");
    for needle in [
        "consumer groups need shared subscriptions ($share/<group>/...), and the check of the broker at ",
        &format!("{url} failed: a message published to oc2mqtt/probe/"),
        &format!(" did not come back through the subscription $share/{GROUP}/oc2mqtt/probe/"),
        "RabbitMQ 3.10 and ActiveMQ 5.17 do not",
        "Run one consumer per device id, without a group",
    ] {
        assert!(text.contains(needle), "{kind}: no '{needle}' in: {text}");
    }
    assert!(took < Duration::from_secs(5), "{kind}: {took:?}");
    // Without a group the same consumer starts.
    let c = Consumer::connect(ClientConfig::new(url), ConsumerOptions::new(DEVICE))
        .await
        .expect("without a group");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_on_rabbitmq_refuses_to_start_and_says_why() {
    refused_by("rabbitmq").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_on_activemq_refuses_to_start_and_says_why() {
    refused_by("activemq").await;
}
