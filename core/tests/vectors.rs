//! Runs the shared test vectors in `tests/vectors/` (see its README.md for
//! the format) against `codec::decode`, and round-trips every valid case
//! through every encoding and dialect.

mod common;

use std::fmt::Write as _;

use common::vectors::*;

use oc2mqtt::codec::{self, Dialect, Encoding};
use oc2mqtt::message::Message;
use oc2mqtt::{MessageError, MsgType};
use serde_json::{Map, Value};

fn is_invalid(case: &Case) -> bool {
    case.expect.contains_key("error")
}

/// Checks one case; returns every problem found.
fn check(case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let decoded = codec::decode(&case.payload, case.properties.as_ref());
    if is_invalid(case) {
        match decoded {
            Ok(d) => problems.push(format!(
                "decoded but an error was expected: {}",
                d.message.to_json_value()
            )),
            Err(e) => check_error(&e, &case.expect, &mut problems),
        }
        return problems;
    }
    let d = match decoded {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("decode failed: {} {e:?}", e.kind));
            return problems;
        }
    };
    let want_str = |k: &str| case.expect.get(k).and_then(Value::as_str);
    for (key, got) in [
        ("encoding", d.encoding.as_str()),
        ("dialect", d.dialect.as_str()),
        ("msg_type", d.message.msg_type().as_key()),
    ] {
        if want_str(key) != Some(got) {
            problems.push(format!("{key}: expected {:?}, got {got:?}", want_str(key)));
        }
    }
    let Some(want) = case.expect.get("message") else {
        problems.push("expect.message is missing".into());
        return problems;
    };
    let got = d.message.to_json_value();
    if &got != want {
        problems.push(format!(
            "message differs:\n    expected {want}\n    got      {got}"
        ));
    }
    // The canonical form must itself be readable, as the same message.
    match Message::from_json_value(want.clone()) {
        Ok(m) if m == d.message => {}
        Ok(m) => problems.push(format!(
            "expect.message reads back as a different message: {}",
            m.to_json_value()
        )),
        Err(e) => problems.push(format!("expect.message does not read back: {e}")),
    }
    round_trip(&d.message, &mut problems);
    problems
}

fn round_trip(msg: &Message, problems: &mut Vec<String>) {
    // The bare dialect carries the four defined headers beside the body,
    // and nothing else.
    let bare_ok = msg.headers.extra.is_empty()
        && msg.extra.is_empty()
        && msg.msg_type() != MsgType::Notification;
    for encoding in [Encoding::Json, Encoding::Cbor] {
        for dialect in [Dialect::Spec, Dialect::Otupy, Dialect::Bare] {
            if dialect == Dialect::Bare && !bare_ok {
                continue;
            }
            let (bytes, props) = match codec::encode(msg, encoding, dialect) {
                Ok(x) => x,
                Err(e) => {
                    problems.push(format!("re-encode {encoding}/{dialect} failed: {e}"));
                    continue;
                }
            };
            // otupy's top level holds the headers: the message's own
            // top-level keys (`signature`) come back as headers.
            let mut expected = msg.clone();
            if dialect == Dialect::Otupy {
                let extra = std::mem::take(&mut expected.extra);
                expected.headers.extra.extend(extra);
            }
            for (how, p) in [
                ("with properties", Some(&props)),
                ("without properties", None),
            ] {
                match codec::decode(&bytes, p) {
                    Ok(back)
                        if back.message == expected
                            && back.encoding == encoding
                            && back.dialect == dialect => {}
                    Ok(back) => problems.push(format!(
                        "round trip {encoding}/{dialect} {how}: got {}/{} {}",
                        back.encoding,
                        back.dialect,
                        back.message.to_json_value()
                    )),
                    Err(e) => problems.push(format!(
                        "round trip {encoding}/{dialect} {how}: decode failed: {} {e}",
                        e.kind
                    )),
                }
            }
        }
    }
}

fn check_error(e: &MessageError, expect: &Map<String, Value>, problems: &mut Vec<String>) {
    let want_kind = expect.get("error").and_then(Value::as_str);
    if want_kind != Some(e.kind.as_str()) {
        problems.push(format!(
            "kind: expected {want_kind:?}, got {:?} ({e})",
            e.kind.as_str()
        ));
    }
    if let Some(path) = expect.get("path") {
        if path.as_str() != Some(e.path.as_str()) {
            problems.push(format!("path: expected {path}, got {:?} ({e})", e.path));
        }
    }
    if let Some(text) = expect.get("reason_contains") {
        match text.as_str() {
            Some(t) if e.reason.contains(t) => {}
            _ => problems.push(format!(
                "reason: expected it to contain {text}, got {:?}",
                e.reason
            )),
        }
    }
    if let Some(salvage) = expect.get("salvage") {
        let Some(salvage) = salvage.as_object() else {
            problems.push("expect.salvage must be an object".into());
            return;
        };
        let s = &e.salvage;
        for (key, want) in salvage {
            let got: Option<&str> = match key.as_str() {
                "request_id" => s.request_id.as_deref(),
                "from" => s.from.as_deref(),
                "dialect" => s.dialect.map(Dialect::as_str),
                "encoding" => s.encoding.map(Encoding::as_str),
                "msg_type" => s.msg_type.map(MsgType::as_key),
                other => {
                    problems.push(format!("unknown salvage key '{other}'"));
                    continue;
                }
            };
            if want.as_str() != got {
                problems.push(format!("salvage.{key}: expected {want}, got {got:?}"));
            }
        }
    }
}

#[test]
fn every_vector_decodes_as_expected() {
    let mut report = String::new();
    let mut failed = 0;
    let files = vector_files();
    for (name, path) in &files {
        let problems = match load(path) {
            Ok(case) => check(&case),
            Err(e) => vec![format!("malformed vector: {e}")],
        };
        if !problems.is_empty() {
            failed += 1;
            let _ = writeln!(report, "{name}:");
            for p in problems {
                let _ = writeln!(report, "  - {p}");
            }
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} vectors failed:\n{report}",
        files.len()
    );
}

#[test]
fn the_suite_does_not_shrink() {
    let files = vector_files();
    let mut invalid = 0;
    let mut misplaced = Vec::new();
    for (name, path) in &files {
        let group = name.split('/').next().unwrap_or("");
        if !GROUPS.contains(&group) || name.matches('/').count() != 1 {
            misplaced.push(name.clone());
        }
        let case = load(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let in_invalid_group = group == "invalid";
        if is_invalid(&case) != in_invalid_group {
            misplaced.push(format!(
                "{name} (an error case belongs in invalid/, and only there)"
            ));
        }
        invalid += usize::from(is_invalid(&case));
    }
    assert!(
        misplaced.is_empty(),
        "vectors outside <group>/<name>.json with group in {GROUPS:?}: {misplaced:?}"
    );
    assert!(
        files.len() >= MIN_TOTAL,
        "only {} vectors, expected at least {MIN_TOTAL}",
        files.len()
    );
    assert!(
        invalid >= MIN_INVALID,
        "only {invalid} invalid vectors, expected at least {MIN_INVALID}"
    );
}
