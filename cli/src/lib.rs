//! The `oc2mqtt` command line: `send` an OpenC2 command and print its
//! responses, `serve` as a reference consumer, `monitor` the traffic.
//!
//! A library so that the very same command line runs from the `oc2mqtt`
//! binary and from the Python wheel (`python -m oc2mqtt`, the `oc2mqtt`
//! console script), which links it into its extension module.

mod common;
mod monitor;
mod send;
mod serve;

use std::ffi::OsString;
use std::io::Write;

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

/// Runs the command line on `args` (the program name first) and returns the
/// process's exit status; it never exits the process itself, so that an
/// embedding interpreter can shut down normally.
///
/// SIGINT and SIGTERM stop `serve` and `monitor` (exit 0) as in the binary:
/// the caller must leave both signals at their default disposition (or to
/// this function), as a Rust binary has them.
pub fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // What `Cli::parse` does, without `process::exit`: help and
            // --version on stdout (0), usage errors on stderr (2).
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(common::EXIT_USAGE);
        }
    };
    common::init_logging(cli.command.common().verbose);
    let result: Result<u8, Failure> = oc2mqtt::client::runtime().block_on(async move {
        match cli.command {
            Cmd::Send(a) => send::run(a).await,
            Cmd::Serve(a) => serve::run(a).await,
            Cmd::Monitor(a) => monitor::run(a).await,
        }
    });
    // A binary's stdout is flushed when `main` returns; an embedder's is not.
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            f.code
        }
    }
}
