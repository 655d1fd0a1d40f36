//! Hostile payloads beyond the shared invalid vectors (which
//! `exchange.rs` publishes one by one): oversized, deeply nested, binary
//! garbage, NUL, ids that are no topic levels. The consumer survives each,
//! answers 400 whenever it can address the sender, and answers a good
//! command right after every one.

mod common;

use std::time::Duration;

use common::{Broker, RawClient, serving};
use oc2mqtt::client::ClientConfig;
use oc2mqtt::codec;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// A 400 to this request id.
    BadRequest(&'static str),
    /// The command is valid and runs: a 200 to this request id.
    Ok(&'static str),
    /// Nothing can be addressed: no answer.
    Silent,
}

fn spec_head(id: &str, from: &str) -> String {
    format!(
        r#"{{"headers":{{"request_id":"{id}","from":"{from}","created":{}}},"body":"#,
        oc2mqtt::message::now_ms()
    )
}

fn good(id: &str, from: &str) -> Vec<u8> {
    format!(
        r#"{}{{"openc2":{{"request":{{"action":"query","target":{{"features":[]}}}}}}}}}}"#,
        spec_head(id, from)
    )
    .into_bytes()
}

fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let mut five_mib = spec_head("big", "p9").into_bytes();
    five_mib.extend(br#"{"openc2":{"request":{"action":"deny","target":{"x":""#);
    five_mib.extend(std::iter::repeat_n(b'a', 5 << 20));
    five_mib.extend(br#""}}}}}"#);
    let mut just_over = spec_head("over", "p9").into_bytes();
    just_over.extend(br#"{"openc2":{"request":{"action":"deny","target":{"x":""#);
    let pad = (1 << 20) + 1 - just_over.len() - 6;
    just_over.extend(std::iter::repeat_n(b'a', pad));
    just_over.extend(br#""}}}}}"#);
    let mut deep = spec_head("deep", "p9").into_bytes();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    let mut deep_object = spec_head("deep-obj", "p9").into_bytes();
    deep_object.extend(br#"{"openc2":{"request":{"action":"deny","target":{"x":"#);
    for _ in 0..100_000 {
        deep_object.extend(br#"{"a":"#);
    }
    let mut bad_utf8 = spec_head("utf8", "p9").into_bytes();
    bad_utf8.extend(
        b"{\"openc2\":{\"request\":{\"action\":\"deny\",\"target\":{\"x\":\"\xff\xfe\"}}}}}",
    );
    let cbor_garbage: Vec<u8> = (0..4096_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        ("5 MiB with its sender at the start", five_mib, Expect::BadRequest("big")),
        ("1 MiB + 1 byte", just_over, Expect::BadRequest("over")),
        ("100 000 nested arrays", deep, Expect::BadRequest("deep")),
        ("100 000 nested objects", deep_object, Expect::BadRequest("deep-obj")),
        ("100 000 nested arrays, no sender", vec![b'['; 100_000], Expect::Silent),
        ("invalid UTF-8 in a value", bad_utf8, Expect::Silent),
        ("CBOR garbage", cbor_garbage, Expect::Silent),
        ("empty", Vec::new(), Expect::Silent),
        ("white space", b"  \n\t ".to_vec(), Expect::Silent),
        ("null", b"null".to_vec(), Expect::Silent),
        ("a number too large", b"1e999".to_vec(), Expect::Silent),
        ("NUL bytes", b"\0\0\0\0".to_vec(), Expect::Silent),
        (
            "duplicate action",
            format!(
                r#"{}{{"openc2":{{"request":{{"action":"deny","action":"allow","target":{{"ipv4_net":"0.0.0.0/0"}}}}}}}}}}"#,
                spec_head("dup", "p9")
            )
            .into_bytes(),
            Expect::BadRequest("dup"),
        ),
        ("NUL inside the request id", good("n\\u0000l", "p9"), Expect::Ok("n\0l")),
        ("from '#', no topic level", good("hash", "#"), Expect::Ok("hash")),
        ("from 'a/+/b'", good("plus", "a/+/b"), Expect::Ok("plus")),
        (
            "to '#'",
            br##"{"headers":{"request_id":"to-hash","from":"p9","to":["#"]},"body":{"openc2":{"request":{"action":"query","target":{"features":[]}}}}}"##
                .to_vec(),
            Expect::Silent,
        ),
        (
            "created far in the future as a float (stale, or it would never turn stale)",
            br#"{"headers":{"request_id":"future","from":"p9","created":1e300},"body":{"openc2":{"request":{"action":"query","target":{"features":[]}}}}}"#
                .to_vec(),
            Expect::Silent,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_payloads_are_answered_when_addressable_and_serving_goes_on() {
    let broker = Broker::start(&[]);
    let consumer = serving(ClientConfig::new(broker.url()), "fw-1").await;
    let raw = RawClient::connect(&broker.url(), true, &["oc2/rsp/#"]).await;
    let mut report = Vec::new();
    for (i, (name, payload, expect)) in cases().into_iter().enumerate() {
        raw.publish("oc2/cmd/device/fw-1", &payload, None).await;
        let good_id = format!("good-{i}");
        raw.publish("oc2/cmd/device/fw-1", &good(&good_id, "p9"), None)
            .await;
        let mut answers = Vec::new();
        while let Some(m) = raw.next(Duration::from_millis(1500)).await {
            let d = codec::decode(m.payload(), None).expect("our answers decode");
            let status = d.message.response().expect("a response").status;
            let id = d.message.headers.request_id.clone().unwrap_or_default();
            answers.push((
                id.clone(),
                status,
                d.message.response().and_then(|r| r.status_text.clone()),
            ));
            if id == good_id {
                break;
            }
        }
        let good_answered = answers.iter().any(|(id, s, _)| *id == good_id && *s == 200);
        let for_case: Vec<_> = answers.iter().filter(|(id, _, _)| *id != good_id).collect();
        let ok = good_answered
            && match expect {
                Expect::Silent => for_case.is_empty(),
                Expect::BadRequest(id) => {
                    for_case.len() == 1 && for_case[0].0 == id && for_case[0].1 == 400
                }
                Expect::Ok(id) => {
                    for_case.len() == 1 && for_case[0].0 == id && for_case[0].1 == 200
                }
            };
        report.push(format!(
            "{name}: {expect:?} -> {for_case:?}, next command answered: {good_answered}"
        ));
        assert!(ok, "{}", report.join("\n"));
    }
    let stats = consumer.stats();
    assert!(stats.decode_errors >= 10, "{stats:?}");
    assert!(report.len() >= 18, "{}", report.join("\n"));
}
