//! The numbers the bindings' hand-written documentation states, checked
//! against the core constants they restate.
//!
//! A doc comment that tells a C, Python or Node user "up to 64 handlers at
//! once" or "keep-alive 60 s" is right to say the number: the user reads the
//! header, the stub or the `.d.ts`, not core. But the number is core's, so
//! each statement is listed here with the constant it restates, and a
//! change to the constant fails this test, naming the file to update. (The
//! settings tables' defaults need no entry: their declarations are
//! generated, `core/tests/generated.rs`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use oc2mqtt::client::{ClientConfig, MAX_BACKOFF, MAX_KEEP_ALIVE_SECS, MqttVersion, QOS_LEVELS};
use oc2mqtt::codec::DEFAULT_MAX_PAYLOAD;
use oc2mqtt::consumer::{CONCURRENT_HANDLERS, INLINE_SLOW, STALLED_MS};
use oc2mqtt::dedup::{DEFAULT_CAPACITY, DEFAULT_WINDOW_MS};
use oc2mqtt::monitor::DEFAULT_PAIRING_WINDOW;
use oc2mqtt::producer::{SendOptions, UNSOLICITED_KEPT};
use oc2mqtt::settings::{Spelling, one_of};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// `n` as the docs write large numbers: `60 000`.
fn spaced(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A wait as the docs say it: "a second", else milliseconds.
fn wait_words(ms: u64) -> String {
    if ms == 1_000 {
        "a second".to_owned()
    } else {
        format!("{ms} ms")
    }
}

/// A size in bytes as the docs say it: "1 MiB".
fn size_words(bytes: usize) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} bytes", spaced(bytes as u64))
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// (file, what it must say): every statement of a core number in a
/// binding's hand-written docs.
fn statements() -> Vec<(&'static str, String)> {
    let handlers = CONCURRENT_HANDLERS;
    let client = ClientConfig::default();
    let send_timeout = SendOptions::default().timeout;
    vec![
        // The consumer's concurrency limit (core/src/consumer.rs).
        (
            "bindings-python/src/consumer.rs",
            format!("up to {handlers} at once"),
        ),
        (
            "bindings-python/python/oc2mqtt/_native.pyi",
            format!("up to {handlers} at once"),
        ),
        (
            "bindings-node/src/consumer.rs",
            format!("{handlers} handlers run at once; while all {handlers} are stuck"),
        ),
        (
            "bindings-c/src/consumer.rs",
            format!("(up to {handlers} at once)"),
        ),
        (
            "bindings-c/src/consumer.rs",
            format!("all {handlers} handlers are stuck"),
        ),
        (
            "bindings-c/src/consumer.rs",
            format!("holds the thread {} ms or more", millis(INLINE_SLOW)),
        ),
        // How long all handlers stuck means overload (503).
        (
            "bindings-node/src/consumer.rs",
            format!("are stuck for {}, new", wait_words(STALLED_MS)),
        ),
        (
            "bindings-c/src/consumer.rs",
            format!("handlers are stuck for {}, new", wait_words(STALLED_MS)),
        ),
        // A deduplicator's defaults (core/src/dedup.rs).
        (
            "bindings-python/src/dedup.rs",
            format!("`window_ms` (default {})", spaced(DEFAULT_WINDOW_MS)),
        ),
        (
            "bindings-python/src/dedup.rs",
            format!("(default {}, at least 1", spaced(DEFAULT_CAPACITY as u64)),
        ),
        (
            "bindings-c/src/dedup.rs",
            format!("`oc2_dedup_new`: {} ms", spaced(DEFAULT_WINDOW_MS)),
        ),
        (
            "bindings-python/python/oc2mqtt/_native.pyi",
            format!(
                "``window_ms`` (default {}), at most ``capacity`` of them (default {};",
                spaced(DEFAULT_WINDOW_MS),
                spaced(DEFAULT_CAPACITY as u64)
            ),
        ),
        // The monitor's pairing window (core/src/monitor.rs).
        (
            "bindings-python/src/monitor.rs",
            format!("`unanswered` (default {})", secs(DEFAULT_PAIRING_WINDOW)),
        ),
        (
            "bindings-node/src/monitor.rs",
            format!("default {})", millis(DEFAULT_PAIRING_WINDOW)),
        ),
        (
            "bindings-python/python/oc2mqtt/_native.pyi",
            format!("``unanswered`` (default {})", secs(DEFAULT_PAIRING_WINDOW)),
        ),
        (
            "bindings-node/dts-header.d.ts",
            format!(
                "reported unanswered (default {})",
                millis(DEFAULT_PAIRING_WINDOW)
            ),
        ),
        // The producer: a send's timeout, the unsolicited responses kept.
        (
            "bindings-node/src/producer.rs",
            format!("(ms, default {};", millis(send_timeout)),
        ),
        (
            "bindings-python/src/producer.rs",
            format!("Up to {UNSOLICITED_KEPT} wait to be read"),
        ),
        (
            "bindings-node/src/producer.rs",
            format!("Up to {UNSOLICITED_KEPT} wait to be read"),
        ),
        (
            "bindings-python/python/oc2mqtt/_native.pyi",
            format!("Up to {UNSOLICITED_KEPT} wait to be read"),
        ),
        (
            "bindings-c/src/producer.rs",
            format!("Up to {UNSOLICITED_KEPT} wait to be read"),
        ),
        (
            "bindings-python/python/oc2mqtt/_native.pyi",
            format!("(``timeout`` {} s)", secs(send_timeout)),
        ),
        // The largest payload decoded (core/src/codec.rs).
        (
            "bindings-node/dts-header.d.ts",
            format!("(default {});", size_words(DEFAULT_MAX_PAYLOAD)),
        ),
        (
            "bindings-c/src/config.rs",
            format!(
                "`max_payload`; default {})",
                size_words(DEFAULT_MAX_PAYLOAD)
            ),
        ),
        // The client's defaults and its reconnect backoff.
        (
            "bindings-c/src/config.rs",
            format!(
                "keep-alive {} s, QoS {},",
                client.keep_alive_secs, client.qos
            ),
        ),
        (
            "bindings-c/src/config.rs",
            format!("connect timeout {} s.", client.connect_timeout_secs),
        ),
        (
            "bindings-c/src/events.rs",
            format!("at most {} s apart", secs(MAX_BACKOFF)),
        ),
        // MQTT-T's ranges (core/src/client/config.rs).
        (
            "bindings-c/src/config.rs",
            format!(
                "(QoS {}, keep-alive at most {MAX_KEEP_ALIVE_SECS})",
                one_of(&QOS_LEVELS)
            ),
        ),
        (
            "bindings-c/src/config.rs",
            format!("`keep_alive_secs`; at most {MAX_KEEP_ALIVE_SECS}, as"),
        ),
        (
            "bindings-c/src/config.rs",
            format!("(`qos`: {})", one_of(&QOS_LEVELS)),
        ),
        // The CLI's --help: core's defaults and ranges.
        (
            "cli/src/common.rs",
            format!(
                "at most {MAX_KEEP_ALIVE_SECS} [default: {}]",
                client.keep_alive_secs
            ),
        ),
        (
            "cli/src/common.rs",
            format!(
                "QoS of publishes and subscriptions [default: {}]",
                client.qos
            ),
        ),
        (
            "cli/src/common.rs",
            format!("fall back to 3.1.1) [default: {}]", MqttVersion::default()),
        ),
        (
            "cli/src/common.rs",
            format!("msgType request/response) [default: {}]", client.peer),
        ),
        (
            "cli/src/common.rs",
            format!(
                "may take, in seconds [default: {}]",
                client.connect_timeout_secs
            ),
        ),
    ]
}

/// Doc comments wrap: a statement may be split over lines, each continued
/// after a comment marker (`///`, `//!`, `*`, or plain indentation in a
/// Python docstring). Compares with every run of whitespace and comment
/// markers made one space.
fn flattened(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        let line = ["///", "//!", "//", "* ", "#"]
            .iter()
            .find_map(|m| line.strip_prefix(m))
            .unwrap_or(line);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line.trim());
    }
    out
}

#[test]
fn the_bindings_docs_state_cores_numbers() {
    let mut wrong = Vec::new();
    for (file, said) in statements() {
        let text =
            std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        if !flattened(&text).contains(&said) {
            wrong.push(format!("{file} should say \"{said}\""));
        }
    }
    assert!(
        wrong.is_empty(),
        "a binding's docs restate a core number that changed (or the wording moved; update \
         core/tests/stated.rs with it):\n{}",
        wrong.join("\n")
    );
}

/// Every "N at once" in a consumer's docs is the concurrency limit: none is
/// left stating another number.
#[test]
fn no_other_handler_limit_is_stated() {
    for file in [
        "bindings-python/src/consumer.rs",
        "bindings-python/python/oc2mqtt/_native.pyi",
        "bindings-node/src/consumer.rs",
        "bindings-c/src/consumer.rs",
        "bindings-node/dts-header.d.ts",
    ] {
        let text = flattened(&std::fs::read_to_string(root().join(file)).expect(file));
        for (at, _) in text.match_indices(" at once") {
            let before = text[..at].rsplit(' ').next().unwrap_or("");
            if let Ok(n) = before.trim_start_matches('(').parse::<usize>() {
                assert_eq!(n, CONCURRENT_HANDLERS, "{file}: \"{n} at once\"");
            }
        }
    }
}

#[test]
fn spaced_numbers_read_as_the_docs_write_them() {
    assert_eq!(spaced(60_000), "60 000");
    assert_eq!(spaced(100_000), "100 000");
    assert_eq!(spaced(1024), "1 024");
    assert_eq!(spaced(30), "30");
}

/// The keys a hand-written type declares: the lines after `start` up to a
/// blank line or `}`, each `key: type`, comments and docstrings skipped.
fn declared_keys(file: &str, start: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(file)).expect(file);
    let body = text
        .split_once(start)
        .unwrap_or_else(|| panic!("{file}: no '{start}'"))
        .1;
    let mut keys: Vec<String> = body
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && l.trim() != "}")
        .filter_map(|l| {
            let (key, _) = l.trim().split_once(':')?;
            (!key.starts_with(['"', '/', '*'])).then(|| key.trim().to_owned())
        })
        .collect();
    keys.sort();
    keys
}

/// A serde value's keys, sorted, as snake case and as camel case.
fn keys_of(value: serde_json::Value) -> (Vec<String>, Vec<String>) {
    let mut snake: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    snake.sort();
    let mut camel: Vec<String> = snake
        .iter()
        .map(|f| Spelling::Camel.spell(f).into_owned())
        .collect();
    camel.sort();
    (snake, camel)
}

/// The keys of the hand-written counter types (`_Stats` and `_DedupStats`
/// in Python's stub, `Stats` and `DedupStats` in Node's declarations) are
/// core's `client::Stats` and `dedup::DedupStats` fields.
#[test]
fn the_stats_types_have_cores_fields() {
    let pyi = "bindings-python/python/oc2mqtt/_native.pyi";
    let dts = "bindings-node/dts-header.d.ts";
    let (snake, camel) =
        keys_of(serde_json::to_value(oc2mqtt::client::Stats::default()).expect("stats"));
    assert_eq!(declared_keys(pyi, "class _Stats(TypedDict):"), snake);
    assert_eq!(declared_keys(dts, "export interface Stats {"), camel);
    let (snake, camel) =
        keys_of(serde_json::to_value(oc2mqtt::dedup::DedupStats::default()).expect("dedup stats"));
    assert_eq!(declared_keys(pyi, "class _DedupStats(TypedDict):"), snake);
    assert_eq!(declared_keys(dts, "export interface DedupStats {"), camel);
}

/// The keys of the hand-written `_Salvage` type in Python's stub and of the
/// `salvage` member in Node's declarations are core's `error::Salvage`'s.
#[test]
fn the_salvage_types_have_cores_fields() {
    let (snake, camel) =
        keys_of(serde_json::to_value(oc2mqtt::error::Salvage::default()).expect("a salvage"));
    let pyi = std::fs::read_to_string(root().join("bindings-python/python/oc2mqtt/_native.pyi"))
        .expect("pyi");
    let body = pyi
        .split_once("_Salvage = TypedDict(")
        .expect("_Salvage")
        .1
        .split_once('{')
        .expect("its dict")
        .1
        .split_once("},")
        .expect("its keys")
        .0;
    let mut py: Vec<String> = body
        .lines()
        .filter_map(|l| Some(l.trim().strip_prefix('"')?.split_once('"')?.0.to_owned()))
        .collect();
    py.sort();
    assert_eq!(py, snake);
    let dts = std::fs::read_to_string(root().join("bindings-node/dts-header.d.ts")).expect("d.ts");
    let member = dts
        .lines()
        .find_map(|l| l.trim().strip_prefix("salvage: {"))
        .expect("salvage member");
    let mut js: Vec<String> = member
        .split(';')
        .filter_map(|kv| Some(kv.split_once(':')?.0.trim().to_owned()))
        .filter(|k| !k.is_empty() && !k.starts_with('}'))
        .collect();
    js.sort();
    assert_eq!(js, camel);
}

/// Every broker URL scheme core takes is named where a binding or the CLI
/// documents broker URLs.
#[test]
fn the_broker_url_docs_name_every_scheme() {
    for file in [
        "cli/src/common.rs",
        "bindings-c/src/config.rs",
        "bindings-node/dts-header.d.ts",
        "bindings-python/python/oc2mqtt/_native.pyi",
    ] {
        let text = std::fs::read_to_string(root().join(file)).expect(file);
        for scheme in oc2mqtt::client::BROKER_SCHEMES {
            assert!(
                text.contains(&format!("{scheme}://")),
                "{file} does not name {scheme}:// among the broker URL schemes"
            );
        }
    }
}
