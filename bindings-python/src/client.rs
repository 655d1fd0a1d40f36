//! `ClientConfig`, stats, and the one way this binding waits on the core:
//! on the shared tokio runtime, with the GIL released, checking for signals.

use std::future::Future;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use oc2mqtt::client::{ClientConfig, Stats};
use oc2mqtt::topics::{Peer, ResponseTopics};

use crate::convert;
use crate::errors::IntoPyResult;
use crate::settings::{self, kwargs};

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

pub use crate::settings::opt_seconds_arg;

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
        let c: ClientConfig = settings::build(
            py,
            &kwargs![
                broker,
                client_id,
                client_id_file,
                username,
                password,
                ca_file,
                cert_file,
                key_file,
                insecure_skip_verify,
                keep_alive_secs,
                session_expiry_secs,
                qos,
                mqtt_version,
                message_expiry_secs,
                topic_prefix,
                otupy_compat,
                peer,
                response_topics,
                connect_timeout_secs,
                max_payload,
            ],
        )?;
        c.validate().py_err(py)?;
        Ok(Self { inner: c })
    }

    #[getter]
    fn brokers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "brokers")
    }
    #[getter]
    fn client_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "client_id")
    }
    #[getter]
    fn username<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "username")
    }
    /// Whether a password is set (the password itself is not readable back).
    #[getter]
    fn has_password(&self) -> bool {
        self.inner.password.is_some()
    }
    #[getter]
    fn ca_file<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "ca_file")
    }
    #[getter]
    fn cert_file<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "cert_file")
    }
    #[getter]
    fn key_file<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "key_file")
    }
    #[getter]
    fn insecure_skip_verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "insecure_skip_verify")
    }
    #[getter]
    fn keep_alive_secs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "keep_alive_secs")
    }
    #[getter]
    fn session_expiry_secs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "session_expiry_secs")
    }
    #[getter]
    fn qos<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "qos")
    }
    #[getter]
    fn mqtt_version<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "mqtt_version")
    }
    #[getter]
    fn message_expiry_secs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "message_expiry_secs")
    }
    #[getter]
    fn topic_prefix<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "topic_prefix")
    }
    #[getter]
    fn otupy_compat<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "otupy_compat")
    }
    /// The peers suited: `peer`, or "otupy" when `otupy_compat`.
    #[getter]
    fn peer(&self) -> &'static str {
        self.inner.peer().as_str()
    }
    /// Where a consumer's responses go, or None: as the peer has it.
    #[getter]
    fn response_topics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "response_topics")
    }
    #[getter]
    fn connect_timeout_secs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "connect_timeout_secs")
    }
    #[getter]
    fn max_payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, &self.inner, "max_payload")
    }

    /// The broker(s) and every setting that is not at its default; never the password.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        settings::repr(py, "ClientConfig", &self.inner, &["brokers"])
    }
}

/// A peer name ("spec", "otupy", "yuuki", "oif"); None when not given.
pub fn peer_arg(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Peer>> {
    let c: ClientConfig = settings::build(py, &[("peer", obj)])?;
    Ok(obj.filter(|o| !o.is_none()).map(|_| c.peer))
}

/// Where responses go ("shared", "producer", "both"); None when not given.
pub fn response_topics_arg(
    py: Python<'_>,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<ResponseTopics>> {
    let c: ClientConfig = settings::build(py, &[("response_topics", obj)])?;
    Ok(c.response_topics)
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
    Ok(crate::pyser::to_py(py, s)?.cast_into::<PyDict>()?)
}
