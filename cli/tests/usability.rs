//! What a shell user expects of `oc2mqtt`, beside what it does: logs fit
//! for pipes, a quiet end when the reader of stdout goes away, typo hints,
//! settings from the environment, progress on a terminal, completions and
//! man pages. Terminals are pseudo-terminals (`stderr_on_pty.py`).

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Broker, repo_root};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_oc2mqtt");
const QUERY: &str = r#"{"action":"query","target":{"features":["versions"]}}"#;

/// `oc2mqtt ARGS` with `env`, its stdout and stderr pipes, no OC2MQTT_* or
/// RUST_LOG from the caller's environment.
fn oc2mqtt(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    for (k, _) in std::env::vars() {
        if k.starts_with("OC2MQTT_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    oc2mqtt(args, env).output().expect("run oc2mqtt")
}

/// What a run with stderr on a pseudo-terminal (stdout still a pipe) gave.
struct PtyRun {
    code: i64,
    stdout: String,
    stderr: String,
}

fn run_on_pty(args: &[&str], env: &[(&str, &str)]) -> PtyRun {
    let mut cmd = Command::new("python3");
    cmd.arg(repo_root().join("cli/tests/stderr_on_pty.py"))
        .arg(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied());
    let out = cmd.output().expect("run stderr_on_pty.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    PtyRun {
        code: v["code"].as_i64().expect("code"),
        stdout: v["stdout"].as_str().expect("stdout").to_owned(),
        stderr: v["stderr"].as_str().expect("stderr").to_owned(),
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn closed_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("mqtt://127.0.0.1:{}", l.local_addr().expect("addr").port())
}

/// `oc2mqtt serve` for `device`, ready; killed on drop.
struct Serve(Child);

impl Serve {
    fn start(b: &Broker, device: &str) -> Self {
        let url = b.url();
        let mut child = oc2mqtt(&["serve", "--broker", &url, "--device-id", device], &[])
            .spawn()
            .expect("spawn serve");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("ready") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("serve is ready");
        Self(child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn verbose_logs_are_plain_in_pipes_and_only_oc2mqtts_own() {
    let b = Broker::start();
    let url = b.url();
    let args = [
        "send",
        "-vv",
        "--broker",
        &url,
        "--from",
        "p1",
        "--timeout",
        "0.5",
        QUERY,
    ];
    let out = run(&args, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("command sent"), "-vv logs: {err}");
    assert!(!err.contains('\x1b'), "no colour codes in a pipe: {err:?}");
    for line in err
        .lines()
        .filter(|l| l.contains("DEBUG") || l.contains("INFO"))
    {
        assert!(
            line.contains(" oc2mqtt"),
            "a line of another library: {line}"
        );
    }

    let coloured = run_on_pty(&args, &[]);
    assert!(
        coloured.stderr.contains("\x1b["),
        "colours on a terminal: {:?}",
        coloured.stderr
    );
    let plain = run_on_pty(&args, &[("NO_COLOR", "1")]);
    assert_eq!(plain.code, 3, "{}", plain.stderr);
    assert!(plain.stderr.contains("command sent"), "{}", plain.stderr);
    assert!(
        !plain.stderr.contains('\x1b'),
        "NO_COLOR: no colours on a terminal either: {:?}",
        plain.stderr
    );
}

#[test]
fn monitor_into_a_closed_pipe_exits_quietly_with_0() {
    let b = Broker::start();
    let url = b.url();
    let mut monitor = oc2mqtt(&["monitor", "--broker", &url, "--json"], &[])
        .spawn()
        .expect("spawn monitor");
    let err = BufReader::new(monitor.stderr.take().expect("stderr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ready line");
    assert!(ready.contains("watching oc2/#"), "{ready}");
    // What `monitor --json | head -1` does: read one line, close the pipe.
    let mut out = BufReader::new(monitor.stdout.take().expect("stdout"));
    let send = |id: &str| {
        run(
            &[
                "send",
                "--broker",
                &url,
                "--from",
                id,
                "--timeout",
                "0.2",
                QUERY,
            ],
            &[],
        )
    };
    send("p1");
    let mut first = String::new();
    out.read_line(&mut first).expect("a line");
    assert!(first.starts_with(r#"{"kind":"request""#), "{first}");
    drop(out);
    // The next events meet a closed pipe.
    for id in ["p2", "p3"] {
        send(id);
    }
    let (tx_exit, rx_exit) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx_exit.send(monitor.wait());
    });
    let status = rx_exit
        .recv_timeout(Duration::from_secs(30))
        .expect("monitor ends when its reader went away")
        .expect("wait");
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(rest.is_empty(), "nothing on stderr: {rest:?}");
}

#[test]
fn a_mistyped_flag_gets_a_similar_flag_tip() {
    let url = closed_url();
    let out = run(&["send", "--brokr", &url, "--from", "p1", QUERY], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: unexpected argument '--brokr' found"),
        "{err}"
    );
    assert!(
        err.contains("a similar argument exists: '--broker'"),
        "{err}"
    );
}

#[test]
fn connection_settings_come_from_the_environment_and_flags_win() {
    let b = Broker::start();
    let url = b.url();
    let _serve = Serve::start(&b, "fw-1");
    let send = [
        "send",
        "--from",
        "p1",
        "--to",
        "fw-1",
        "--timeout",
        "3",
        QUERY,
    ];

    // Comma-separated brokers, tried in order: the first refuses.
    let brokers = format!("{},{url}", closed_url());
    let out = run(&send, &[("OC2MQTT_BROKER", &brokers)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);

    // --broker wins over OC2MQTT_BROKER.
    let closed = closed_url();
    let mut with_flag = send.to_vec();
    with_flag.extend(["--broker", &url]);
    let out = run(&with_flag, &[("OC2MQTT_BROKER", &closed)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&send, &[("OC2MQTT_BROKER", &closed)]);
    assert_eq!(
        (out.status.code(), stderr(&out)),
        (
            Some(1),
            format!("error: cannot connect to {closed}: connection refused\n")
        )
    );

    // An empty OC2MQTT_BROKER (or an empty entry in it) names the variable.
    for empty in ["", " ", &format!("{url},")] {
        let out = run(&send, &[("OC2MQTT_BROKER", empty)]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let want = format!(
            "error: OC2MQTT_BROKER is set to '{empty}', which holds an empty broker URL: set it to \
             mqtt://HOST:PORT (several separated by commas), or unset it and pass --broker\n"
        );
        assert!(stderr(&out).starts_with(&want), "{}", stderr(&out));
    }

    // Values from the environment are checked as flags are.
    let out = run(
        &send,
        &[("OC2MQTT_BROKER", &url), ("OC2MQTT_MQTT_VERSION", "4.2")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value '4.2' for '--mqtt-version"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &send,
        &[
            ("OC2MQTT_BROKER", &url),
            ("OC2MQTT_TOPIC_PREFIX", "site-a/"),
        ],
    );
    assert_eq!(
        (out.status.code(), stderr(&out)),
        (Some(3), "timed out waiting for: fw-1\n".to_owned()),
        "the prefix is taken: fw-1 listens without one"
    );

    // A --client-id-file flag overrides OC2MQTT_CLIENT_ID rather than clashing with it.
    let dir = tempfile::tempdir().expect("temp dir");
    let id_file = dir.path().join("client-id");
    let id_file = id_file.to_str().expect("utf-8 path");
    let mut with_file = send.to_vec();
    with_file.extend(["--client-id-file", id_file]);
    let out = run(
        &with_file,
        &[("OC2MQTT_BROKER", &url), ("OC2MQTT_CLIENT_ID", "from-env")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::path::Path::new(id_file).exists(), "the file was used");
    with_file.extend(["--client-id", "from-flag"]);
    let out = run(&with_file, &[("OC2MQTT_BROKER", &url)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--client-id and --client-id-file cannot be used together"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_password_comes_from_the_environment_and_never_shows() {
    let url = closed_url();
    let out = run(
        &["send", "--broker", &url, "--from", "p1", QUERY],
        &[("OC2MQTT_PASSWORD", "hunter2")],
    );
    assert_eq!(
        (out.status.code(), stderr(&out)),
        (
            Some(2),
            "error: configuration: a password was given without a username\n".to_owned()
        ),
        "OC2MQTT_PASSWORD is read"
    );
    let out = run(
        &["send", "--help"],
        &[("OC2MQTT_PASSWORD", "hunter2"), ("OC2MQTT_USERNAME", "ctl")],
    );
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for name in [
        "OC2MQTT_BROKER",
        "OC2MQTT_CLIENT_ID",
        "OC2MQTT_USERNAME=ctl",
        "OC2MQTT_PASSWORD",
        "OC2MQTT_CA",
        "OC2MQTT_CERT",
        "OC2MQTT_KEY",
        "OC2MQTT_MQTT_VERSION",
        "OC2MQTT_TOPIC_PREFIX",
        "OC2MQTT_PEER",
    ] {
        assert!(help.contains(name), "--help names {name}: {help}");
    }
    assert!(!help.contains("hunter2"), "{help}");
}

#[test]
fn send_on_a_terminal_shows_who_answered_and_who_is_awaited() {
    let b = Broker::start();
    let url = b.url();
    let _serve = Serve::start(&b, "fw-1");
    let args = [
        "send",
        "--broker",
        &url,
        "--from",
        "p1",
        "--to",
        "fw-1",
        "--to",
        "fw-2",
        "--timeout",
        "2",
        QUERY,
    ];
    let tty = run_on_pty(&args, &[]);
    assert_eq!(tty.code, 3, "{}", tty.stderr);
    assert!(
        tty.stderr
            .contains("answered: none yet; awaiting: fw-1, fw-2; "),
        "{:?}",
        tty.stderr
    );
    assert!(
        tty.stderr.contains("answered: fw-1; awaiting: fw-2; "),
        "{:?}",
        tty.stderr
    );
    assert!(
        tty.stderr.contains("\rtimed out waiting for: fw-2"),
        "the line is erased before the verdict: {:?}",
        tty.stderr
    );
    assert_eq!(tty.stdout.lines().count(), 1, "{}", tty.stdout);
    assert!(!tty.stdout.contains("answered:"), "{}", tty.stdout);

    // A pipe sees none of it.
    let out = run(&args, &[]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stderr(&out), "timed out waiting for: fw-2\n");
}

#[test]
fn completions_and_man_pages_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for word in [
            "oc2mqtt",
            "send",
            "serve",
            "monitor",
            "broker",
            "mqtt-version",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = run(&["man"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie"),
        "roff: {}",
        &page[..80.min(page.len())]
    );
    assert!(page.contains(".TH oc2mqtt 1"), "{page}");
    for word in ["send", "serve", "monitor", "completions"] {
        assert!(page.contains(word), "the page names {word}");
    }
    let out = run(&["man", "send"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH oc2mqtt-send 1"), "{page}");
    assert!(page.contains("OC2MQTT_BROKER"), "{page}");
    let out = run(&["man", "sned"], &[]);
    assert_eq!(out.status.code(), Some(2));
}
