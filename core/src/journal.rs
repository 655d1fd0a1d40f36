//! A consumer's journal: the commands it took and has not finished, and
//! those it finished, kept in a file so that a consumer killed and started
//! again runs what it had taken (at least once) and nothing it had finished
//! (once within the window).
//!
//! The file is a list of lines, appended as things happen:
//! `T <key> <topic hex> <payload hex>` when a command is taken for the
//! application, `A <key> <answer hex>` when its handler has answered and the
//! answer goes to the broker, `D <key>` once the broker acknowledged the
//! answer (or when there was nothing to send). A line is written with one
//! `write` before what it records happens, so a process killed at any
//! moment leaves every taken command in the file and every answer not yet
//! acknowledged (an operating system crash may lose the last lines; the
//! file is not synced). On start the file is read and rewritten with what
//! still matters: the commands taken and not answered (run again), the
//! answers not acknowledged (sent again, not run again), and the finished
//! keys; it is rewritten the same way whenever it holds four times that.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::codec::PublishProperties;
use crate::dedup::DedupKey;
use crate::error::{Error, Result};

/// A command taken and not finished when the journal was read: a consumer
/// started on the journal runs it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its duplicate-detection key.
    pub key: DedupKey,
    /// The topic it came on.
    pub topic: String,
    /// The payload as it came.
    pub payload: Vec<u8>,
}

/// An answer handed to the broker and not acknowledged when the journal was
/// read: a consumer started on the journal sends it again (and does not run
/// its command again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsent {
    /// Its command's duplicate-detection key.
    pub key: DedupKey,
    /// The topics it goes to.
    pub topics: Vec<String>,
    /// The encoded answer.
    pub payload: Vec<u8>,
    /// Its MQTT properties.
    pub properties: PublishProperties,
}

impl Unsent {
    /// The line's text after the key: the answer as hex of a small JSON object.
    fn encode(&self) -> String {
        let props = &self.properties;
        let json = serde_json::json!({
            "topics": self.topics,
            "payload": hex(&self.payload),
            "format": props.payload_format_indicator,
            "content_type": props.content_type,
            "user": props.user_properties,
        });
        hex(json.to_string().as_bytes())
    }

    fn decode(key: DedupKey, text: &str) -> Option<Self> {
        let json: serde_json::Value = serde_json::from_slice(&unhex(text)?).ok()?;
        let strings = |v: &serde_json::Value| -> Option<Vec<String>> {
            v.as_array()?
                .iter()
                .map(|t| t.as_str().map(String::from))
                .collect()
        };
        Some(Self {
            key,
            topics: strings(&json["topics"])?,
            payload: unhex(json["payload"].as_str()?)?,
            properties: PublishProperties {
                payload_format_indicator: json["format"]
                    .as_u64()
                    .and_then(|f| u8::try_from(f).ok()),
                content_type: json["content_type"].as_str().map(String::from),
                user_properties: json["user"]
                    .as_array()?
                    .iter()
                    .map(|kv| {
                        let kv = strings(kv)?;
                        match <[String; 2]>::try_from(kv) {
                            Ok([k, v]) => Some((k, v)),
                            Err(_) => None,
                        }
                    })
                    .collect::<Option<_>>()?,
            },
        })
    }
}

/// What a journal holds when it is opened.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    /// Taken and not answered: to run again, in order of taking.
    pub(crate) pending: Vec<Pending>,
    /// Answered and not acknowledged: to send again, not to run again.
    pub(crate) unsent: Vec<Unsent>,
    /// Finished: duplicates if they come again.
    pub(crate) finished: Vec<DedupKey>,
}

/// What a journal's text says: the state [`Journal`] keeps, rebuilt.
#[derive(Debug, Default)]
struct Parsed {
    open: HashMap<u128, Pending>,
    answered: HashMap<u128, Unsent>,
    /// Open and answered keys, in order of taking, each once.
    order: Vec<u128>,
    /// Finished keys, oldest first, each once, at most [`FINISHED_KEPT`].
    finished: Vec<u128>,
}

impl Parsed {
    fn new(path: &Path, text: &str) -> Result<Self> {
        let mut p = Self::default();
        // A last line without its newline was cut short by a kill in the
        // middle of a write: what it said never happened.
        let complete = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
        for (n, line) in complete.enumerate() {
            let line = line.trim_end_matches('\n');
            let mut parts = line.split(' ');
            let bad = || {
                Error::Config(format!(
                    "journal {}: line {} is not one this library writes: {line:.80}",
                    path.display(),
                    n + 1
                ))
            };
            let kind = parts.next().ok_or_else(bad)?;
            let key = parts
                .next()
                .and_then(|k| u128::from_str_radix(k, 16).ok())
                .ok_or_else(bad)?;
            match kind {
                "T" => {
                    let topic = parts
                        .next()
                        .and_then(unhex)
                        .and_then(|t| String::from_utf8(t).ok())
                        .ok_or_else(bad)?;
                    let payload = parts.next().and_then(unhex).ok_or_else(bad)?;
                    let pending = Pending {
                        key: DedupKey::from_u128(key),
                        topic,
                        payload,
                    };
                    if p.open.insert(key, pending).is_none() {
                        p.order.push(key);
                    }
                }
                "A" => {
                    let answer = parts
                        .next()
                        .and_then(|a| Unsent::decode(DedupKey::from_u128(key), a))
                        .ok_or_else(bad)?;
                    p.open.remove(&key);
                    if p.answered.insert(key, answer).is_none() {
                        p.order.push(key);
                    }
                }
                "D" => {
                    p.open.remove(&key);
                    p.answered.remove(&key);
                    p.finished.push(key);
                }
                _ => return Err(bad()),
            }
        }
        let mut unique: HashSet<u128> = HashSet::new();
        let (open, answered) = (&p.open, &p.answered);
        p.order
            .retain(|k| (open.contains_key(k) || answered.contains_key(k)) && unique.insert(*k));
        let mut unique: HashSet<u128> = HashSet::new();
        p.finished.reverse();
        p.finished.retain(|k| unique.insert(*k));
        p.finished.truncate(FINISHED_KEPT);
        p.finished.reverse();
        Ok(p)
    }

    /// The commands to run again and the answers to send again, in order of taking.
    fn in_order(
        order: &[u128],
        open: &HashMap<u128, Pending>,
        answered: &HashMap<u128, Unsent>,
    ) -> (Vec<Pending>, Vec<Unsent>) {
        (
            order.iter().filter_map(|k| open.get(k).cloned()).collect(),
            order
                .iter()
                .filter_map(|k| answered.get(k).cloned())
                .collect(),
        )
    }
}

/// What the journal at `path` holds, read without changing it: the commands
/// a consumer started on it would run again, the answers it would send
/// again, and how many finished commands it remembers (`oc2mqtt journal`,
/// or a look after a crash at what will happen on restart).
///
/// # Errors
/// [`Error::Config`] when the file cannot be read or is not a journal.
pub fn read(path: &Path) -> Result<Contents> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, "read it", &e))?;
    let p = Parsed::new(path, &text)?;
    let (to_run, to_send) = Parsed::in_order(&p.order, &p.open, &p.answered);
    Ok(Contents {
        to_run,
        to_send,
        finished: p.finished.len(),
    })
}

/// A journal's contents, from [`read`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// Taken and not answered, in order of taking: run again on restart.
    pub to_run: Vec<Pending>,
    /// Answered and not acknowledged by the broker: sent again on restart,
    /// their commands not run again.
    pub to_send: Vec<Unsent>,
    /// The finished commands it remembers, duplicates if they come again.
    pub finished: usize,
}

/// The finished keys kept (older ones are forgotten: a command that old is
/// stale or out of the duplicate window anyway).
const FINISHED_KEPT: usize = 100_000;

#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    /// Taken and not finished, by key, in order of taking.
    open: HashMap<u128, Pending>,
    order: Vec<u128>,
    /// Answered, the broker's acknowledgement awaited.
    answered: HashMap<u128, Unsent>,
    finished: Vec<u128>,
    lines: usize,
}

fn io(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::Config(format!("journal {}: cannot {what}: {e}", path.display()))
}

impl Journal {
    /// Opens (or creates) the journal at `path`; returns it with what was
    /// taken and not answered, what was answered and not acknowledged, and
    /// the finished keys.
    pub(crate) fn open(path: &Path) -> Result<(Self, Opened)> {
        let Parsed {
            open,
            answered,
            order,
            finished,
        } = if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| io(path, "read it", &e))?;
            Parsed::new(path, &text)?
        } else {
            Parsed::default()
        };
        let (pending, unsent) = Parsed::in_order(&order, &open, &answered);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io(path, "open it for writing", &e))?;
        let mut journal = Self {
            path: path.to_owned(),
            file,
            open,
            order,
            answered,
            finished: finished.clone(),
            lines: 0,
        };
        journal.compact()?;
        let finished = finished.into_iter().map(DedupKey::from_u128).collect();
        Ok((
            journal,
            Opened {
                pending,
                unsent,
                finished,
            },
        ))
    }

    fn append(&mut self, line: &str) {
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            tracing::warn!(journal = %self.path.display(), error = %e, "cannot write the journal");
        }
        self.lines += 1;
        if self.lines > 4 * (self.open.len() + self.answered.len() + self.finished.len()).max(1024)
        {
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "cannot compact the journal");
            }
        }
    }

    /// A command goes to the application.
    pub(crate) fn taken(&mut self, key: DedupKey, topic: &str, payload: &[u8]) {
        let k = key.as_u128();
        if self.open.contains_key(&k) {
            return;
        }
        self.open.insert(
            k,
            Pending {
                key,
                topic: topic.to_owned(),
                payload: payload.to_vec(),
            },
        );
        self.order.push(k);
        self.append(&format!(
            "T {k:032x} {} {}\n",
            hex(topic.as_bytes()),
            hex(payload)
        ));
    }

    /// Its handler answered and the answer goes to the broker now: until
    /// [`Journal::finished`], a restart sends it again instead of running the command again.
    pub(crate) fn answered(
        &mut self,
        key: DedupKey,
        topics: &[String],
        payload: &[u8],
        properties: &PublishProperties,
    ) {
        let k = key.as_u128();
        if self.open.remove(&k).is_none() && !self.answered.contains_key(&k) {
            return;
        }
        let answer = Unsent {
            key,
            topics: topics.to_vec(),
            payload: payload.to_vec(),
            properties: properties.clone(),
        };
        let line = format!("A {k:032x} {}\n", answer.encode());
        self.answered.insert(k, answer);
        self.append(&line);
    }

    /// Its answer reached the broker (or there was none to send).
    pub(crate) fn finished(&mut self, key: DedupKey) {
        let k = key.as_u128();
        if self.open.remove(&k).is_none() && self.answered.remove(&k).is_none() {
            return;
        }
        self.finished.push(k);
        if self.finished.len() > FINISHED_KEPT {
            self.finished.drain(..self.finished.len() - FINISHED_KEPT);
        }
        self.append(&format!("D {k:032x}\n"));
    }

    /// Rewrites the file with what still matters, through a temporary file
    /// renamed over it.
    fn compact(&mut self) -> Result<()> {
        let tmp = self.path.with_extension("compacting");
        let mut text = String::new();
        for k in &self.finished {
            text.push_str(&format!("D {k:032x}\n"));
        }
        self.order
            .retain(|k| self.open.contains_key(k) || self.answered.contains_key(k));
        for k in &self.order {
            if let Some(p) = self.open.get(k) {
                text.push_str(&format!(
                    "T {k:032x} {} {}\n",
                    hex(p.topic.as_bytes()),
                    hex(&p.payload)
                ));
            } else if let Some(a) = self.answered.get(k) {
                text.push_str(&format!("A {k:032x} {}\n", a.encode()));
            }
        }
        std::fs::write(&tmp, text).map_err(|e| io(&tmp, "write it", &e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io(&self.path, "replace it", &e))?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&self.path, "open it for writing", &e))?;
        self.lines = self.finished.len() + self.order.len();
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_taken_and_not_finished_comes_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        let (a, b, c) = (
            DedupKey::payload(b"a"),
            DedupKey::payload(b"b"),
            DedupKey::payload(b"c"),
        );
        {
            let (mut j, opened) = Journal::open(&path).expect("new");
            assert!(opened.pending.is_empty() && opened.finished.is_empty());
            j.taken(a, "oc2/cmd/all", b"{\"x\":1}");
            j.taken(b, "oc2/cmd/device/d", b"bb");
            j.taken(c, "oc2/cmd/all", b"cc");
            j.finished(b);
        }
        // A kill in the middle of a line leaves half of it.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"T 00ff").expect("write");
        drop(f);
        let (
            mut j,
            Opened {
                pending, finished, ..
            },
        ) = Journal::open(&path).expect("reopen");
        assert_eq!(
            pending
                .iter()
                .map(|p| (p.key, p.topic.as_str(), p.payload.as_slice()))
                .collect::<Vec<_>>(),
            [
                (a, "oc2/cmd/all", &b"{\"x\":1}"[..]),
                (c, "oc2/cmd/all", &b"cc"[..])
            ]
        );
        assert_eq!(finished, [b]);
        j.finished(a);
        j.finished(c);
        let (
            _,
            Opened {
                pending, finished, ..
            },
        ) = Journal::open(&path).expect("again");
        assert!(pending.is_empty());
        assert_eq!(finished, [b, a, c]);
    }

    #[test]
    fn an_answer_not_acknowledged_comes_back_to_be_sent_not_run() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        let (a, b) = (DedupKey::payload(b"a"), DedupKey::payload(b"b"));
        let props = PublishProperties {
            payload_format_indicator: Some(1),
            content_type: Some("application/openc2".into()),
            user_properties: vec![
                ("msgType".into(), "rsp".into()),
                ("encoding".into(), "json".into()),
            ],
        };
        let topics = ["oc2/rsp".to_owned(), "oc2/rsp/p 1".to_owned()];
        {
            let (mut j, _) = Journal::open(&path).expect("new");
            j.taken(a, "oc2/cmd/all", b"ca");
            j.taken(b, "oc2/cmd/all", b"cb");
            // Killed after the answer went to the client, before the broker's PUBACK.
            j.answered(a, &topics, b"{\"status\":200}", &props);
            j.answered(b, &topics, b"rb", &props);
            j.finished(b);
        }
        // Opened again: the answer comes back to be sent, not the command to be run.
        let (j, opened) = Journal::open(&path).expect("reopen");
        assert!(opened.pending.is_empty(), "{:?}", opened.pending);
        assert_eq!(opened.finished, [b]);
        assert_eq!(
            opened.unsent,
            [Unsent {
                key: a,
                topics: topics.to_vec(),
                payload: b"{\"status\":200}".to_vec(),
                properties: props.clone(),
            }]
        );
        drop(j);
        // The compacted file says the same; once acknowledged, it is finished.
        let (mut j, again) = Journal::open(&path).expect("again");
        assert_eq!(again.unsent, opened.unsent);
        j.finished(a);
        drop(j);
        let (_, last) = Journal::open(&path).expect("last");
        assert!(last.unsent.is_empty() && last.pending.is_empty());
        assert_eq!(last.finished, [b, a]);
    }

    #[test]
    fn read_tells_what_a_restart_would_do_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        let (a, b, c) = (
            DedupKey::payload(b"a"),
            DedupKey::payload(b"b"),
            DedupKey::payload(b"c"),
        );
        let topics = ["oc2/rsp/p1".to_owned()];
        {
            let (mut j, _) = Journal::open(&path).expect("new");
            j.taken(a, "oc2/cmd/all", b"ca");
            j.taken(b, "oc2/cmd/all", b"cb");
            j.taken(c, "oc2/cmd/all", b"cc");
            j.answered(b, &topics, b"rb", &PublishProperties::default());
            j.finished(c);
        }
        let before = std::fs::read(&path).expect("bytes");
        let contents = read(&path).expect("read");
        assert_eq!(std::fs::read(&path).expect("bytes"), before, "read wrote");
        assert_eq!(
            contents.to_run.iter().map(|p| p.key).collect::<Vec<_>>(),
            [a]
        );
        assert_eq!(
            contents
                .to_send
                .iter()
                .map(|u| (u.key, u.payload.as_slice()))
                .collect::<Vec<_>>(),
            [(b, &b"rb"[..])]
        );
        assert_eq!(contents.finished, 1);
        let e = read(&dir.path().join("none")).expect_err("no file");
        assert!(e.to_string().contains("cannot read it"), "{e}");
    }

    #[test]
    fn a_file_that_is_no_journal_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        std::fs::write(&path, "hello world\nthis is not mine\n").expect("write");
        let e = Journal::open(&path).expect_err("refused");
        assert!(
            e.to_string()
                .contains("line 1 is not one this library writes"),
            "{e}"
        );
    }
}
