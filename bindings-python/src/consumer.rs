//! `Consumer` and `Incoming`: `serve(handler)` with a plain Python function,
//! `serve_async(handler)` with an async (or plain) one, or pull style
//! (`for incoming in consumer`, `async for`, `next()`, `next_async()`).

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError};

use crate::aio::{PyConnecting, detached, future_into_py, future_into_py_or, ready};
use pyo3::exceptions::{PyStopAsyncIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyTuple, PyType};

use oc2mqtt::client::{Consumer, Incoming};
use oc2mqtt::message::{Message, Response};
use oc2mqtt::rules::{HandlerResult, handler_outcome};

use crate::client::{config_arg, opt_seconds_arg, stats_dict, wait};
use crate::codec::{command_to_dict, message_to_dict, response_value};
use crate::convert;
use crate::errors::IntoPyResult;
use crate::repr::Repr;
use crate::settings;

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
        // No status: what a handler that gives none answers (core's rule).
        None => u64::from(oc2mqtt::rules::outcome_response(Ok(None)).status),
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

    /// Answers with what a `serve()` handler gave back: `result` (a response
    /// dict, a status code, or None for a plain 200) or, with `error`, the
    /// exception it raised (a 500 with its text). The rule is the core's
    /// (`Incoming::answer`); `serve_async()` answers through this.
    #[pyo3(signature = (result = None, *, error = None))]
    fn _answer(
        &self,
        py: Python<'_>,
        result: Option<Bound<'_, PyAny>>,
        error: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let out = match error.filter(|e| !e.is_none()) {
            Some(e) => Err(PyErr::from_value(e)),
            None => Ok(result.unwrap_or_else(|| py.None().into_bound(py))),
        };
        let outcome = handler_result(py, out);
        let inc = Arc::clone(&self.inner);
        wait(py, async move { inc.answer(outcome).await })?.py_err(py)
    }

    /// Seconds a handler may take on this command (the consumer's
    /// `handler_timeout`), or None; for `serve_async()`.
    #[getter]
    fn _handler_timeout(&self) -> Option<f64> {
        self.inner.handler_timeout().map(|d| d.as_secs_f64())
    }

    /// Answers the core's `500 handler timed out after N s`; for `serve_async()`.
    fn _time_out(&self, py: Python<'_>) -> PyResult<()> {
        let inc = Arc::clone(&self.inner);
        py.detach(move || inc.time_out()).py_err(py)
    }

    /// Answers the core's `500` for a handler stopped before it finished
    /// (`serve_async()` cancelled); for `serve_async()`.
    fn _stop(&self, py: Python<'_>) -> PyResult<()> {
        let inc = Arc::clone(&self.inner);
        py.detach(move || inc.stop()).py_err(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let c = self.inner.command();
        Ok(Repr::new(py, "Incoming")
            .field("action", c.action.as_str())?
            .field("target", c.target.name.as_str())?
            .field("request_id", self.request_id())?
            .field("sender", self.sender())?
            .finish())
    }
}

/// What the handler gave back (or raised), read as core's
/// [`HandlerResult`]; what it means, and every text of one that is not a
/// response, is core's ([`handler_outcome`]).
fn handler_result(
    py: Python<'_>,
    out: PyResult<Bound<'_, PyAny>>,
) -> Result<Option<Response>, String> {
    handler_outcome(match out {
        Ok(o) => read_result(&o),
        Err(e) => {
            let text = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
            let kind = e.get_type(py).name().map(|n| n.to_string()).ok();
            let name = kind.as_deref().unwrap_or("an exception");
            tracing::warn!(target: "oc2mqtt::python", error = %text, "consumer handler raised {name}");
            HandlerResult::Failed { text, kind }
        }
    })
}

/// A handler's return value as core's [`HandlerResult`]: None, a number
/// (`int` or `float`, not `bool`), a dict, or something else by its type's name.
fn read_result(out: &Bound<'_, PyAny>) -> HandlerResult {
    if out.is_none() {
        HandlerResult::Nothing
    } else if out.cast::<PyBool>().is_ok() {
        HandlerResult::Other("bool".to_owned())
    } else if out.cast::<PyInt>().is_ok() || out.cast::<PyFloat>().is_ok() {
        // An int past a float's range is no status either: named as infinite.
        HandlerResult::Status(out.extract::<f64>().unwrap_or(f64::INFINITY))
    } else if out.cast::<PyDict>().is_ok() {
        match convert::py_to_value(out, "response") {
            Ok(v) => HandlerResult::Object(v),
            Err(e) => HandlerResult::Unreadable(e.value(out.py()).to_string()),
        }
    } else {
        HandlerResult::Other(convert::type_name(out))
    }
}

fn call_handler(handler: &Py<PyAny>, msg: &Message) -> Result<Option<Response>, String> {
    // At interpreter shutdown there is no one left to answer.
    crate::shutdown::attach(|py| {
        let out = command_to_dict(py, msg).and_then(|cmd| handler.bind(py).call1((cmd,)));
        handler_result(py, out)
    })
    .unwrap_or_else(|| Err("the Python interpreter is shutting down".to_owned()))
}

/// `serve()`'s hold: the GIL, taken once for every command ready when a
/// thread gets it (the handlers' own `attach` is then free). At interpreter
/// shutdown `run` is not called here: the core calls it without the GIL, and
/// each handler call answers that Python is shutting down. The thread keeps
/// one Python thread state for its life: a hold does not make one.
fn hold_gil(run: &mut dyn FnMut()) {
    crate::shutdown::keep_thread_state();
    let _ = crate::shutdown::attach(|_py| run());
}

fn check_handler(handler: &Bound<'_, PyAny>, returns: &str) -> PyResult<()> {
    if handler.is_callable() {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "handler: expected a callable (command: dict) -> {returns}, found {}",
        handler.get_type().name()?
    )))
}

/// Receives commands and answers them; one MQTT connection.
///
/// `Consumer(config, device_id, ...)` connects and subscribes before it
/// returns (the GIL released meanwhile); `config` is a `ClientConfig` or a
/// broker URL. In asyncio code, `await Consumer.connect_async(...)` (or
/// `async with Consumer.connect_async(...) as consumer:`) does not block the
/// event loop. Keyword arguments, with their defaults:
// @generated doc Consumer: ConsumerOptions but device_id (from core's settings table: `make generate`)
///
/// - `profiles` (default None): actuator profiles implemented (`slpf`, ...): one
///   `oc2/cmd/ap/<profile>` subscription each
/// - `pairs` (default None): action/target pairs implemented; when any are declared, other
///   pairs are answered 501 (`query features` is always implemented)
/// - `args` (default None): command arguments implemented beyond the Language Specification's
///   and the profiles' (`x-acme` or `x-acme.mode`); once pairs, profiles or args are declared,
///   other arguments are answered 501
/// - `rate_limit` (default None): commands per minute, reported by `query features`
/// - `group` (default None): consumer group: each command reaches one member
///   (`$share/<group>/...`)
/// - `handle_features` (default False): deliver `query features` to the application instead of
///   answering it from this configuration
/// - `freshness_secs` (default 900): commands whose `created` is older than this many seconds
///   are not run nor answered, only counted in the `stale` statistic; 0 turns the check off
/// - `handler_timeout` (default None): seconds a `serve()` handler may take; past it the
///   command is answered 500 and the handler's late result is dropped; when absent or 0, no
///   limit
/// - `journal` (default None): a file where each command is written before the handler sees it
///   and marked finished once answered: started again with the same file (and a stable client
///   id) after a kill, the consumer runs what it had taken and not finished, and nothing it had
///   finished; not synced, so an operating system crash may lose the last lines; when absent,
///   in memory only
// @end generated
///
/// `pairs` is a dict, `{"deny": ["ipv4_net"]}` (as LS 4.1 lists them), or
/// a list of `(action, target)` pairs. `handler_timeout` bounds
/// `serve_async()`'s handlers too: an async one past it is cancelled and
/// its command answered 500 the same way.
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
    /// Commands taken for an `await` that was cancelled before it got them:
    /// the next `next`/`next_async`/`async for` gets them first.
    unclaimed: Arc<Unclaimed>,
}

/// Commands handed over to an `await` that was cancelled before the event
/// loop got to them, and a wake-up for whoever waits for the next command.
#[derive(Default)]
struct Unclaimed {
    commands: std::sync::Mutex<VecDeque<PyIncoming>>,
    kept: tokio::sync::Notify,
}

impl Unclaimed {
    fn take(&self) -> Option<PyIncoming> {
        self.commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    /// The hook for [`future_into_py_or`]: keeps the command, first in line.
    fn keeper(this: &Arc<Self>) -> impl FnOnce(Option<PyIncoming>) + Send + 'static {
        let this = Arc::clone(this);
        move |i| {
            if let Some(i) = i {
                this.commands
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_front(i);
                this.kept.notify_one();
            }
        }
    }
}

impl PyConsumer {
    fn wrap(inner: Consumer) -> Self {
        Self {
            inner,
            unclaimed: Arc::default(),
        }
    }

    /// The next command, a kept one first, waiting at most `timeout`. A
    /// command kept while this waits wakes it (the cancelled await's command
    /// must not wait for the next one to arrive).
    fn next_command(
        &self,
        timeout: Option<std::time::Duration>,
    ) -> impl std::future::Future<Output = Option<PyIncoming>> + Send + 'static {
        let c = self.inner.clone();
        let unclaimed = Arc::clone(&self.unclaimed);
        let next = async move {
            loop {
                if let Some(i) = unclaimed.take() {
                    return Some(i);
                }
                // The core's queue is cancel-safe: leaving `next()` loses nothing.
                tokio::select! {
                    got = c.next() => return got.map(PyIncoming::from),
                    () = unclaimed.kept.notified() => {}
                }
            }
        };
        async move {
            match timeout {
                Some(t) => tokio::time::timeout(t, next).await.ok().flatten(),
                None => next.await,
            }
        }
    }
}

#[pymethods]
impl PyConsumer {
    #[new]
    // @generated fn new(config, device_id) -> PyResult<Self>: ConsumerOptions as options
    #[pyo3(signature = (
        config, device_id, *, profiles = None, pairs = None, args = None, rate_limit = None, group =
        None, handle_features = None, freshness_secs = None, handler_timeout = None, journal = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        device_id: &Bound<'_, PyAny>,
        profiles: Option<&Bound<'_, PyAny>>,
        pairs: Option<&Bound<'_, PyAny>>,
        args: Option<&Bound<'_, PyAny>>,
        rate_limit: Option<&Bound<'_, PyAny>>,
        group: Option<&Bound<'_, PyAny>>,
        handle_features: Option<&Bound<'_, PyAny>>,
        freshness_secs: Option<&Bound<'_, PyAny>>,
        handler_timeout: Option<&Bound<'_, PyAny>>,
        journal: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options: oc2mqtt::rules::ConsumerOptions = crate::settings::keywords! {
            py; device_id, profiles, pairs, args, rate_limit, group, handle_features,
            freshness_secs, handler_timeout, journal
        }?;
        // @end generated
        let config = config_arg(config)?;
        crate::logging::refresh_logging();
        let inner = wait(py, Consumer::connect(config, options))?.py_err(py)?;
        Ok(Self::wrap(inner))
    }

    /// Connects without blocking the event loop (same arguments as the
    /// constructor): `await Consumer.connect_async(config, device_id)`, or
    /// `async with Consumer.connect_async(config, device_id) as consumer:`
    /// (closed at the end of the block).
    #[classmethod]
    // @generated fn connect_async(_cls, config, device_id) -> PyResult<PyConnecting>: ConsumerOptions as options
    #[pyo3(signature = (
        config, device_id, *, profiles = None, pairs = None, args = None, rate_limit = None, group =
        None, handle_features = None, freshness_secs = None, handler_timeout = None, journal = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn connect_async(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        device_id: &Bound<'_, PyAny>,
        profiles: Option<&Bound<'_, PyAny>>,
        pairs: Option<&Bound<'_, PyAny>>,
        args: Option<&Bound<'_, PyAny>>,
        rate_limit: Option<&Bound<'_, PyAny>>,
        group: Option<&Bound<'_, PyAny>>,
        handle_features: Option<&Bound<'_, PyAny>>,
        freshness_secs: Option<&Bound<'_, PyAny>>,
        handler_timeout: Option<&Bound<'_, PyAny>>,
        journal: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyConnecting> {
        let options: oc2mqtt::rules::ConsumerOptions = crate::settings::keywords! {
            py; device_id, profiles, pairs, args, rate_limit, group, handle_features,
            freshness_secs, handler_timeout, journal
        }?;
        // @end generated
        let config = config_arg(config)?;
        crate::logging::refresh_logging();
        PyConnecting::start(py, "Consumer", async move {
            Consumer::connect(config, options)
                .await
                .map_err(|e| crate::shutdown::error(&e))
                .map(PyConsumer::wrap)
        })
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
        check_handler(handler.bind(py), "dict | int | None")?;
        let c = self.inner.clone();
        wait(py, async move {
            c.serve_held(hold_gil, move |msg: &Message| call_handler(&handler, msg))
                .await
        })?
        .py_err(py)
    }

    /// `serve()` for asyncio: a coroutine that runs `handler(command)` for
    /// every command until `close()`, then returns once the running handlers
    /// finished. `handler` may be an `async def` (awaited on the event loop,
    /// up to 64 at once) or a plain function (called on the event loop: keep
    /// it short). Its result is answered as `serve()` answers it.
    ///
    /// Cancelling the coroutine (`task.cancel()`, `asyncio.timeout`, Ctrl-C
    /// in `asyncio.run`) stops taking commands and cancels the running
    /// handlers, whose commands are answered 500; the consumer stays
    /// connected.
    fn serve_async<'py>(
        slf: &Bound<'py, Self>,
        handler: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_handler(handler, "dict | int | None, or an async one")?;
        static SERVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        SERVE
            .import(slf.py(), "oc2mqtt._serve", "serve")?
            .call1((slf, handler))
    }

    /// The next command, or None once closed (or after `timeout` seconds;
    /// default None: no limit).
    #[pyo3(signature = (timeout = None))]
    fn next(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyIncoming>> {
        let timeout = opt_seconds_arg(timeout, "timeout", None)?;
        // Ctrl-C drops the wait only while no command was taken (the core's
        // queue gives one up only to a wait that then returns it).
        wait(py, self.next_command(timeout))
    }

    /// `next()` as an awaitable.
    #[pyo3(signature = (timeout = None))]
    fn next_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_seconds_arg(timeout, "timeout", None)?;
        let next = self.next_command(timeout);
        let keep = Unclaimed::keeper(&self.unclaimed);
        future_into_py_or(py, async move { Ok(next.await) }, keep)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyIncoming>> {
        self.next(py, None)
    }

    /// `async for incoming in consumer:` until `close()`.
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let next = self.next_command(None);
        let keep = Unclaimed::keeper(&self.unclaimed);
        future_into_py_or(
            py,
            async move { next.await.ok_or_else(|| PyStopAsyncIteration::new_err(())) },
            move |i| keep(Some(i)),
        )
    }

    /// The freshness window in seconds (0: off): older commands are not run.
    #[getter]
    fn freshness_secs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        settings::get(py, self.inner.options(), "freshness_secs")
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

    /// Stops serving and disconnects.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.inner.clone();
        wait(py, async move { c.close().await })
    }

    /// `close()` as an awaitable.
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.inner.clone();
        detached(py, async move { c.close().await })
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
        Ok(Repr::new(py, "Consumer")
            .field("device_id", self.device_id())?
            .field("broker", self.inner.broker())?
            .finish())
    }
}
