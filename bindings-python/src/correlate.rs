//! `Correlator`: responses matched to their commands by `request_id`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::repr::Repr;
use pyo3::types::{PyBool, PyInt};

use oc2mqtt::correlate::{self, Correlator, Expect, Outcome};

use crate::codec::message_arg;
use crate::convert;
use crate::errors::IntoPyResult;

/// An exchange that is no longer open.
#[pyclass(name = "Closed", module = "oc2mqtt", frozen, get_all)]
pub struct PyClosed {
    /// Its request id.
    request_id: String,
    /// `"complete"`, `"deadline"` or `"closed"`.
    reason: &'static str,
    /// Expected responders that never sent a final response.
    missing: Vec<String>,
    /// Final responses still expected for a count.
    missing_count: usize,
    /// The `data` given to `open`.
    data: Py<PyAny>,
}

#[pymethods]
impl PyClosed {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Closed")
            .field("request_id", &self.request_id)?
            .field("reason", self.reason)?
            .field("missing", &self.missing)?
            .field("missing_count", self.missing_count)?
            .finish())
    }
}

impl From<correlate::Closed<Py<PyAny>>> for PyClosed {
    fn from(c: correlate::Closed<Py<PyAny>>) -> Self {
        Self {
            request_id: c.request_id,
            reason: c.reason.as_str(),
            missing: c.missing,
            missing_count: c.missing_count,
            data: c.data,
        }
    }
}

/// What a response meant for its exchange.
#[pyclass(name = "Outcome", module = "oc2mqtt", frozen, get_all)]
pub struct PyOutcome {
    /// `"unsolicited"` (no open exchange), `"open"` (still open) or `"complete"` (now closed).
    kind: &'static str,
    /// Whether the response was final (not 102); `False` when unsolicited.
    is_final: bool,
    /// Whether the responder was one the exchange expected.
    expected: bool,
    /// The exchange's `data`, `None` when unsolicited.
    data: Py<PyAny>,
    /// The closed exchange when `kind == "complete"`.
    closed: Option<Py<PyClosed>>,
}

#[pymethods]
impl PyOutcome {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Outcome")
            .field("kind", self.kind)?
            .field("is_final", self.is_final)?
            .field("expected", self.expected)?
            .finish())
    }
}

fn expect_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Expect> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Expect::Unknown);
    };
    if obj.cast::<PyInt>().is_ok() && obj.cast::<PyBool>().is_err() {
        let n = convert::u64_arg(obj, "expect")?;
        return usize::try_from(n)
            .map(Expect::Count)
            .map_err(|_| PyValueError::new_err(format!("expect: {n} is too large")));
    }
    Ok(Expect::from_to(Some(&convert::string_list(obj, "expect")?)))
}

/// Open exchanges keyed by `request_id`. Time is in milliseconds of a
/// monotonic clock: pass `now_ms`, or leave it out to use `time.monotonic_ns() // 1_000_000`.
#[pyclass(name = "Correlator", module = "oc2mqtt")]
pub struct PyCorrelator {
    inner: Correlator<Py<PyAny>>,
}

#[pymethods]
impl PyCorrelator {
    #[new]
    fn new() -> Self {
        Self {
            inner: Correlator::new(),
        }
    }

    /// Opens an exchange. `expect`: a list of responder ids (complete when each
    /// sent a final response), a count, or `None` (a broadcast, open until the deadline).
    #[pyo3(signature = (request_id, expect = None, *, timeout_ms = None, now_ms = None, data = None))]
    fn open(
        &mut self,
        py: Python<'_>,
        request_id: &Bound<'_, PyAny>,
        expect: Option<&Bound<'_, PyAny>>,
        timeout_ms: Option<&Bound<'_, PyAny>>,
        now_ms: Option<&Bound<'_, PyAny>>,
        data: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let id = convert::string_arg(request_id, "request_id")?;
        let expect = expect_arg(expect)?;
        let timeout = timeout_ms_arg(timeout_ms)?;
        let deadline = convert::now_ms(py, now_ms)?.saturating_add(timeout);
        self.inner
            .open(&id, expect, deadline, data.unwrap_or_else(|| py.None()))
            .py_err(py)
    }

    /// Opens the exchange `command` (a request: a dict or a `Decoded`)
    /// starts, as `Producer` and `Monitor` do: keyed by its `request_id`,
    /// awaiting each id of its `to` (unknown without one); with
    /// `response_requested: "ack"` a 102 completes a responder; with
    /// `"none"` nothing is awaited and nothing opened (returns False).
    /// Raises `MessageError` without a `request_id`, `ConfigError` if it is
    /// already open.
    #[pyo3(signature = (command, *, timeout_ms = None, now_ms = None, data = None))]
    fn open_command(
        &mut self,
        py: Python<'_>,
        command: &Bound<'_, PyAny>,
        timeout_ms: Option<&Bound<'_, PyAny>>,
        now_ms: Option<&Bound<'_, PyAny>>,
        data: Option<Py<PyAny>>,
    ) -> PyResult<bool> {
        let msg = message_arg(command, "command")?;
        let timeout = timeout_ms_arg(timeout_ms)?;
        let deadline = convert::now_ms(py, now_ms)?.saturating_add(timeout);
        self.inner
            .open_command(&msg, None, deadline, data.unwrap_or_else(|| py.None()))
            .py_err(py)
    }

    /// Feeds a response (a dict or a `Decoded`).
    fn on_response(&mut self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<PyOutcome> {
        let msg = message_arg(message, "message")?;
        let outcome = self.inner.on_response(&msg);
        let kind = outcome.kind();
        Ok(match outcome {
            Outcome::Unsolicited => PyOutcome {
                kind,
                is_final: false,
                expected: false,
                data: py.None(),
                closed: None,
            },
            Outcome::Open {
                data,
                is_final,
                expected,
            } => PyOutcome {
                kind,
                is_final,
                expected,
                data: data.clone_ref(py),
                closed: None,
            },
            Outcome::Complete(closed) => {
                let data = closed.data.clone_ref(py);
                PyOutcome {
                    kind,
                    is_final: true,
                    expected: true,
                    data,
                    closed: Some(Py::new(py, PyClosed::from(closed))?),
                }
            }
        })
    }

    /// Closes the exchange now; returns it, or `None` if it was not open.
    fn close(&mut self, request_id: &Bound<'_, PyAny>) -> PyResult<Option<PyClosed>> {
        Ok(self
            .inner
            .close(&convert::string_arg(request_id, "request_id")?)
            .map(PyClosed::from))
    }

    /// Closes and returns every exchange whose deadline has passed.
    #[pyo3(signature = (now_ms = None))]
    fn expire(
        &mut self,
        py: Python<'_>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<PyClosed>> {
        let now = convert::now_ms(py, now_ms)?;
        Ok(self
            .inner
            .expire(now)
            .into_iter()
            .map(PyClosed::from)
            .collect())
    }

    /// The earliest deadline of an open exchange (ms), or `None`.
    fn next_deadline(&mut self) -> Option<u64> {
        self.inner.next_deadline()
    }

    /// Expected responders that have not sent a final response, or `None` if not open.
    fn missing(&self, request_id: &Bound<'_, PyAny>) -> PyResult<Option<Vec<String>>> {
        Ok(self
            .inner
            .missing(&convert::string_arg(request_id, "request_id")?))
    }

    /// The `data` of an open exchange, or `None`.
    fn data(&mut self, py: Python<'_>, request_id: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let id = convert::string_arg(request_id, "request_id")?;
        Ok(self
            .inner
            .get_mut(&id)
            .map_or_else(|| py.None(), |d| d.clone_ref(py)))
    }

    /// Whether an exchange with this id is open.
    fn is_open(&self, request_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self
            .inner
            .is_open(&convert::string_arg(request_id, "request_id")?))
    }

    fn __contains__(&self, request_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.is_open(request_id)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Responses that matched no open exchange so far.
    #[getter]
    fn unsolicited(&self) -> u64 {
        self.inner.unsolicited()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Correlator")
            .field("open", self.inner.len())?
            .field("unsolicited", self.inner.unsolicited())?
            .finish())
    }
}

/// `timeout_ms`, or a `send`'s default timeout (core's `SendOptions`).
fn timeout_ms_arg(timeout_ms: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    match timeout_ms.filter(|t| !t.is_none()) {
        Some(t) => convert::u64_arg(t, "timeout_ms"),
        None => Ok(u64::try_from(
            oc2mqtt::producer::SendOptions::default()
                .timeout
                .as_millis(),
        )
        .unwrap_or(u64::MAX)),
    }
}
