//! `send`'s status line on a terminal while it waits: who answered and who
//! is still awaited. Pipes and files never see it.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use oc2mqtt::correlate::Outcome;
use oc2mqtt::{Correlator, Expect, Message};

/// Who answered one command and who is still awaited. It is fed the
/// responses the exchange returns and keeps its own copy of the core's
/// correlator, so that who counts as answered is decided by the same rules
/// as the exchange's completion (other names, counts, `ack`).
pub(crate) struct Progress {
    request_id: String,
    correlator: Correlator<()>,
    /// How many distinct final responders complete it (`--expect`).
    count: Option<usize>,
    broadcast: bool,
    /// Distinct responders that sent a final response, in arrival order.
    answered: Vec<String>,
}

impl Progress {
    /// Progress of `request_id`, sent to `to` (none: a broadcast) or
    /// complete after `expect` responders; `ack` when it asked for `102` only.
    pub(crate) fn new(request_id: &str, to: &[String], expect: Option<usize>, ack: bool) -> Self {
        let wanted = match expect {
            Some(n) => Expect::Count(n),
            None => Expect::from_to(Some(to)),
        };
        let broadcast = wanted == Expect::Unknown;
        let mut correlator = Correlator::new();
        // A fresh correlator has no exchange open, so opening cannot fail;
        // it never expires: the exchange itself keeps the time.
        let _ = if ack {
            correlator.open_ack(request_id, wanted, u64::MAX, ())
        } else {
            correlator.open(request_id, wanted, u64::MAX, ())
        };
        Self {
            request_id: request_id.to_owned(),
            correlator,
            count: expect,
            broadcast,
            answered: Vec::new(),
        }
    }

    /// Takes one response of the exchange into account.
    pub(crate) fn on_response(&mut self, msg: &Message) {
        let is_final = match self.correlator.on_response(msg) {
            Outcome::Unsolicited => false,
            Outcome::Open { is_final, .. } => is_final,
            Outcome::Complete(_) => true,
        };
        let from = msg.headers.from.as_deref().unwrap_or("(no from)");
        if is_final && !self.answered.iter().any(|a| a == from) {
            self.answered.push(from.to_owned());
        }
    }

    /// How many distinct responders answered, by the correlator's rules: a
    /// final response, or a `102` when the command asked for `ack` only.
    pub(crate) fn answered(&self) -> usize {
        self.answered.len()
    }

    /// One line: "answered: fw-1; awaiting: fw-2, fw-3; 8 s left".
    pub(crate) fn line(&self, left: Duration) -> String {
        let answered = if self.answered.is_empty() {
            "none yet".to_owned()
        } else {
            self.answered.join(", ")
        };
        let awaiting = match (self.count, self.broadcast) {
            (Some(n), _) => {
                let more = n.saturating_sub(self.answered.len());
                format!("{more} more of {n}")
            }
            (None, true) => "anyone (broadcast)".to_owned(),
            (None, false) => {
                let missing = self
                    .correlator
                    .missing(&self.request_id)
                    .unwrap_or_default();
                if missing.is_empty() {
                    "no one".to_owned()
                } else {
                    missing.join(", ")
                }
            }
        };
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        format!("answered: {answered}; awaiting: {awaiting}; {secs} s left")
    }
}

/// A line on stderr rewritten in place (with `\r` and spaces, no escape
/// sequences) and erased before anything else is printed.
pub(crate) struct StatusLine {
    /// The text on screen now, and its length in characters.
    text: String,
    shown: usize,
    width: usize,
}

impl StatusLine {
    /// A status line when stderr is a terminal; `None` for pipes and files.
    pub(crate) fn on_terminal() -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .filter(|&w| w > 1)
            .unwrap_or(80);
        Some(Self {
            text: String::new(),
            shown: 0,
            width,
        })
    }

    /// Shows `text` in place of the line shown, cut to the terminal's
    /// width: a line that wrapped could not be rewritten.
    pub(crate) fn show(&mut self, text: &str) {
        let text: String = text.chars().take(self.width - 1).collect();
        if self.shown > 0 && text == self.text {
            return;
        }
        let len = text.chars().count();
        let pad = " ".repeat(self.shown.saturating_sub(len));
        Self::write(&format!("\r{text}{pad}"));
        self.shown = len;
        self.text = text;
    }

    /// Erases the line, leaving the cursor at its start.
    pub(crate) fn clear(&mut self) {
        if self.shown > 0 {
            Self::write(&format!("\r{}\r", " ".repeat(self.shown)));
            self.shown = 0;
        }
    }

    fn write(s: &str) {
        // Best effort: a status line that cannot be written is no error.
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(s.as_bytes()).and_then(|()| err.flush());
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oc2mqtt::{Command, Response, Target};
    use serde_json::json;

    fn command(to: &[&str]) -> Message {
        let c = Command::new("deny", Target::new("ipv4_connection", json!({}))).expect("cmd");
        Message::request(c).from("p1").to(to.iter().copied())
    }

    fn answer(req: &Message, from: &str, status: u16) -> Message {
        Message::response_to(req, Response::new(status)).from(from)
    }

    #[test]
    fn addressed_responders_move_from_awaiting_to_answered() {
        let req = command(&["fw-1", "fw-2", "fw-3"]);
        let rid = req.headers.request_id.clone().expect("id");
        let to = ["fw-1".to_owned(), "fw-2".to_owned(), "fw-3".to_owned()];
        let mut p = Progress::new(&rid, &to, None, false);
        assert_eq!(
            p.line(Duration::from_millis(9_500)),
            "answered: none yet; awaiting: fw-1, fw-2, fw-3; 10 s left"
        );
        p.on_response(&answer(&req, "fw-2", 102));
        assert_eq!(
            p.line(Duration::from_secs(9)),
            "answered: none yet; awaiting: fw-1, fw-2, fw-3; 9 s left",
            "102 is not an answer"
        );
        assert_eq!(p.answered(), 0, "102 is not an answer");
        p.on_response(&answer(&req, "fw-2", 200));
        assert_eq!(
            p.line(Duration::from_secs(8)),
            "answered: fw-2; awaiting: fw-1, fw-3; 8 s left"
        );
    }

    #[test]
    fn counts_and_broadcasts_name_who_answered() {
        let req = command(&[]);
        let rid = req.headers.request_id.clone().expect("id");
        let mut p = Progress::new(&rid, &[], Some(2), false);
        p.on_response(&answer(&req, "fw-1", 200));
        p.on_response(&answer(&req, "fw-1", 200));
        assert_eq!(
            p.line(Duration::from_secs(1)),
            "answered: fw-1; awaiting: 1 more of 2; 1 s left"
        );
        let mut p = Progress::new(&rid, &[], None, true);
        p.on_response(&answer(&req, "fw-9", 102));
        assert_eq!(
            p.line(Duration::ZERO),
            "answered: fw-9; awaiting: anyone (broadcast); 0 s left",
            "with response_requested ack, 102 answers"
        );
        assert_eq!(p.answered(), 1);
        // A broadcast answered only with 102 (not asked for ack): no one answered.
        let mut p = Progress::new(&rid, &[], None, false);
        p.on_response(&answer(&req, "fw-9", 102));
        assert_eq!(p.answered(), 0);
    }
}
