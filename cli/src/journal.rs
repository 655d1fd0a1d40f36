//! `oc2mqtt journal FILE`: what a consumer's journal holds, read without
//! changing it: the commands a consumer started on it would run again, the
//! answers it would send again, and how many finished commands it remembers.

use std::path::PathBuf;

use oc2mqtt::journal::{self, Pending, Unsent};
use oc2mqtt::message::Message;

use crate::common::{Failure, print_line};

#[derive(clap::Args, Debug)]
pub(crate) struct JournalArgs {
    /// The journal file (`serve --journal FILE`).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

/// What a journal line's payload says about its command, for the reader.
fn described(payload: &[u8]) -> (Option<String>, Option<String>, Option<String>) {
    match oc2mqtt::decode(payload, None) {
        Ok(d) => (
            d.message.headers.request_id.clone(),
            d.message.headers.from.clone(),
            what(&d.message),
        ),
        Err(_) => (None, None, None),
    }
}

fn what(msg: &Message) -> Option<String> {
    if let Some(c) = msg.command() {
        return Some(format!("{} {}", c.action, c.target.name));
    }
    msg.response().map(|r| r.status.to_string())
}

fn run_line(p: &Pending, json: bool) -> String {
    let (id, from, what) = described(&p.payload);
    if json {
        serde_json::json!({
            "state": "run_again", "topic": p.topic, "request_id": id, "from": from, "command": what,
        })
        .to_string()
    } else {
        format!(
            "run again   {} request_id={} from={} on {}",
            what.as_deref().unwrap_or("(undecodable)"),
            id.as_deref().unwrap_or("-"),
            from.as_deref().unwrap_or("-"),
            p.topic
        )
    }
}

fn send_line(u: &Unsent, json: bool) -> String {
    let (id, _, status) = described(&u.payload);
    if json {
        serde_json::json!({
            "state": "send_again", "topics": u.topics, "request_id": id, "status": status,
        })
        .to_string()
    } else {
        format!(
            "send again  status {} request_id={} to {}",
            status.as_deref().unwrap_or("?"),
            id.as_deref().unwrap_or("-"),
            u.topics.join(" ")
        )
    }
}

pub(crate) fn run(args: &JournalArgs) -> Result<u8, Failure> {
    let contents = journal::read(&args.file)?;
    for p in &contents.to_run {
        print_line(&run_line(p, args.json))?;
    }
    for u in &contents.to_send {
        print_line(&send_line(u, args.json))?;
    }
    let finished = contents.finished;
    print_line(&if args.json {
        serde_json::json!({ "state": "finished", "count": finished }).to_string()
    } else {
        format!("finished    {finished} commands remembered (not run again if they come again)")
    })?;
    Ok(0)
}
