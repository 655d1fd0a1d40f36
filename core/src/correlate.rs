//! Matching responses to the commands that asked for them.
//!
//! A [`Correlator`] holds open exchanges keyed by `request_id`, each with the
//! responders it expects, a deadline, and caller data `T` (a channel, a
//! timestamp, a list of responses). It does no I/O and reads no clock: the
//! caller passes `now` in milliseconds of any monotonic clock.
//!
//! ```
//! use oc2mqtt::correlate::{Correlator, Expect, Outcome};
//! use oc2mqtt::message::{Message, Response};
//!
//! let mut c: Correlator<Vec<u16>> = Correlator::new();
//! c.open("r1", Expect::Responders(vec!["fw-1".into()]), 10_000, Vec::new()).unwrap();
//! let mut rsp = Message { headers: Default::default(), body: oc2mqtt::message::Body::Response(Response::new(102)), extra: Default::default() };
//! rsp.headers.request_id = Some("r1".into());
//! rsp.headers.from = Some("fw-1".into());
//! assert!(matches!(c.on_response(&rsp), Outcome::Open { .. }));       // 102: interim
//! rsp.body = oc2mqtt::message::Body::Response(Response::new(200));
//! assert!(matches!(c.on_response(&rsp), Outcome::Complete(_)));       // final from the only responder
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::error::{Error, MessageError, MessageErrorKind, Result};
use crate::message::{Message, ResponseRequested};

/// Who is expected to answer a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// These responders (usually the command's `to`); complete when each sent a final response.
    Responders(Vec<String>),
    /// This many distinct responders; complete at the n-th final response.
    Count(usize),
    /// Unknown (a broadcast): open until the deadline or until closed.
    Unknown,
}

impl Expect {
    /// The expectation implied by a command's `to` header: its entries, or unknown.
    pub fn from_to(to: Option<&[String]>) -> Self {
        match to {
            Some(ids) if !ids.is_empty() => {
                let mut ids = ids.to_vec();
                ids.sort();
                ids.dedup();
                Self::Responders(ids)
            }
            _ => Self::Unknown,
        }
    }
}

/// Why an exchange closed. Serialized as its name ([`CloseReason::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Every expected responder sent a final response.
    Complete,
    /// The deadline passed first.
    Deadline,
    /// The caller closed it.
    Closed,
}

impl CloseReason {
    /// Every reason.
    pub const ALL: [Self; 3] = [Self::Complete, Self::Deadline, Self::Closed];

    /// The stable name every binding shows: `complete`, `deadline`, `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Deadline => "deadline",
            Self::Closed => "closed",
        }
    }
}

/// An exchange that is no longer open. Serialized without the caller's
/// data, which is the caller's to show: `request_id`, `reason`, `missing`,
/// `missing_count`.
#[derive(Debug, serde::Serialize)]
#[serde(bound = "")]
pub struct Closed<T> {
    /// Its request id.
    pub request_id: String,
    /// The caller's data.
    #[serde(skip)]
    pub data: T,
    /// Why it closed.
    pub reason: CloseReason,
    /// Expected responders that never sent a final response (empty for counts and broadcasts).
    pub missing: Vec<String>,
    /// How many final responses were still expected for a [`Expect::Count`].
    pub missing_count: usize,
}

/// What a response meant for its exchange.
#[derive(Debug)]
pub enum Outcome<'a, T> {
    /// No open exchange has this response's `request_id` (or it has none).
    Unsolicited,
    /// The exchange stays open.
    Open {
        /// The caller's data of the exchange.
        data: &'a mut T,
        /// Whether the response was final (not `102`).
        is_final: bool,
        /// Whether the responder was one the exchange expected (always true for counts and broadcasts).
        expected: bool,
    },
    /// The response completed the exchange, which is now closed.
    Complete(Closed<T>),
}

impl<T> Outcome<'_, T> {
    /// The names of [`Outcome::kind`].
    pub const KINDS: [&'static str; 3] = ["unsolicited", "open", "complete"];

    /// Its name, as every binding shows it: `unsolicited`, `open`, `complete`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unsolicited => Self::KINDS[0],
            Self::Open { .. } => Self::KINDS[1],
            Self::Complete(_) => Self::KINDS[2],
        }
    }
}

#[derive(Debug)]
enum Pending {
    Responders(Responders),
    Count {
        remaining: usize,
        /// Who sent a final response already (a set: a broadcast to a
        /// thousand devices must not cost a scan per answer).
        finals: HashSet<String>,
    },
    Unknown,
}

/// Expected responders without a final response yet, grouped by their
/// [`crate::rules::address_id`] (what every form of one address shares),
/// so that an answer finds its responder without a scan: with a thousand
/// responders a scan per answer cost 4.8 ms per exchange, on the
/// connection's task (bench/fleet).
#[derive(Debug)]
struct Responders {
    by_id: HashMap<String, Vec<String>>,
    len: usize,
}

impl Responders {
    fn new(names: Vec<String>) -> Self {
        let mut by_id: HashMap<String, Vec<String>> = HashMap::with_capacity(names.len());
        let len = names.len();
        for n in names {
            by_id
                .entry(crate::rules::address_id(&n).to_owned())
                .or_default()
                .push(n);
        }
        Self { by_id, len }
    }

    /// Which pending responder a response `from` answers for: the one it
    /// names, in any form of [`crate::rules::address_id`] (`c01@host:port`,
    /// a topic ending in `c01`; the exact name first); else, when exactly
    /// one responder is still pending, that one: the request_id is the
    /// command's, and peers that answer under another name (yuuki's fixed
    /// `"Yuuki"`, the OIF device's MQTT client id) or none must not leave
    /// the exchange waiting out its timeout.
    fn find(&self, from: Option<&str>) -> Option<(&str, usize)> {
        let named = from.and_then(|f| {
            let (key, names) = self.by_id.get_key_value(crate::rules::address_id(f))?;
            Some((key.as_str(), names.iter().position(|p| p == f).unwrap_or(0)))
        });
        named.or_else(|| {
            (self.len == 1)
                .then(|| self.by_id.keys().next().map(|k| (k.as_str(), 0)))
                .flatten()
        })
    }

    fn remove(&mut self, key: &str, i: usize) {
        if let Some(names) = self.by_id.get_mut(key) {
            names.swap_remove(i);
            self.len -= 1;
            if names.is_empty() {
                self.by_id.remove(key);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn sorted(&self) -> Vec<String> {
        let mut all: Vec<String> = self.by_id.values().flatten().cloned().collect();
        all.sort();
        all
    }
}

#[derive(Debug)]
struct OpenExchange<T> {
    pending: Pending,
    /// Which opening this is, so heap entries of an earlier exchange with the
    /// same request id are recognised as stale.
    seq: u64,
    /// `response_requested: ack`: the `102` is the only answer, so it is final.
    ack_only: bool,
    data: T,
}

/// Open exchanges keyed by request id. See the module documentation.
#[derive(Debug)]
pub struct Correlator<T> {
    open: HashMap<String, OpenExchange<T>>,
    /// (deadline, seq, request id); entries whose seq no longer matches are stale.
    deadlines: BinaryHeap<Reverse<(u64, u64, String)>>,
    next_seq: u64,
    unsolicited: u64,
}

impl<T> Default for Correlator<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Correlator<T> {
    /// An empty correlator.
    pub fn new() -> Self {
        Self {
            open: HashMap::new(),
            deadlines: BinaryHeap::new(),
            next_seq: 0,
            unsolicited: 0,
        }
    }

    /// Opens an exchange for `request_id` that ends at `deadline` (ms) at the latest.
    ///
    /// Fails if an exchange with that id is already open.
    pub fn open(&mut self, request_id: &str, expect: Expect, deadline: u64, data: T) -> Result<()> {
        self.open_inner(request_id, expect, deadline, false, data)
    }

    /// Like [`Correlator::open`], for a command with `response_requested: ack`:
    /// its consumers answer only `102`, so a `102` completes a responder.
    pub fn open_ack(
        &mut self,
        request_id: &str,
        expect: Expect,
        deadline: u64,
        data: T,
    ) -> Result<()> {
        self.open_inner(request_id, expect, deadline, true, data)
    }

    /// Opens the exchange `command` starts, as producers and monitors do:
    /// keyed by its `request_id`, expecting `expect` or, when `None`, each id
    /// of its `to` header (unknown without one); with `response_requested:
    /// ack` a `102` completes a responder ([`Correlator::open_ack`]); with
    /// `none` nothing is expected and nothing is opened (`Ok(false)`).
    ///
    /// Fails if the command has no `request_id`, or if an exchange with it
    /// is already open.
    pub fn open_command(
        &mut self,
        command: &Message,
        expect: Option<Expect>,
        deadline: u64,
        data: T,
    ) -> Result<bool> {
        let rr = command
            .command()
            .map(|c| c.response_requested())
            .unwrap_or_default();
        let Some(request_id) = command.headers.request_id.as_deref() else {
            return Err(Error::Message(Box::new(MessageError::new(
                MessageErrorKind::Missing,
                "headers.request_id",
                "a command without request_id cannot be correlated",
            ))));
        };
        if rr == ResponseRequested::None {
            return Ok(false);
        }
        let expect = expect.unwrap_or_else(|| Expect::from_to(command.headers.to.as_deref()));
        let ack_only = rr == ResponseRequested::Ack;
        self.open_inner(request_id, expect, deadline, ack_only, data)?;
        Ok(true)
    }

    fn open_inner(
        &mut self,
        request_id: &str,
        expect: Expect,
        deadline: u64,
        ack_only: bool,
        data: T,
    ) -> Result<()> {
        if self.open.contains_key(request_id) {
            return Err(Error::Config(format!(
                "an exchange with request_id '{request_id}' is already open"
            )));
        }
        let pending = match expect {
            Expect::Responders(r) => Pending::Responders(Responders::new(r)),
            Expect::Count(n) => Pending::Count {
                remaining: n.max(1),
                finals: HashSet::new(),
            },
            Expect::Unknown => Pending::Unknown,
        };
        self.open.insert(
            request_id.to_owned(),
            OpenExchange {
                pending,
                seq: self.next_seq,
                ack_only,
                data,
            },
        );
        self.deadlines
            .push(Reverse((deadline, self.next_seq, request_id.to_owned())));
        self.next_seq += 1;
        self.compact();
        Ok(())
    }

    /// Drops heap entries of exchanges that already closed, once they dominate.
    fn compact(&mut self) {
        if self.deadlines.len() > 2 * self.open.len() + 1024 {
            let open = &self.open;
            self.deadlines
                .retain(|Reverse((_, seq, id))| open.get(id).is_some_and(|x| x.seq == *seq));
        }
    }

    /// Feeds a response; see [`Outcome`].
    pub fn on_response(&mut self, msg: &Message) -> Outcome<'_, T> {
        let (Some(id), Some(rsp)) = (msg.headers.request_id.as_deref(), msg.response()) else {
            self.unsolicited += 1;
            return Outcome::Unsolicited;
        };
        let Some(x) = self.open.get_mut(id) else {
            self.unsolicited += 1;
            return Outcome::Unsolicited;
        };
        let is_final = rsp.is_final() || x.ack_only;
        let from = msg.headers.from.as_deref();
        let (expected, complete) = match &mut x.pending {
            Pending::Responders(pending) => {
                // A responder that is not pending is either unexpected or
                // already final; see `Responders::find` for the forms of
                // address that still match.
                match pending.find(from).map(|(k, i)| (k.to_owned(), i)) {
                    Some((key, i)) => {
                        if is_final {
                            pending.remove(&key, i);
                        }
                        (true, pending.is_empty())
                    }
                    None => (false, false),
                }
            }
            Pending::Count { remaining, finals } => {
                if is_final {
                    let new = match from {
                        Some(f) if finals.contains(f) => false,
                        Some(f) => {
                            finals.insert(f.to_owned());
                            true
                        }
                        None => true,
                    };
                    if new {
                        *remaining = remaining.saturating_sub(1);
                    }
                }
                (true, *remaining == 0)
            }
            Pending::Unknown => (true, false),
        };
        if complete {
            let (request_id, x) = self
                .open
                .remove_entry(id)
                .expect("entry exists: found above");
            return Outcome::Complete(Closed {
                request_id,
                data: x.data,
                reason: CloseReason::Complete,
                missing: Vec::new(),
                missing_count: 0,
            });
        }
        let x = self.open.get_mut(id).expect("entry exists: found above");
        Outcome::Open {
            data: &mut x.data,
            is_final,
            expected,
        }
    }

    /// Closes the exchange of `request_id` now (cancelled, or complete on PUBACK).
    pub fn close(&mut self, request_id: &str) -> Option<Closed<T>> {
        self.open
            .remove_entry(request_id)
            .map(|(id, x)| closed(id, x, CloseReason::Closed))
    }

    /// Closes and returns every exchange whose deadline is at or before `now`.
    pub fn expire(&mut self, now: u64) -> Vec<Closed<T>> {
        let mut out = Vec::new();
        while let Some(Reverse((deadline, _, _))) = self.deadlines.peek() {
            if *deadline > now {
                break;
            }
            let Reverse((_, seq, id)) = self.deadlines.pop().expect("peeked above");
            if self.open.get(&id).is_some_and(|x| x.seq == seq) {
                let (id, x) = self.open.remove_entry(&id).expect("checked above");
                out.push(closed(id, x, CloseReason::Deadline));
            }
        }
        out
    }

    /// The open exchanges: request id and caller data.
    pub fn open_exchanges(&self) -> impl Iterator<Item = (&str, &T)> {
        self.open.iter().map(|(id, x)| (id.as_str(), &x.data))
    }

    /// The earliest deadline of an open exchange, if any.
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(Reverse((deadline, seq, id))) = self.deadlines.peek() {
            if self.open.get(id).is_some_and(|x| x.seq == *seq) {
                return Some(*deadline);
            }
            self.deadlines.pop();
        }
        None
    }

    /// The caller data of an open exchange.
    pub fn get_mut(&mut self, request_id: &str) -> Option<&mut T> {
        self.open.get_mut(request_id).map(|x| &mut x.data)
    }

    /// Expected responders of an open exchange that have not sent a final response yet.
    pub fn missing(&self, request_id: &str) -> Option<Vec<String>> {
        self.open.get(request_id).map(|x| match &x.pending {
            Pending::Responders(p) => p.sorted(),
            _ => Vec::new(),
        })
    }

    /// Every open exchange's request id with its expected responders still
    /// missing (empty for counts and broadcasts).
    pub fn pending(&self) -> Vec<(String, Vec<String>)> {
        self.open
            .iter()
            .map(|(id, x)| match &x.pending {
                Pending::Responders(p) => (id.clone(), p.sorted()),
                _ => (id.clone(), Vec::new()),
            })
            .collect()
    }

    /// Whether an exchange with this id is open.
    pub fn is_open(&self, request_id: &str) -> bool {
        self.open.contains_key(request_id)
    }

    /// How many exchanges are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no exchange is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// How many responses matched no open exchange so far.
    pub fn unsolicited(&self) -> u64 {
        self.unsolicited
    }
}

fn closed<T>(request_id: String, x: OpenExchange<T>, reason: CloseReason) -> Closed<T> {
    let (missing, missing_count) = match x.pending {
        Pending::Responders(p) => {
            let p = p.sorted();
            let n = p.len();
            (p, n)
        }
        Pending::Count { remaining, .. } => (Vec::new(), remaining),
        Pending::Unknown => (Vec::new(), 0),
    };
    Closed {
        request_id,
        data: x.data,
        reason,
        missing,
        missing_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Body, Headers, Response};

    fn rsp(id: &str, from: Option<&str>, status: u16) -> Message {
        Message {
            headers: Headers {
                request_id: Some(id.to_owned()),
                from: from.map(str::to_owned),
                ..Headers::default()
            },
            body: Body::Response(Response::new(status)),
            extra: Default::default(),
        }
    }

    #[test]
    fn close_reasons_serialize_as_their_names() {
        for r in [
            CloseReason::Complete,
            CloseReason::Deadline,
            CloseReason::Closed,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    #[test]
    fn exchange_completes_when_every_responder_is_final() {
        let mut c = Correlator::new();
        c.open(
            "r",
            Expect::from_to(Some(&["a".into(), "b".into()])),
            100,
            0u32,
        )
        .expect("open");
        assert!(matches!(
            c.on_response(&rsp("r", Some("a"), 102)),
            Outcome::Open {
                is_final: false,
                ..
            }
        ));
        assert!(matches!(
            c.on_response(&rsp("r", Some("x"), 200)),
            Outcome::Open {
                expected: false,
                ..
            }
        ));
        assert!(matches!(
            c.on_response(&rsp("r", Some("a"), 200)),
            Outcome::Open { is_final: true, .. }
        ));
        assert_eq!(c.missing("r").expect("open"), ["b"]);
        match c.on_response(&rsp("r", Some("b"), 200)) {
            Outcome::Complete(closed) => assert_eq!(closed.reason, CloseReason::Complete),
            other => panic!("expected completion, got {other:?}"),
        }
        assert!(c.is_empty());
    }

    #[test]
    fn a_reply_under_another_name_completes_the_last_awaited_responder() {
        // yuuki answers as "Yuuki", the OIF device as its MQTT client id, the
        // OIF orchestrator's peers as id@host:port.
        let mut c = Correlator::new();
        c.open("r", Expect::Responders(vec!["c01".into()]), 100, ())
            .expect("open");
        assert!(matches!(
            c.on_response(&rsp("r", Some("Yuuki"), 200)),
            Outcome::Complete(_)
        ));
        c.open(
            "s",
            Expect::Responders(vec!["c01".into(), "c02".into()]),
            100,
            (),
        )
        .expect("open");
        assert!(matches!(
            c.on_response(&rsp("s", Some("c02@10.0.0.2:1883"), 200)),
            Outcome::Open { expected: true, .. }
        ));
        assert_eq!(c.missing("s").expect("open"), ["c01"]);
        assert!(matches!(
            c.on_response(&rsp("s", Some("oc2/rsp/c01"), 200)),
            Outcome::Complete(_)
        ));
    }

    #[test]
    fn a_thousand_responders_complete_in_any_order_and_address_form() {
        let ids: Vec<String> = (1..=1000).map(|i| format!("fw-{i:04}")).collect();
        let mut c = Correlator::new();
        c.open("r", Expect::from_to(Some(&ids)), 100, ())
            .expect("open");
        // Every third answers as id@host:port, every fifth as a topic, the
        // rest by name; a 102 and a repeated final change nothing.
        for (n, i) in (0..1000).map(|k| (k * 7919) % 1000).enumerate() {
            let from = match i % 15 {
                0 | 3 | 6 | 9 | 12 => format!("{}@10.0.0.1:1883", ids[i]),
                5 | 10 => format!("oc2/rsp/{}", ids[i]),
                _ => ids[i].clone(),
            };
            assert!(matches!(
                c.on_response(&rsp("r", Some(&from), 102)),
                Outcome::Open {
                    is_final: false,
                    expected: true,
                    ..
                }
            ));
            let outcome = c.on_response(&rsp("r", Some(&from), 200));
            if n < 999 {
                assert!(matches!(outcome, Outcome::Open { expected: true, .. }));
                // (With one responder left, any answer counts as that one's.)
                if n < 998 {
                    assert!(matches!(
                        c.on_response(&rsp("r", Some(&from), 200)),
                        Outcome::Open {
                            expected: false,
                            ..
                        }
                    ));
                }
                assert_eq!(c.missing("r").expect("open").len(), 999 - n);
            } else {
                assert!(
                    matches!(outcome, Outcome::Complete(_)),
                    "the last one completes"
                );
            }
        }
        // Two forms of one address pending: the exact name is taken first.
        c.open(
            "s",
            Expect::Responders(vec!["c01@h:1".into(), "c01".into(), "c02".into()]),
            100,
            (),
        )
        .expect("open");
        c.on_response(&rsp("s", Some("c01"), 200));
        assert_eq!(c.missing("s").expect("open"), ["c01@h:1", "c02"]);
        // A count of a thousand: distinct finals, repeats not counted.
        c.open("t", Expect::Count(1000), 100, ()).expect("open");
        for id in &ids[..999] {
            c.on_response(&rsp("t", Some(id), 200));
            c.on_response(&rsp("t", Some(id), 200));
        }
        assert!(c.is_open("t"));
        assert!(matches!(
            c.on_response(&rsp("t", Some(&ids[999]), 200)),
            Outcome::Complete(_)
        ));
    }

    #[test]
    fn an_ack_exchange_completes_on_102() {
        let mut c = Correlator::new();
        c.open_ack("r", Expect::Responders(vec!["a".into()]), 100, ())
            .expect("open");
        assert!(matches!(
            c.on_response(&rsp("r", Some("a"), 102)),
            Outcome::Complete(_)
        ));
    }

    #[test]
    fn unknown_ids_are_counted_not_mixed_in() {
        let mut c = Correlator::new();
        c.open("mine", Expect::Count(1), 100, ()).expect("open");
        assert!(matches!(
            c.on_response(&rsp("theirs", Some("a"), 200)),
            Outcome::Unsolicited
        ));
        assert_eq!(c.unsolicited(), 1);
        assert!(c.is_open("mine"));
    }

    #[test]
    fn count_needs_distinct_final_responders() {
        let mut c = Correlator::new();
        c.open("r", Expect::Count(2), 100, ()).expect("open");
        assert!(matches!(
            c.on_response(&rsp("r", Some("a"), 200)),
            Outcome::Open { .. }
        ));
        assert!(matches!(
            c.on_response(&rsp("r", Some("a"), 200)),
            Outcome::Open { .. }
        ));
        assert!(matches!(
            c.on_response(&rsp("r", Some("b"), 200)),
            Outcome::Complete(_)
        ));
    }

    #[test]
    fn deadlines_close_in_order_and_report_missing() {
        let mut c = Correlator::new();
        c.open("late", Expect::Responders(vec!["d".into()]), 200, ())
            .expect("open");
        c.open("early", Expect::Unknown, 100, ()).expect("open");
        assert_eq!(c.next_deadline(), Some(100));
        assert!(c.expire(99).is_empty());
        let first = c.expire(150);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].request_id, "early");
        let second = c.expire(1000);
        assert_eq!(second[0].missing, ["d"]);
        assert_eq!(second[0].reason, CloseReason::Deadline);
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn a_closed_exchange_does_not_expire_later() {
        let mut c = Correlator::new();
        c.open("r", Expect::Unknown, 100, ()).expect("open");
        assert!(c.close("r").is_some());
        assert!(c.expire(1000).is_empty());
        assert!(
            c.open("r", Expect::Unknown, 100, ()).is_ok(),
            "id reusable after close"
        );
        assert!(
            c.open("r", Expect::Unknown, 100, ()).is_err(),
            "but not while open"
        );
    }

    #[test]
    fn reusing_a_request_id_keeps_open_cheap_and_deadlines_right() {
        let mut c = Correlator::new();
        for _ in 0..5_000 {
            c.open("same", Expect::Count(1), 100, ()).expect("open");
            assert!(matches!(
                c.on_response(&rsp("same", Some("d"), 200)),
                Outcome::Complete(_)
            ));
        }
        assert!(
            c.deadlines.len() <= 1024 + 2,
            "stale heap entries are compacted: {}",
            c.deadlines.len()
        );
        c.open("same", Expect::Unknown, 50, ()).expect("open");
        assert_eq!(c.next_deadline(), Some(50));
        assert_eq!(c.expire(60).len(), 1);
    }

    #[test]
    fn hundred_thousand_open_exchanges() {
        let mut c = Correlator::new();
        for i in 0..100_000u64 {
            c.open(&format!("id-{i}"), Expect::Count(1), i, ())
                .expect("open");
        }
        assert_eq!(c.len(), 100_000);
        for i in (0..100_000u64).step_by(2) {
            assert!(matches!(
                c.on_response(&rsp(&format!("id-{i}"), Some("d"), 200)),
                Outcome::Complete(_)
            ));
        }
        assert_eq!(c.expire(u64::MAX).len(), 50_000);
        assert!(c.is_empty());
    }
}
