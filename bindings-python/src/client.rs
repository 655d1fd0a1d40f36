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
use crate::settings;

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
    // In an `Option` so that an interrupted wait can drop it early, without
    // the GIL: a future that owns an open exchange (`send_collect`'s) closes
    // it when dropped, which takes the producer's lock, and a network thread
    // may hold that lock while it waits for the GIL to log.
    let mut fut = std::pin::pin!(Some(fut));
    loop {
        match py.detach(|| {
            rt.block_on(async {
                let running = fut.as_mut().as_pin_mut().expect("set until interrupted");
                tokio::time::timeout(SIGNAL_CHECK, running).await
            })
        }) {
            Ok(v) => return Ok(v),
            Err(_) => {
                if let Err(interrupted) = py.check_signals() {
                    py.detach(|| fut.set(None));
                    return Err(interrupted);
                }
            }
        }
    }
}

pub use crate::settings::opt_seconds_arg;

// `PyClientConfig`: its docstring, keyword arguments and getters are made
// from core's settings table (`make generate`); what Python has of its own is here.
include!("generated/client_config.rs");

client_config! {
    /// The peers suited: `peer`, or "otupy" when `otupy_compat`.
    #[getter]
    fn peer(&self) -> &'static str {
        self.inner.peer().as_str()
    }

    /// The broker(s) and every setting that is not at its default; never the password.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        settings::repr(py, "ClientConfig", &self.inner, &["brokers"])
    }
}

impl PyClientConfig {
    /// `new`'s end: the settings checked together.
    fn checked(py: Python<'_>, inner: ClientConfig) -> PyResult<Self> {
        inner.validate().py_err(py)?;
        Ok(Self { inner })
    }
}

/// The broker URL for `host` and `port`, `mqtts://` with `tls`, an IPv6
/// address bracketed: core's `ClientConfig::broker_url`, for `oc2mqtt.otupy`.
#[pyfunction]
#[pyo3(signature = (host, port, tls = false))]
pub fn _broker_url(host: &Bound<'_, PyAny>, port: u16, tls: bool) -> PyResult<String> {
    let host = convert::string_arg(host, "host")?;
    Ok(ClientConfig::broker_url(&host, port, tls))
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
