//! The `oc2mqtt` binary against a real Mosquitto (started per test by
//! `tests/broker/broker.py` on free ports): each subcommand, its exit codes
//! and its error messages.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_oc2mqtt");
const WAIT: Duration = Duration::from_secs(30);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A throwaway Mosquitto, stopped by PID on drop.
struct Broker {
    info: Value,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("python3")
            .arg(repo_root().join("tests/broker/broker.py"))
            .args(["start", "--dir"])
            .arg(dir.path())
            .args(extra)
            .output()
            .expect("run broker.py");
        assert!(
            out.status.success(),
            "broker.py start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).expect("utf-8");
        let info: Value =
            serde_json::from_str(line.lines().next().expect("one JSON line")).expect("broker JSON");
        Self { info, _dir: dir }
    }

    fn port(&self) -> u16 {
        u16::try_from(self.info["port"].as_u64().expect("port")).expect("port fits")
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port())
    }

    fn tls_url(&self) -> String {
        format!(
            "mqtts://localhost:{}",
            self.info["tls_port"].as_u64().expect("tls_port")
        )
    }

    fn file(&self, key: &str) -> String {
        self.info[key].as_str().expect("path").to_owned()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(pid) = self.info["pid"].as_u64() {
            let _ = Command::new("python3")
                .arg(repo_root().join("tests/broker/broker.py"))
                .args(["stop", "--pid", &pid.to_string()])
                .status();
        }
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

/// Runs `oc2mqtt ARGS` to completion (killed after 30 s).
fn run_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped())
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn oc2mqtt");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("wait for oc2mqtt"),
        Err(_) => {
            signal(pid, "-KILL");
            panic!("oc2mqtt {args:?} did not finish within {WAIT:?}");
        }
    }
}

fn run(args: &[&str]) -> Output {
    run_with(args, &[], None)
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed by a signal")
}

fn stdout_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `oc2mqtt` running in the background (serve, monitor), its output read line by line.
struct Bg {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    err_seen: Vec<String>,
}

fn lines_of(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Bg {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .env_remove("RUST_LOG")
            .spawn()
            .expect("spawn oc2mqtt");
        let out = lines_of(child.stdout.take().expect("stdout"));
        let err = lines_of(child.stderr.take().expect("stderr"));
        Self {
            child,
            out,
            err,
            err_seen: Vec::new(),
        }
    }

    /// Waits until a stderr line contains `needle`.
    fn wait_stderr(&mut self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.err_seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(line) => self.err_seen.push(line),
                Err(_) => panic!("no stderr line with {needle:?}; got {:?}", self.err_seen),
            }
        }
    }

    fn next_stdout(&self) -> String {
        self.out.recv_timeout(WAIT).expect("a stdout line")
    }

    /// Waits for the exit; returns the code and the rest of stderr.
    fn wait(&mut self) -> (i32, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "oc2mqtt did not exit; stderr so far {:?}",
                self.err_seen
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.err.recv_timeout(Duration::from_secs(5)) {
            self.err_seen.push(line);
        }
        (
            status.code().expect("exited, not killed by a signal"),
            self.err_seen.join("\n"),
        )
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn serve(b: &Broker, device: &str) -> Bg {
    let url = b.url();
    let mut s = Bg::spawn(&[
        "serve",
        "--broker",
        &url,
        "--device-id",
        device,
        "--profile",
        "slpf",
        "--pair",
        "deny:ipv4_connection",
    ]);
    s.wait_stderr("ready");
    s
}

const QUERY: &str = r#"{"action":"query","target":{"features":["versions","profiles","pairs"]}}"#;
const DENY4: &str =
    r#"{"action":"deny","target":{"ipv4_connection":{"protocol":"tcp","dst_port":80}}}"#;
const DENY6: &str = r#"{"action":"deny","target":{"ipv6_connection":{}}}"#;

fn response(line: &Value) -> &Value {
    &line["body"]["openc2"]["response"]
}

#[test]
fn serve_answers_query_features_and_declared_pairs() {
    let b = Broker::start(&[]);
    let url = b.url();
    let s = serve(&b, "fw-1");
    let send = |extra: &[&str], cmd: &str| {
        let mut args = vec!["send", "--broker", &url, "--from", "p1"];
        args.extend_from_slice(extra);
        args.push(cmd);
        run(&args)
    };

    let out = send(&["--to", "fw-1"], QUERY);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(r#"{"headers":{"request_id":""#),
        "printed in the specification's order: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1, "one response: {lines:?}");
    assert_eq!(
        response(&lines[0]),
        &json!({"status": 200, "results": {
            "versions": ["1.0"], "profiles": ["slpf"],
            "pairs": {"query": ["features"], "deny": ["ipv4_connection"]}}})
    );
    let h = &lines[0]["headers"];
    assert_eq!((&h["from"], &h["to"]), (&json!("fw-1"), &json!(["p1"])));
    assert!(
        h["request_id"].as_str().is_some_and(|id| id.len() == 36),
        "request_id in the headers: {h}"
    );
    assert!(h["created"].is_i64());

    let out = send(&["--to", "fw-1"], DENY4);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_lines(&out)
            .iter()
            .map(|l| response(l).clone())
            .collect::<Vec<_>>(),
        [json!({"status": 200})]
    );
    assert!(
        s.next_stdout().contains("handled deny ipv4_connection"),
        "serve prints the handled command"
    );

    let out = send(&["--to", "fw-1"], DENY6);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        response(&stdout_lines(&out)[0]),
        &json!({"status": 501, "status_text": "deny ipv6_connection is not implemented by this consumer"})
    );

    // Other encodings and dialects: the consumer answers in kind, send prints the canonical form.
    for (encoding, dialect) in [("cbor", "spec"), ("json", "otupy"), ("cbor", "otupy")] {
        let out = send(
            &["--to", "fw-1", "--encoding", encoding, "--dialect", dialect],
            DENY4,
        );
        assert_eq!(code(&out), 0, "{encoding}/{dialect}: {}", stderr(&out));
        let lines = stdout_lines(&out);
        assert_eq!(
            response(&lines[0]),
            &json!({"status": 200}),
            "{encoding}/{dialect}"
        );
        assert_eq!(lines[0]["headers"]["from"], "fw-1");
    }

    // A whole message (here the MQTT-T example, response_requested ack) from a file: its command is sent.
    let file = repo_root().join("bench/payloads/deny_command.json");
    let out = send(&["--to", "fw-1"], &format!("@{}", file.display()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(response(&stdout_lines(&out)[0]), &json!({"status": 102}));

    // From stdin.
    let out = run_with(
        &[
            "send", "--broker", &url, "--from", "p1", "--to", "fw-1", "-",
        ],
        &[],
        Some(DENY6),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(response(&stdout_lines(&out)[0])["status"], 501);

    // A broadcast (no --to, no --expect): the timeout is its normal end.
    let out = send(&["--timeout", "1"], QUERY);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_lines(&out).len(), 1);
}

#[test]
fn send_names_the_responders_it_is_still_waiting_for() {
    let b = Broker::start(&[]);
    let url = b.url();
    let _s = serve(&b, "fw-1");
    let out = run(&[
        "send",
        "--broker",
        &url,
        "--from",
        "p1",
        "--to",
        "fw-1",
        "--to",
        "fw-2",
        "--to",
        "fw-3",
        "--timeout",
        "1",
        DENY4,
    ]);
    assert_eq!(code(&out), 3);
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["headers"]["from"], "fw-1");
    assert_eq!(stderr(&out), "timed out waiting for: fw-2, fw-3\n");

    let out = run(&[
        "send",
        "--broker",
        &url,
        "--from",
        "p1",
        "--expect",
        "2",
        "--timeout",
        "1",
        QUERY,
    ]);
    assert_eq!(code(&out), 3);
    assert_eq!(stdout_lines(&out).len(), 1);
    assert_eq!(
        stderr(&out),
        "timed out waiting for responses: 1 of 2 expected responders answered within 1 s\n"
    );

    let out = run(&[
        "send",
        "--broker",
        &url,
        "--from",
        "p1",
        "--profile",
        "nobody",
        "--timeout",
        "0.5",
        QUERY,
    ]);
    assert_eq!(code(&out), 3);
    assert!(out.stdout.is_empty());
    assert_eq!(stderr(&out), "no response within 0.5 s\n");

    // A recipient that cannot be a topic level is refused before anything is published.
    let out = run(&[
        "send", "--broker", &url, "--from", "p1", "--to", "fw#1", QUERY,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("error: invalid topic: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn journal_shows_what_a_restart_would_run_again_and_refuses_other_files() {
    let b = Broker::start(&[]);
    let url = b.url();
    let dir = tempfile::tempdir().expect("dir");
    let journal = dir.path().join("journal");
    let journal = journal.to_str().expect("utf-8 path");
    let mut s = Bg::spawn(&[
        "serve",
        "--broker",
        &url,
        "--device-id",
        "fw-1",
        "--work-ms",
        "60000",
        "--journal",
        journal,
    ]);
    s.wait_stderr("ready");
    let out = run(&[
        "send",
        "--broker",
        &url,
        "--from",
        "p1",
        "--to",
        "fw-1",
        "--timeout",
        "0.5",
        DENY4,
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // Killed while its handler works: the command was taken and not answered.
    s.child.kill().expect("SIGKILL serve");
    let _ = s.child.wait();
    let out = run(&["journal", "--json", journal]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["state"], "run_again");
    assert_eq!(lines[0]["command"], "deny ipv4_connection");
    assert_eq!(lines[0]["from"], "p1");
    assert_eq!(lines[0]["topic"], "oc2/cmd/device/fw-1");
    assert!(
        lines[0]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(lines[1], json!({"state": "finished", "count": 0}));
    let text = String::from_utf8(run(&["journal", journal]).stdout).expect("utf-8");
    assert!(
        text.starts_with("run again   deny ipv4_connection request_id=")
            && text.contains(" from=p1 on oc2/cmd/device/fw-1\n")
            && text.ends_with(
                "finished    0 commands remembered (not run again if they come again)\n"
            ),
        "{text}"
    );
    // Reading changed nothing: a second look says the same.
    assert_eq!(stdout_lines(&run(&["journal", "--json", journal])), lines);

    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "hello world\n").expect("write");
    let out = run(&["journal", other.to_str().expect("utf-8 path")]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "error: configuration: journal {}: line 1 is not one this library writes: hello world\n",
            other.display()
        )
    );
    let missing = dir.path().join("missing");
    let out = run(&["journal", missing.to_str().expect("utf-8 path")]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("cannot read it: No such file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_exits_0_on_sigterm_and_sigint() {
    let b = Broker::start(&[]);
    for sig in ["-TERM", "-INT"] {
        let mut s = serve(&b, "fw-1");
        signal(s.child.id(), sig);
        let (code, err) = s.wait();
        assert_eq!(code, 0, "{err}");
        assert!(err.contains(&format!("SIG{}: stopped", &sig[1..])), "{err}");
    }
}

#[test]
fn signals_stop_serve_and_monitor_while_they_connect() {
    // A server that accepts TCP and never answers CONNECT: the CLI waits
    // for a CONNACK (10 s by default) and must still stop at once.
    let silent = Broker::start(&["--kind", "silent"]);
    let url = silent.url();
    for (cmd, sig) in [("serve", "-TERM"), ("monitor", "-INT")] {
        let mut args = vec![cmd, "--broker", &url];
        if cmd == "serve" {
            args.extend(["--device-id", "fw-1"]);
        }
        let mut bg = Bg::spawn(&args);
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        signal(bg.child.id(), sig);
        let (code, err) = bg.wait();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{cmd} took {:?}",
            started.elapsed()
        );
        assert_eq!(code, 130, "{cmd}: {err}");
        assert!(
            err.contains(&format!(
                "oc2mqtt {cmd}: SIG{} while connecting to {url}: stopped",
                &sig[1..]
            )),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn serve_says_which_mqtt_version_it_speaks_and_works_on_rabbitmq() {
    let b = Broker::start(&["--kind", "rabbitmq"]);
    let url = b.url();
    let mut s = Bg::spawn(&["serve", "--broker", &url, "--device-id", "fw-1"]);
    s.wait_stderr("ready");
    assert!(
        s.err_seen
            .iter()
            .any(|l| l.contains(&format!("ready on {url} with MQTT 3.1.1"))),
        "{:?}",
        s.err_seen
    );
    let out = run(&[
        "send",
        "--broker",
        &url,
        "--from",
        "ctl-1",
        "--to",
        "fw-1",
        "--timeout",
        "5",
        QUERY,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(response(&lines[0])["status"], 200);
    // With --mqtt-version 5 the error names the version and what to use.
    let out = run(&[
        "send",
        "--broker",
        &url,
        "--from",
        "ctl-1",
        "--mqtt-version",
        "5",
        QUERY,
    ]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("does not speak MQTT v5") && err.contains("--mqtt-version 3.1.1"),
        "{err}"
    );
    signal(s.child.id(), "-TERM");
    assert_eq!(s.wait().0, 0);
}

#[test]
fn serve_with_a_group_exits_2_on_a_broker_without_shared_subscriptions() {
    let b = Broker::start(&["--kind", "activemq"]);
    let url = b.url();
    let out = run(&[
        "serve",
        "--broker",
        &url,
        "--device-id",
        "fw-1",
        "--group",
        "pool",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "consumer groups need shared subscriptions ($share/<group>/...), and the check of the broker at {url} failed"
        )) && err.contains("RabbitMQ 3.10 and ActiveMQ 5.17 do not")
            && !err.contains("ready"),
        "{err}"
    );
}

/// Publishes a raw payload with a hand-rolled MQTT v3.1.1 client (QoS 0, no properties).
fn publish_raw(port: u16, topic: &str, payload: &[u8]) {
    fn remaining(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let mut byte = u8::try_from(n % 128).expect("7 bits");
            n /= 128;
            if n > 0 {
                byte |= 0x80;
            }
            out.push(byte);
            if n == 0 {
                break;
            }
        }
    }
    fn string(s: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&u16::try_from(s.len()).expect("short").to_be_bytes());
        out.extend_from_slice(s);
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02, 0, 30]);
    string(b"raw-test-publisher", &mut body);
    let mut packet = vec![0x10];
    remaining(body.len(), &mut packet);
    packet.extend_from_slice(&body);
    s.write_all(&packet).expect("CONNECT");
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("CONNACK");
    assert_eq!(connack, [0x20, 2, 0, 0], "connection accepted");
    let mut body = Vec::new();
    string(topic.as_bytes(), &mut body);
    body.extend_from_slice(payload);
    let mut packet = vec![0x30];
    remaining(body.len(), &mut packet);
    packet.extend_from_slice(&body);
    packet.extend_from_slice(&[0xE0, 0]);
    s.write_all(&packet).expect("PUBLISH, DISCONNECT");
}

#[test]
fn monitor_json_pairs_requests_and_responses() {
    let b = Broker::start(&[]);
    let url = b.url();
    let _s = serve(&b, "fw-1");
    let mut m = Bg::spawn(&["monitor", "--broker", &url, "--json", "--count", "2"]);
    m.wait_stderr("watching oc2/#");
    let out = run(&[
        "send", "--broker", &url, "--from", "p1", "--to", "fw-1", QUERY,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rid = stdout_lines(&out)[0]["headers"]["request_id"].clone();
    let events: Vec<Value> = (0..2)
        .map(|_| serde_json::from_str(&m.next_stdout()).expect("a JSON line"))
        .collect();
    let (code, err) = m.wait();
    assert_eq!(code, 0, "{err}");

    assert_eq!(events[0]["kind"], "request");
    assert_eq!(events[0]["topic"], "oc2/cmd/device/fw-1");
    assert_eq!(events[0]["message"]["headers"]["request_id"], rid);
    assert_eq!(
        events[0]["message"]["body"]["openc2"]["request"]["action"],
        "query"
    );
    assert!(events[0]["received_ms"].is_i64());
    // The response is published once, on oc2/rsp.
    assert_eq!(events[1]["topic"], "oc2/rsp");
    for e in &events[1..] {
        assert_eq!(e["kind"], "response");
        assert_eq!(e["message"]["headers"]["request_id"], rid);
        assert_eq!(e["message"]["body"]["openc2"]["response"]["status"], 200);
        assert_eq!(
            (e["encoding"].as_str(), e["dialect"].as_str()),
            (Some("json"), Some("spec"))
        );
    }
    let latency = events[1]["latency_ms"]
        .as_f64()
        .expect("latency of the first response");
    assert!((0.0..10_000.0).contains(&latency), "{latency}");
}

#[test]
fn monitor_shows_undecodable_payloads_and_missing_responders() {
    let b = Broker::start(&[]);
    let url = b.url();
    let mut m = Bg::spawn(&[
        "monitor",
        "--broker",
        &url,
        "--count",
        "2",
        "--duration",
        "20",
    ]);
    m.wait_stderr("watching oc2/#");
    let out = run(&[
        "send",
        "--broker",
        &url,
        "--from",
        "p1",
        "--to",
        "fw-9",
        "--timeout",
        "0.5",
        DENY4,
    ]);
    assert_eq!(code(&out), 3);
    let request = m.next_stdout();
    let rid = request.split(' ').nth(3).expect("request id").to_owned();
    assert!(
        request.ends_with(&format!(
            "oc2/cmd/device/fw-9 request {rid} p1 → fw-9 deny ipv4_connection"
        )),
        "{request}"
    );
    publish_raw(b.port(), "oc2/cmd/all", b"{\"headers\": ");
    let bad = m.next_stdout();
    assert!(bad.contains(" oc2/cmd/all undecodable (syntax): "), "{bad}");
    assert!(bad.ends_with("payload (12 bytes): {\"headers\": "), "{bad}");
    let (code, err) = m.wait();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("no response yet to {rid} from: fw-9")),
        "{err}"
    );
}

#[test]
fn monitor_stops_after_its_duration() {
    let b = Broker::start(&[]);
    let started = Instant::now();
    let out = run(&["monitor", "--broker", &b.url(), "--duration", "0.5"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_commands_and_settings_are_usage_errors() {
    // Nothing listens: every case below must fail before connecting.
    let url = format!("mqtt://127.0.0.1:{}", closed_port());
    let send = |extra: &[&str], cmd: &str| {
        let mut args = vec!["send", "--broker", &url, "--from", "p1"];
        args.extend_from_slice(extra);
        args.push(cmd);
        run(&args)
    };
    let cases: [(&[&str], &str, &str); 11] = [
        (
            &["--set", "keepalive=5"],
            QUERY,
            "error: --set keepalive=5: unknown setting 'keepalive' for ClientConfig; known: brokers, client_id,",
        ),
        (
            &["--set", "session_expiry_secs=soon"],
            QUERY,
            "error: --set session_expiry_secs=soon: expected a whole number from 0 to 4294967295, found 'soon'\n",
        ),
        (
            &["--set", "password=hunter2"],
            QUERY,
            "error: --set password: cannot be set on the command line",
        ),
        (
            // Checked by the core after it is applied, named as the library names it.
            &["--set", "qos=0"],
            QUERY,
            "error: configuration: --qos is 0, but OpenC2 over MQTT uses 1 or 2\n",
        ),
        (
            &[],
            "not json",
            "error: COMMAND is not a valid OpenC2 command: ",
        ),
        (
            &[],
            r#"{"action":"explode","target":{"x":{}}}"#,
            "error: COMMAND is not a valid OpenC2 command: action: ",
        ),
        (
            &[],
            r#"{"status":200}"#,
            "error: COMMAND is a response, not a command\n",
        ),
        (
            &[],
            "@/nonexistent/command.json",
            "error: cannot read COMMAND file /nonexistent/command.json: ",
        ),
        (
            &["--keep-alive", "600"],
            QUERY,
            "error: configuration: --keep-alive is 600, but MQTT-T allows at most 300\n",
        ),
        (
            &["--cert", "/nonexistent/client.pem"],
            QUERY,
            "error: configuration: --cert and --key must be given together\n",
        ),
        (
            &["--password-env", "OC2MQTT_SURELY_UNSET"],
            QUERY,
            "error: --password-env OC2MQTT_SURELY_UNSET: the environment variable OC2MQTT_SURELY_UNSET is not set\n",
        ),
    ];
    for (extra, cmd, expected) in cases {
        let out = send(extra, cmd);
        assert_eq!(code(&out), 2, "{extra:?} {cmd}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with(expected),
            "{extra:?} {cmd}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty());
        assert!(
            !stderr(&out).contains("hunter2"),
            "a secret repeated: {}",
            stderr(&out)
        );
    }
    let out = run(&["send", "--broker", &url, "--from", "p#1", QUERY]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "error: invalid topic: producer id 'p#1' contains '#', which MQTT topic names forbid\n"
    );
    let out = run_with(
        &[
            "send",
            "--broker",
            &url,
            "--from",
            "p1",
            "--password-env",
            "PW",
            QUERY,
        ],
        &[("PW", "x")],
        None,
    );
    assert_eq!(
        (code(&out), stderr(&out).as_str()),
        (
            2,
            "error: configuration: a password was given without a username\n"
        )
    );

    // clap's own usage errors.
    for args in [
        &[
            "send",
            "--broker",
            &url,
            "--from",
            "p1",
            "--mqtt-version",
            "4.2",
            QUERY,
        ][..],
        &[
            "send", "--broker", &url, "--from", "p1", "--qos", "0", QUERY,
        ],
        &[
            "send",
            "--broker",
            &url,
            "--from",
            "p1",
            "--timeout",
            "-1",
            QUERY,
        ],
        &["send", "--broker", &url, QUERY],
        &[
            "serve",
            "--broker",
            &url,
            "--device-id",
            "fw-1",
            "--pair",
            "deny",
        ],
    ] {
        let out = run(args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(
            stderr(&out).starts_with("error: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = run(&[
        "serve",
        "--broker",
        &url,
        "--device-id",
        "fw-1",
        "--pair",
        "explode:x",
    ]);
    assert_eq!(
        (code(&out), stderr(&out).as_str()),
        (
            2,
            "error: configuration: pair explode:x: unknown action 'explode'\n"
        )
    );
    let out = run(&["send", "--broker", "http://x:1", "--from", "p1", QUERY]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "error: configuration: broker URL 'http://x:1': unsupported scheme 'http'; expected mqtt, mqtts, ws or wss\n"
    );
}

#[test]
fn flag_values_are_refused_with_cores_texts() {
    // Refused before connecting (the port is closed): the names and ranges a
    // flag takes are core's, with the text every language gives.
    let url = format!("mqtt://127.0.0.1:{}", closed_port());
    for (flag, value, text) in [
        (
            "--encoding",
            "xml",
            "unsupported encoding 'xml'; expected json or cbor",
        ),
        (
            "--dialect",
            "flat",
            "unknown dialect 'flat'; expected spec, otupy or bare",
        ),
        (
            "--mqtt-version",
            "4.2",
            "unknown MQTT version '4.2'; expected 5, 3.1.1 or auto",
        ),
        ("--expect", "0", "error: --expect: must be at least 1\n"),
        (
            "--qos",
            "3",
            "error: configuration: --qos is 3, but OpenC2 over MQTT uses 1 or 2\n",
        ),
    ] {
        let out = run(&["send", "--broker", &url, "--from", "p1", flag, value, QUERY]);
        assert_eq!(code(&out), 2, "{flag} {value}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(text),
            "{flag} {value}: {}",
            stderr(&out)
        );
    }
    // The help names the values from core's tables.
    let help = run(&["send", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for names in [
        "<json|cbor>",
        "<spec|otupy|bare>",
        "<spec|otupy|yuuki|oif>",
        "<shared|producer|both>",
        "<5|3.1.1|auto>",
    ] {
        assert!(help.contains(names), "{names} not in:\n{help}");
    }
}

#[test]
fn send_refuses_query_features_against_the_producer_rules() {
    // Refused before connecting: the broker port is closed on purpose.
    let url = format!("mqtt://127.0.0.1:{}", closed_port());
    let timed = r#"{"action":"query","target":{"features":["versions"]},"args":{"start_time":1700000000000}}"#;
    let out = run(&["send", "--broker", &url, "--from", "p1", timed]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("args.start_time: query features takes no argument other than response_requested: complete"),
        "{}",
        stderr(&out)
    );
    let twice = r#"{"action":"query","target":{"features":["pairs","pairs"]}}"#;
    let out = run(&["send", "--broker", &url, "--from", "p1", twice]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("'pairs' is listed twice"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn connection_refused_exits_1_with_the_reason() {
    let url = format!("mqtt://127.0.0.1:{}", closed_port());
    let expected = format!("error: cannot connect to {url}: connection refused\n");
    for args in [
        &["send", "--broker", &url, "--from", "p1", QUERY][..],
        &["serve", "--broker", &url, "--device-id", "fw-1"],
        &["monitor", "--broker", &url],
    ] {
        let out = run(args);
        assert_eq!(
            (code(&out), stderr(&out)),
            (1, expected.clone()),
            "{args:?}"
        );
    }
}

#[test]
fn a_wrong_password_exits_1_with_the_reason() {
    let b = Broker::start(&["--user", "u:p"]);
    let url = b.url();
    let args = [
        "send",
        "--broker",
        &url,
        "--from",
        "p1",
        "--username",
        "u",
        "--password-env",
        "OC2MQTT_TEST_PW",
        "--timeout",
        "0.5",
        QUERY,
    ];
    let out = run_with(&args, &[("OC2MQTT_TEST_PW", "wrong")], None);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "error: broker refused the connection: bad user name or password\n"
    );
    let out = run_with(&args, &[("OC2MQTT_TEST_PW", "p")], None);
    assert_eq!(
        (code(&out), stderr(&out).as_str()),
        (3, "no response within 0.5 s\n"),
        "the right password connects"
    );
}

#[test]
fn tls_errors_are_clear_and_skipping_verification_is_loud() {
    let b = Broker::start(&["--tls"]);
    let url = b.tls_url();
    let send = |extra: &[&str]| {
        let mut args = vec!["send", "--broker", &url, "--from", "p1", "--timeout", "0.5"];
        args.extend_from_slice(extra);
        args.push(QUERY);
        run(&args)
    };
    let wrong = b.file("wrong_ca");
    let out = send(&["--ca", &wrong]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.starts_with("error: TLS: certificate verify failed"),
        "{err}"
    );
    assert!(err.ends_with(" for localhost\n"), "{err}");

    let ca = b.file("ca");
    let out = send(&["--ca", &ca]);
    assert_eq!(
        (code(&out), stderr(&out).as_str()),
        (3, "no response within 0.5 s\n"),
        "the right CA connects"
    );

    let out = send(&["--ca", &wrong, "--insecure-skip-verify"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("WARNING: --insecure-skip-verify: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_slpf_refuses_arguments_it_does_not_take() {
    // SLPF 2.3.1/2.3.2: an unsupported argument, or a value SLPF does not
    // define, MUST NOT get 200.
    let b = Broker::start(&[]);
    let url = b.url();
    let _s = serve(&b, "fw-1");
    let send = |command: &str| {
        let out = run(&[
            "send", "--broker", &url, "--from", "p1", "--to", "fw-1", command,
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        response(&stdout_lines(&out)[0]).clone()
    };
    let sideways = send(
        r#"{"action":"deny","target":{"ipv4_connection":{}},"args":{"slpf":{"direction":"sideways"}}}"#,
    );
    assert_eq!(sideways["status"], 400, "{sideways}");
    assert!(
        sideways["status_text"]
            .as_str()
            .is_some_and(|t| t.contains("args.slpf.direction")),
        "{sideways}"
    );
    let acme = send(r#"{"action":"deny","target":{"ipv4_connection":{}},"args":{"x-acme":1}}"#);
    assert_eq!(acme["status"], 501, "{acme}");
    let ingress = send(
        r#"{"action":"deny","target":{"ipv4_connection":{}},"args":{"slpf":{"direction":"ingress"}}}"#,
    );
    assert_eq!(ingress["status"], 200, "{ingress}");
}

#[test]
fn peer_and_response_topics_are_checked_flags() {
    let out = run(&[
        "send",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--from",
        "p1",
        "--peer",
        "acme",
        QUERY,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("expected spec, otupy, yuuki or oif"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "send",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--from",
        "p1",
        "--response-topics",
        "all",
        QUERY,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("expected shared, producer or both"),
        "{}",
        stderr(&out)
    );
}
