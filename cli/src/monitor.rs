//! `oc2mqtt monitor`: watch OpenC2 traffic.

use std::time::Duration;

use clap::Args;
use oc2mqtt::Message;
use oc2mqtt::client::{Monitor, MonitorEvent};
use oc2mqtt::monitor::Observed;
use serde::Serialize;

use crate::common::{Common, EXIT_OK, Failure, Signals, clock, parse_secs, print_line};

/// Longest payload preview of an undecodable message, in characters (or bytes, in hex).
const PREVIEW: usize = 200;

/// Prints every OpenC2 message on the filter, one line each, with responses
/// paired to their command (latency) and payloads that cannot be decoded
/// shown with the reason. Stops after --count events, after --duration, or on
/// SIGINT/SIGTERM; then names on stderr the responders that never answered.
///
/// Human lines (times are UTC): TIME TOPIC request ID FROM → TO ACTION TARGET;
/// TIME TOPIC response ID FROM → TO STATUS NAME [TEXT] LATENCY.
#[derive(Args, Debug)]
pub(crate) struct MonitorArgs {
    /// Topic filter to watch [default: oc2/# under --topic-prefix].
    #[arg(long, value_name = "F")]
    filter: Option<String>,
    /// One JSON object per line, in this order: kind, topic, received_ms,
    /// encoding, dialect, latency_ms (responses), message (canonical form,
    /// headers then body); or, for undecodable payloads, the error and a
    /// payload preview.
    #[arg(long)]
    json: bool,
    /// Stop after N events.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after SEC seconds.
    #[arg(long, value_name = "SEC", value_parser = parse_secs)]
    duration: Option<Duration>,
    #[command(flatten)]
    common: Common,
}

impl MonitorArgs {
    pub(crate) fn common(&self) -> &Common {
        &self.common
    }

    pub(crate) fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

/// The payload of an undecodable message, readable: text when it is UTF-8, else hex.
fn preview(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(text) => {
            let mut p: String = text.chars().take(PREVIEW).collect();
            if p.len() < text.len() {
                p.push('…');
            }
            p
        }
        Err(_) => {
            let hex: String = payload
                .iter()
                .take(PREVIEW / 2)
                .map(|b| format!("{b:02x}"))
                .collect();
            let more = if payload.len() > PREVIEW / 2 {
                "…"
            } else {
                ""
            };
            format!("hex:{hex}{more}")
        }
    }
}

/// Milliseconds, to the microsecond.
fn latency_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn parties(msg: &Message) -> String {
    let h = &msg.headers;
    let to = match h.to.as_deref() {
        Some(to) if !to.is_empty() => to.join(","),
        _ => "*".to_owned(),
    };
    format!(
        "{} {} → {to}",
        h.request_id.as_deref().unwrap_or("-"),
        h.from.as_deref().unwrap_or("-")
    )
}

fn observed_line(o: &Observed, latency: Option<Option<Duration>>) -> String {
    let m = &o.message;
    let what = if let Some(c) = m.command() {
        format!("{} {}", c.action, c.target.name)
    } else if let Some(r) = m.response() {
        let mut s = format!(
            "{} {}",
            r.status,
            oc2mqtt::message::status_name(r.status).unwrap_or_default()
        );
        if let Some(text) = &r.status_text {
            s.push_str(&format!(" \"{text}\""));
        }
        match latency {
            Some(Some(d)) => s.push_str(&format!(" {:.3} ms", d.as_secs_f64() * 1e3)),
            Some(None) => s.push_str(" (command not seen)"),
            None => {}
        }
        s
    } else {
        String::new()
    };
    let mut line = format!(
        "{} {} {} {} {what}",
        clock(o.received_ms),
        o.topic,
        m.msg_type(),
        parties(m)
    )
    .trim_end()
    .to_owned();
    for w in &o.warnings {
        line.push_str(&format!(" (warning: {w})"));
    }
    line
}

/// One `--json` line: `kind` first (core's name for the event, as every
/// binding shows it), then what a person scans for, the message last and in
/// the specification's order (headers, then body).
#[derive(Serialize)]
struct JsonLine<'a> {
    kind: &'static str,
    #[serde(flatten)]
    event: JsonEvent<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonEvent<'a> {
    Observed(JsonObserved<'a>),
    Undecodable {
        topic: &'a str,
        received_ms: i64,
        error: String,
        error_kind: &'static str,
        payload_len: usize,
        payload_preview: String,
    },
    Unanswered {
        received_ms: i64,
        request_id: &'a str,
        missing: &'a [String],
    },
}

#[derive(Serialize)]
struct JsonObserved<'a> {
    topic: &'a str,
    received_ms: i64,
    encoding: &'static str,
    dialect: &'static str,
    /// Responses only: milliseconds since their command, `null` when it was not seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<Option<f64>>,
    /// What it holds against the specification, kept as received.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    message: &'a Message,
}

impl<'a> JsonObserved<'a> {
    fn new(o: &'a Observed, latency: Option<Option<Duration>>) -> Self {
        Self {
            topic: &o.topic,
            received_ms: o.received_ms,
            encoding: o.encoding.as_str(),
            dialect: o.dialect.as_str(),
            latency_ms: latency.map(|l| l.map(latency_ms)),
            warnings: &o.warnings,
            message: &o.message,
        }
    }
}

/// The event as a human-readable line or a JSON object.
fn render(event: &MonitorEvent, as_json: bool) -> String {
    let now = oc2mqtt::message::now_ms();
    if as_json {
        let line = match event {
            MonitorEvent::Request(o) | MonitorEvent::Notification(o) => {
                JsonEvent::Observed(JsonObserved::new(o, None))
            }
            MonitorEvent::Response { observed, latency } => {
                JsonEvent::Observed(JsonObserved::new(observed, Some(*latency)))
            }
            MonitorEvent::Undecodable {
                topic,
                payload,
                error,
                received_ms,
            } => JsonEvent::Undecodable {
                topic,
                received_ms: *received_ms,
                error: error.to_string(),
                error_kind: error.kind.as_str(),
                payload_len: payload.len(),
                payload_preview: preview(payload),
            },
            MonitorEvent::Unanswered {
                request_id,
                missing,
            } => JsonEvent::Unanswered {
                received_ms: now,
                request_id,
                missing,
            },
        };
        let line = JsonLine {
            kind: event.kind(),
            event: line,
        };
        // Serializing borrowed strings, numbers and a message cannot fail.
        return serde_json::to_string(&line).expect("a JSON line");
    }
    match event {
        MonitorEvent::Request(o) | MonitorEvent::Notification(o) => observed_line(o, None),
        MonitorEvent::Response { observed, latency } => observed_line(observed, Some(*latency)),
        MonitorEvent::Undecodable {
            topic,
            payload,
            error,
            received_ms,
        } => format!(
            "{} {topic} undecodable ({}): {error}; payload ({} bytes): {}",
            clock(*received_ms),
            error.kind,
            payload.len(),
            preview(payload)
        ),
        MonitorEvent::Unanswered {
            request_id,
            missing,
        } => {
            format!(
                "{} unanswered {request_id}: no final response from {}",
                clock(now),
                missing.join(", ")
            )
        }
    }
}

async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

pub(crate) async fn run(args: MonitorArgs) -> Result<u8, Failure> {
    let mut signals = Signals::install()?;
    let monitor = crate::common::connect_or_signal(
        &mut signals,
        "monitor",
        &args.common.broker_list(),
        Monitor::connect(args.common.config()?, args.filter.clone()),
    )
    .await?;
    let filter = monitor.filters().join(", ");
    eprintln!(
        "oc2mqtt monitor: watching {filter} on {}; stop with Ctrl-C",
        args.common.broker_list()
    );
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut seen = 0u64;
    let result = loop {
        if args.count.is_some_and(|n| seen >= n) {
            break Ok(());
        }
        let event = tokio::select! {
            e = monitor.next() => match e {
                Some(e) => e,
                None => break Ok(()),
            },
            _ = signals.recv() => break Ok(()),
            () = until(deadline) => break Ok(()),
        };
        seen += 1;
        if let Err(e) = print_line(&render(&event, args.json)) {
            break Err(e);
        }
    };
    // With stdout closed (`| head -1`) the reader is gone: nothing more to say.
    let stdout_closed = result.as_ref().is_err_and(Failure::is_quiet);
    let pending = if stdout_closed {
        Vec::new()
    } else {
        monitor.pending()
    };
    for (request_id, mut missing) in pending {
        missing.sort();
        eprintln!(
            "no response yet to {request_id} from: {}",
            missing.join(", ")
        );
    }
    monitor.close().await;
    result.map(|()| EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn previews_are_text_or_hex_and_bounded() {
        assert_eq!(preview(b"{\"oops\""), "{\"oops\"");
        assert_eq!(preview(&[0xff, 0x00, 0x10]), "hex:ff0010");
        let long = "x".repeat(500);
        assert_eq!(preview(long.as_bytes()).chars().count(), PREVIEW + 1);
    }

    #[test]
    fn human_lines_show_who_what_and_latency() {
        let cmd = oc2mqtt::Command::new("deny", oc2mqtt::Target::new("ipv4_connection", json!({})))
            .expect("cmd");
        let req = Message::request(cmd).from("p1").to(["fw-1"]);
        let rsp =
            Message::response_to(&req, oc2mqtt::Response::new(501).with_text("no")).from("fw-1");
        let o = |m: Message, topic: &str| Observed {
            warnings: Vec::new(),
            topic: topic.into(),
            message: m,
            encoding: oc2mqtt::Encoding::Json,
            dialect: oc2mqtt::Dialect::Spec,
            received_ms: 0,
        };
        let rid = req.headers.request_id.clone().expect("id");
        let rsp_unpaired = rsp.clone();
        let request_json = render(&MonitorEvent::Request(o(req.clone(), "oc2/cmd/all")), true);
        let line = render(&MonitorEvent::Request(o(req, "oc2/cmd/device/fw-1")), false);
        assert_eq!(
            line,
            format!(
                "00:00:00.000 oc2/cmd/device/fw-1 request {rid} p1 → fw-1 deny ipv4_connection"
            )
        );
        let event = MonitorEvent::Response {
            observed: o(rsp, "oc2/rsp/p1"),
            latency: Some(Duration::from_micros(1500)),
        };
        assert_eq!(
            render(&event, false),
            format!(
                "00:00:00.000 oc2/rsp/p1 response {rid} fw-1 → p1 501 Not Implemented \"no\" 1.500 ms"
            )
        );
        let line = render(&event, true);
        assert!(
            line.starts_with(r#"{"kind":"response","topic":"oc2/rsp/p1","#)
                && line.contains(r#""message":{"headers":{"request_id":"#),
            "kind first, the message last in the specification's order: {line}"
        );
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(
            (v["kind"].as_str(), v["latency_ms"].as_f64()),
            (Some("response"), Some(1.5))
        );
        let unpaired = MonitorEvent::Response {
            observed: o(rsp_unpaired, "oc2/rsp"),
            latency: None,
        };
        let v: Value = serde_json::from_str(&render(&unpaired, true)).expect("json");
        assert!(
            v["latency_ms"].is_null(),
            "a response whose command was not seen: {v}"
        );
        let v: Value = serde_json::from_str(&request_json).expect("json");
        assert!(
            v.get("latency_ms").is_none(),
            "requests have no latency: {v}"
        );
    }
}
