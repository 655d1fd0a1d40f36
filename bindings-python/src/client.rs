//! `ClientConfig`, stats, and the one way this binding waits on the core:
//! on the shared tokio runtime, with the GIL released, checking for signals.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use oc2mqtt::client::{ClientConfig, MqttVersion, Stats};
use oc2mqtt::topics::{Peer, ResponseTopics};

use crate::convert;
use crate::errors::IntoPyResult;
use crate::repr::Repr;

/// How often a blocking wait wakes up to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Runs `fut` on the shared runtime with the GIL released, waking every
/// 100 ms to run Python's signal handlers: a `KeyboardInterrupt` drops the
/// future (cancelling the wait) and propagates.
pub fn wait<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = T> + Send,
    T: Send,
{
    let rt = oc2mqtt::client::runtime();
    let mut fut = std::pin::pin!(fut);
    loop {
        match py.detach(|| {
            rt.block_on(async { tokio::time::timeout(SIGNAL_CHECK, fut.as_mut()).await })
        }) {
            Ok(v) => return Ok(v),
            Err(_) => py.check_signals()?,
        }
    }
}

/// A duration in seconds (int or float, finite, not negative).
pub fn seconds_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    let secs: f64 = if obj.cast::<PyFloat>().is_ok()
        || (obj.cast::<PyInt>().is_ok() && obj.cast::<pyo3::types::PyBool>().is_err())
    {
        obj.extract()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a number of seconds (int or float), found {}",
            obj.get_type().name()?
        )));
    };
    Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!(
            "{what}: expected a finite, non-negative number of seconds, found {secs}"
        ))
    })
}

/// An optional duration (`None` → `default`).
pub fn opt_seconds_arg(
    obj: Option<&Bound<'_, PyAny>>,
    what: &str,
    default: Option<Duration>,
) -> PyResult<Option<Duration>> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(default),
        Some(o) => seconds_arg(o, what).map(Some),
    }
}

fn u32_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
    let v = convert::u64_arg(obj, what)?;
    u32::try_from(v).map_err(|_| PyValueError::new_err(format!("{what}: {v} is too large")))
}

pub(crate) fn path_arg(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<PathBuf>> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(None),
        Some(o) => {
            if o.cast::<PyString>().is_ok() || o.hasattr("__fspath__")? {
                Ok(Some(o.extract::<PathBuf>()?))
            } else {
                Err(PyTypeError::new_err(format!(
                    "{what}: expected a path (str or os.PathLike), found {}",
                    o.get_type().name()?
                )))
            }
        }
    }
}

fn brokers_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if obj.cast::<PyString>().is_ok() {
        return Ok(vec![convert::string_arg(obj, "broker")?]);
    }
    if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        return convert::string_list(obj, "broker");
    }
    Err(PyTypeError::new_err(format!(
        "broker: expected a URL (mqtt://, mqtts://, ws:// or wss://) or a list of them, found {}",
        obj.get_type().name()?
    )))
}

fn set<'a, 'py>(o: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    o.filter(|x| !x.is_none())
}

/// How to reach and talk to the broker; checked when made (a `ConfigError`
/// or `IoError` names the setting).
///
/// `broker` is a URL (`mqtt://`, `mqtts://`, `ws://`, `wss://`) or a list of
/// them, tried in order (failover). The keyword arguments, with their defaults:
///
/// - `client_id`: the MQTT client id (default None: generated, and the
///   session ends with the connection); `client_id_file`: a file that keeps
///   one across restarts (default None)
/// - `username`, `password` (default None); the password is never shown
/// - `ca_file`: CA certificates (PEM) for TLS (default None: the system's);
///   `cert_file`, `key_file`: a client certificate (default None)
/// - `insecure_skip_verify`: skip the broker's certificate check, testing only (default False)
/// - `keep_alive_secs`: at most 300 (default 60)
/// - `session_expiry_secs`: for a given client id (default 3600)
/// - `qos`: 1 or 2 (default 1)
/// - `mqtt_version`: "5", "3.1.1" or "auto", which falls back to 3.1.1 (default 'auto')
/// - `message_expiry_secs`: MQTT v5 message expiry (default None: none)
/// - `topic_prefix`: before `oc2/` in every topic (default None)
/// - `peer`: the peers to suit, "spec", "otupy", "yuuki" or "oif": their
///   topics, dialect and `msgType` spelling (default 'spec')
/// - `response_topics`: where a consumer's responses go, "shared"
///   (`oc2/rsp`), "producer" (`oc2/rsp/<producer>`) or "both" (default None:
///   as the peer has it, `oc2/rsp` for the specification's)
/// - `otupy_compat`: the same as `peer="otupy"`, kept for existing callers (default False)
/// - `connect_timeout_secs`: one connection attempt (default 10)
/// - `max_payload`: largest payload decoded, in bytes (default 1048576)
#[pyclass(name = "ClientConfig", module = "oc2mqtt", frozen)]
#[derive(Clone)]
pub struct PyClientConfig {
    pub(crate) inner: ClientConfig,
}

#[pymethods]
impl PyClientConfig {
    #[new]
    #[pyo3(signature = (
        broker, *, client_id = None, client_id_file = None, username = None, password = None,
        ca_file = None, cert_file = None, key_file = None, insecure_skip_verify = None,
        keep_alive_secs = None, session_expiry_secs = None, qos = None, mqtt_version = None,
        message_expiry_secs = None, topic_prefix = None, otupy_compat = None, peer = None,
        response_topics = None, connect_timeout_secs = None, max_payload = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        broker: &Bound<'_, PyAny>,
        client_id: Option<&Bound<'_, PyAny>>,
        client_id_file: Option<&Bound<'_, PyAny>>,
        username: Option<&Bound<'_, PyAny>>,
        password: Option<&Bound<'_, PyAny>>,
        ca_file: Option<&Bound<'_, PyAny>>,
        cert_file: Option<&Bound<'_, PyAny>>,
        key_file: Option<&Bound<'_, PyAny>>,
        insecure_skip_verify: Option<&Bound<'_, PyAny>>,
        keep_alive_secs: Option<&Bound<'_, PyAny>>,
        session_expiry_secs: Option<&Bound<'_, PyAny>>,
        qos: Option<&Bound<'_, PyAny>>,
        mqtt_version: Option<&Bound<'_, PyAny>>,
        message_expiry_secs: Option<&Bound<'_, PyAny>>,
        topic_prefix: Option<&Bound<'_, PyAny>>,
        otupy_compat: Option<&Bound<'_, PyAny>>,
        peer: Option<&Bound<'_, PyAny>>,
        response_topics: Option<&Bound<'_, PyAny>>,
        connect_timeout_secs: Option<&Bound<'_, PyAny>>,
        max_payload: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut c = ClientConfig {
            brokers: brokers_arg(broker)?,
            ..ClientConfig::default()
        };
        c.client_id = convert::opt_string_arg(client_id, "client_id")?;
        c.client_id_file = path_arg(client_id_file, "client_id_file")?;
        c.username = convert::opt_string_arg(username, "username")?;
        c.password = convert::opt_string_arg(password, "password")?;
        c.ca_file = path_arg(ca_file, "ca_file")?;
        c.cert_file = path_arg(cert_file, "cert_file")?;
        c.key_file = path_arg(key_file, "key_file")?;
        c.insecure_skip_verify =
            convert::bool_arg(insecure_skip_verify, "insecure_skip_verify", false)?;
        if let Some(v) = set(keep_alive_secs) {
            c.keep_alive_secs = u32_arg(v, "keep_alive_secs")?;
        }
        if let Some(v) = set(session_expiry_secs) {
            c.session_expiry_secs = u32_arg(v, "session_expiry_secs")?;
        }
        if let Some(v) = set(qos) {
            let q = convert::u64_arg(v, "qos")?;
            c.qos = u8::try_from(q)
                .map_err(|_| PyValueError::new_err(format!("qos: {q} is too large")))?;
        }
        if let Some(v) = set(mqtt_version) {
            let text = if v.cast::<PyString>().is_ok() {
                convert::string_arg(v, "mqtt_version")?
            } else if v.cast::<PyInt>().is_ok() || v.cast::<PyFloat>().is_ok() {
                v.str()?.to_string()
            } else {
                return Err(PyTypeError::new_err(format!(
                    "mqtt_version: expected \"5\", \"3.1.1\" or \"auto\", found {}",
                    v.get_type().name()?
                )));
            };
            c.mqtt_version = text.parse::<MqttVersion>().py_err(py)?;
        }
        if let Some(v) = set(message_expiry_secs) {
            c.message_expiry_secs = Some(u32_arg(v, "message_expiry_secs")?);
        }
        c.topic_prefix = convert::opt_string_arg(topic_prefix, "topic_prefix")?;
        c.otupy_compat = convert::bool_arg(otupy_compat, "otupy_compat", false)?;
        if let Some(p) = peer_arg(py, peer)? {
            c.peer = p;
        }
        c.response_topics = response_topics_arg(py, response_topics)?;
        if let Some(v) = set(connect_timeout_secs) {
            c.connect_timeout_secs = u32_arg(v, "connect_timeout_secs")?;
        }
        if let Some(v) = set(max_payload) {
            let n = convert::u64_arg(v, "max_payload")?;
            c.max_payload = usize::try_from(n).unwrap_or(usize::MAX);
        }
        c.validate().py_err(py)?;
        Ok(Self { inner: c })
    }

    #[getter]
    fn brokers(&self) -> Vec<String> {
        self.inner.brokers.clone()
    }
    #[getter]
    fn client_id(&self) -> Option<String> {
        self.inner.client_id.clone()
    }
    #[getter]
    fn username(&self) -> Option<String> {
        self.inner.username.clone()
    }
    /// Whether a password is set (the password itself is not readable back).
    #[getter]
    fn has_password(&self) -> bool {
        self.inner.password.is_some()
    }
    #[getter]
    fn ca_file(&self) -> Option<PathBuf> {
        self.inner.ca_file.clone()
    }
    #[getter]
    fn cert_file(&self) -> Option<PathBuf> {
        self.inner.cert_file.clone()
    }
    #[getter]
    fn key_file(&self) -> Option<PathBuf> {
        self.inner.key_file.clone()
    }
    #[getter]
    fn insecure_skip_verify(&self) -> bool {
        self.inner.insecure_skip_verify
    }
    #[getter]
    fn keep_alive_secs(&self) -> u32 {
        self.inner.keep_alive_secs
    }
    #[getter]
    fn session_expiry_secs(&self) -> u32 {
        self.inner.session_expiry_secs
    }
    #[getter]
    fn qos(&self) -> u8 {
        self.inner.qos
    }
    #[getter]
    fn mqtt_version(&self) -> String {
        self.inner.mqtt_version.to_string()
    }
    #[getter]
    fn message_expiry_secs(&self) -> Option<u32> {
        self.inner.message_expiry_secs
    }
    #[getter]
    fn topic_prefix(&self) -> Option<String> {
        self.inner.topic_prefix.clone()
    }
    #[getter]
    fn otupy_compat(&self) -> bool {
        self.inner.otupy_compat
    }
    /// The peers suited: `peer`, or "otupy" when `otupy_compat`.
    #[getter]
    fn peer(&self) -> &'static str {
        self.inner.peer().as_str()
    }
    /// Where a consumer's responses go, or None: as the peer has it.
    #[getter]
    fn response_topics(&self) -> Option<&'static str> {
        self.inner.response_topics.map(ResponseTopics::as_str)
    }
    #[getter]
    fn connect_timeout_secs(&self) -> u32 {
        self.inner.connect_timeout_secs
    }
    #[getter]
    fn max_payload(&self) -> usize {
        self.inner.max_payload
    }

    /// The broker(s) and every setting that is not at its default; never the password.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let c = &self.inner;
        let d = ClientConfig::default();
        let r = Repr::new(py, "ClientConfig");
        let r = match c.brokers.as_slice() {
            [one] => r.arg(one)?,
            many => r.arg(many)?,
        };
        let mut r = r
            .field_if(c.client_id.is_some(), "client_id", &c.client_id)?
            .field_if(
                c.client_id_file.is_some(),
                "client_id_file",
                &c.client_id_file,
            )?
            .field_if(c.username.is_some(), "username", &c.username)?;
        if c.password.is_some() {
            r = r.raw("password", "<hidden>");
        }
        r.field_if(c.ca_file.is_some(), "ca_file", &c.ca_file)?
            .field_if(c.cert_file.is_some(), "cert_file", &c.cert_file)?
            .field_if(c.key_file.is_some(), "key_file", &c.key_file)?
            .field_if(c.insecure_skip_verify, "insecure_skip_verify", true)?
            .field_if(
                c.keep_alive_secs != d.keep_alive_secs,
                "keep_alive_secs",
                c.keep_alive_secs,
            )?
            .field_if(
                c.session_expiry_secs != d.session_expiry_secs,
                "session_expiry_secs",
                c.session_expiry_secs,
            )?
            .field_if(c.qos != d.qos, "qos", c.qos)?
            .field_if(
                c.mqtt_version != d.mqtt_version,
                "mqtt_version",
                c.mqtt_version.to_string(),
            )?
            .field_if(
                c.message_expiry_secs.is_some(),
                "message_expiry_secs",
                c.message_expiry_secs,
            )?
            .field_if(c.topic_prefix.is_some(), "topic_prefix", &c.topic_prefix)?
            .field_if(c.otupy_compat, "otupy_compat", true)?
            .field_if(c.peer != d.peer, "peer", c.peer.as_str())?
            .field_if(
                c.response_topics.is_some(),
                "response_topics",
                c.response_topics.map(ResponseTopics::as_str),
            )?
            .field_if(
                c.connect_timeout_secs != d.connect_timeout_secs,
                "connect_timeout_secs",
                c.connect_timeout_secs,
            )?
            .field_if(c.max_payload != d.max_payload, "max_payload", c.max_payload)
            .map(Repr::finish)
    }
}

/// A peer name ("spec", "otupy", "yuuki", "oif"); None when not given.
pub fn peer_arg(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Peer>> {
    convert::opt_string_arg(obj, "peer")?
        .map(|p| p.parse::<Peer>())
        .transpose()
        .py_err(py)
}

/// Where responses go ("shared", "producer", "both"); None when not given.
pub fn response_topics_arg(
    py: Python<'_>,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<ResponseTopics>> {
    convert::opt_string_arg(obj, "response_topics")?
        .map(|r| r.parse::<ResponseTopics>())
        .transpose()
        .py_err(py)
}

/// A config argument: a `ClientConfig` or a broker URL.
pub fn config_arg(obj: &Bound<'_, PyAny>) -> PyResult<ClientConfig> {
    if let Ok(c) = obj.cast::<PyClientConfig>() {
        return Ok(c.get().inner.clone());
    }
    if obj.cast::<PyString>().is_ok() {
        let c = ClientConfig::new(convert::string_arg(obj, "config")?);
        c.validate().py_err(obj.py())?;
        return Ok(c);
    }
    Err(PyTypeError::new_err(format!(
        "config: expected a ClientConfig or a broker URL (str), found {}",
        obj.get_type().name()?
    )))
}

/// Counters as a dict, with the MQTT version spoken (`"5"`, `"3.1.1"`, or
/// None before the first connection).
pub fn stats_dict<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("mqtt_version", s.mqtt_version.map(|v| v.to_string()))?;
    d.set_item("published", s.published)?;
    d.set_item("received", s.received)?;
    d.set_item("duplicates", s.duplicates)?;
    d.set_item("decode_errors", s.decode_errors)?;
    d.set_item("unsolicited", s.unsolicited)?;
    d.set_item("reconnects", s.reconnects)?;
    d.set_item("publish_errors", s.publish_errors)?;
    d.set_item("discarded", s.discarded)?;
    d.set_item("stale", s.stale)?;
    Ok(d)
}
