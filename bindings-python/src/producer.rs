//! `Producer`, `Exchange`, `Reply`, `Summary`: blocking calls release the GIL;
//! the `*_async` methods and `async for` return asyncio awaitables.
//!
//! The `send` methods' keyword arguments (signature, parameters, the
//! `SendOptions` made of them, their docs) are made from core's settings
//! table by `make generate`, between `@generated` and `@end generated`.

use crate::aio::{PyConnecting, detached, future_into_py, ready};
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

use oc2mqtt::Message;
use oc2mqtt::client::{Exchange, Producer, Reply, SendOptions, SharedExchange, Summary};

use crate::client::{config_arg, opt_seconds_arg, stats_dict, wait};
use crate::codec::{command_arg, message_arg, message_to_dict};
use crate::convert;
use crate::errors::IntoPyResult;
use crate::repr::Repr;

/// A response received in an exchange.
#[pyclass(name = "Reply", module = "oc2mqtt", frozen)]
pub struct PyReply {
    inner: Reply,
    message: PyOnceLock<Py<PyDict>>,
}

impl From<Reply> for PyReply {
    fn from(inner: Reply) -> Self {
        Self {
            inner,
            message: PyOnceLock::new(),
        }
    }
}

#[pymethods]
impl PyReply {
    /// The response message (canonical dict).
    #[getter]
    fn message(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.message
            .get_or_try_init(py, || {
                message_to_dict(py, &self.inner.message).map(Bound::unbind)
            })
            .map(|d| d.clone_ref(py))
    }
    /// The response's status code.
    #[getter]
    fn status(&self) -> Option<u16> {
        self.inner.message.response().map(|r| r.status)
    }
    /// Its `status_text`, if any.
    #[getter]
    fn status_text(&self) -> Option<&str> {
        self.inner
            .message
            .response()
            .and_then(|r| r.status_text.as_deref())
    }
    /// Who answered (the `from` header).
    #[getter]
    fn sender(&self) -> Option<&str> {
        self.inner.message.headers.from.as_deref()
    }
    #[getter]
    fn request_id(&self) -> Option<&str> {
        self.inner.message.headers.request_id.as_deref()
    }
    /// The topic it arrived on.
    #[getter]
    fn topic(&self) -> &str {
        &self.inner.topic
    }
    #[getter]
    fn encoding(&self) -> &'static str {
        self.inner.encoding.as_str()
    }
    #[getter]
    fn dialect(&self) -> &'static str {
        self.inner.dialect.as_str()
    }
    /// Seconds from the send to its arrival.
    #[getter]
    fn latency(&self) -> f64 {
        self.inner.latency.as_secs_f64()
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Reply")
            .field("sender", self.sender())?
            .field("status", self.status())?
            .field("topic", &self.inner.topic)?
            .field("latency", (self.latency() * 1e6).round() / 1e6)?
            .finish())
    }
}

/// The result of a whole exchange.
#[pyclass(name = "Summary", module = "oc2mqtt", frozen)]
pub struct PySummary {
    request_id: String,
    responses: Vec<Py<PyReply>>,
    complete: bool,
    missing: Vec<String>,
    missing_count: usize,
}

impl PySummary {
    fn new(py: Python<'_>, s: Summary) -> PyResult<Self> {
        Ok(Self {
            request_id: s.request_id,
            responses: s
                .responses
                .into_iter()
                .map(|r| Py::new(py, PyReply::from(r)))
                .collect::<PyResult<_>>()?,
            complete: s.complete,
            missing: s.missing,
            missing_count: s.missing_count,
        })
    }
}

/// A summary made on the runtime, turned into Python when handed over.
struct SummaryOut(Summary);

impl<'py> IntoPyObject<'py> for SummaryOut {
    type Target = PySummary;
    type Output = Bound<'py, PySummary>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PySummary>> {
        Bound::new(py, PySummary::new(py, self.0)?)
    }
}

#[pymethods]
impl PySummary {
    #[getter]
    fn request_id(&self) -> &str {
        &self.request_id
    }
    /// Every response, in arrival order.
    #[getter]
    fn responses(&self, py: Python<'_>) -> Vec<Py<PyReply>> {
        self.responses.iter().map(|r| r.clone_ref(py)).collect()
    }
    /// Whether every expected responder sent a final response in time.
    #[getter]
    fn complete(&self) -> bool {
        self.complete
    }
    /// Expected responders that did not send a final response.
    #[getter]
    fn missing(&self) -> Vec<String> {
        self.missing.clone()
    }
    /// Final responses still missing for an `expect` count.
    #[getter]
    fn missing_count(&self) -> usize {
        self.missing_count
    }
    fn __len__(&self) -> usize {
        self.responses.len()
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let statuses: Vec<Option<u16>> = self.responses.iter().map(|r| r.get().status()).collect();
        Ok(Repr::new(py, "Summary")
            .field("request_id", &self.request_id)?
            .field("statuses", statuses)?
            .field("complete", self.complete)?
            .field("missing", &self.missing)?
            .finish())
    }
}

/// The responses to one command: iterate (or `async for`) to get them as
/// they arrive, or `collect()` them. Ends when every addressed consumer sent
/// a final response, or at the timeout. The core's `SharedExchange`: any
/// thread may read it or cancel it.
#[pyclass(name = "Exchange", module = "oc2mqtt", frozen)]
pub struct PyExchange {
    /// `None` only while it is dropped.
    inner: Option<SharedExchange>,
}

impl PyExchange {
    fn new(ex: Exchange) -> Self {
        Self {
            inner: Some(SharedExchange::from(ex)),
        }
    }

    fn ex(&self) -> &SharedExchange {
        self.inner.as_ref().expect("set until dropped")
    }
}

impl Drop for PyExchange {
    fn drop(&mut self) {
        // Closing an open core exchange (its last owner gone) takes the
        // producer's lock, which a network thread may hold while it waits
        // for the GIL to log: let go of it off this (GIL-holding) thread.
        // Other owners (a `collect_async` in progress) keep it open.
        if let Some(ex) = self.inner.take()
            && !ex.is_closed()
        {
            oc2mqtt::client::runtime().spawn(async move { drop(ex) });
        }
    }
}

#[pymethods]
impl PyExchange {
    /// The command's request id.
    #[getter]
    fn request_id(&self) -> &str {
        self.ex().request_id()
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyReply>> {
        Ok(wait(py, self.ex().next())?.map(PyReply::from))
    }

    /// Waits for the remaining responses; returns as soon as the exchange is
    /// complete, else at the timeout. Responses already iterated are not repeated.
    fn collect(&self, py: Python<'_>) -> PyResult<PySummary> {
        let summary = wait(py, self.ex().collect())?.py_err(py)?;
        PySummary::new(py, summary)
    }

    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ex = self.ex().clone();
        future_into_py(py, async move {
            match ex.next().await {
                Some(r) => Ok(PyReply::from(r)),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }

    /// `collect()` as an awaitable.
    fn collect_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ex = self.ex().clone();
        future_into_py(py, async move {
            ex.collect()
                .await
                .map(SummaryOut)
                .map_err(|e| crate::shutdown::error(&e))
        })
    }

    /// Ends the exchange now, from any thread (an iteration waiting in
    /// another thread returns at once); responses already received can
    /// still be read.
    fn cancel(&self) {
        self.ex().cancel();
    }

    /// Whether the exchange ended (complete, timed out, cancelled or collected).
    #[getter]
    fn is_closed(&self) -> bool {
        self.ex().is_closed()
    }

    /// Whether every expected responder answered (so far as iterated).
    #[getter]
    fn is_complete(&self) -> bool {
        self.ex().is_complete()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Exchange")
            .field("request_id", self.ex().request_id())?
            .field("closed", self.is_closed())?
            .finish())
    }
}

async fn unsolicited(p: &Producer, timeout: Option<std::time::Duration>) -> Option<Reply> {
    match timeout {
        Some(t) => tokio::time::timeout(t, p.next_unsolicited())
            .await
            .ok()
            .flatten(),
        None => p.next_unsolicited().await,
    }
}

enum Outgoing {
    Command(oc2mqtt::Command),
    Message(Message),
}

async fn send(p: Producer, what: Outgoing, o: SendOptions) -> oc2mqtt::Result<Exchange> {
    match what {
        Outgoing::Command(c) => p.send(c, o).await,
        Outgoing::Message(m) => p.send_message(m, o).await,
    }
}

/// `send` and `collect` in one wait (core's `send_collect`): the broker's
/// acknowledgement is recorded on the connection's task, so the caller is
/// woken once, at the end of the exchange, not also at the PUBACK.
async fn send_collect(p: &Producer, what: Outgoing, o: SendOptions) -> oc2mqtt::Result<Summary> {
    match what {
        Outgoing::Command(c) => p.send_collect(c, o).await,
        Outgoing::Message(m) => p.send_message_collect(m, o).await,
    }
}

/// Sends commands and collects their responses; one MQTT connection.
///
/// `Producer(config, producer_id)` connects before it returns (the GIL
/// released meanwhile); `config` is a `ClientConfig` or a broker URL. Use it
/// as a context manager (`with`, or `async with`) or call `close()`. In
/// asyncio code, `await Producer.connect_async(config, producer_id)` (or
/// `async with Producer.connect_async(...) as producer:`) connects without
/// blocking the event loop.
#[pyclass(name = "Producer", module = "oc2mqtt", frozen)]
pub struct PyProducer {
    inner: Producer,
}

#[pymethods]
impl PyProducer {
    #[new]
    fn new(
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        producer_id: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let config = config_arg(config)?;
        let id = convert::string_arg(producer_id, "producer_id")?;
        crate::logging::refresh_logging();
        let inner = wait(py, Producer::connect(config, &id))?.py_err(py)?;
        Ok(Self { inner })
    }

    /// Connects without blocking the event loop: `await
    /// Producer.connect_async(config, producer_id)`, or `async with
    /// Producer.connect_async(config, producer_id) as producer:` (closed at
    /// the end of the block).
    #[classmethod]
    fn connect_async(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        producer_id: &Bound<'_, PyAny>,
    ) -> PyResult<PyConnecting> {
        let config = config_arg(config)?;
        let id = convert::string_arg(producer_id, "producer_id")?;
        crate::logging::refresh_logging();
        PyConnecting::start(py, "Producer", async move {
            let inner = Producer::connect(config, &id).await;
            inner
                .map_err(|e| crate::shutdown::error(&e))
                .map(|inner| PyProducer { inner })
        })
    }

    /// This producer's id (the `from` of its commands).
    #[getter]
    fn id(&self) -> &str {
        self.inner.id()
    }

    /// Sends a command (`{"action": ..., "target": {...}}`) with a fresh
    /// request id and returns its `Exchange`. Keyword arguments, with their
    /// defaults (a broker that does not acknowledge the command within
    /// `timeout` raises `TimeoutExpired`):
    // @generated doc Producer.send: SendOptions (from core's settings table: `make generate`)
    ///
    /// - `to` (default None): recipient ids: one publish each on `oc2/cmd/device/<id>`; the
    ///   exchange completes when each sent a final response
    /// - `profile` (default None): actuator profile: sets the command's actuator if it has none
    ///   (topic `oc2/cmd/ap/<profile>` when there is no `to`)
    /// - `timeout` (default 10): how long to wait for responses; it also bounds the wait for
    ///   the broker's acknowledgement
    /// - `expect` (default None): complete after this many distinct responders sent a final
    ///   response (broadcasts)
    /// - `encoding` (default 'json'): payload encoding
    /// - `dialect` (default None): wire dialect; when absent, as the peer has it (otupy's flat
    ///   dialect for `otupy`, the specification's for the others); `bare` carries no request
    ///   id, so its responses cannot be correlated
    // @end generated
    // @generated fn send(&self, command) -> PyResult<PyExchange>: SendOptions as options
    #[pyo3(signature = (
        command, *, to = None, profile = None, timeout = None, expect = None, encoding = None,
        dialect = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        py: Python<'_>,
        command: &Bound<'_, PyAny>,
        to: Option<&Bound<'_, PyAny>>,
        profile: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        expect: Option<&Bound<'_, PyAny>>,
        encoding: Option<&Bound<'_, PyAny>>,
        dialect: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyExchange> {
        let options: oc2mqtt::producer::SendOptions = crate::settings::keywords! {
            py; to, profile, timeout, expect, encoding, dialect
        }?;
        // @end generated
        let cmd = command_arg(command, "command")?;
        let ex = wait(
            py,
            send(self.inner.clone(), Outgoing::Command(cmd), options),
        )?
        .py_err(py)?;
        Ok(PyExchange::new(ex))
    }

    /// Sends a whole request message (dict or `Decoded`), filling in
    /// `request_id`, `created` and `from` when absent; recipients come from
    /// its `to` header. Keyword arguments and defaults as for `send()`.
    // @generated fn send_message(&self, message) -> PyResult<PyExchange>: SendOptions but to, profile as options
    #[pyo3(signature = (
        message, *, timeout = None, expect = None, encoding = None, dialect = None
    ))]
    fn send_message(
        &self,
        py: Python<'_>,
        message: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        expect: Option<&Bound<'_, PyAny>>,
        encoding: Option<&Bound<'_, PyAny>>,
        dialect: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyExchange> {
        let options: oc2mqtt::producer::SendOptions = crate::settings::keywords! {
            py; timeout, expect, encoding, dialect
        }?;
        // @end generated
        let msg = message_arg(message, "message")?;
        let ex = wait(
            py,
            send(self.inner.clone(), Outgoing::Message(msg), options),
        )?
        .py_err(py)?;
        Ok(PyExchange::new(ex))
    }

    /// `send()` as an awaitable resolving to an `Exchange` (same arguments and defaults).
    // @generated fn send_async<'py>(&self, command) -> PyResult<Bound<'py, PyAny>>: SendOptions as options
    #[pyo3(signature = (
        command, *, to = None, profile = None, timeout = None, expect = None, encoding = None,
        dialect = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn send_async<'py>(
        &self,
        py: Python<'py>,
        command: &Bound<'py, PyAny>,
        to: Option<&Bound<'py, PyAny>>,
        profile: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
        expect: Option<&Bound<'py, PyAny>>,
        encoding: Option<&Bound<'py, PyAny>>,
        dialect: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options: oc2mqtt::producer::SendOptions = crate::settings::keywords! {
            py; to, profile, timeout, expect, encoding, dialect
        }?;
        // @end generated
        let cmd = command_arg(command, "command")?;
        let p = self.inner.clone();
        future_into_py(py, async move {
            match send(p, Outgoing::Command(cmd), options).await {
                Ok(ex) => Ok(PyExchange::new(ex)),
                Err(e) => Err(crate::shutdown::error(&e)),
            }
        })
    }

    /// `send(command, ...).collect()` in one call, and one wait: returns the
    /// `Summary` as soon as every addressed consumer sent a final response,
    /// else at the timeout. Same arguments, defaults and errors as `send()`
    /// (a refused command raises `PublishError`; a broker that does not
    /// acknowledge it within `timeout`, `TimeoutExpired`). Ctrl-C ends the
    /// wait and the exchange. For streaming the responses as they arrive,
    /// iterate `send()`'s `Exchange` instead.
    // @generated fn send_collect(&self, command) -> PyResult<PySummary>: SendOptions as options
    #[pyo3(signature = (
        command, *, to = None, profile = None, timeout = None, expect = None, encoding = None,
        dialect = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn send_collect(
        &self,
        py: Python<'_>,
        command: &Bound<'_, PyAny>,
        to: Option<&Bound<'_, PyAny>>,
        profile: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        expect: Option<&Bound<'_, PyAny>>,
        encoding: Option<&Bound<'_, PyAny>>,
        dialect: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PySummary> {
        let options: oc2mqtt::producer::SendOptions = crate::settings::keywords! {
            py; to, profile, timeout, expect, encoding, dialect
        }?;
        // @end generated
        let cmd = command_arg(command, "command")?;
        let s = wait(
            py,
            send_collect(&self.inner, Outgoing::Command(cmd), options),
        )?
        .py_err(py)?;
        PySummary::new(py, s)
    }

    /// `send_message(message, ...).collect()` in one call and one wait, as
    /// `send_collect()` is for `send()`. Keyword arguments and defaults as
    /// for `send_message()`.
    // @generated fn send_message_collect(&self, message) -> PyResult<PySummary>: SendOptions but to, profile as options
    #[pyo3(signature = (
        message, *, timeout = None, expect = None, encoding = None, dialect = None
    ))]
    fn send_message_collect(
        &self,
        py: Python<'_>,
        message: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        expect: Option<&Bound<'_, PyAny>>,
        encoding: Option<&Bound<'_, PyAny>>,
        dialect: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PySummary> {
        let options: oc2mqtt::producer::SendOptions = crate::settings::keywords! {
            py; timeout, expect, encoding, dialect
        }?;
        // @end generated
        let msg = message_arg(message, "message")?;
        let s = wait(
            py,
            send_collect(&self.inner, Outgoing::Message(msg), options),
        )?
        .py_err(py)?;
        PySummary::new(py, s)
    }

    /// `send_collect()` as an awaitable resolving to the `Summary` (same
    /// arguments and defaults): one future, where `await (await
    /// send_async(...)).collect_async()` takes two. Cancelling the await
    /// ends the exchange, as cancelling `collect_async()` does.
    // @generated fn send_collect_async<'py>(&self, command) -> PyResult<Bound<'py, PyAny>>: SendOptions as options
    #[pyo3(signature = (
        command, *, to = None, profile = None, timeout = None, expect = None, encoding = None,
        dialect = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn send_collect_async<'py>(
        &self,
        py: Python<'py>,
        command: &Bound<'py, PyAny>,
        to: Option<&Bound<'py, PyAny>>,
        profile: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
        expect: Option<&Bound<'py, PyAny>>,
        encoding: Option<&Bound<'py, PyAny>>,
        dialect: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options: oc2mqtt::producer::SendOptions = crate::settings::keywords! {
            py; to, profile, timeout, expect, encoding, dialect
        }?;
        // @end generated
        let cmd = command_arg(command, "command")?;
        let p = self.inner.clone();
        future_into_py(py, async move {
            match send_collect(&p, Outgoing::Command(cmd), options).await {
                Ok(s) => Ok(SummaryOut(s)),
                Err(e) => Err(crate::shutdown::error(&e)),
            }
        })
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

    /// Exchanges currently open.
    #[getter]
    fn open_exchanges(&self, py: Python<'_>) -> usize {
        py.detach(|| self.inner.open_exchanges())
    }

    /// The next response that matched no exchange (a peer's bare
    /// `{"status": 200}` without request_id, an answer after its exchange
    /// ended), or None once closed or after `timeout` seconds (default None:
    /// no limit). Up to 1024 wait to be read; more are only counted in
    /// `stats["unsolicited"]`.
    #[pyo3(signature = (timeout = None))]
    fn next_unsolicited(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyReply>> {
        let timeout = opt_seconds_arg(timeout, "timeout", None)?;
        let p = self.inner.clone();
        let got = wait(py, async move { unsolicited(&p, timeout).await })?;
        Ok(got.map(PyReply::from))
    }

    /// `next_unsolicited()` as an awaitable.
    #[pyo3(signature = (timeout = None))]
    fn next_unsolicited_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_seconds_arg(timeout, "timeout", None)?;
        let p = self.inner.clone();
        future_into_py(py, async move {
            Ok(unsolicited(&p, timeout).await.map(PyReply::from))
        })
    }

    /// Disconnects; open exchanges end at their next wait.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let p = self.inner.clone();
        wait(py, async move { p.close().await })
    }

    /// `close()` as an awaitable.
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let p = self.inner.clone();
        detached(py, async move { p.close().await })
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
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
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.close_async(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Producer")
            .field("id", self.inner.id())?
            .field("broker", self.inner.broker())?
            .finish())
    }
}
