//! How far `oc2mqtt::codec` is from serde_json itself on the deny command,
//! timed in short batches with the best batch reported (the machine is
//! shared, so the best batch is the closest to an idle core) beside the median.
//!
//! `cargo run --release -p oc2mqtt-bench --bin codec-floor`

use std::hint::black_box;
use std::time::Instant;

use oc2mqtt::codec::{self, Dialect, Encoding};
use serde_json::Value;

const DENY: &[u8] = include_bytes!("../../../payloads/deny_command.json");

/// Ops/s of `f`: (best 50 ms batch, median batch) over 20 batches.
fn rate(mut f: impl FnMut()) -> (f64, f64) {
    let mut rates = Vec::new();
    for _ in 0..20 {
        let (t, mut n) = (Instant::now(), 0u64);
        while t.elapsed().as_millis() < 50 {
            for _ in 0..64 {
                f();
            }
            n += 64;
        }
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() - 1], rates[rates.len() / 2])
}

/// A named benchmark body.
type Case<'a> = (&'a str, Box<dyn FnMut() + 'a>);

fn main() {
    let msg = codec::decode(DENY, None).expect("valid").message;
    let (json, props) = codec::encode(&msg, Encoding::Json, Dialect::Spec).expect("encodes");
    let value: Value = serde_json::from_slice(&json).expect("json");
    let cases: Vec<Case<'_>> = vec![
        (
            "serde_json_parse_value",
            Box::new(|| {
                drop(black_box(
                    serde_json::from_slice::<Value>(black_box(&json)).expect("json"),
                ))
            }),
        ),
        (
            "oc2mqtt_decode_json",
            Box::new(|| {
                drop(black_box(
                    codec::decode(black_box(&json), Some(&props)).expect("valid"),
                ))
            }),
        ),
        (
            "serde_json_write_value",
            Box::new(|| {
                drop(black_box(
                    serde_json::to_vec(black_box(&value)).expect("json"),
                ))
            }),
        ),
        (
            "oc2mqtt_encode_json",
            Box::new(|| {
                drop(black_box(
                    codec::encode(black_box(&msg), Encoding::Json, Dialect::Spec).expect("encodes"),
                ))
            }),
        ),
    ];
    for (name, mut f) in cases {
        let (best, med) = rate(&mut f);
        println!("{{\"case\":\"{name}\",\"best_per_s\":{best:.0},\"median_per_s\":{med:.0}}}");
    }
}
