//! `oc2mqtt send`: one command, its responses as JSON lines.

use std::io::Read;
use std::time::Duration;

use clap::Args;
use oc2mqtt::client::{Producer, SendOptions};
use oc2mqtt::message::ResponseRequested;
use oc2mqtt::settings::Settings;
use oc2mqtt::{Body, Command, Dialect, Encoding, codec};

use crate::common::{
    Common, EXIT_INCOMPLETE, EXIT_OK, Failure, by_core, names, parse_secs, print_line, reason,
};

/// A send's default timeout, core's, as `--timeout` reads it.
static DEFAULT_TIMEOUT_SECS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| SendOptions::default().timeout.as_secs_f64().to_string());
use crate::progress::{Progress, StatusLine};

static ENCODINGS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| names(&Encoding::NAMES));
static DIALECTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| names(&Dialect::NAMES));

/// Sends one command and prints each response, as it arrives, as one line of
/// JSON: the whole response message, headers included, in the spec's shape.
///
/// Exit status: 0 when every expected responder answered (or, for a broadcast
/// with no --to and no --expect, when at least one answered before the
/// timeout); 2 for a usage or configuration error; 3 when the timeout passed
/// with expected responders missing (named on stderr); 1 for other errors.
#[derive(Args, Debug)]
pub(crate) struct SendArgs {
    /// This producer's id: the command's `from`; responses come back on oc2/rsp/<ID>.
    #[arg(long, value_name = "ID")]
    from: String,
    /// Recipient device id; repeat for several. The command then goes to
    /// oc2/cmd/device/<ID> and is complete when each one answered. Without
    /// --to it is broadcast (oc2/cmd/ap/<PROFILE> with --profile, else oc2/cmd/all).
    #[arg(long = "to", value_name = "ID")]
    to: Vec<String>,
    /// Actuator profile (slpf, ...), set as the command's actuator when it has none.
    #[arg(long, value_name = "PROFILE")]
    profile: Option<String>,
    /// Seconds to wait for responses.
    #[arg(long, value_name = "SEC", default_value = DEFAULT_TIMEOUT_SECS.as_str(), value_parser = parse_secs)]
    timeout: Duration,
    /// Complete after this many distinct responders answered (a broadcast whose audience size is known).
    #[arg(long, value_name = "N")]
    expect: Option<u32>,
    /// Payload encoding.
    #[arg(long, value_name = ENCODINGS.as_str(), default_value_t = SendOptions::default().encoding, value_parser = by_core::<Encoding>)]
    encoding: Encoding,
    /// Wire shape of the command: spec (MQTT-T headers/body), otupy (flat), or
    /// bare (the command object, with request_id, created, from and to beside
    /// its keys) [default: the --peer's, spec unless --peer otupy].
    #[arg(long, value_name = DIALECTS.as_str(), value_parser = by_core::<Dialect>)]
    dialect: Option<Dialect>,
    /// The command as JSON text, @FILE, or - for stdin: the command object
    /// ({"action": "query", "target": {"features": ["versions"]}}), or a whole
    /// message in any dialect, of which only the command is used.
    // Not `allow_hyphen_values`: a mistyped flag (`--brokr URL`) must get
    // clap's "similar argument" tip, not be read as COMMAND; a lone `-`
    // (stdin) is a value to clap anyway, and JSON never starts with `-`.
    #[arg(value_name = "COMMAND")]
    command: String,
    #[command(flatten)]
    common: Common,
}

impl SendArgs {
    pub(crate) fn common(&self) -> &Common {
        &self.common
    }

    pub(crate) fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

/// Reads COMMAND: JSON text, `@file` or `-`, decoded by the core's codec.
fn read_command(arg: &str) -> Result<Command, Failure> {
    let bytes = if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::usage(format!("cannot read COMMAND from stdin: {e}")))?;
        buf
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read(path)
            .map_err(|e| Failure::usage(format!("cannot read COMMAND file {path}: {e}")))?
    } else {
        arg.as_bytes().to_vec()
    };
    let decoded = codec::decode(&bytes, None)
        .map_err(|e| Failure::usage(format!("COMMAND is not a valid OpenC2 command: {e}")))?;
    match decoded.message.body {
        Body::Request(command) => Ok(command),
        other => Err(Failure::usage(format!(
            "COMMAND is a {}, not a command",
            other.msg_type()
        ))),
    }
}

pub(crate) async fn run(args: SendArgs) -> Result<u8, Failure> {
    let command = read_command(&args.command)?;
    // The producer's rules, checked before connecting: a usage error.
    command
        .check_before_sending()
        .map_err(|e| Failure::from(oc2mqtt::Error::from(e)))?;
    let options = args.options()?;
    let producer = Producer::connect(args.common.config()?, &args.from).await?;
    let result = exchange(&producer, command, options, &args).await;
    producer.close().await;
    result
}

impl SendArgs {
    /// The send's options, checked by core's table before connecting (an
    /// `--expect 0` is refused as `expect: must be at least 1` is everywhere).
    fn options(&self) -> Result<SendOptions, Failure> {
        let options = SendOptions {
            to: self.to.clone(),
            profile: self.profile.clone(),
            timeout: self.timeout,
            expect: self.expect.map(|n| n as usize),
            encoding: self.encoding,
            dialect: self.dialect,
        };
        options
            .check_values()
            .map_err(|e| Failure::usage(format!("--{}", reason(&e))))?;
        Ok(options)
    }
}

async fn exchange(
    producer: &Producer,
    command: Command,
    options: SendOptions,
    args: &SendArgs,
) -> Result<u8, Failure> {
    let ack = command.response_requested() == ResponseRequested::Ack;
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut exchange = producer.send(command, options).await?;
    tracing::info!(request_id = exchange.request_id(), "command sent");
    // On a terminal, a line on stderr says who answered and who is awaited.
    let mut status = StatusLine::on_terminal().filter(|_| !exchange.is_closed());
    let mut progress = Progress::new(
        exchange.request_id(),
        &args.to,
        args.expect.map(|n| n as usize),
        ack,
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        if let Some(s) = &mut status {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            s.show(&progress.line(left));
        }
        let reply = tokio::select! {
            r = exchange.next() => match r {
                Some(r) => r,
                None => break,
            },
            Some(u) = producer.next_unsolicited() => {
                clear(&mut status);
                report_unsolicited(&u)?;
                continue;
            }
            _ = tick.tick(), if status.is_some() => continue,
        };
        clear(&mut status);
        progress.on_response(&reply.message);
        report_other_name(&reply, &args.to);
        // In the specification's order (headers, then body), whatever the dialect it came in.
        let line = serde_json::to_string(&reply.message)
            .map_err(|e| Failure::runtime(format!("cannot print a response: {e}")))?;
        print_line(&line)?;
    }
    // Erased before the verdict goes to stderr.
    drop(status);
    if exchange.is_complete() {
        return Ok(EXIT_OK);
    }
    let mut missing = exchange.missing().to_vec();
    missing.sort();
    if !missing.is_empty() {
        eprintln!("timed out waiting for: {}", missing.join(", "));
        return Ok(EXIT_INCOMPLETE);
    }
    let secs = args.timeout.as_secs_f64();
    if let Some(n) = args.expect {
        let answered = progress.answered();
        eprintln!(
            "timed out waiting for responses: {answered} of {n} expected responders answered within {secs} s"
        );
        return Ok(EXIT_INCOMPLETE);
    }
    // Who answered is the correlator's rule (a final response; a 102 only for
    // `ack`): a broadcast that got only 102s was not answered.
    if progress.answered() > 0 {
        // A broadcast to an unknown audience: the timeout is its normal end.
        return Ok(EXIT_OK);
    }
    eprintln!("no response within {secs} s");
    Ok(EXIT_INCOMPLETE)
}

fn clear(status: &mut Option<StatusLine>) {
    if let Some(s) = status {
        s.clear();
    }
}

/// A response that matched no open exchange (a peer's bare
/// `{"status":200}` without request_id, say): shown on stderr, so that
/// standard output keeps only this command's responses.
fn report_unsolicited(reply: &oc2mqtt::client::Reply) -> Result<(), Failure> {
    let line = serde_json::to_string(&reply.message)
        .map_err(|e| Failure::runtime(format!("cannot print a response: {e}")))?;
    eprintln!(
        "unsolicited response on {} (matches no command of this run): {line}",
        reply.topic
    );
    Ok(())
}

/// A response whose `from` is none of the addressed ids (yuuki answers as
/// "Yuuki", the OIF device as its MQTT client id): counted for the one
/// responder still awaited, and said so.
fn report_other_name(reply: &oc2mqtt::client::Reply, to: &[String]) {
    let from = reply.message.headers.from.as_deref();
    let named = from.is_some_and(|f| {
        to.iter()
            .any(|t| t == f || oc2mqtt::rules::address_id(f) == t.as_str())
    });
    if !to.is_empty() && !named {
        eprintln!(
            "note: a response to request_id {} came from {}, which is not an addressed id; \
             it answers for the one responder still awaited",
            reply.message.headers.request_id.as_deref().unwrap_or("-"),
            from.map_or_else(|| "no one (no from)".to_owned(), |f| format!("'{f}'"))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_object_and_whole_messages_are_accepted() {
        let c = read_command(r#"{"action":"query","target":{"features":["versions"]}}"#)
            .expect("bare command");
        assert_eq!(
            (c.action.as_str(), c.target.name.as_str()),
            ("query", "features")
        );
        let spec = r#"{"headers":{"request_id":"r1","from":"p"},"body":{"openc2":{"request":{"action":"deny","target":{"ipv4_connection":{}}}}}}"#;
        assert_eq!(
            read_command(spec).expect("spec message").action.as_str(),
            "deny"
        );
    }

    #[test]
    fn bad_commands_are_usage_errors() {
        let e = read_command(r#"{"status":200}"#).expect_err("a response");
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                crate::common::EXIT_USAGE,
                "COMMAND is a response, not a command"
            )
        );
        let e = read_command("@/nonexistent/cmd.json").expect_err("no file");
        assert!(
            e.message
                .starts_with("cannot read COMMAND file /nonexistent/cmd.json: "),
            "{}",
            e.message
        );
    }
}
