//! `ConsumerRules`, `Decision`, `Publish` and `Request`: the core's sans-IO
//! consumer rules (`oc2mqtt::rules`) for scripts that keep their own MQTT
//! client. Conversions only: every decision is the core's.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList};

use oc2mqtt::rules::{ConsumerRules, Decision, Publish, Request, Skip};

use crate::codec::{
    command_to_dict, message_to_dict, properties_arg, properties_to_dict, response_arg,
};
use crate::convert;
use crate::errors::IntoPyResult;
use crate::repr::Repr;

/// A response to publish: the same `payload` and `properties` on each of `topics`.
#[pyclass(name = "Publish", module = "oc2mqtt", frozen)]
pub struct PyPublish {
    inner: Publish,
    message: PyOnceLock<Py<PyDict>>,
}

impl From<Publish> for PyPublish {
    fn from(inner: Publish) -> Self {
        Self {
            inner,
            message: PyOnceLock::new(),
        }
    }
}

#[pymethods]
impl PyPublish {
    /// The topics to publish on, in order.
    #[getter]
    fn topics(&self) -> Vec<String> {
        self.inner.topics.clone()
    }
    /// The encoded payload.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.payload)
    }
    /// The MQTT v5 properties, as `encode()` returns them (ignored over 3.1.1).
    #[getter]
    fn properties<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        properties_to_dict(py, &self.inner.properties)
    }
    /// The response message the payload encodes (canonical dict).
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
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Publish")
            .field("topics", &self.inner.topics)?
            .field("status", self.status())?
            .finish())
    }
}

/// A command for the application to run, with what its answer needs; give
/// it back to `ConsumerRules.answer()`.
#[pyclass(name = "Request", module = "oc2mqtt", frozen)]
pub struct PyRequest {
    inner: Request,
    message: PyOnceLock<Py<PyDict>>,
}

#[pymethods]
impl PyRequest {
    /// The whole request message (canonical dict; `command_id` defaulted to `request_id`).
    #[getter]
    fn message(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.message
            .get_or_try_init(py, || {
                message_to_dict(py, &self.inner.message).map(Bound::unbind)
            })
            .map(|d| d.clone_ref(py))
    }
    /// The command object: `{"action": ..., "target": {...}, ...}`.
    #[getter]
    fn command<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        command_to_dict(py, &self.inner.message)
    }
    #[getter]
    fn request_id(&self) -> Option<&str> {
        self.inner.message.headers.request_id.as_deref()
    }
    /// Who sent it (the `from` header).
    #[getter]
    fn sender(&self) -> Option<&str> {
        self.inner.message.headers.from.as_deref()
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
    /// `none`, `ack`, `status` or `complete`.
    #[getter]
    fn response_requested(&self) -> &'static str {
        self.inner.response_requested().as_str()
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let c = self.inner.command();
        Ok(Repr::new(py, "Request")
            .field("action", c.action.as_str())?
            .field("target", c.target.name.as_str())?
            .field("request_id", self.request_id())?
            .field("sender", self.sender())?
            .finish())
    }
}

/// What to do with one received message: publish `publish` now, in order;
/// run `execute` if it is not None; else `skipped` says why nothing runs.
#[pyclass(name = "Decision", module = "oc2mqtt", frozen)]
pub struct PyDecision {
    publish: Py<PyList>,
    execute: Option<Py<PyRequest>>,
    skipped: Option<&'static str>,
    reason: Option<String>,
}

impl PyDecision {
    fn new(py: Python<'_>, d: Decision) -> PyResult<Self> {
        let publish = PyList::empty(py);
        for p in d.publish {
            publish.append(Py::new(py, PyPublish::from(p))?)?;
        }
        let execute = d
            .execute
            .map(|inner| {
                Py::new(
                    py,
                    PyRequest {
                        inner,
                        message: PyOnceLock::new(),
                    },
                )
            })
            .transpose()?;
        // Why nothing runs: the core's stable name for it, and its detail.
        let skipped = d.skipped.as_ref().map(Skip::as_str);
        let reason = d.skipped.as_ref().and_then(Skip::reason);
        Ok(Self {
            publish: publish.unbind(),
            execute,
            skipped,
            reason,
        })
    }
}

#[pymethods]
impl PyDecision {
    /// The responses to publish now, in order (a `102`, a `400`, `query features`...).
    #[getter]
    fn publish(&self, py: Python<'_>) -> Py<PyList> {
        self.publish.clone_ref(py)
    }
    /// The command for the application, or None.
    #[getter]
    fn execute(&self, py: Python<'_>) -> Option<Py<PyRequest>> {
        self.execute.as_ref().map(|r| r.clone_ref(py))
    }
    /// Why nothing runs (one of core's `Skip` names, the stub's `_Skip`);
    /// None when it runs.
    #[getter]
    fn skipped(&self) -> Option<&'static str> {
        self.skipped
    }
    /// The detail: why it is stale, why it does not decode, the status it
    /// was answered with; else None.
    #[getter]
    fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let statuses: Vec<Option<u16>> = self
            .publish
            .bind(py)
            .iter()
            .map(|p| p.cast::<PyPublish>().ok().and_then(|p| p.get().status()))
            .collect();
        Ok(Repr::new(py, "Decision")
            .field("publish", statuses)?
            .field("execute", self.execute.is_some())?
            .field("skipped", self.skipped)?
            .field("reason", self.reason.as_deref())?
            .finish())
    }
}

/// A consumer's OpenC2 rules without the network, for scripts that keep
/// their own MQTT client: give it each message received on a command topic
/// with the time, publish what it says, run what it hands over, and give
/// the application's answer back to `answer()`.
///
/// It reads no clock: `now_ms` is the wall clock in milliseconds since the
/// epoch (for `created`), `monotonic_ms` any monotonic clock in milliseconds
/// (for the duplicate windows). Keyword arguments (the `Consumer`'s and the
/// topic scheme's `peer` and `response_topics`), with their defaults:
// @generated doc ConsumerRules: ConsumerRules but device_id; TopicScheme (from core's settings tables: `make generate`)
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
/// - `peer` (default 'spec'): the peers to suit: their topics, dialect and `msgType` spelling;
///   every peer's forms are decoded whatever this says. `spec`: MQTT-T as written; `otupy`:
///   otupy 1.1, its flat dialect and `oc2/rsp/device/<id>`; `yuuki`: yuuki consumers, commands
///   on `oc2/cmd` too; `oif`: the OIF orchestrator, responses on `oc2/rsp/<its id>` too,
///   `msgType` spelled `request`/`response`
/// - `response_topics` (default None): where a consumer's responses go: `shared` (`oc2/rsp`),
///   `producer` (`oc2/rsp/<producer>`) or `both`; when absent, as the peer has it (`oc2/rsp`
///   only for the specification's peers)
// @end generated
///
/// >>> import json, oc2mqtt
/// >>> rules = oc2mqtt.ConsumerRules("fw-1")
/// >>> cmd = {"headers": {"request_id": "r1", "from": "p1"},
/// ...        "body": {"openc2": {"request": {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}}}}
/// >>> d = rules.on_command("oc2/cmd/device/fw-1", json.dumps(cmd), now_ms=0, monotonic_ms=0)
/// >>> d.execute.command["action"], d.skipped
/// ('deny', None)
/// >>> rules.answer(d.execute, {"status": 200}).topics
/// ['oc2/rsp']
#[pyclass(name = "ConsumerRules", module = "oc2mqtt")]
pub struct PyConsumerRules {
    inner: ConsumerRules,
}

#[pymethods]
impl PyConsumerRules {
    #[new]
    // @generated fn new(device_id) -> PyResult<Self>: ConsumerRules as options; TopicScheme as scheme
    #[pyo3(signature = (
        device_id, *, profiles = None, pairs = None, args = None, rate_limit = None, group = None,
        handle_features = None, freshness_secs = None, peer = None, response_topics = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        device_id: &Bound<'_, PyAny>,
        profiles: Option<&Bound<'_, PyAny>>,
        pairs: Option<&Bound<'_, PyAny>>,
        args: Option<&Bound<'_, PyAny>>,
        rate_limit: Option<&Bound<'_, PyAny>>,
        group: Option<&Bound<'_, PyAny>>,
        handle_features: Option<&Bound<'_, PyAny>>,
        freshness_secs: Option<&Bound<'_, PyAny>>,
        peer: Option<&Bound<'_, PyAny>>,
        response_topics: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options: oc2mqtt::rules::ConsumerOptions = crate::settings::keywords! {
            py; device_id, profiles, pairs, args, rate_limit, group, handle_features, freshness_secs
        }?;
        let scheme: oc2mqtt::topics::TopicScheme = crate::settings::keywords! {
            py; peer, response_topics
        }?;
        // @end generated
        let inner = ConsumerRules::new(options, scheme).py_err(py)?;
        Ok(Self { inner })
    }

    /// This consumer's device id.
    #[getter]
    fn device_id(&self) -> &str {
        &self.inner.options().device_id
    }

    /// Decides what to do with a message received on `topic`: `payload`
    /// (bytes or str), its MQTT v5 `properties` (a dict as `decode()` takes,
    /// a paho-mqtt `Properties`, or None over MQTT 3.1.1), whether the
    /// broker delivered it `retained`, and the clocks.
    #[pyo3(signature = (topic, payload, properties = None, retained = false, *, now_ms, monotonic_ms))]
    #[allow(clippy::too_many_arguments)]
    fn on_command(
        &mut self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        properties: Option<&Bound<'_, PyAny>>,
        retained: bool,
        now_ms: i64,
        monotonic_ms: u64,
    ) -> PyResult<PyDecision> {
        let topic = convert::string_arg(topic, "topic")?;
        let props = properties_arg(properties)?;
        let decision = convert::with_payload(payload, "payload", |bytes| {
            let received = oc2mqtt::rules::Received {
                topic: &topic,
                payload: bytes,
                properties: props.as_ref(),
                retained,
            };
            self.inner.on_command(&received, now_ms, monotonic_ms)
        })?;
        PyDecision::new(py, decision)
    }

    /// The application's answer to `request` (a response dict, `{"status":
    /// 200, ...}`), addressed and encoded as the command came in; None when
    /// `response_requested` says not to send it (`none`, or `ack`, whose
    /// `102` was the answer).
    fn answer(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyRequest>,
        response: &Bound<'_, PyAny>,
    ) -> PyResult<Option<PyPublish>> {
        let rsp = response_arg(response, "response")?;
        let out = self.inner.answer(&request.get().inner, rsp).py_err(py)?;
        Ok(out.map(PyPublish::from))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "ConsumerRules")
            .field("device_id", self.device_id())?
            .finish())
    }
}

/// Adds the classes of this module to `oc2mqtt._native`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyConsumerRules>()?;
    m.add_class::<PyDecision>()?;
    m.add_class::<PyPublish>()?;
    m.add_class::<PyRequest>()?;
    Ok(())
}
