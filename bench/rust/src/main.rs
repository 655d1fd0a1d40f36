//! Loopback benchmarks of the oc2mqtt client (issue 3 targets).
//!
//! Starts its own Mosquitto (`tests/broker/broker.py`, `set_tcp_nodelay true`),
//! runs the scenarios against it and stops it by PID:
//!
//! - `c`: the C floor, `c/pingpong.c` on libmosquitto (plain and `dual` topics);
//! - `paho`: raw paho-rust ping-pong, no oc2mqtt codec or correlation;
//! - `paho-pipe`: raw paho-rust with 64 commands in flight;
//! - `raw`, `raw-pipe`: the transport oc2mqtt is built on (`mqtt-protocol-core`
//!   on tokio), ping-pong with the same wire pattern, no OpenC2 work;
//! - `seq`: one exchange in flight, Rust `Producer` ↔ Rust `Consumer`;
//! - `serve`: the same with the consumer's `serve(handler)`;
//! - `pipe`: 64 exchanges in flight from one producer;
//! - `pipe-serve`: the same with the consumer's `serve(handler)`;
//! - `seq-inline`, `pipe-inline`: `seq` and `pipe` with the consumer's
//!   `serve_inline(handler)` (the handler on the connection's task);
//! - `paho-split`, `paho-pipe-split`, `seq-split`, `serve-split`, `pipe-split`:
//!   those scenarios with the consumer in a child process, as deployed;
//! - `broadcast`: `to` naming 16 consumers; `collect()` delay after the last response;
//! - `memory`: one consumer (a child process) handles distinct commands; its VmRSS;
//! - `nodelay`: whether paho's client sockets have TCP_NODELAY.
//!
//! `cargo run --release -p oc2mqtt-bench -- [SCENARIO...] [--repeat N] [--seconds S]
//!  [--memory-count N] [--memory-budget SECS] [--c-bin PATH]`; no scenario means all.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oc2mqtt::client::{
    ClientConfig, Consumer, ConsumerOptions, MqttVersion, Producer, SendOptions, runtime,
};
use oc2mqtt::codec::{self, Dialect, Encoding, PublishProperties};
use oc2mqtt::message::{Command, Message, Response};
use paho_mqtt as mqtt;
use serde_json::{Value, json};

mod fixture;
mod raw;

use fixture::{Broker, Res, cpu_us, percentile, root};

const DENY: &str = include_str!("../../payloads/deny_command.json");
const OK: &str = include_str!("../../payloads/ok_response.json");
const PIPELINE: usize = 64;
const BROADCAST: usize = 16;

// ---------------------------------------------------------------- helpers

fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.mqtt_version = MqttVersion::V5;
    // No session left behind on the broker between runs.
    c.session_expiry_secs = 0;
    // OC2MQTT_BENCH_RESPONSE_TOPICS=both|shared|producer: compare where
    // responses are published (bench/RESULTS.md, publish once).
    if let Ok(r) = std::env::var("OC2MQTT_BENCH_RESPONSE_TOPICS") {
        c.response_topics = Some(r.parse().expect("shared, producer or both"));
    }
    c
}

/// The deny command of `bench/payloads`, asking for a `complete` response
/// (the file says `ack`, which a consumer answers with its own 102 only).
fn deny_command() -> Command {
    let v: Value = serde_json::from_str(DENY).expect("deny_command.json is JSON");
    let msg = Message::from_json_value(v).expect("deny_command.json is a valid message");
    let mut cmd = msg.command().expect("a command").clone();
    cmd.args
        .get_or_insert_with(Default::default)
        .insert("response_requested".into(), json!("complete"));
    cmd
}

/// The 200 of `bench/payloads/ok_response.json`.
fn ok_response() -> Response {
    let v: Value = serde_json::from_str(OK).expect("ok_response.json is JSON");
    let msg = Message::from_json_value(v).expect("ok_response.json is a valid message");
    msg.response().expect("a response").clone()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn median(v: &[f64]) -> f64 {
    percentile(&sorted(v.to_vec()), 0.5)
}

static BROKER_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Context switches (voluntary and not) of every thread of a process
/// (`None`: this one) so far: each is a thread hand-off, the main cost of a
/// round trip on loopback. Threads that ended meanwhile are not counted.
fn context_switches(pid: Option<u32>) -> f64 {
    let dir = pid.map_or_else(
        || "/proc/self/task".to_owned(),
        |p| format!("/proc/{p}/task"),
    );
    let Ok(tasks) = std::fs::read_dir(dir) else {
        return 0.0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// CPU meter over a measured window: the client (this process, plus the
/// responder child of a split scenario) and the broker.
struct Cpu {
    child: Option<u32>,
    client: f64,
    broker: f64,
    switches: f64,
}

impl Cpu {
    fn with_child(child: Option<u32>) -> Self {
        let mut c = Self {
            child,
            client: 0.0,
            broker: 0.0,
            switches: 0.0,
        };
        (c.client, c.broker, c.switches) = c.now();
        c
    }

    fn now(&self) -> (f64, f64, f64) {
        let child = |f: fn(Option<u32>) -> f64| self.child.map_or(0.0, |p| f(Some(p)));
        (
            cpu_us(None) + child(cpu_us),
            cpu_us(BROKER_PID.get().copied()),
            context_switches(None) + child(context_switches),
        )
    }

    /// Per exchange: µs of CPU of the client processes, of the broker, and their context switches.
    fn per(&self, n: usize) -> (f64, f64, f64) {
        let n = n.max(1) as f64;
        let (client, broker, switches) = self.now();
        (
            (client - self.client) / n,
            (broker - self.broker) / n,
            (switches - self.switches) / n,
        )
    }
}

/// A responder in a child process (this binary again, `responder-child`),
/// for the `-split` scenarios: producer and consumer then do not share paho
/// C's process-wide lock and network threads, as in a deployment, where a
/// controller and a device never run in one process.
struct ChildResponder(Child);

impl ChildResponder {
    /// `kind`: `oc2` (`Consumer::next` + `reply`), `serve`, `inline` or `paho` (raw paho-rust).
    fn start(kind: &str, url: &str, id: &str, producer: &str) -> Res<Self> {
        let mut child = Process::new(std::env::current_exe()?)
            .args(["responder-child", kind, url, id, producer])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no child stdout")?).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("responder child did not start: {line:?}").into());
        }
        Ok(Self(child))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildResponder {
    fn drop(&mut self) {
        // Closing its stdin tells the child to stop.
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// The child side of [`ChildResponder`]: answers until its stdin closes.
fn responder_child(kind: &str, url: &str, id: &str, producer: &str) -> Res<()> {
    let ready = || -> Res<()> {
        let mut out = std::io::stdout();
        writeln!(out, "ready")?;
        Ok(out.flush()?)
    };
    let until_stdin_closes = || std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    match kind {
        "paho" => {
            let _cons = paho_responder(url, id, producer, None)?;
            ready()?;
            until_stdin_closes()?;
            // No disconnect: paho-rust can deadlock when a callback publishes
            // during one, and the broker drops the session of a closed socket.
            std::process::exit(0)
        }
        "oc2" | "serve" | "inline" => runtime().block_on(async {
            let consumer = if kind == "oc2" {
                responder(url, id, ok_response()).await?
            } else {
                server(url, id, kind == "inline").await?
            };
            ready()?;
            tokio::task::spawn_blocking(until_stdin_closes).await??;
            consumer.close().await;
            Res::Ok(())
        }),
        other => Err(format!("unknown responder kind {other}").into()),
    }
}

fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A consumer that answers every command with the standard 200, each reply on its own task.
async fn responder(url: &str, id: &str, rsp: Response) -> Res<Consumer> {
    let options = ConsumerOptions::new(id)
        .profile("slpf")
        .pair("deny", "ipv4_connection");
    let consumer = Consumer::connect(config(url), options).await?;
    let c = consumer.clone();
    tokio::spawn(async move {
        while let Some(incoming) = c.next().await {
            let rsp = rsp.clone();
            tokio::spawn(async move {
                if let Err(e) = incoming.reply(rsp).await {
                    eprintln!("reply failed: {e}");
                }
            });
        }
    });
    Ok(consumer)
}

/// A consumer that answers every command with the standard 200 through
/// `serve(handler)`, or `serve_inline(handler)` when `inline`.
async fn server(url: &str, id: &str, inline: bool) -> Res<Consumer> {
    let options = ConsumerOptions::new(id)
        .profile("slpf")
        .pair("deny", "ipv4_connection");
    let c = Consumer::connect(config(url), options).await?;
    let s = c.clone();
    let rsp = ok_response();
    let handler = move |_: &Message| Ok(Some(rsp.clone()));
    tokio::spawn(async move {
        if inline {
            s.serve_inline(handler).await
        } else {
            s.serve(handler).await
        }
    });
    Ok(c)
}

/// How the consumer of an oc2mqtt scenario takes its commands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `Consumer::next` and a task per reply.
    Next,
    /// `Consumer::serve(handler)`.
    Serve,
    /// `Consumer::serve_inline(handler)`.
    Inline,
}

impl Style {
    fn kind(self) -> &'static str {
        match self {
            Self::Next => "oc2",
            Self::Serve => "serve",
            Self::Inline => "inline",
        }
    }
}

/// The consumer of an oc2mqtt scenario: in this process, or in a child.
enum Responder {
    Here(Consumer),
    Child(ChildResponder),
}

impl Responder {
    async fn start(url: &str, id: &str, producer: &str, style: Style, split: bool) -> Res<Self> {
        Ok(match (split, style) {
            (true, _) => Self::Child(ChildResponder::start(style.kind(), url, id, producer)?),
            (false, Style::Next) => Self::Here(responder(url, id, ok_response()).await?),
            (false, _) => Self::Here(server(url, id, style == Style::Inline).await?),
        })
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Self::Here(_) => None,
            Self::Child(c) => Some(c.pid()),
        }
    }

    async fn close(self) {
        match self {
            Self::Here(c) => c.close().await,
            Self::Child(c) => drop(c),
        }
    }
}

fn send_options(to: &[String]) -> SendOptions {
    SendOptions {
        to: to.to_vec(),
        timeout: Duration::from_secs(10),
        ..SendOptions::default()
    }
}

/// Whether exchanges are made with `send` and then `collect` (the
/// environment variable `OC2_BENCH_SEND=separate`) rather than
/// `send_collect`, which waits once.
fn separate_send() -> bool {
    static SEPARATE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SEPARATE.get_or_init(|| std::env::var("OC2_BENCH_SEND").is_ok_and(|v| v == "separate"))
}

async fn one_exchange(p: &Producer, cmd: &Command, opts: &SendOptions) -> Res<()> {
    let s = if separate_send() {
        p.send(cmd.clone(), opts.clone()).await?.collect().await
    } else {
        p.send_collect(cmd.clone(), opts.clone()).await?
    };
    if !s.complete
        || s.responses
            .iter()
            .any(|r| r.message.response().map(|x| x.status) != Some(200))
    {
        return Err(format!(
            "exchange incomplete: {} responses, missing {:?}",
            s.responses.len(),
            s.missing
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------- scenarios

/// Sequential round trips (one in flight); `style` selects how the consumer
/// takes commands, `split` puts it in a child process.
fn seq(url: &str, seconds: f64, style: Style, split: bool) -> Res<Value> {
    runtime().block_on(async {
        let (cons_id, prod_id) = ("bench-seq-consumer", "bench-seq-producer");
        let consumer = Responder::start(url, cons_id, prod_id, style, split).await?;
        let producer = Producer::connect(config(url), prod_id).await?;
        let cmd = deny_command();
        let opts = send_options(&[cons_id.to_owned()]);
        let warm_until = Instant::now() + Duration::from_secs_f64((seconds / 3.0).max(0.5));
        while Instant::now() < warm_until {
            one_exchange(&producer, &cmd, &opts).await?;
        }
        let mut lat = Vec::new();
        let cpu = Cpu::with_child(consumer.pid());
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        while Instant::now() < end {
            let t0 = Instant::now();
            one_exchange(&producer, &cmd, &opts).await?;
            lat.push(micros(t0.elapsed()));
        }
        let elapsed = start.elapsed().as_secs_f64();
        let (cpu_client, cpu_broker, switches) = cpu.per(lat.len());
        let lat = sorted(lat);
        let stats = producer.stats();
        producer.close().await;
        consumer.close().await;
        Ok(json!({
            "rt_per_s": lat.len() as f64 / elapsed,
            "p50_us": percentile(&lat, 0.5),
            "p99_us": percentile(&lat, 0.99),
            "n": lat.len(),
            "cpu_us_per_rt_client": cpu_client,
            "switches_per_rt_client": switches,
            "cpu_us_per_rt_broker": cpu_broker,
            "producer_received": stats.received,
            "producer_duplicates": stats.duplicates,
        }))
    })
}

/// 64 exchanges in flight from one producer; `style` selects how the
/// consumer takes commands, `split` puts it in a child process.
fn pipe(url: &str, seconds: f64, style: Style, split: bool) -> Res<Value> {
    runtime().block_on(async {
        let (cons_id, prod_id) = ("bench-pipe-consumer", "bench-pipe-producer");
        let consumer = Responder::start(url, cons_id, prod_id, style, split).await?;
        let producer = Producer::connect(config(url), prod_id).await?;
        let cmd = Arc::new(deny_command());
        let opts = Arc::new(send_options(&[cons_id.to_owned()]));
        let run = |dur: f64| {
            let done = Arc::new(AtomicU64::new(0));
            let end = Instant::now() + Duration::from_secs_f64(dur);
            let tasks: Vec<_> = (0..PIPELINE)
                .map(|_| {
                    let (p, cmd, opts, done) = (
                        producer.clone(),
                        Arc::clone(&cmd),
                        Arc::clone(&opts),
                        Arc::clone(&done),
                    );
                    tokio::spawn(async move {
                        let mut lat = Vec::new();
                        while Instant::now() < end {
                            let t0 = Instant::now();
                            one_exchange(&p, &cmd, &opts).await?;
                            lat.push(micros(t0.elapsed()));
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Res::Ok(lat)
                    })
                })
                .collect();
            (tasks, done)
        };
        let (warm, _) = run((seconds / 3.0).max(0.5));
        for t in warm {
            t.await??;
        }
        let cpu = Cpu::with_child(consumer.pid());
        let start = Instant::now();
        let (tasks, _) = run(seconds);
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        let elapsed = start.elapsed().as_secs_f64();
        let (cpu_client, cpu_broker, switches) = cpu.per(lat.len());
        let lat = sorted(lat);
        producer.close().await;
        consumer.close().await;
        Ok(json!({
            "exchanges_per_s": lat.len() as f64 / elapsed,
            "cpu_us_per_rt_client": cpu_client,
            "switches_per_rt_client": switches,
            "cpu_us_per_rt_broker": cpu_broker,
            "p50_us": percentile(&lat, 0.5),
            "p99_us": percentile(&lat, 0.99),
            "n": lat.len(),
        }))
    })
}

/// `to` naming 16 consumers: how long `collect()` takes to return after the
/// last response arrived (an upper bound: measured from before `send`).
fn broadcast(url: &str, rounds: usize) -> Res<Value> {
    runtime().block_on(async {
        let ids: Vec<String> = (0..BROADCAST).map(|i| format!("bench-bc-{i}")).collect();
        let mut consumers = Vec::new();
        for id in &ids {
            consumers.push(responder(url, id, ok_response()).await?);
        }
        let producer = Producer::connect(config(url), "bench-bc-producer").await?;
        let cmd = deny_command();
        let opts = send_options(&ids);
        let (mut gaps, mut totals) = (Vec::new(), Vec::new());
        for round in 0..rounds + 3 {
            let t0 = Instant::now();
            let s = producer
                .send(cmd.clone(), opts.clone())
                .await?
                .collect()
                .await;
            let total = t0.elapsed();
            if !s.complete || s.responses.len() != BROADCAST {
                return Err(
                    format!("broadcast incomplete: {} responses", s.responses.len()).into(),
                );
            }
            let last = s
                .responses
                .iter()
                .map(|r| r.latency)
                .max()
                .unwrap_or_default();
            if round >= 3 {
                gaps.push(micros(total.saturating_sub(last)));
                totals.push(micros(total));
            }
        }
        let (gaps, totals) = (sorted(gaps), sorted(totals));
        producer.close().await;
        for c in consumers {
            c.close().await;
        }
        Ok(json!({
            "collect_after_last_us_p50": percentile(&gaps, 0.5),
            "collect_after_last_us_max": gaps.last().copied().unwrap_or(f64::NAN),
            "total_ms_p50": percentile(&totals, 0.5) / 1e3,
            "total_ms_p99": percentile(&totals, 0.99) / 1e3,
            "rounds": gaps.len(),
        }))
    })
}

fn paho_props(p: &PublishProperties) -> mqtt::Properties {
    let mut props = mqtt::Properties::new();
    if let Some(pfi) = p.payload_format_indicator {
        props
            .push_byte(mqtt::PropertyCode::PayloadFormatIndicator, pfi)
            .expect("property");
    }
    if let Some(ct) = &p.content_type {
        props
            .push_string(mqtt::PropertyCode::ContentType, ct)
            .expect("property");
    }
    for (k, v) in &p.user_properties {
        props
            .push_string_pair(mqtt::PropertyCode::UserProperty, k, v)
            .expect("property");
    }
    props
}

/// A QoS 1 publish of `payload` on `topic` with `props`, as the raw clients send it.
fn raw_message(topic: &str, payload: &[u8], props: &mqtt::Properties) -> mqtt::Message {
    mqtt::MessageBuilder::new()
        .topic(topic)
        .payload(payload)
        .qos(1)
        .properties(props.clone())
        .finalize()
}

fn raw_client(url: &str, id: &str) -> Res<mqtt::AsyncClient> {
    let create = mqtt::CreateOptionsBuilder::new()
        .server_uri(url.replace("mqtt://", "tcp://"))
        .client_id(id)
        .mqtt_version(mqtt::MQTT_VERSION_5)
        .persistence(mqtt::PersistenceType::None)
        .max_buffered_messages(100_000)
        .finalize();
    let cli = mqtt::AsyncClient::new(create)?;
    let conn = mqtt::ConnectOptionsBuilder::new_v5()
        .clean_start(true)
        .max_inflight(65_535)
        .finalize();
    cli.connect(conn).wait()?;
    Ok(cli)
}

fn raw_subscribe(cli: &mqtt::AsyncClient, filters: &[&str]) -> Res<()> {
    let opts =
        vec![
            mqtt::SubscribeOptions::new(true, true, mqtt::RetainHandling::SendRetainedOnSubscribe);
            filters.len()
        ];
    cli.subscribe_many_with_options(filters, &vec![1; filters.len()], &opts, None)
        .wait()?;
    Ok(())
}

/// The bench payload `json` encoded as oc2mqtt sends it, with its paho properties.
fn raw_payload(json: &str) -> Res<(Vec<u8>, mqtt::Properties)> {
    let msg = Message::from_json_value(serde_json::from_str(json)?)?;
    let (payload, props) = codec::encode(&msg, Encoding::Json, Dialect::Spec)?;
    Ok((payload, paho_props(&props)))
}

/// A raw paho-rust consumer `id` answering each command from paho's callback
/// thread on `oc2/rsp` and `oc2/rsp/<producer>`, until `stop` is set.
fn paho_responder(
    url: &str,
    id: &str,
    producer: &str,
    stop: Option<Arc<AtomicBool>>,
) -> Res<mqtt::AsyncClient> {
    let (rsp, rsp_props) = raw_payload(OK)?;
    let cons = raw_client(url, id)?;
    raw_subscribe(&cons, &[&format!("oc2/cmd/device/{id}")])?;
    let topics = ["oc2/rsp".to_owned(), format!("oc2/rsp/{producer}")];
    cons.set_message_callback(move |c, _| {
        if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            return;
        }
        for topic in &topics {
            drop(c.publish(raw_message(topic, &rsp, &rsp_props)));
        }
    });
    Ok(cons)
}

/// The consumer of a raw paho scenario: in this process, or in a child.
enum RawResponder {
    Here(mqtt::AsyncClient, Arc<AtomicBool>),
    Child(ChildResponder),
}

impl RawResponder {
    fn start(url: &str, id: &str, producer: &str, split: bool) -> Res<Self> {
        if split {
            return Ok(Self::Child(ChildResponder::start(
                "paho", url, id, producer,
            )?));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let cli = paho_responder(url, id, producer, Some(Arc::clone(&stop)))?;
        Ok(Self::Here(cli, stop))
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Self::Here(..) => None,
            Self::Child(c) => Some(c.pid()),
        }
    }

    /// The flag that stops an in-process responder (a child stops on close).
    fn stop(&self) -> Arc<AtomicBool> {
        match self {
            Self::Here(_, stop) => Arc::clone(stop),
            Self::Child(_) => Arc::default(),
        }
    }

    fn close(self) {
        match self {
            Self::Here(cli, stop) => {
                stop.store(true, Ordering::Relaxed);
                let _ = cli.disconnect(None).wait();
            }
            Self::Child(c) => drop(c),
        }
    }
}

/// Raw paho-rust ping-pong with oc2mqtt's wire pattern (the command on the
/// device topic; the response on `oc2/rsp` and `oc2/rsp/<producer>`), no
/// codec, no correlation, no tokio: callbacks on paho's threads.
fn paho(url: &str, seconds: f64, split: bool) -> Res<Value> {
    let (cmd, cmd_props) = raw_payload(DENY)?;
    let cons = RawResponder::start(url, "bench-raw-consumer", "bench-raw-producer", split)?;
    let prod = raw_client(url, "bench-raw-producer")?;
    raw_subscribe(&prod, &["oc2/rsp", "oc2/rsp/bench-raw-producer"])?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let tx = std::sync::Mutex::new(tx);
    prod.set_message_callback(move |_, m| {
        if let Some(m) = m {
            if m.topic() == "oc2/rsp/bench-raw-producer" {
                let _ = tx.lock().expect("lock").send(());
            }
        }
    });
    let round_trip = || -> Res<()> {
        let m = raw_message("oc2/cmd/device/bench-raw-consumer", &cmd, &cmd_props);
        drop(prod.publish(m));
        rx.recv_timeout(Duration::from_secs(5))?;
        Ok(())
    };
    let warm_until = Instant::now() + Duration::from_secs_f64((seconds / 3.0).max(0.5));
    while Instant::now() < warm_until {
        round_trip()?;
    }
    let mut lat = Vec::new();
    let cpu = Cpu::with_child(cons.pid());
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        let t0 = Instant::now();
        round_trip()?;
        lat.push(micros(t0.elapsed()));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu_client, cpu_broker, switches) = cpu.per(lat.len());
    let lat = sorted(lat);
    let _ = prod.disconnect(None).wait();
    cons.close();
    Ok(json!({
        "rt_per_s": lat.len() as f64 / elapsed,
        "p50_us": percentile(&lat, 0.5),
        "p99_us": percentile(&lat, 0.99),
        "n": lat.len(),
        "cpu_us_per_rt_client": cpu_client,
            "switches_per_rt_client": switches,
        "cpu_us_per_rt_broker": cpu_broker,
    }))
}

/// Raw paho-rust with 64 commands in flight: each response (on the
/// producer's own topic) triggers the next command from paho's callback.
fn paho_pipe(url: &str, seconds: f64, split: bool) -> Res<Value> {
    let (cmd, cmd_props) = raw_payload(DENY)?;
    let cons = RawResponder::start(url, "bench-rawp-consumer", "bench-rawp-producer", split)?;
    // Stop the ping-pong before disconnecting: paho-rust deadlocks when a
    // callback publishes while the client is being disconnected.
    let stop = cons.stop();
    let prod = raw_client(url, "bench-rawp-producer")?;
    raw_subscribe(&prod, &["oc2/rsp", "oc2/rsp/bench-rawp-producer"])?;
    let command = move || raw_message("oc2/cmd/device/bench-rawp-consumer", &cmd, &cmd_props);
    let done = Arc::new(AtomicU64::new(0));
    let d = Arc::clone(&done);
    let next = command.clone();
    let stop_p = Arc::clone(&stop);
    prod.set_message_callback(move |c, m| {
        if m.is_some_and(|m| m.topic() == "oc2/rsp/bench-rawp-producer") {
            d.fetch_add(1, Ordering::Relaxed);
            if !stop_p.load(Ordering::Relaxed) {
                drop(c.publish(next()));
            }
        }
    });
    for _ in 0..PIPELINE {
        drop(prod.publish(command()));
    }
    std::thread::sleep(Duration::from_secs_f64((seconds / 3.0).max(0.5)));
    let (n0, t0, cpu) = (
        done.load(Ordering::Relaxed),
        Instant::now(),
        Cpu::with_child(cons.pid()),
    );
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let n = done.load(Ordering::Relaxed) - n0;
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    let (cpu_client, cpu_broker, switches) = cpu.per(usize::try_from(n)?);
    stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    let _ = prod.disconnect(None).wait();
    cons.close();
    Ok(
        json!({"exchanges_per_s": rate, "n": n, "cpu_us_per_rt_client": cpu_client,
            "switches_per_rt_client": switches, "cpu_us_per_rt_broker": cpu_broker}),
    )
}

/// The C floor: `c/pingpong.c` with `flags` (`dual`: two response topics
/// like oc2mqtt; `pipe`: 64 in flight).
fn c_floor(c_bin: &Path, port: u16, seconds: f64, flags: &[&str]) -> Res<Value> {
    let payloads = root().join("bench/payloads");
    let mut p = Process::new(c_bin);
    p.arg(port.to_string())
        .arg(payloads.join("deny_command.json"))
        .arg(payloads.join("ok_response.json"))
        .arg("2000")
        .arg(seconds.to_string());
    p.args(flags);
    let broker_before = cpu_us(BROKER_PID.get().copied());
    let out = p
        .output()
        .map_err(|e| format!("cannot run {}: {e} (build it with run.sh)", c_bin.display()))?;
    if !out.status.success() {
        return Err(format!("pingpong failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let mut v: Value = serde_json::from_slice(&out.stdout)?;
    // The broker's CPU over the whole child run (warm-up included), per measured exchange.
    let n = v["n"].as_f64().unwrap_or(1.0);
    v["cpu_us_per_rt_broker_upper"] =
        json!((cpu_us(BROKER_PID.get().copied()) - broker_before) / n);
    Ok(v)
}

/// Checks TCP_NODELAY on every TCP socket of this process connected to the broker.
fn nodelay(url: &str, port: u16) -> Res<Value> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let producer = runtime().block_on(Producer::connect(config(url), "bench-nodelay"))?;
    let mut sockets = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        // SAFETY: `fd` is an open socket of this process; ownership goes back
        // with `into_raw_fd` below, so it is never closed here.
        let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        let peer = stream.peer_addr().ok();
        let nd = stream.nodelay().ok();
        let _ = stream.into_raw_fd();
        if let (Some(peer), Some(nd)) = (peer, nd) {
            if peer.port() == port {
                sockets.push(json!({"fd": fd, "peer": peer.to_string(), "tcp_nodelay": nd}));
            }
        }
    }
    runtime().block_on(producer.close());
    Ok(json!({ "sockets": sockets }))
}

// ---------------------------------------------------------------- memory

/// The consumer child: handles commands until `count`, printing
/// `<handled> <VmRSS KiB>` every 10 000 and at the end.
fn memory_consumer(url: &str, count: u64) -> Res<()> {
    runtime().block_on(async {
        let options = ConsumerOptions::new("bench-mem")
            .profile("slpf")
            .pair("deny", "ipv4_connection");
        let consumer = Consumer::connect(config(url), options).await?;
        let rss = || {
            vm_rss_kib(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
                .unwrap_or(0)
        };
        let mut out = std::io::stdout();
        writeln!(out, "0 {}", rss())?;
        out.flush()?;
        let mut n = 0u64;
        while let Some(incoming) = consumer.next().await {
            // response_requested none: `reply` sends nothing, as a real handler would.
            incoming.reply(Response::new(200)).await?;
            n += 1;
            if n % 10_000 == 0 || n == count {
                writeln!(out, "{n} {}", rss())?;
                out.flush()?;
            }
            if n >= count {
                break;
            }
        }
        let s = consumer.stats();
        writeln!(
            out,
            "stats {} {} {}",
            s.received, s.duplicates, s.decode_errors
        )?;
        out.flush()?;
        consumer.close().await;
        Res::Ok(())
    })
}

/// Publishes distinct deny commands (`response_requested: none`, a fresh
/// request_id each) from a raw paho client to a consumer child process, as
/// fast as the consumer takes them, for at most `budget`.
fn memory(url: &str, count: u64, budget: Duration) -> Res<Value> {
    let exe = std::env::current_exe()?;
    let mut child: Child = Process::new(exe)
        .args(["memory-consumer", url, &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let handled = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(u64, u64, f64)>::new()));
    let (h, s) = (Arc::clone(&handled), Arc::clone(&samples));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let t_start = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut stats = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("stats ") {
                stats = rest.to_owned();
                continue;
            }
            let mut it = line
                .split_whitespace()
                .map(|x| x.parse::<u64>().unwrap_or(0));
            let (n, rss) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            if n == 0 {
                let _ = ready_tx.send(());
            }
            h.store(n, Ordering::Relaxed);
            s.lock()
                .expect("lock")
                .push((n, rss, t_start.elapsed().as_secs_f64()));
        }
        stats
    });
    ready_rx.recv_timeout(Duration::from_secs(30))?;

    let template_id = "00000000-0000-4000-8000-000000000000";
    let mut deny = Message::from_json_value(serde_json::from_str(DENY)?)?;
    deny.headers.request_id = Some(template_id.to_owned());
    // Fresh: a consumer does not run commands older than its freshness window.
    deny.headers.created = Some(oc2mqtt::message::now_ms());
    deny.headers.to = Some(vec!["bench-mem".to_owned()]);
    if let oc2mqtt::message::Body::Request(cmd) = &mut deny.body {
        cmd.args
            .get_or_insert_with(Default::default)
            .insert("response_requested".into(), json!("none"));
    }
    let (mut payload, props) = codec::encode(&deny, Encoding::Json, Dialect::Spec)?;
    let at = payload
        .windows(template_id.len())
        .position(|w| w == template_id.as_bytes())
        .ok_or("request_id not in payload")?;
    let props = paho_props(&props);
    let cli = raw_client(url, "bench-mem-producer")?;
    let mut inflight = VecDeque::new();
    let start = Instant::now();
    let deadline = start + budget;
    let mut sent = 0u64;
    while sent < count && Instant::now() < deadline {
        // Keep the consumer's backlog bounded so nothing is queued in the broker.
        while sent.saturating_sub(handled.load(Ordering::Relaxed)) > 20_000
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        let id = format!("{:012x}", sent);
        payload[at + 24..at + 36].copy_from_slice(id.as_bytes());
        let m = raw_message("oc2/cmd/device/bench-mem", &payload, &props);
        inflight.push_back(cli.publish(m));
        if inflight.len() > 1_000 {
            inflight.pop_front().ok_or("empty")?.wait()?;
        }
        sent += 1;
    }
    for t in inflight {
        t.wait()?;
    }
    // Wait for the consumer to catch up (or the budget to end).
    while handled.load(Ordering::Relaxed) < sent
        && Instant::now() < deadline + Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let finished = handled.load(Ordering::Relaxed) >= count;
    if !finished {
        // Ours to end: the child we spawned, by its handle.
        let _ = child.kill();
    }
    let _ = child.wait();
    let stats = reader.join().map_err(|_| "reader panicked")?;
    let _ = cli.disconnect(None).wait();
    let samples = samples.lock().expect("lock").clone();
    let at_n = |target: u64| {
        samples
            .iter()
            .find(|(n, _, _)| *n >= target)
            .map(|(_, r, _)| *r)
    };
    let last = samples.last().copied().unwrap_or_default();
    Ok(json!({
        "requested": count,
        "sent": sent,
        "handled": last.0,
        "finished": finished,
        "seconds": elapsed,
        "commands_per_s": last.0 as f64 / elapsed,
        "rss_kib_start": at_n(0),
        "rss_kib_100k": at_n(100_000),
        "rss_kib_250k": at_n(250_000),
        "rss_kib_500k": at_n(500_000),
        "rss_kib_last": last.1,
        "rss_kib_max": samples.iter().map(|s| s.1).max(),
        "consumer_stats_received_duplicates_decode_errors": stats,
    }))
}

// ---------------------------------------------------------------- main

struct Args {
    scenarios: Vec<String>,
    repeat: usize,
    seconds: f64,
    memory_count: u64,
    memory_budget: f64,
    broadcast_rounds: usize,
    c_bin: PathBuf,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        scenarios: Vec::new(),
        repeat: 3,
        seconds: 3.0,
        memory_count: 1_000_000,
        memory_budget: 180.0,
        broadcast_rounds: 50,
        c_bin: std::env::var_os("PINGPONG_BIN").map_or_else(
            || {
                std::env::current_exe()
                    .ok()
                    .and_then(|e| Some(e.parent()?.join("pingpong")))
                    .unwrap_or_default()
            },
            PathBuf::from,
        ),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--repeat" => a.repeat = val("--repeat")?.parse()?,
            "--seconds" => a.seconds = val("--seconds")?.parse()?,
            "--memory-count" => a.memory_count = val("--memory-count")?.parse()?,
            "--memory-budget" => a.memory_budget = val("--memory-budget")?.parse()?,
            "--broadcast-rounds" => a.broadcast_rounds = val("--broadcast-rounds")?.parse()?,
            "--c-bin" => a.c_bin = PathBuf::from(val("--c-bin")?),
            "c" | "raw" | "raw-pipe" | "paho" | "paho-pipe" | "seq" | "serve" | "seq-inline" | "pipe" | "pipe-serve" | "pipe-inline" | "paho-split" | "paho-pipe-split" | "seq-split" | "serve-split" | "seq-inline-split" | "pipe-split" | "broadcast" | "memory" | "nodelay" => a.scenarios.push(arg),
            other => return Err(format!("unknown argument {other}; scenarios: c raw raw-pipe paho paho-pipe seq serve seq-inline pipe pipe-serve pipe-inline paho-split paho-pipe-split seq-split serve-split seq-inline-split pipe-split broadcast memory nodelay").into()),
        }
    }
    if a.scenarios.is_empty() {
        a.scenarios = [
            "nodelay",
            "c",
            "raw",
            "raw-pipe",
            "paho",
            "paho-pipe",
            "seq",
            "serve",
            "seq-inline",
            "pipe",
            "pipe-serve",
            "pipe-inline",
            "paho-split",
            "paho-pipe-split",
            "seq-split",
            "pipe-split",
            "broadcast",
            "memory",
        ]
        .map(String::from)
        .to_vec();
    }
    Ok(a)
}

/// Median of each numeric field over the runs.
fn medians(runs: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(Value::Object(first)) = runs.first() {
        for k in first.keys() {
            let vals: Vec<f64> = runs.iter().filter_map(|r| r[k].as_f64()).collect();
            if vals.len() == runs.len() {
                out.insert(k.clone(), json!(median(&vals)));
            }
        }
    }
    Value::Object(out)
}

fn main() -> Res<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("memory-consumer") {
        let (url, count) = (
            argv.get(2).ok_or("url")?,
            argv.get(3).ok_or("count")?.parse()?,
        );
        return memory_consumer(url, count);
    }
    if argv.get(1).map(String::as_str) == Some("responder-child") {
        let arg = |i: usize| {
            argv.get(i)
                .map(String::as_str)
                .ok_or("responder-child KIND URL ID PRODUCER")
        };
        return responder_child(arg(2)?, arg(3)?, arg(4)?, arg(5)?);
    }
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("oc2mqtt-bench-{}", std::process::id()));
    let broker = Broker::start(&dir)?;
    let url = broker.url();
    let _ = BROKER_PID.set(broker.pid);
    eprintln!("broker pid {} on {url}", broker.pid);
    let mut report = serde_json::Map::new();
    for name in &args.scenarios {
        let repeat = if matches!(name.as_str(), "memory" | "nodelay") {
            1
        } else {
            args.repeat
        };
        let mut runs = Vec::new();
        for _ in 0..repeat {
            let r = match name.as_str() {
                "c" => json!({
                    "plain": c_floor(&args.c_bin, broker.port, args.seconds, &[])?,
                    "dual": c_floor(&args.c_bin, broker.port, args.seconds, &["dual"])?,
                    "pipe_dual": c_floor(&args.c_bin, broker.port, args.seconds, &["dual", "pipe"])?,
                }),
                "raw" => raw::raw(broker.port, args.seconds, 1)?,
                "raw-pipe" => raw::raw_pipe(broker.port, args.seconds)?,
                "paho" => paho(&url, args.seconds, false)?,
                "paho-pipe" => paho_pipe(&url, args.seconds, false)?,
                "seq" => seq(&url, args.seconds, Style::Next, false)?,
                "serve" => seq(&url, args.seconds, Style::Serve, false)?,
                "seq-inline" => seq(&url, args.seconds, Style::Inline, false)?,
                "pipe" => pipe(&url, args.seconds, Style::Next, false)?,
                "pipe-serve" => pipe(&url, args.seconds, Style::Serve, false)?,
                "pipe-inline" => pipe(&url, args.seconds, Style::Inline, false)?,
                "paho-split" => paho(&url, args.seconds, true)?,
                "paho-pipe-split" => paho_pipe(&url, args.seconds, true)?,
                "seq-split" => seq(&url, args.seconds, Style::Next, true)?,
                "serve-split" => seq(&url, args.seconds, Style::Serve, true)?,
                "seq-inline-split" => seq(&url, args.seconds, Style::Inline, true)?,
                "pipe-split" => pipe(&url, args.seconds, Style::Next, true)?,
                "broadcast" => broadcast(&url, args.broadcast_rounds)?,
                "memory" => memory(
                    &url,
                    args.memory_count,
                    Duration::from_secs_f64(args.memory_budget),
                )?,
                "nodelay" => nodelay(&url, broker.port)?,
                _ => unreachable!("checked in parse_args"),
            };
            eprintln!("{name}: {r}");
            runs.push(r);
        }
        let med = if name == "c" {
            let part = |k: &str| medians(&runs.iter().map(|r| r[k].clone()).collect::<Vec<_>>());
            json!({ "plain": part("plain"), "dual": part("dual"), "pipe_dual": part("pipe_dual") })
        } else {
            medians(&runs)
        };
        report.insert(name.clone(), json!({ "median": med, "runs": runs }));
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
    Ok(())
}
