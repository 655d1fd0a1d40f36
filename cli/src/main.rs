//! The `oc2mqtt` command line: `send` an OpenC2 command and print its
//! responses, `serve` as a reference consumer, `monitor` the traffic.

mod common;
mod monitor;
mod send;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::common::{Common, Failure};

/// OpenC2 command and control over MQTT (OASIS MQTT-T v1.0).
///
/// Exit status: 0 success; 1 connection, authentication, TLS or other
/// runtime error; 2 usage or configuration error; 3 (send) timed out with
/// expected responders missing.
#[derive(Parser, Debug)]
#[command(name = "oc2mqtt", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Send one command; print each response as one JSON line.
    ///
    /// Each response is printed as it arrives: the whole message, headers
    /// included, in the specification's headers/body shape.
    ///
    /// Exit status: 0 when every expected responder (--to, --expect) answered,
    /// or, for a broadcast with neither, when at least one answered before the
    /// timeout; 3 when the timeout passed with responders missing (named on
    /// stderr); 2 for a usage or configuration error; 1 for other errors.
    Send(send::SendArgs),
    /// Run a reference consumer (device) until SIGINT or SIGTERM.
    ///
    /// It answers `query features` from its flags, 501 to action/target pairs
    /// it did not declare (when any --pair is given) and 200 to the others, in
    /// the dialect and encoding each command came in. One line per command its
    /// handler ran goes to stdout (built-in answers such as query features and
    /// 501 are not printed); status lines go to stderr. Exits 0 on SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Watch OpenC2 traffic: commands, responses with latency, undecodable payloads.
    ///
    /// Human-readable lines by default (times are UTC): "TIME TOPIC request
    /// REQUEST_ID FROM → TO ACTION TARGET" for commands and "TIME TOPIC response
    /// REQUEST_ID FROM → TO STATUS NAME "TEXT" LATENCY" for responses; or one
    /// JSON object per line with --json. Stops after --count events,
    /// after --duration, or on SIGINT/SIGTERM, then names on stderr the
    /// responders that have not answered.
    Monitor(monitor::MonitorArgs),
}

impl Cmd {
    fn common(&self) -> &Common {
        match self {
            Self::Send(a) => a.common(),
            Self::Serve(a) => a.common(),
            Self::Monitor(a) => a.common(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::init_logging(cli.command.common().verbose);
    let result: Result<u8, Failure> = oc2mqtt::client::runtime().block_on(async move {
        match cli.command {
            Cmd::Send(a) => send::run(a).await,
            Cmd::Serve(a) => serve::run(a).await,
            Cmd::Monitor(a) => monitor::run(a).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
