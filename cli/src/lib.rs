//! The `oc2mqtt` command line: `send` an OpenC2 command and print its
//! responses, `serve` as a reference consumer, `monitor` the traffic.
//!
//! A library so that the very same command line runs from the `oc2mqtt`
//! binary and from the Python wheel (`python -m oc2mqtt`, the `oc2mqtt`
//! console script), which links it into its extension module.

mod common;
mod docs;
mod journal;
mod monitor;
mod progress;
mod send;
mod serve;

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    ///
    /// On a terminal, a line on stderr shows who answered and who is still
    /// awaited while it waits; pipes and files do not get it.
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
    /// Show what a consumer's journal (serve --journal) holds, without changing it.
    ///
    /// One line per command taken and not answered ("run again": a consumer
    /// started on this journal runs it again), per answer the broker has not
    /// acknowledged ("send again": sent again, its command not run again),
    /// and the number of finished commands it remembers (not run again if
    /// they come again). With --json, one JSON object per line with "state"
    /// run_again, send_again or finished. Exit status 2 when the file cannot
    /// be read or is not a journal.
    Journal(journal::JournalArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    ///
    /// bash: oc2mqtt completions bash > ~/.local/share/bash-completion/completions/oc2mqtt;
    /// zsh: oc2mqtt completions zsh > _oc2mqtt in a directory of $fpath;
    /// fish: oc2mqtt completions fish > ~/.config/fish/completions/oc2mqtt.fish.
    Completions {
        /// The shell to complete for.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: oc2mqtt(1), or a subcommand's.
    ///
    /// For example: oc2mqtt man > oc2mqtt.1; oc2mqtt man send > oc2mqtt-send.1;
    /// or read it at once with oc2mqtt man | man -l -
    Man {
        /// The subcommand whose page to print [default: the page of oc2mqtt itself].
        #[arg(value_name = "SUBCOMMAND", value_parser = ["send", "serve", "monitor", "journal"])]
        subcommand: Option<String>,
    },
}

impl Cmd {
    /// The connection flags of a subcommand that connects.
    fn common_mut(&mut self) -> Option<&mut Common> {
        match self {
            Self::Send(a) => Some(a.common_mut()),
            Self::Serve(a) => Some(a.common_mut()),
            Self::Monitor(a) => Some(a.common_mut()),
            Self::Journal(_) | Self::Completions { .. } | Self::Man { .. } => None,
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
    let cli = match parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            // What `Cli::parse` does, without `process::exit`: help and
            // --version on stdout (0), usage errors on stderr (2).
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(common::EXIT_USAGE);
        }
    };
    let result = match cli.command {
        Cmd::Send(a) => connected(a.common().verbose, send::run(a)),
        Cmd::Serve(a) => connected(a.common().verbose, serve::run(a)),
        Cmd::Monitor(a) => connected(a.common().verbose, monitor::run(a)),
        Cmd::Journal(a) => journal::run(&a),
        Cmd::Completions { shell } => docs::completions(shell),
        Cmd::Man { subcommand } => docs::man_page(subcommand.as_deref()),
    };
    // A binary's stdout is flushed when `main` returns; an embedder's is not.
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => code,
        Err(f) if f.is_quiet() => f.code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            f.code
        }
    }
}

/// Runs a subcommand that connects, with its logging, on the client's runtime.
fn connected(
    verbose: u8,
    run: impl std::future::Future<Output = Result<u8, Failure>>,
) -> Result<u8, Failure> {
    common::init_logging(verbose);
    oc2mqtt::client::runtime().block_on(run)
}

/// Parses the arguments as `Cli::try_parse_from` does, then settles the
/// flags that exclude each other against their environment variables
/// (which clap alone cannot tell apart from flags).
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(args)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    if let (Some(common), Some((_, sub))) = (cli.command.common_mut(), matches.subcommand()) {
        common
            .settle_sources(sub)
            .map_err(|f| command.error(clap::error::ErrorKind::ArgumentConflict, f.message))?;
    }
    Ok(cli)
}
