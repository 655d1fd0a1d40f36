//! Runs the shared rule vectors in `tests/rules/` (see its README.md):
//! each a consumer's options and a sequence of received messages, with the
//! decision and the responses each must give.

mod common;

use std::path::PathBuf;

use common::vectors::{payload_of, properties_of};

use oc2mqtt::codec;
use oc2mqtt::message::Response;
use oc2mqtt::rules::{ConsumerOptions, ConsumerRules, Publish, Received};
use oc2mqtt::topics::Topics;
use serde_json::{Map, Value};

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/rules")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn options(c: &Map<String, Value>) -> ConsumerOptions {
    let mut o = ConsumerOptions::new(c["device_id"].as_str().expect("device_id"));
    o.profiles = strings(c.get("profiles"));
    o.args = strings(c.get("args"));
    o.pairs = c
        .get("pairs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    let p = strings(Some(p));
                    (p[0].clone(), p[1].clone())
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(f) = c.get("freshness_secs").and_then(Value::as_u64) {
        o.freshness_secs = f;
    }
    o.handle_features = c
        .get("handle_features")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    o.rate_limit = c.get("rate_limit").and_then(Value::as_f64);
    o
}

fn topics(t: Option<&Value>) -> Topics {
    let mut topics = Topics::new();
    if let Some(peer) = t.and_then(|t| t.get("peer")).and_then(Value::as_str) {
        topics = topics.with_peer(peer.parse().expect("a peer"));
    }
    if let Some(r) = t
        .and_then(|t| t.get("response_topics"))
        .and_then(Value::as_str)
    {
        topics = topics.with_response_topics(r.parse().expect("response topics"));
    }
    topics
}

/// Compares published responses with their expectations.
fn check_publish(got: &[Publish], want: Option<&Value>, at: &str, problems: &mut Vec<String>) {
    let want = want.and_then(Value::as_array).cloned().unwrap_or_default();
    if got.len() != want.len() {
        problems.push(format!(
            "{at}: {} responses published, expected {}: {:?}",
            got.len(),
            want.len(),
            got.iter()
                .map(|p| p.message.to_json_value().to_string())
                .collect::<Vec<_>>()
        ));
        return;
    }
    for (i, (p, w)) in got.iter().zip(&want).enumerate() {
        let at = format!("{at} publish[{i}]");
        if strings(w.get("topics")) != p.topics {
            problems.push(format!(
                "{at}: topics {:?}, expected {}",
                p.topics, w["topics"]
            ));
        }
        let d = match codec::decode(&p.payload, Some(&p.properties)) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("{at}: our own payload does not decode: {e}"));
                continue;
            }
        };
        if let Some(dialect) = w.get("dialect").and_then(Value::as_str) {
            if d.dialect.as_str() != dialect {
                problems.push(format!("{at}: dialect {}, expected {dialect}", d.dialect));
            }
        }
        if let Some(t) = w.get("msg_type_property").and_then(Value::as_str) {
            if p.properties.user("msgType") != Some(t) {
                problems.push(format!(
                    "{at}: msgType {:?}, expected {t}",
                    p.properties.user("msgType")
                ));
            }
        }
        let h = d.message.headers.clone();
        let want_h = w.get("headers").cloned().unwrap_or_default();
        let got_h = serde_json::json!({
            "request_id": h.request_id, "from": h.from, "to": h.to,
        });
        for key in ["request_id", "from", "to"] {
            let want = want_h.get(key).cloned().unwrap_or(Value::Null);
            if got_h[key] != want {
                problems.push(format!(
                    "{at}: headers.{key} {}, expected {want}",
                    got_h[key]
                ));
            }
        }
        let Some(rsp) = d.message.response() else {
            problems.push(format!("{at}: not a response"));
            continue;
        };
        if w.get("status").and_then(Value::as_u64) != Some(u64::from(rsp.status)) {
            problems.push(format!(
                "{at}: status {}, expected {} ({:?})",
                rsp.status, w["status"], rsp.status_text
            ));
        }
        if let Some(text) = w.get("status_text_contains").and_then(Value::as_str) {
            if !rsp.status_text.as_deref().unwrap_or("").contains(text) {
                problems.push(format!(
                    "{at}: status_text {:?} does not contain {text:?}",
                    rsp.status_text
                ));
            }
        }
        if let Some(results) = w.get("results") {
            let got = rsp
                .results
                .clone()
                .map(Value::Object)
                .unwrap_or(Value::Null);
            if &got != results {
                problems.push(format!("{at}: results {got}, expected {results}"));
            }
        }
    }
}

fn run_case(case: &Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut rules = ConsumerRules::new(
        options(case["consumer"].as_object().expect("consumer")),
        topics(case.get("topics")),
    )
    .expect("valid options");
    for (i, step) in case["steps"].as_array().expect("steps").iter().enumerate() {
        let step = step.as_object().expect("a step");
        let at = format!("step {i}");
        let payload = payload_of(step).expect("payload");
        let props = step
            .get("properties")
            .filter(|p| !p.is_null())
            .map(|p| properties_of(p).expect("properties"));
        let received = Received {
            topic: step["topic"].as_str().expect("topic"),
            payload: &payload,
            properties: props.as_ref(),
            retained: step.get("retained").and_then(Value::as_bool) == Some(true),
        };
        let d = rules.on_command(
            &received,
            step["now_ms"].as_i64().expect("now_ms"),
            step["at_ms"].as_u64().expect("at_ms"),
        );
        let expect = step["expect"].as_object().expect("expect");
        let skipped = d.skipped.as_ref().map(|s| s.as_str());
        let want_skipped = expect.get("skipped").and_then(Value::as_str);
        if skipped != want_skipped {
            problems.push(format!(
                "{at}: skipped {skipped:?}, expected {want_skipped:?} ({:?})",
                d.skipped
            ));
        }
        check_publish(&d.publish, expect.get("publish"), &at, &mut problems);
        match (&d.execute, expect.get("execute")) {
            (None, None) => {}
            (Some(_), None) => problems.push(format!("{at}: executed, expected not")),
            (None, Some(_)) => problems.push(format!("{at}: not executed, expected it")),
            (Some(request), Some(want)) => {
                if let Some(id) = want.get("command_id") {
                    let got = request.command().command_id.clone();
                    if got.as_deref() != id.as_str() {
                        problems.push(format!("{at}: command_id {got:?}, expected {id}"));
                    }
                }
                if let Some(answer) = expect.get("answer") {
                    let response =
                        Response::from_json_value(answer["response"].clone()).expect("a response");
                    let published = rules
                        .answer(request, response)
                        .expect("a valid answer")
                        .into_iter()
                        .collect::<Vec<_>>();
                    check_publish(
                        &published,
                        answer.get("publish"),
                        &format!("{at} answer"),
                        &mut problems,
                    );
                }
            }
        }
    }
    problems
}

#[test]
fn every_rule_vector_holds() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(rules_dir())
        .expect("tests/rules")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 27, "only {} rule vectors", files.len());
    let mut failed = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable");
        let case: Map<String, Value> = serde_json::from_str(&text).expect("JSON");
        let problems = run_case(&case);
        if !problems.is_empty() {
            failed.push(format!(
                "{}:\n  - {}",
                f.file_name().expect("name").to_string_lossy(),
                problems.join("\n  - ")
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} rule vectors failed:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}
