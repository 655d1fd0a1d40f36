//! Criterion benchmarks of the sans-IO core. Run with `make bench-core`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oc2mqtt::codec::{self, Dialect, Encoding};
use oc2mqtt::correlate::{Correlator, Expect, Outcome};
use oc2mqtt::dedup::{DedupKey, Deduplicator};

const DENY: &[u8] = include_bytes!("../../bench/payloads/deny_command.json");
const RESPONSE: &[u8] = include_bytes!("../../bench/payloads/ok_response.json");

fn codec_benches(c: &mut Criterion) {
    for (name, payload) in [("deny", DENY), ("response200", RESPONSE)] {
        let msg = codec::decode(payload, None)
            .expect("benchmark payload is valid")
            .message;
        let (cbor, cbor_props) =
            codec::encode(&msg, Encoding::Cbor, Dialect::Spec).expect("encodes");
        let (json, json_props) =
            codec::encode(&msg, Encoding::Json, Dialect::Spec).expect("encodes");

        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(1));
        g.bench_function("decode_json", |b| {
            b.iter(|| codec::decode(black_box(&json), Some(&json_props)).expect("valid"))
        });
        g.bench_function("decode_json_sniffed", |b| {
            b.iter(|| codec::decode(black_box(&json), None).expect("valid"))
        });
        g.bench_function("decode_cbor", |b| {
            b.iter(|| codec::decode(black_box(&cbor), Some(&cbor_props)).expect("valid"))
        });
        g.bench_function("encode_json", |b| {
            b.iter(|| {
                codec::encode(black_box(&msg), Encoding::Json, Dialect::Spec).expect("encodes")
            })
        });
        g.bench_function("encode_cbor", |b| {
            b.iter(|| {
                codec::encode(black_box(&msg), Encoding::Cbor, Dialect::Spec).expect("encodes")
            })
        });
        g.bench_function("encode_json_otupy", |b| {
            b.iter(|| {
                codec::encode(black_box(&msg), Encoding::Json, Dialect::Otupy).expect("encodes")
            })
        });
        g.finish();
    }
}

fn dedup_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("dedup");
    g.throughput(Throughput::Elements(1));
    // A full table of 100 000 keys; each check inserts a new key and evicts the oldest.
    let mut d = Deduplicator::new(u64::MAX, 100_000);
    for i in 0..100_000u64 {
        d.check(
            DedupKey::from_u128(
                u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
            ),
            0,
        );
    }
    let mut i = 100_000u64;
    g.bench_function("check_new_at_100k", |b| {
        b.iter(|| {
            i += 1;
            d.check(
                DedupKey::from_u128(
                    u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                ),
                0,
            )
        })
    });
    let dup =
        DedupKey::from_u128(u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
    g.bench_function("check_duplicate_at_100k", |b| {
        b.iter(|| d.check(black_box(dup), 0))
    });
    g.bench_function("key_of_command", |b| {
        b.iter(|| {
            DedupKey::command(
                black_box(Some("sfslpfprod.example.com")),
                black_box("d1ac0489-ed51-4345-9175-f3078f30afe5"),
            )
        })
    });
    g.finish();
}

fn correlate_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("correlate");
    g.throughput(Throughput::Elements(1));
    let rsp = codec::decode(RESPONSE, None).expect("valid").message;
    let id = rsp.headers.request_id.clone().expect("has an id");
    let mut corr: Correlator<()> = Correlator::new();
    // 10 000 other exchanges open in the background.
    for i in 0..10_000 {
        corr.open(&format!("other-{i}"), Expect::Count(1), u64::MAX, ())
            .expect("open");
    }
    g.bench_function("open_then_complete", |b| {
        b.iter(|| {
            corr.open(
                &id,
                Expect::Responders(vec!["sfslpfcons.example.com".into()]),
                10_000,
                (),
            )
            .expect("open");
            assert!(matches!(
                corr.on_response(black_box(&rsp)),
                Outcome::Complete(_)
            ));
        })
    });
    g.finish();
}

criterion_group!(benches, codec_benches, dedup_benches, correlate_benches);
criterion_main!(benches);
