//! A fleet of devices (issue 22, item 3): how fast a `deny` reaches N
//! firewalls, and whether each ran it exactly once.
//!
//! Starts its own Mosquitto (`tests/broker/broker.py`), N consumers
//! `fw-0001`… in this process (each a core `Consumer` with its own MQTT
//! connection, all on the shared tokio runtime) and one `Producer`, then
//! sends, `--repeat` times each:
//!
//! - `to`: the bench deny with `to` naming all N devices (one publish per
//!   device topic, `oc2/cmd/device/<id>`), complete when each answered;
//! - `broadcast`: the same deny with no `to` (one publish on
//!   `oc2/cmd/ap/slpf`) and `expect` N.
//!
//! For each send: time from publish to the last answer (each `Reply`'s
//! latency is measured from just before the publish), time until
//! `collect` returned, answers lost (devices without a final answer at the
//! timeout), answers received twice, and every arrival time (for the plot).
//! Each device counts its executions per request id in its handler: at the
//! end, devices that never ran a command and devices that ran one twice.
//! Broker CPU (utime + stime of its pid) and this process's CPU over each
//! scenario, this process's VmRSS / VmHWM.
//!
//! With `--otupy-python PY`, the same consumers then answer real otupy's
//! producer (`bench/fleet/otupy_producer.py`, run by `PY`), `to` all N and
//! broadcast; its own timing comes back as JSON.
//!
//! `fleet [--devices N] [--repeat R] [--timeout S] [--handler next|serve]
//!  [--otupy-python PY] [--otupy-repeat R] [--otupy-timeout S]`; the JSON
//! report goes to stdout. `bench/fleet/run.sh` raises `ulimit -n`, runs this
//! and draws `bench/fleet/fleet.svg`.

use std::collections::HashMap;
use std::process::Command as Process;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oc2mqtt::client::{
    ClientConfig, Consumer, ConsumerOptions, MqttVersion, Producer, SendOptions, runtime,
};
use oc2mqtt::message::{Command, Message, Response};
use serde_json::{Value, json};

#[path = "../rust/src/fixture.rs"]
mod fixture;

use fixture::{Broker, Res, cpu_us, percentile, root};

const DENY: &str = include_str!("../payloads/deny_command.json");
const OK: &str = include_str!("../payloads/ok_response.json");
/// Consumers connecting at once.
const CONNECT_BATCH: usize = 100;

// ---------------------------------------------------------------- measures

/// CPU time (user + system) of a process so far, in ms; `None` is this process.
fn cpu_ms(pid: Option<u32>) -> f64 {
    cpu_us(pid) / 1e3
}

/// A `/proc/self/status` line in MiB (`VmRSS`, `VmHWM`).
fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------- fleet

/// Executions per request id, one counter per device.
type Runs = Arc<Mutex<HashMap<String, Vec<u32>>>>;

fn count_run(runs: &Runs, devices: usize, index: usize, msg: &Message) {
    let rid = msg.headers.request_id.clone().unwrap_or_default();
    let mut r = runs.lock().expect("runs lock");
    r.entry(rid).or_insert_with(|| vec![0; devices])[index] += 1;
}

fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.mqtt_version = MqttVersion::V5;
    // No session left behind on the broker between runs.
    c.session_expiry_secs = 0;
    c
}

fn device_id(i: usize) -> String {
    format!("fw-{:04}", i + 1)
}

/// N consumers, each answering the standard 200 and counting its runs:
/// `next` loops on `Consumer::next` on a task; `serve` uses `Consumer::serve`.
async fn start_fleet(url: &str, devices: usize, handler: &str, runs: &Runs) -> Res<Vec<Consumer>> {
    let rsp = ok_response();
    let mut consumers = Vec::with_capacity(devices);
    for start in (0..devices).step_by(CONNECT_BATCH) {
        let mut batch = tokio::task::JoinSet::new();
        for i in start..(start + CONNECT_BATCH).min(devices) {
            let options = ConsumerOptions::new(device_id(i))
                .profile("slpf")
                .pair("deny", "ipv4_connection");
            let cfg = config(url);
            batch.spawn(async move { (i, Consumer::connect(cfg, options).await) });
        }
        let mut connected = Vec::new();
        while let Some(r) = batch.join_next().await {
            let (i, c) = r?;
            connected.push((i, c.map_err(|e| format!("{}: {e}", device_id(i)))?));
        }
        connected.sort_by_key(|(i, _)| *i);
        for (i, c) in connected {
            let (runs, rsp, cc) = (Arc::clone(runs), rsp.clone(), c.clone());
            if handler == "serve" {
                tokio::spawn(async move {
                    cc.serve(move |msg| {
                        count_run(&runs, devices, i, msg);
                        Ok(Some(rsp.clone()))
                    })
                    .await
                });
            } else {
                tokio::spawn(async move {
                    while let Some(incoming) = cc.next().await {
                        count_run(&runs, devices, i, incoming.message());
                        if let Err(e) = incoming.respond(rsp.clone()) {
                            eprintln!("{}: reply failed: {e}", device_id(i));
                        }
                    }
                });
            }
            consumers.push(c);
        }
    }
    Ok(consumers)
}

/// The deny command of `bench/payloads`, asking for a `complete` response.
fn deny_command() -> Command {
    let v: Value = serde_json::from_str(DENY).expect("deny_command.json is JSON");
    let msg = Message::from_json_value(v).expect("deny_command.json is a valid message");
    let mut cmd = msg.command().expect("a command").clone();
    cmd.args
        .get_or_insert_with(Default::default)
        .insert("response_requested".into(), json!("complete"));
    cmd
}

fn ok_response() -> Response {
    let v: Value = serde_json::from_str(OK).expect("ok_response.json is JSON");
    let msg = Message::from_json_value(v).expect("ok_response.json is a valid message");
    msg.response().expect("a response").clone()
}

/// One send and its answers.
struct Round {
    request_id: String,
    /// ms from just before the publish to each answer, in arrival order.
    arrivals: Vec<f64>,
    /// ms until the exchange ended (complete or timed out).
    returned_ms: f64,
    complete: bool,
    /// Devices without a final answer at the end.
    lost: usize,
    /// Answers from a device that had answered already.
    duplicates: usize,
    not_200: usize,
}

async fn send_once(p: &Producer, devices: usize, mode: &str, timeout: Duration) -> Res<Round> {
    let ids: Vec<String> = (0..devices).map(device_id).collect();
    let options = match mode {
        "to" => SendOptions {
            to: ids,
            timeout,
            ..SendOptions::default()
        },
        _ => SendOptions {
            expect: Some(devices),
            timeout,
            ..SendOptions::default()
        },
    };
    let t0 = Instant::now();
    let mut exchange = p.send(deny_command(), options).await?;
    let mut arrivals = Vec::with_capacity(devices);
    let mut seen: HashMap<String, u32> = HashMap::with_capacity(devices);
    let mut not_200 = 0;
    while let Some(r) = exchange.next().await {
        arrivals.push(ms(r.latency));
        if r.message.response().map(|x| x.status) != Some(200) {
            not_200 += 1;
        }
        *seen
            .entry(r.message.headers.from.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let returned_ms = ms(t0.elapsed());
    let duplicates = seen.values().map(|&n| n as usize - 1).sum();
    Ok(Round {
        request_id: exchange.request_id().to_owned(),
        arrivals,
        returned_ms,
        complete: exchange.is_complete(),
        lost: devices - seen.len().min(devices),
        duplicates,
        not_200,
    })
}

/// `repeat` sends (after one warm-up) in `mode`: figures and the arrivals of the median send.
async fn scenario(
    p: &Producer,
    devices: usize,
    mode: &str,
    repeat: usize,
    timeout: Duration,
    broker_pid: u32,
) -> Res<(Value, Vec<String>)> {
    send_once(p, devices, mode, timeout).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cpu_broker, cpu_self) = (cpu_ms(Some(broker_pid)), cpu_ms(None));
    let mut rounds = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let r = send_once(p, devices, mode, timeout).await?;
        eprintln!(
            "{mode}: last answer {:.1} ms, returned {:.1} ms, {} answers, lost {}",
            r.arrivals.iter().copied().fold(0.0, f64::max),
            r.returned_ms,
            r.arrivals.len(),
            r.lost
        );
        rounds.push(r);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu_broker = (cpu_ms(Some(broker_pid)) - cpu_broker) / repeat as f64;
    let cpu_self = (cpu_ms(None) - cpu_self) / repeat as f64;
    let last = |r: &Round| r.arrivals.iter().copied().fold(0.0, f64::max);
    let mut lasts: Vec<f64> = rounds.iter().map(last).collect();
    lasts.sort_by(f64::total_cmp);
    let mut returned: Vec<f64> = rounds.iter().map(|r| r.returned_ms).collect();
    returned.sort_by(f64::total_cmp);
    let median_last = percentile(&lasts, 0.5);
    let median_round = rounds
        .iter()
        .min_by(|a, b| {
            (last(a) - median_last)
                .abs()
                .total_cmp(&(last(b) - median_last).abs())
        })
        .ok_or("no rounds")?;
    let ids = rounds.iter().map(|r| r.request_id.clone()).collect();
    Ok((
        json!({
            "sends": repeat,
            "last_answer_ms_p50": median_last,
            "last_answer_ms_p99": percentile(&lasts, 0.99),
            "last_answer_ms_max": lasts.last().copied().unwrap_or(f64::NAN),
            "returned_ms_p50": percentile(&returned, 0.5),
            "returned_ms_p99": percentile(&returned, 0.99),
            "incomplete_sends": rounds.iter().filter(|r| !r.complete).count(),
            "answers_lost": rounds.iter().map(|r| r.lost).sum::<usize>(),
            "answers_twice": rounds.iter().map(|r| r.duplicates).sum::<usize>(),
            "answers_not_200": rounds.iter().map(|r| r.not_200).sum::<usize>(),
            "broker_cpu_ms_per_send": cpu_broker,
            "client_cpu_ms_per_send": cpu_self,
            "arrivals_ms": median_round.arrivals,
        }),
        ids,
    ))
}

/// Executions of each request id: devices that never ran it, devices that ran it more than once.
fn executions(runs: &Runs, ids: &[String], devices: usize) -> Value {
    let r = runs.lock().expect("runs lock");
    let (mut never, mut twice) = (0, 0);
    for id in ids {
        match r.get(id) {
            Some(counts) => {
                never += counts.iter().filter(|&&n| n == 0).count();
                twice += counts.iter().filter(|&&n| n > 1).count();
            }
            None => never += devices,
        }
    }
    json!({ "commands": ids.len(), "device_never_ran": never, "device_ran_twice": twice })
}

/// Real otupy's producer (a Python child) against the same consumers.
fn otupy(py: &str, port: u16, a: &Args, mode: &str) -> Res<Value> {
    let script = root().join("bench/fleet/otupy_producer.py");
    let out = Process::new(py)
        .arg(&script)
        .args(["--port", &port.to_string()])
        .args(["--devices", &a.devices.to_string()])
        .args(["--repeat", &a.otupy_repeat.to_string()])
        .args(["--timeout", &a.otupy_timeout.to_string()])
        .args(["--mode", mode])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", script.display(), out.status).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

struct Args {
    devices: usize,
    repeat: usize,
    timeout: f64,
    handler: String,
    otupy_python: Option<String>,
    otupy_repeat: usize,
    otupy_timeout: f64,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        devices: 1000,
        repeat: 20,
        timeout: 30.0,
        handler: "next".into(),
        otupy_python: None,
        otupy_repeat: 3,
        otupy_timeout: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--devices" => a.devices = val("--devices")?.parse()?,
            "--repeat" => a.repeat = val("--repeat")?.parse()?,
            "--timeout" => a.timeout = val("--timeout")?.parse()?,
            "--handler" => a.handler = val("--handler")?,
            "--otupy-python" => a.otupy_python = Some(val("--otupy-python")?),
            "--otupy-repeat" => a.otupy_repeat = val("--otupy-repeat")?.parse()?,
            "--otupy-timeout" => a.otupy_timeout = val("--otupy-timeout")?.parse()?,
            other => {
                return Err(format!(
                    "unknown argument {other}; expected --devices N --repeat R --timeout S \
                     --handler next|serve --otupy-python PY --otupy-repeat R --otupy-timeout S"
                )
                .into());
            }
        }
    }
    if !matches!(a.handler.as_str(), "next" | "serve") {
        return Err(format!("--handler: expected next or serve, found {}", a.handler).into());
    }
    if a.devices == 0 || a.devices > 9999 || a.repeat == 0 {
        return Err("--devices must be 1..=9999 and --repeat at least 1".into());
    }
    Ok(a)
}

/// The correlator alone (`fleet correlate N`): one exchange expecting N
/// named responders, and one expecting a count of N, fed N final answers in
/// a shuffled order; µs per exchange, best of 20.
fn correlate(devices: usize) -> Value {
    use oc2mqtt::correlate::{Correlator, Expect, Outcome};
    let ids: Vec<String> = (0..devices).map(device_id).collect();
    // Answers arrive in no particular order: a fixed stride through the ids.
    let order: Vec<usize> = (0..devices).map(|i| (i * 7919) % devices).collect();
    let answers: Vec<Message> = order
        .iter()
        .map(|&i| {
            let mut m = Message::response_to(&Message::request(deny_command()), Response::new(200));
            m.headers.request_id = Some("r".into());
            m.headers.from = Some(ids[i].clone());
            m
        })
        .collect();
    let time = |expect: &dyn Fn() -> Expect| {
        (0..20)
            .map(|_| {
                let mut c: Correlator<()> = Correlator::new();
                c.open("r", expect(), u64::MAX, ()).expect("open");
                let t0 = Instant::now();
                let mut complete = false;
                for a in &answers {
                    complete = matches!(c.on_response(a), Outcome::Complete(_));
                }
                assert!(complete, "the last answer completes the exchange");
                t0.elapsed().as_secs_f64() * 1e6
            })
            .fold(f64::INFINITY, f64::min)
    };
    json!({
        "devices": devices,
        "named_responders_us": time(&|| Expect::from_to(Some(&ids))),
        "count_us": time(&|| Expect::Count(devices)),
    })
}

fn main() -> Res<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("correlate") {
        let n = argv.get(2).map_or(Ok(1000), |s| s.parse())?;
        println!("{}", correlate(n));
        return Ok(());
    }
    let a = parse_args()?;
    let dir = std::env::temp_dir().join(format!("oc2mqtt-fleet-{}", std::process::id()));
    let broker = Broker::start(&dir)?;
    let url = broker.url();
    eprintln!(
        "broker pid {} on {url}; {} devices ({} handler)",
        broker.pid, a.devices, a.handler
    );
    let timeout = Duration::from_secs_f64(a.timeout);
    // The fleet on the shared runtime (its two worker threads), the producer
    // on a runtime of its own, as if in another process: otherwise its
    // network task waits behind a thousand consumers' in one run queue.
    let runs: Runs = Arc::default();
    let rss_before = status_mib("VmRSS:");
    let t0 = Instant::now();
    let consumers = runtime().block_on(start_fleet(&url, a.devices, &a.handler, &runs))?;
    let connect_s = t0.elapsed().as_secs_f64();
    let rss_fleet = status_mib("VmRSS:");
    eprintln!(
        "{} consumers connected in {connect_s:.1} s",
        consumers.len()
    );
    let producer_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fleet-producer")
        .enable_all()
        .build()?;
    let report = producer_rt.block_on(async {
        let producer = Producer::connect(config(&url), "fleet-producer").await?;
        let (to, to_ids) =
            scenario(&producer, a.devices, "to", a.repeat, timeout, broker.pid).await?;
        let (bc, bc_ids) = scenario(
            &producer,
            a.devices,
            "broadcast",
            a.repeat,
            timeout,
            broker.pid,
        )
        .await?;
        // Late duplicates would show up in the counts after a pause.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut ids = to_ids;
        ids.extend(bc_ids);
        let execs = executions(&runs, &ids, a.devices);
        let rss_end = status_mib("VmRSS:");
        let report = json!({
            "devices": a.devices,
            "handler": a.handler,
            "connect_s": connect_s,
            "open_fds": open_fds(),
            "rss_mib_before_fleet": rss_before,
            "rss_mib_with_fleet": rss_fleet,
            "rss_mib_end": rss_end,
            "hwm_mib": status_mib("VmHWM:"),
            "to": to,
            "broadcast": bc,
            "executions": execs,
            "producer_stats": format!("{:?}", producer.stats()),
        });
        producer.close().await;
        Res::Ok(report)
    })?;
    let mut report = report;
    if let Some(py) = &a.otupy_python {
        for mode in ["to", "broadcast"] {
            eprintln!("otupy's producer, {mode} ...");
            let before = cpu_ms(Some(broker.pid));
            let mut r = otupy(py, broker.port, &a, mode)?;
            r["broker_cpu_ms_per_send"] =
                json!((cpu_ms(Some(broker.pid)) - before) / a.otupy_repeat as f64);
            report[format!("otupy_{mode}")] = r;
        }
        // Every command any producer sent: no device ran one twice.
        let r = runs.lock().expect("runs lock");
        report["executions_all_producers"] = json!({
            "commands": r.len(),
            "device_ran_twice": r.values().flatten().filter(|&&n| n > 1).count(),
        });
    }
    runtime().block_on(async {
        for c in consumers {
            c.close().await;
        }
    });
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
