//! Conversions between Python objects and the core's JSON values and inputs.
//!
//! Errors name the offending argument and position (`message.headers.to[1]`)
//! and raise `TypeError` for a wrong type, `ValueError` for a wrong value.

use pyo3::exceptions::{PyTypeError, PyValueError};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use oc2mqtt::codec::MAX_NESTING;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use serde_json::{Map, Number, Value};

/// Strings that occur in nearly every message (keys and common values, and
/// the core's [`ACTIONS`](oc2mqtt::message::ACTIONS)): made once as interned Python strings with their hash cached, so
/// building a dict costs no string allocation for them (`json.loads` memoizes
/// keys within one call; this goes further).
const COMMON: [&str; 52] = [
    "headers",
    "body",
    "openc2",
    "request",
    "response",
    "notification",
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
    "duration",
    "start_time",
    "stop_time",
    "response_requested",
    "features",
    "versions",
    "profiles",
    "pairs",
    "rate_limit",
    "slpf",
    "ipv4_net",
    "ipv6_net",
    "ipv4_connection",
    "ipv6_connection",
    "protocol",
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "domain_name",
    "uri",
    "device",
    "file",
    "hashes",
    "rule_number",
    "asset_id",
    // values
    "tcp",
    "udp",
    "icmp",
    "none",
    "ack",
    "complete",
    "1.0",
    "OK",
];

/// FNV-1a: the keys are a few bytes long, where it beats SipHash several times over.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(crate) type Table = HashMap<&'static str, Py<PyString>, BuildHasherDefault<Fnv>>;

static INTERNED: PyOnceLock<Table> = PyOnceLock::new();

pub(crate) fn interned(py: Python<'_>) -> &Table {
    INTERNED.get_or_init(py, || {
        COMMON
            .iter()
            .chain(oc2mqtt::message::ACTIONS.iter())
            .map(|k| (*k, PyString::intern(py, k).unbind()))
            .collect()
    })
}

pub(crate) fn str_to_py<'py>(py: Python<'py>, table: &Table, s: &str) -> Bound<'py, PyString> {
    // The common strings are all short: skip the lookup for long ones.
    if s.len() <= 24 {
        if let Some(k) = table.get(s) {
            return k.bind(py).clone();
        }
    }
    PyString::new(py, s)
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// A Python object as a JSON value; `path` names it in errors.
pub fn py_to_value(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    to_value(obj, &mut path.to_owned(), 0)
}

fn to_value(obj: &Bound<'_, PyAny>, path: &mut String, depth: usize) -> PyResult<Value> {
    // A self-containing list would otherwise recurse forever.
    if depth > MAX_NESTING {
        return Err(PyValueError::new_err(format!(
            "{path}: nested more than {MAX_NESTING} levels deep (is a container inside itself?)"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(PyValueError::new_err(format!(
            "{path}: integer {obj} does not fit in 64 bits"
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let x = f.value();
        return Number::from_f64(x).map(Value::Number).ok_or_else(|| {
            PyValueError::new_err(format!("{path}: {x} is not a valid JSON number"))
        });
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        let base = path.len();
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "{path}: keys must be str, found {} key {}",
                    type_name(&k),
                    k.repr().map(|r| r.to_string()).unwrap_or_default()
                )));
            };
            let key = key.to_cow()?.into_owned();
            path.push('.');
            path.push_str(&key);
            let value = to_value(&v, path, depth + 1)?;
            path.truncate(base);
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    let items: Option<Vec<Bound<'_, PyAny>>> = if let Ok(l) = obj.cast::<PyList>() {
        Some(l.iter().collect())
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        Some(t.iter().collect())
    } else {
        None
    };
    if let Some(items) = items {
        let base = path.len();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            path.push_str(&format!("[{i}]"));
            out.push(to_value(item, path, depth + 1)?);
            path.truncate(base);
        }
        return Ok(Value::Array(out));
    }
    Err(PyTypeError::new_err(format!(
        "{path}: expected a JSON value (dict, list, tuple, str, int, float, bool or None), found {}",
        type_name(obj)
    )))
}

/// Calls `f` with the bytes of a payload argument without copying `bytes` or `str`.
pub fn with_payload<R>(
    obj: &Bound<'_, PyAny>,
    what: &str,
    f: impl FnOnce(&[u8]) -> R,
) -> PyResult<R> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        Ok(f(b.as_bytes()))
    } else if let Ok(s) = obj.cast::<PyString>() {
        Ok(f(s.to_cow()?.as_bytes()))
    } else if let Ok(b) = obj.cast::<PyByteArray>() {
        Ok(f(&b.to_vec()))
    } else {
        Err(PyTypeError::new_err(format!(
            "{what}: expected bytes, bytearray or str, found {}",
            type_name(obj)
        )))
    }
}

/// A string argument, with a `TypeError` naming it otherwise.
pub fn string_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what}: expected str, found {}",
            type_name(obj)
        ))),
    }
}

/// An optional string argument (`None` allowed).
pub fn opt_string_arg(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<String>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => string_arg(o, what).map(Some),
    }
}

/// A list of strings from a list or tuple (a lone `str` is refused: it is almost always a mistake).
pub fn string_list(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if obj.cast::<PyString>().is_ok() {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a list of str, found a single str"
        )));
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a list of str, found {}",
            type_name(obj)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| string_arg(item, &format!("{what}[{i}]")))
        .collect()
}

/// Ids from one `str` or a list or tuple of them (`to="fw-1"`, `to=["fw-1", "fw-2"]`).
pub fn one_or_many(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if obj.cast::<PyString>().is_ok() {
        return Ok(vec![string_arg(obj, what)?]);
    }
    string_list(obj, what).map_err(|e| {
        if e.is_instance_of::<PyTypeError>(obj.py())
            && obj.cast::<PyList>().is_err()
            && obj.cast::<PyTuple>().is_err()
        {
            PyTypeError::new_err(format!(
                "{what}: expected a str or a list of str, found {}",
                type_name(obj)
            ))
        } else {
            e
        }
    })
}

/// A non-negative integer argument that fits in `u64`.
pub fn u64_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if obj.cast::<PyBool>().is_ok() || obj.cast::<PyInt>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected int, found {}",
            type_name(obj)
        )));
    }
    obj.extract::<u64>().map_err(|_| {
        PyValueError::new_err(format!(
            "{what}: expected a non-negative integer, found {obj}"
        ))
    })
}

static MONOTONIC_NS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `now_ms` if given, else `time.monotonic_ns() // 1_000_000`.
pub fn now_ms(py: Python<'_>, now: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    match now {
        Some(n) if !n.is_none() => u64_arg(n, "now_ms"),
        _ => {
            let f = MONOTONIC_NS.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
                Ok(py.import("time")?.getattr("monotonic_ns")?.unbind())
            })?;
            let ns: u64 = f.bind(py).call0()?.extract()?;
            Ok(ns / 1_000_000)
        }
    }
}

/// A `bool` argument (`None` → `default`), with a `TypeError` naming it otherwise.
pub fn bool_arg(obj: Option<&Bound<'_, PyAny>>, what: &str, default: bool) -> PyResult<bool> {
    match obj {
        None => Ok(default),
        Some(o) if o.is_none() => Ok(default),
        Some(o) => match o.cast::<PyBool>() {
            Ok(b) => Ok(b.is_true()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "{what}: expected bool, found {}",
                type_name(o)
            ))),
        },
    }
}
