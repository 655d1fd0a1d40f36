//! Reading the shared vectors of `tests/vectors/` (format in its README.md).

use std::path::{Path, PathBuf};

use oc2mqtt::codec::PublishProperties;
use serde_json::{Map, Value};

/// The groups a vector may live in; anything else is a mistake in the suite.
pub const GROUPS: [&str; 6] = ["spec", "otupy", "bare", "v311", "cbor", "invalid"];
pub const CASE_KEYS: [&str; 7] = [
    "description",
    "payload_json",
    "payload_text",
    "payload_hex",
    "payload_repeat",
    "properties",
    "expect",
];
pub const MIN_TOTAL: usize = 60;
pub const MIN_INVALID: usize = 25;

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

/// Every `*.json` file under the vectors directory, sorted, as (path relative to it, path).
pub fn vector_files() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let root = vectors_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/");
            (rel, p)
        })
        .collect()
}

pub struct Case {
    pub payload: Vec<u8>,
    pub properties: Option<PublishProperties>,
    pub expect: Map<String, Value>,
}

pub fn load(path: &Path) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(case) = value else {
        return Err("a vector must be a JSON object".into());
    };
    if let Some(k) = case.keys().find(|k| !CASE_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key '{k}'"));
    }
    match case.get("description") {
        Some(Value::String(d)) if !d.trim().is_empty() => {}
        _ => return Err("'description' must be a non-empty string".into()),
    }
    let payload = payload_of(&case)?;
    let properties = match case.get("properties") {
        None | Some(Value::Null) => None,
        Some(p) => Some(properties_of(p)?),
    };
    let Some(Value::Object(expect)) = case.get("expect") else {
        return Err("'expect' must be an object".into());
    };
    Ok(Case {
        payload,
        properties,
        expect: expect.clone(),
    })
}

pub fn payload_of(case: &Map<String, Value>) -> Result<Vec<u8>, String> {
    let keys: Vec<&String> = case.keys().filter(|k| k.starts_with("payload_")).collect();
    if keys.len() != 1 {
        return Err(format!(
            "exactly one payload_* key is required, found {keys:?}"
        ));
    }
    let v = &case[keys[0].as_str()];
    match keys[0].as_str() {
        "payload_json" => serde_json::to_vec(v).map_err(|e| e.to_string()),
        "payload_text" => v
            .as_str()
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| "payload_text must be a string".into()),
        "payload_hex" => {
            let s = v.as_str().ok_or("payload_hex must be a string")?;
            hex::decode(s).map_err(|e| format!("payload_hex: {e}"))
        }
        "payload_repeat" => {
            let field = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("payload_repeat.{k} must be a string"))
            };
            let count = v
                .get("count")
                .and_then(Value::as_u64)
                .ok_or("payload_repeat.count must be a non-negative integer")?;
            let count = usize::try_from(count).map_err(|e| e.to_string())?;
            let (prefix, fill, suffix) = (field("prefix")?, field("fill")?, field("suffix")?);
            let mut out = Vec::with_capacity(prefix.len() + fill.len() * count + suffix.len());
            out.extend_from_slice(prefix.as_bytes());
            for _ in 0..count {
                out.extend_from_slice(fill.as_bytes());
            }
            out.extend_from_slice(suffix.as_bytes());
            Ok(out)
        }
        other => Err(format!("unknown payload key '{other}'")),
    }
}

pub fn properties_of(p: &Value) -> Result<PublishProperties, String> {
    let Value::Object(m) = p else {
        return Err("'properties' must be null or an object".into());
    };
    if let Some(k) = m.keys().find(|k| {
        ![
            "payload_format_indicator",
            "content_type",
            "user_properties",
        ]
        .contains(&k.as_str())
    }) {
        return Err(format!("unknown properties key '{k}'"));
    }
    let payload_format_indicator = match m.get("payload_format_indicator") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or("payload_format_indicator must be 0 or 1")?,
        ),
    };
    let content_type = match m.get("content_type") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .ok_or("content_type must be a string")?
                .to_owned(),
        ),
    };
    let mut user_properties = Vec::new();
    if let Some(list) = m.get("user_properties") {
        for pair in list.as_array().ok_or("user_properties must be a list")? {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(v)]) => {
                    user_properties.push((k.clone(), v.clone()))
                }
                _ => return Err(format!("user property {pair} must be [key, value] strings")),
            }
        }
    }
    Ok(PublishProperties {
        payload_format_indicator,
        content_type,
        user_properties,
    })
}
