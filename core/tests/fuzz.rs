//! Fuzzing of the codec on stable Rust: every shared test vector is mutated,
//! byte by byte and node by node, and each result is decoded with random
//! MQTT properties. For every input, `decode` must return (never panic) and,
//! when it fails, say why; whatever it accepts must encode again in every
//! encoding and in the spec and otupy dialects, and decode back to the same
//! message.
//!
//! `cargo test` runs a few thousand inputs from a fixed seed. For a longer
//! run, with the seed printed so that a failure can be replayed:
//!
//! ```sh
//! OC2MQTT_FUZZ_ITERS=2000000 OC2MQTT_FUZZ_SEED=$RANDOM cargo test --release -p oc2mqtt --test fuzz -- --nocapture
//! ```

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::vectors::{load, vector_files};
use oc2mqtt::codec::{self, Dialect, Encoding, PublishProperties};
use serde_json::{Value, json};

/// xorshift64*: small, fast and the same everywhere, so a seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).expect("fits")
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// JSON fragments a mutation splices in: structure, edge-case numbers and strings.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1e999",
    "-1",
    "18446744073709551616",
    "1.5",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\\"\"",
    "{}",
    "[]",
    "\"\"",
    "\u{feff}",
    "\u{0}",
    "\u{fffd}",
    "9999999999999999999999999999",
];

/// Keys and values of the OpenC2 vocabulary, so structural mutations reach deep.
const KEYS: &[&str] = &[
    "headers",
    "body",
    "openc2",
    "request",
    "response",
    "notification",
    "content",
    "request_id",
    "created",
    "from",
    "to",
    "action",
    "target",
    "args",
    "actuator",
    "command_id",
    "status",
    "status_text",
    "results",
    "response_requested",
    "start_time",
    "stop_time",
    "duration",
    "features",
    "ipv4_connection",
    "slpf",
    "versions",
    "profiles",
    "pairs",
    "rate_limit",
];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 => json!(rng.next() as i64),
        3 => json!(f64::from(u32::try_from(rng.next() % 100_000).expect("small")) / 7.0),
        4 => Value::String((*rng.pick(KEYS)).to_owned()),
        5 => Value::String("x".repeat(rng.below(40))),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|_| ((*rng.pick(KEYS)).to_owned(), random_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

/// Changes one node somewhere in `v`: replaced, removed, or given a new key.
fn mutate_tree(rng: &mut Rng, v: &mut Value, depth: usize) {
    let descend = !rng.chance(3);
    match v {
        Value::Object(map) if !map.is_empty() && descend => {
            let key = map
                .keys()
                .nth(rng.below(map.len()))
                .expect("in range")
                .clone();
            match rng.below(4) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert((*rng.pick(KEYS)).to_owned(), random_value(rng, depth));
                }
                _ => mutate_tree(rng, map.get_mut(&key).expect("present"), depth + 1),
            }
        }
        Value::Array(items) if !items.is_empty() && descend => {
            let i = rng.below(items.len());
            mutate_tree(rng, &mut items[i], depth + 1);
        }
        _ => *v = random_value(rng, depth),
    }
}

fn mutate_bytes(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let byte = u8::try_from(rng.next() & 0xff).expect("one byte");
                input.insert(rng.below(len + 1), byte);
            }
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                input.drain(start..end);
            }
            3 => input.truncate(rng.below(len + 1)),
            4 => {
                let token = rng.pick(TOKENS).as_bytes();
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            5 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(32)).min(len);
                let piece = input[start..end].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, piece);
            }
            _ => {
                let other = rng.pick(seeds);
                let cut = rng.below(input.len() + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
        }
    }
}

/// No properties (MQTT v3.1.1), the right ones for the payload's encoding,
/// or a random mix that is often wrong.
fn random_properties(rng: &mut Rng, payload: &[u8]) -> Option<PublishProperties> {
    match rng.below(4) {
        0 | 1 => return None,
        2 => {
            let json = codec::sniff_encoding(payload) == Encoding::Json;
            return Some(PublishProperties {
                payload_format_indicator: Some(u8::from(json)),
                content_type: Some("application/openc2".to_owned()),
                user_properties: vec![(
                    "encoding".to_owned(),
                    (if json { "json" } else { "cbor" }).to_owned(),
                )],
            });
        }
        _ => {}
    }
    let mut p = PublishProperties {
        payload_format_indicator: [None, Some(0), Some(1), Some(7)][rng.below(4)],
        content_type: [
            None,
            Some("application/openc2"),
            Some("application/openc2+json;version=1.0"),
            Some("application/cbor"),
            Some("text/plain"),
        ][rng.below(5)]
        .map(str::to_owned),
        user_properties: Vec::new(),
    };
    for _ in 0..rng.below(3) {
        let key = *rng.pick(&["msgType", "encoding", "other"]);
        let value = *rng.pick(&["req", "rsp", "ntf", "json", "cbor", "xml", ""]);
        p.user_properties.push((key.to_owned(), value.to_owned()));
    }
    Some(p)
}

/// Checks one input; returns what is wrong with how it was handled.
fn check(payload: &[u8], props: Option<&PublishProperties>) -> Result<(), String> {
    let decoded = catch_unwind(AssertUnwindSafe(|| codec::decode(payload, props)))
        .map_err(|_| "decode panicked".to_owned())?;
    let d = match decoded {
        Ok(d) => d,
        Err(e) if e.to_string().trim().is_empty() => {
            return Err(format!("an error without a reason: {e:?}"));
        }
        Err(_) => return Ok(()),
    };
    for encoding in [Encoding::Json, Encoding::Cbor] {
        for dialect in [Dialect::Spec, Dialect::Otupy] {
            let bytes_meta = catch_unwind(AssertUnwindSafe(|| {
                codec::encode(&d.message, encoding, dialect)
            }))
            .map_err(|_| format!("encode {encoding:?}/{dialect:?} panicked"))?;
            let (bytes, meta) = match (bytes_meta, dialect) {
                (Ok(x), _) => x,
                // The one refusal allowed: header names otupy's flat shape cannot carry.
                (Err(e), Dialect::Otupy)
                    if ["headers.content", "headers.body"].contains(&e.path.as_str())
                        || d.message.extra.contains_key(&e.path) =>
                {
                    continue;
                }
                (Err(e), _) => {
                    return Err(format!(
                        "accepted, but encoding it {encoding:?}/{dialect:?} failed: {e}"
                    ));
                }
            };
            let again = codec::decode(&bytes, Some(&meta))
                .map_err(|e| format!("re-encoded {encoding:?}/{dialect:?} does not decode: {e}"))?;
            // otupy's top level holds the headers: a spec message's own
            // top-level keys (`signature`) come back as headers.
            let mut expected = d.message.clone();
            if dialect == Dialect::Otupy {
                let extra = std::mem::take(&mut expected.extra);
                expected.headers.extra.extend(extra);
            }
            if again.message != expected {
                return Err(format!(
                    "{encoding:?}/{dialect:?} round trip changed the message:\n  was {}\n  now {}",
                    d.message.to_json_value(),
                    again.message.to_json_value()
                ));
            }
        }
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn the_codec_survives_mutated_vectors() {
    let seeds: Vec<Vec<u8>> = vector_files()
        .iter()
        .filter_map(|(_, path)| load(path).ok())
        .map(|case| case.payload)
        .filter(|p| !p.is_empty() && p.len() < 64 * 1024)
        .collect();
    assert!(seeds.len() >= 60, "only {} seeds", seeds.len());
    let trees: Vec<Value> = seeds
        .iter()
        .filter_map(|p| {
            serde_json::from_slice(p)
                .ok()
                .or_else(|| ciborium::from_reader(p.as_slice()).ok())
        })
        .collect();
    let seed = env_u64("OC2MQTT_FUZZ_SEED").unwrap_or(0x0C2_F022);
    let iters = env_u64("OC2MQTT_FUZZ_ITERS").unwrap_or(if cfg!(debug_assertions) {
        4_000
    } else {
        40_000
    });
    let mut rng = Rng(seed | 1);
    let (mut accepted, mut refused) = (0_u64, 0_u64);
    for i in 0..iters {
        let input = if rng.chance(2) {
            let mut tree = rng.pick(&trees).clone();
            for _ in 0..=usize::from(rng.chance(4)) {
                mutate_tree(&mut rng, &mut tree, 0);
            }
            if rng.chance(3) {
                let mut out = Vec::new();
                ciborium::into_writer(&tree, &mut out).expect("a JSON value encodes as CBOR");
                out
            } else {
                serde_json::to_vec(&tree).expect("a JSON value serializes")
            }
        } else {
            let mut bytes = rng.pick(&seeds).clone();
            mutate_bytes(&mut rng, &mut bytes, &seeds);
            bytes
        };
        let props = random_properties(&mut rng, &input);
        if let Err(why) = check(&input, props.as_ref()) {
            panic!(
                "input {i} of seed {seed}: {why}\n  payload (hex) {}\n  as text {}\n  properties {props:?}",
                hex::encode(&input),
                String::from_utf8_lossy(&input)
            );
        }
        if codec::decode(&input, props.as_ref()).is_ok() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!("fuzz: seed {seed}, {iters} inputs: {accepted} accepted, {refused} refused");
    // A fuzzer that only ever produces garbage tests nothing past the parser.
    assert!(
        accepted * 20 >= iters,
        "only {accepted} of {iters} inputs were accepted: the mutations are too coarse"
    );
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for open in ["[", "{\"a\":"] {
        let mut payload = String::from("{\"action\":\"deny\",\"target\":{\"x\":");
        payload.push_str(&open.repeat(100_000));
        let r = catch_unwind(|| codec::decode(payload.as_bytes(), None));
        let err = r.expect("no panic").expect_err("refused");
        assert!(!err.to_string().is_empty());
    }
    let mut cbor = vec![0xa2, 0x66];
    cbor.extend_from_slice(b"action");
    cbor.extend_from_slice(&[0x64]);
    cbor.extend_from_slice(b"deny");
    cbor.extend_from_slice(&[0x66]);
    cbor.extend_from_slice(b"target");
    cbor.extend(std::iter::repeat_n(0x81, 100_000));
    let r = catch_unwind(|| codec::decode(&cbor, None));
    assert!(r.expect("no panic").is_err());
}
