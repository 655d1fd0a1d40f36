//! `oc2mqtt serve`: a reference consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use oc2mqtt::Message;
use oc2mqtt::client::{Consumer, ConsumerOptions};

use crate::common::{
    Common, EXIT_OK, Failure, Signals, clock, connect_or_signal, print_line, protocol_words,
};

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match oc2mqtt::rules::parse_pair(s) {
        Ok((a, t)) => Ok((a.to_owned(), t.to_owned())),
        // clap says which flag; the core's text says what is wrong.
        Err(oc2mqtt::Error::Config(why)) => Err(why),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs a reference consumer until SIGINT or SIGTERM (then exits 0).
///
/// It answers `query features` from its flags, 501 to action/target pairs it
/// did not declare (when any --pair is given), 200 to every other command, in
/// the dialect and encoding each command came in. It prints one line per
/// command its handler ran on stdout (built-in answers such as query features
/// and 501 are not printed; -v logs them); status goes to stderr.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// This device's id: commands come on oc2/cmd/device/<ID>; the `from` of its responses.
    #[arg(long, value_name = "ID")]
    device_id: String,
    /// Actuator profile implemented (slpf, ...); repeat for several. Subscribes oc2/cmd/ap/<P>.
    #[arg(long = "profile", value_name = "P")]
    profiles: Vec<String>,
    /// Action/target pair implemented, e.g. deny:ipv4_connection; repeat for several.
    #[arg(long = "pair", value_name = "ACTION:TARGET", value_parser = parse_pair)]
    pairs: Vec<(String, String)>,
    /// Command argument implemented beyond the Language Specification's and
    /// the profiles' (SLPF's for --profile slpf), as NAME or NAMESPACE.NAME
    /// (x-acme, x-acme.mode); repeat for several. Once pairs, profiles or
    /// arguments are declared, others get 501.
    #[arg(long = "arg", value_name = "NAME")]
    args: Vec<String>,
    /// Commands per minute, reported by `query features`.
    #[arg(long, value_name = "N")]
    rate_limit: Option<f64>,
    /// Consumer group: members share the commands through $share/<G>/... subscriptions.
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// Commands whose `created` is older than this are stale: logged, counted, not run
    /// (0 = off). Retained commands are never run.
    #[arg(long, value_name = "SECS", default_value_t = oc2mqtt::consumer::DEFAULT_FRESHNESS_SECS)]
    freshness: u64,
    /// Keep the commands taken and finished in FILE: killed and started
    /// again with the same FILE (and a stable --client-id or
    /// --client-id-file), serve runs the commands it had taken and not
    /// finished, and nothing it had finished again.
    #[arg(long, value_name = "FILE")]
    journal: Option<std::path::PathBuf>,
    /// Answer a command after this many milliseconds (to see how a slow
    /// device behaves; 0 answers at once).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    work_ms: u64,
    #[command(flatten)]
    common: Common,
}

impl ServeArgs {
    pub(crate) fn common(&self) -> &Common {
        &self.common
    }

    pub(crate) fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

/// One line about a command the handler ran and the status it answered.
fn handled_line(msg: &Message, status: u16) -> String {
    let h = &msg.headers;
    let (action, target, rr) = msg.command().map_or(("?", "?", "?"), |c| {
        (
            c.action.as_str(),
            c.target.name.as_str(),
            c.response_requested().as_str(),
        )
    });
    format!(
        "{} handled {action} {target} request_id={} from={} response_requested={rr} result={status}",
        clock(oc2mqtt::message::now_ms()),
        h.request_id.as_deref().unwrap_or("-"),
        h.from.as_deref().unwrap_or("-"),
    )
}

pub(crate) async fn run(args: ServeArgs) -> Result<u8, Failure> {
    let mut signals = Signals::install()?;
    let options = ConsumerOptions {
        device_id: args.device_id.clone(),
        profiles: args.profiles.clone(),
        pairs: args.pairs.clone(),
        args: args.args.clone(),
        rate_limit: args.rate_limit,
        group: args.group.clone(),
        freshness_secs: args.freshness,
        journal: args.journal.clone(),
        ..ConsumerOptions::default()
    };
    let consumer = connect_or_signal(
        &mut signals,
        "serve",
        &args.common.broker_list(),
        Consumer::connect(args.common.config()?, options),
    )
    .await?;
    let pairs: Vec<String> = args.pairs.iter().map(|(a, t)| format!("{a}:{t}")).collect();
    eprintln!(
        "oc2mqtt serve: device {} ready on {} with {} (profiles: {}; pairs: {}); stop with Ctrl-C or SIGTERM",
        args.device_id,
        consumer.broker(),
        protocol_words(consumer.stats().mqtt_version),
        if args.profiles.is_empty() {
            "none".to_owned()
        } else {
            args.profiles.join(", ")
        },
        if pairs.is_empty() {
            "any".to_owned()
        } else {
            pairs.join(", ")
        },
    );
    let handled = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&handled);
    let work = std::time::Duration::from_millis(args.work_ms);
    let handler = move |msg: &Message| {
        std::thread::sleep(work);
        count.fetch_add(1, Ordering::Relaxed);
        // The answer is core's for a handler that gives none (a plain 200).
        let outcome = Ok(None);
        let status = oc2mqtt::rules::outcome_response(outcome.clone()).status;
        if let Err(e) = print_line(&handled_line(msg, status)) {
            tracing::warn!(error = %e.message, "cannot print a handled command");
        }
        outcome
    };
    let stopped_by = tokio::select! {
        served = consumer.serve(handler) => {
            served?;
            "the connection closed"
        }
        signal = signals.recv() => signal,
    };
    consumer.close().await;
    let s = consumer.stats();
    eprintln!(
        "oc2mqtt serve: {stopped_by}: stopped; {} commands handled, {} received, {} published, {} duplicates, {} undecodable, {} refused publishes, {} discarded, {} stale",
        handled.load(Ordering::Relaxed),
        s.received,
        s.published,
        s.duplicates,
        s.decode_errors,
        s.publish_errors,
        s.discarded,
        s.stale,
    );
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_action_colon_target() {
        assert_eq!(
            parse_pair("deny:ipv4_connection"),
            Ok(("deny".into(), "ipv4_connection".into()))
        );
        assert_eq!(
            parse_pair("deny"),
            Err("pair 'deny': expected ACTION:TARGET, e.g. deny:ipv4_connection".into())
        );
        assert!(parse_pair(":x").is_err());
    }
}
