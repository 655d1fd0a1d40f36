//! `Consumer` and `Incoming`: `serve(handler)` with a plain Python function,
//! or pull style (`for incoming in consumer`, `next()`, `next_async()`).

use std::sync::Arc;

use crate::aio::future_into_py;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyList, PyTuple};

use oc2mqtt::client::{Consumer, ConsumerOptions, Incoming};
use oc2mqtt::message::{Message, Response};

use crate::client::{config_arg, opt_seconds_arg, stats_dict, wait};
use crate::codec::{command_to_dict, message_to_dict, response_arg, response_value};
use crate::convert;
use crate::errors::IntoPyResult;

/// A command for the application, with the means to answer it.
#[pyclass(name = "Incoming", module = "oc2mqtt", frozen)]
pub struct PyIncoming {
    inner: Arc<Incoming>,
    message: PyOnceLock<Py<PyDict>>,
}

impl From<Incoming> for PyIncoming {
    fn from(i: Incoming) -> Self {
        Self {
            inner: Arc::new(i),
            message: PyOnceLock::new(),
        }
    }
}

/// A response from `reply()`'s arguments.
fn response_from(
    py: Python<'_>,
    status: Option<&Bound<'_, PyAny>>,
    status_text: Option<&Bound<'_, PyAny>>,
    results: Option<&Bound<'_, PyAny>>,
) -> PyResult<Response> {
    let mut d = serde_json::Map::new();
    let status = match status.filter(|s| !s.is_none()) {
        Some(s) => convert::u64_arg(s, "status")?,
        None => 200,
    };
    d.insert("status".to_owned(), status.into());
    if let Some(text) = convert::opt_string_arg(status_text, "status_text")? {
        d.insert("status_text".to_owned(), text.into());
    }
    if let Some(r) = results.filter(|r| !r.is_none()) {
        if r.cast::<PyDict>().is_err() {
            return Err(PyTypeError::new_err(format!(
                "results: expected a dict, found {}",
                r.get_type().name()?
            )));
        }
        d.insert("results".to_owned(), convert::py_to_value(r, "results")?);
    }
    response_value(py, serde_json::Value::Object(d))
}

#[pymethods]
impl PyIncoming {
    /// The whole request message (canonical dict).
    #[getter]
    fn message(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.message
            .get_or_try_init(py, || {
                message_to_dict(py, self.inner.message()).map(Bound::unbind)
            })
            .map(|d| d.clone_ref(py))
    }
    /// The command object: `{"action": ..., "target": {...}, ...}`.
    #[getter]
    fn command<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        command_to_dict(py, self.inner.message())
    }
    #[getter]
    fn request_id(&self) -> Option<&str> {
        self.inner.message().headers.request_id.as_deref()
    }
    /// Who sent it (the `from` header).
    #[getter]
    fn sender(&self) -> Option<&str> {
        self.inner.message().headers.from.as_deref()
    }
    /// The topic it arrived on.
    #[getter]
    fn topic(&self) -> &str {
        self.inner.topic()
    }
    #[getter]
    fn encoding(&self) -> &'static str {
        self.inner.encoding().as_str()
    }
    #[getter]
    fn dialect(&self) -> &'static str {
        self.inner.dialect().as_str()
    }
    /// `none`, `ack`, `status` or `complete`.
    #[getter]
    fn response_requested(&self) -> &'static str {
        self.inner.response_requested().as_str()
    }

    /// Answers: a `102` first if the work takes long, then the final response.
    /// Sends nothing when the producer asked for `none` or `ack`. Returns once
    /// the client has it, without waiting for the broker's PUBACK.
    #[pyo3(signature = (status = None, *, status_text = None, results = None))]
    fn reply(
        &self,
        py: Python<'_>,
        status: Option<&Bound<'_, PyAny>>,
        status_text: Option<&Bound<'_, PyAny>>,
        results: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let rsp = response_from(py, status, status_text, results)?;
        let inc = Arc::clone(&self.inner);
        wait(py, async move { inc.reply(rsp).await })?.py_err(py)
    }

    /// `reply()` as an awaitable.
    #[pyo3(signature = (status = None, *, status_text = None, results = None))]
    fn reply_async<'py>(
        &self,
        py: Python<'py>,
        status: Option<&Bound<'py, PyAny>>,
        status_text: Option<&Bound<'py, PyAny>>,
        results: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rsp = response_from(py, status, status_text, results)?;
        let inc = Arc::clone(&self.inner);
        future_into_py(py, async move {
            inc.reply(rsp).await.map_err(|e| crate::shutdown::error(&e))
        })
    }

    fn __repr__(&self) -> String {
        let c = self.inner.command();
        format!(
            "Incoming(action={:?}, target={:?}, request_id={:?}, sender={:?})",
            c.action.as_str(),
            c.target.name,
            self.request_id(),
            self.sender()
        )
    }
}

/// What the handler gave back, as the core's handler result.
fn handler_result(
    py: Python<'_>,
    out: PyResult<Bound<'_, PyAny>>,
) -> Result<Option<Response>, String> {
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            let text = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
            let name = e
                .get_type(py)
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "Exception".to_owned());
            tracing::warn!(target: "oc2mqtt::python", error = %text, "consumer handler raised {name}");
            return Err(if text.is_empty() { name } else { text });
        }
    };
    if out.is_none() {
        return Ok(None);
    }
    if out.cast::<PyInt>().is_ok() {
        return response_from(py, Some(&out), None, None)
            .map(Some)
            .map_err(|e| format!("handler returned an invalid status: {}", e.value(py)));
    }
    response_arg(&out, "response")
        .map(Some)
        .map_err(|e| format!("handler returned an invalid response: {}", e.value(py)))
}

fn call_handler(handler: &Py<PyAny>, msg: &Message) -> Result<Option<Response>, String> {
    // At interpreter shutdown there is no one left to answer.
    crate::shutdown::attach(|py| {
        let out = command_to_dict(py, msg).and_then(|cmd| handler.bind(py).call1((cmd,)));
        handler_result(py, out)
    })
    .unwrap_or_else(|| Err("the Python interpreter is shutting down".to_owned()))
}

fn pairs_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(PyTypeError::new_err(format!(
            "pairs: expected a list of (action, target) pairs, found {}",
            obj.get_type().name()?
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let at = format!("pairs[{i}]");
            let parts = convert::string_list(p, &at).map_err(|_| {
                PyTypeError::new_err(format!("{at}: expected an (action, target) pair of str"))
            })?;
            match <[String; 2]>::try_from(parts) {
                Ok([a, t]) => Ok((a, t)),
                Err(v) => Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "{at}: expected an (action, target) pair, found {} items",
                    v.len()
                ))),
            }
        })
        .collect()
}

/// Receives commands and answers them; one MQTT connection.
///
/// Before a command reaches Python the core has decoded it (answering 400
/// to malformed ones), dropped duplicates, ignored commands addressed to
/// other devices, skipped retained commands and those older than
/// `freshness_secs` (counted in `stats["stale"]`), sent the 102 of
/// `response_requested: ack`, answered `query features` and 501 to
/// undeclared action/target pairs.
#[pyclass(name = "Consumer", module = "oc2mqtt", frozen)]
pub struct PyConsumer {
    inner: Consumer,
}

#[pymethods]
impl PyConsumer {
    #[new]
    #[pyo3(signature = (
        config, device_id, *, profiles = None, pairs = None, rate_limit = None, group = None,
        handle_features = None, freshness_secs = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        device_id: &Bound<'_, PyAny>,
        profiles: Option<&Bound<'_, PyAny>>,
        pairs: Option<&Bound<'_, PyAny>>,
        rate_limit: Option<&Bound<'_, PyAny>>,
        group: Option<&Bound<'_, PyAny>>,
        handle_features: Option<&Bound<'_, PyAny>>,
        freshness_secs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let config = config_arg(config)?;
        let mut o = ConsumerOptions::new(convert::string_arg(device_id, "device_id")?);
        if let Some(p) = profiles.filter(|p| !p.is_none()) {
            o.profiles = convert::string_list(p, "profiles")?;
        }
        o.pairs = pairs_arg(pairs)?;
        if let Some(r) = rate_limit.filter(|r| !r.is_none()) {
            o.rate_limit = Some(convert::f64_arg(r, "rate_limit")?);
        }
        o.group = convert::opt_string_arg(group, "group")?;
        o.handle_features = convert::bool_arg(handle_features, "handle_features", false)?;
        if let Some(f) = freshness_secs.filter(|f| !f.is_none()) {
            o.freshness_secs = convert::u64_arg(f, "freshness_secs")?;
        }
        crate::logging::refresh_logging();
        let inner = wait(py, Consumer::connect(config, o))?.py_err(py)?;
        Ok(Self { inner })
    }

    /// This consumer's device id.
    #[getter]
    fn device_id(&self) -> &str {
        &self.inner.options().device_id
    }

    /// Runs `handler(command) -> dict | int | None` for every command until
    /// `close()` or Ctrl-C (which propagates as `KeyboardInterrupt`).
    ///
    /// `command` is the command object (`{"action": ..., "target": {...}}`).
    /// Return the response object (`{"status": 200, "results": {...}}`), a
    /// status code, or None for a plain 200. An exception becomes a 500 with
    /// its text, and serving goes on. Handlers run on worker threads, up to
    /// 64 at once: guard shared state with a lock.
    fn serve(&self, py: Python<'_>, handler: Py<PyAny>) -> PyResult<()> {
        if !handler.bind(py).is_callable() {
            return Err(PyTypeError::new_err(format!(
                "handler: expected a callable (command: dict) -> dict | int | None, found {}",
                handler.bind(py).get_type().name()?
            )));
        }
        let c = self.inner.clone();
        wait(py, async move {
            c.serve(move |msg: &Message| call_handler(&handler, msg))
                .await
        })?
        .py_err(py)
    }

    /// The next command, or None once closed (or after `timeout` seconds).
    #[pyo3(signature = (timeout = None))]
    fn next(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyIncoming>> {
        let timeout = opt_seconds_arg(timeout, "timeout", None)?;
        let c = self.inner.clone();
        let got = wait(py, async move {
            match timeout {
                Some(t) => tokio::time::timeout(t, c.next()).await.ok().flatten(),
                None => c.next().await,
            }
        })?;
        Ok(got.map(PyIncoming::from))
    }

    /// `next()` as an awaitable.
    #[pyo3(signature = (timeout = None))]
    fn next_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_seconds_arg(timeout, "timeout", None)?;
        let c = self.inner.clone();
        future_into_py(py, async move {
            let got = match timeout {
                Some(t) => tokio::time::timeout(t, c.next()).await.ok().flatten(),
                None => c.next().await,
            };
            Ok(got.map(PyIncoming::from))
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyIncoming>> {
        self.next(py, None)
    }

    /// The freshness window in seconds (0: off): older commands are not run.
    #[getter]
    fn freshness_secs(&self) -> u64 {
        self.inner.options().freshness_secs
    }

    /// The broker URL connected to (after a failover, the one in use).
    #[getter]
    fn broker(&self) -> String {
        self.inner.broker()
    }

    /// Counters: mqtt_version, published, received, duplicates, decode_errors,
    /// unsolicited, reconnects, publish_errors, stale.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.inner.stats())
    }

    /// Stops serving and disconnects.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.inner.clone();
        wait(py, async move { c.close().await })
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Consumer(device_id={:?})", self.device_id())
    }
}
