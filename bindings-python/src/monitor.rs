//! `Monitor` and `MonitorEvent`: all OpenC2 traffic, decoded and paired.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::aio::{PyConnecting, detached, future_into_py, ready};
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyTuple, PyType};

use oc2mqtt::client::{Monitor, MonitorEvent};
use oc2mqtt::monitor::DEFAULT_PAIRING_WINDOW;

use crate::client::{config_arg, opt_seconds_arg, stats_dict, wait};
use crate::codec::message_to_dict;
use crate::convert;
use crate::errors::IntoPyResult;
use crate::repr::Repr;

/// One thing the monitor saw. `kind` is one of core's monitor event kinds
/// (the stub's `_MonitorEventKind`): `undecodable` has payload and error
/// set, `unanswered` (a command's pairing window passed) `request_id` and
/// `missing`.
#[pyclass(name = "MonitorEvent", module = "oc2mqtt", frozen)]
pub struct PyMonitorEvent {
    inner: MonitorEvent,
    message: PyOnceLock<Option<Py<PyDict>>>,
}

impl From<MonitorEvent> for PyMonitorEvent {
    fn from(inner: MonitorEvent) -> Self {
        Self {
            inner,
            message: PyOnceLock::new(),
        }
    }
}

impl PyMonitorEvent {
    fn observed(&self) -> Option<&oc2mqtt::monitor::Observed> {
        match &self.inner {
            MonitorEvent::Request(o) | MonitorEvent::Notification(o) => Some(o),
            MonitorEvent::Response { observed, .. } => Some(observed),
            _ => None,
        }
    }
}

#[pymethods]
impl PyMonitorEvent {
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    /// The topic (None for `unanswered`).
    #[getter]
    fn topic(&self) -> Option<&str> {
        match &self.inner {
            MonitorEvent::Undecodable { topic, .. } => Some(topic),
            _ => self.observed().map(|o| o.topic.as_str()),
        }
    }
    /// The decoded message (canonical dict), None for `undecodable` and `unanswered`.
    #[getter]
    fn message(&self, py: Python<'_>) -> PyResult<Option<Py<PyDict>>> {
        let m = self
            .message
            .get_or_try_init(py, || -> PyResult<Option<Py<PyDict>>> {
                match self.observed() {
                    Some(o) => Ok(Some(message_to_dict(py, &o.message)?.unbind())),
                    None => Ok(None),
                }
            })?;
        Ok(m.as_ref().map(|d| d.clone_ref(py)))
    }
    #[getter]
    fn encoding(&self) -> Option<&'static str> {
        self.observed().map(|o| o.encoding.as_str())
    }
    #[getter]
    fn dialect(&self) -> Option<&'static str> {
        self.observed().map(|o| o.dialect.as_str())
    }
    /// When it arrived, milliseconds since the epoch.
    #[getter]
    fn received_ms(&self) -> Option<i64> {
        match &self.inner {
            MonitorEvent::Undecodable { received_ms, .. } => Some(*received_ms),
            _ => self.observed().map(|o| o.received_ms),
        }
    }
    /// For a response: seconds since its command was seen (None if it was not).
    #[getter]
    fn latency(&self) -> Option<f64> {
        match &self.inner {
            MonitorEvent::Response { latency, .. } => latency.map(|l| l.as_secs_f64()),
            _ => None,
        }
    }
    #[getter]
    fn request_id(&self) -> Option<&str> {
        match &self.inner {
            MonitorEvent::Unanswered { request_id, .. } => Some(request_id),
            _ => self
                .observed()
                .and_then(|o| o.message.headers.request_id.as_deref()),
        }
    }
    /// The `from` header.
    #[getter]
    fn sender(&self) -> Option<&str> {
        self.observed()
            .and_then(|o| o.message.headers.from.as_deref())
    }
    /// For a response: its status.
    #[getter]
    fn status(&self) -> Option<u16> {
        self.observed()
            .and_then(|o| o.message.response())
            .map(|r| r.status)
    }
    /// For `unanswered`: the addressed responders that sent no final response.
    #[getter]
    fn missing(&self) -> Vec<String> {
        match &self.inner {
            MonitorEvent::Unanswered { missing, .. } => missing.clone(),
            _ => Vec::new(),
        }
    }
    /// For `undecodable`: the raw payload.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        match &self.inner {
            MonitorEvent::Undecodable { payload, .. } => Some(PyBytes::new(py, payload)),
            _ => None,
        }
    }
    /// For `undecodable`: why, as a `MessageError` (not raised).
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        match &self.inner {
            MonitorEvent::Undecodable { error, .. } => {
                let err: PyResult<()> = Err(error.clone()).py_err(py);
                err.err().map(|e| e.into_value(py).into_any())
            }
            _ => None,
        }
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let r = Repr::new(py, "MonitorEvent")
            .field("kind", self.kind())?
            .field("topic", self.topic())?
            .field("request_id", self.request_id())?
            .field("sender", self.sender())?;
        let r = match &self.inner {
            MonitorEvent::Response { .. } => r
                .field("status", self.status())?
                .field("latency", self.latency().map(|l| (l * 1e6).round() / 1e6))?,
            MonitorEvent::Unanswered { .. } => r.field("missing", self.missing())?,
            _ => r,
        };
        Ok(r.finish())
    }
}

/// The monitor's filter and pairing window from the constructor's arguments.
fn monitor_args(
    filter: Option<&Bound<'_, PyAny>>,
    window: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Option<String>, Duration)> {
    let filter = convert::opt_string_arg(filter, "filter")?;
    let window =
        opt_seconds_arg(window, "window", Some(DEFAULT_PAIRING_WINDOW))?.unwrap_or(Duration::ZERO);
    Ok((filter, window))
}

/// Watches OpenC2 traffic, pairs responses with their command (latency) and
/// reports commands left unanswered. Iterate it (or `async for`) to get events.
///
/// `Monitor(config, filter=None, *, window=None)` connects and subscribes
/// before it returns; `await Monitor.connect_async(...)` (or `async with
/// Monitor.connect_async(...) as monitor:`) does not block the event loop.
/// `filter`: the topic filter (default None: `oc2/#` under the topic prefix);
/// `window`: seconds a command waits for its responses before it is reported
/// `unanswered` (default 30).
#[pyclass(name = "Monitor", module = "oc2mqtt", frozen)]
pub struct PyMonitor {
    inner: Arc<Monitor>,
    /// Events taken from the core ahead of the caller, in arrival order: the
    /// wait that gets one event also takes the events ready at that moment
    /// (up to core's `monitor::BATCH`), so that the next calls return them without
    /// releasing the GIL nor entering the runtime.
    ready: Arc<Ready>,
}

#[derive(Default)]
struct Ready(Mutex<VecDeque<MonitorEvent>>);

impl Ready {
    fn lock(&self) -> MutexGuard<'_, VecDeque<MonitorEvent>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pop(&self) -> Option<MonitorEvent> {
        self.lock().pop_front()
    }

    /// The next event: a taken one, else the core's, waiting (`None` once
    /// closed); with the core's, every event ready then is taken too.
    async fn next(&self, m: &Monitor) -> Option<MonitorEvent> {
        if let Some(e) = self.pop() {
            return Some(e);
        }
        let mut batch = m.next_batch().await.into_iter().map(|(e, _)| e);
        let first = batch.next()?;
        self.lock().extend(batch);
        Some(first)
    }
}

impl PyMonitor {
    fn wrap(inner: Monitor) -> Self {
        Self {
            inner: Arc::new(inner),
            ready: Arc::default(),
        }
    }
}

#[pymethods]
impl PyMonitor {
    #[new]
    #[pyo3(signature = (config, filter = None, *, window = None))]
    fn new(
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        filter: Option<&Bound<'_, PyAny>>,
        window: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let config = config_arg(config)?;
        let (filter, window) = monitor_args(filter, window)?;
        crate::logging::refresh_logging();
        let inner = wait(py, Monitor::connect_with_window(config, filter, window))?.py_err(py)?;
        Ok(Self::wrap(inner))
    }

    /// Connects without blocking the event loop (same arguments as the
    /// constructor): `await Monitor.connect_async(config)`, or `async with
    /// Monitor.connect_async(config) as monitor:` (closed at the end of the block).
    #[classmethod]
    #[pyo3(signature = (config, filter = None, *, window = None))]
    fn connect_async(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        filter: Option<&Bound<'_, PyAny>>,
        window: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyConnecting> {
        let config = config_arg(config)?;
        let (filter, window) = monitor_args(filter, window)?;
        crate::logging::refresh_logging();
        PyConnecting::start(py, "Monitor", async move {
            Monitor::connect_with_window(config, filter, window)
                .await
                .map_err(|e| crate::shutdown::error(&e))
                .map(PyMonitor::wrap)
        })
    }

    /// The next event, or None once closed (or after `timeout` seconds;
    /// default None: no limit).
    #[pyo3(signature = (timeout = None))]
    fn next(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyMonitorEvent>> {
        let timeout = opt_seconds_arg(timeout, "timeout", None)?;
        if let Some(e) = self.ready.pop() {
            return Ok(Some(PyMonitorEvent::from(e)));
        }
        let (m, ready) = (Arc::clone(&self.inner), Arc::clone(&self.ready));
        let got = wait(py, async move {
            match timeout {
                Some(t) => tokio::time::timeout(t, ready.next(&m)).await.ok().flatten(),
                None => ready.next(&m).await,
            }
        })?;
        Ok(got.map(PyMonitorEvent::from))
    }

    /// `next()` as an awaitable.
    #[pyo3(signature = (timeout = None))]
    fn next_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_seconds_arg(timeout, "timeout", None)?;
        let (m, ready) = (Arc::clone(&self.inner), Arc::clone(&self.ready));
        future_into_py(py, async move {
            let got = match timeout {
                Some(t) => tokio::time::timeout(t, ready.next(&m)).await.ok().flatten(),
                None => ready.next(&m).await,
            };
            Ok(got.map(PyMonitorEvent::from))
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyMonitorEvent>> {
        self.next(py, None)
    }

    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (m, ready) = (Arc::clone(&self.inner), Arc::clone(&self.ready));
        future_into_py(py, async move {
            match ready.next(&m).await {
                Some(e) => Ok(PyMonitorEvent::from(e)),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }

    /// Commands seen whose addressed responders have not all answered yet.
    fn pending(&self, py: Python<'_>) -> Vec<(String, Vec<String>)> {
        py.detach(|| self.inner.pending())
    }

    /// The broker URL connected to (after a failover, the one in use).
    #[getter]
    fn broker(&self) -> String {
        self.inner.broker()
    }

    /// Counters, as core keeps them: a dict of the stub's `_Stats` keys.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.inner.stats())
    }

    /// Stops and disconnects.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let m = Arc::clone(&self.inner);
        wait(py, async move { m.close().await })?;
        // As the core's: nothing more once closed.
        self.ready.lock().clear();
        Ok(())
    }

    /// `close()` as an awaitable.
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (m, ready) = (Arc::clone(&self.inner), Arc::clone(&self.ready));
        detached(py, async move {
            m.close().await;
            ready.lock().clear();
        })
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        ready(slf.py(), slf.clone().into_any())
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.close_async(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Monitor")
            .field("broker", self.inner.broker())?
            .finish())
    }
}
