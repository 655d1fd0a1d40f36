//! Topic helpers: `Topics` (prefix, peer, response topics) and module-level
//! functions using the specification's plain topics.

use pyo3::prelude::*;

use crate::repr::Repr;

use oc2mqtt::client::ClientConfig;
use oc2mqtt::topics::{self, Role, Topics};

use crate::client::{peer_arg, response_topics_arg};
use crate::codec::message_arg;
use crate::convert;
use crate::errors::IntoPyResult;

fn role_arg(obj: &Bound<'_, PyAny>) -> PyResult<Role> {
    convert::string_arg(obj, "role")?
        .parse::<Role>()
        .py_err(obj.py())
}

fn profiles_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(Vec::new()),
        Some(o) => convert::string_list(o, "profiles"),
    }
}

/// The topic scheme: an optional site prefix before `oc2/`, the peers to
/// suit (`peer`; `otupy_compat` is `peer="otupy"`), and where responses go
/// (`response_topics`; default: as the peer has it).
#[pyclass(name = "Topics", module = "oc2mqtt", frozen)]
pub struct PyTopics {
    inner: Topics,
    otupy_compat: bool,
}

#[pymethods]
impl PyTopics {
    #[new]
    #[pyo3(signature = (prefix = None, *, otupy_compat = None, peer = None, response_topics = None))]
    fn new(
        py: Python<'_>,
        prefix: Option<&Bound<'_, PyAny>>,
        otupy_compat: Option<&Bound<'_, PyAny>>,
        peer: Option<&Bound<'_, PyAny>>,
        response_topics: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // The same settings as ClientConfig's, resolved by the core the same way.
        let config = ClientConfig {
            topic_prefix: convert::opt_string_arg(prefix, "prefix")?,
            otupy_compat: convert::bool_arg(otupy_compat, "otupy_compat", false)?,
            peer: peer_arg(py, peer)?.unwrap_or_default(),
            response_topics: response_topics_arg(py, response_topics)?,
            ..ClientConfig::default()
        };
        Ok(Self {
            inner: config.topics().py_err(py)?,
            otupy_compat: config.otupy_compat,
        })
    }

    /// The prefix with its trailing `/`, or `""`.
    #[getter]
    fn prefix(&self) -> &str {
        self.inner.prefix()
    }

    /// Whether `otupy_compat` was given (the same as `peer="otupy"`).
    #[getter]
    fn otupy_compat(&self) -> bool {
        self.otupy_compat
    }

    /// The peers suited: "spec", "otupy", "yuuki" or "oif".
    #[getter]
    fn peer(&self) -> &'static str {
        self.inner.peer().as_str()
    }

    /// Where responses go: "shared", "producer" or "both" (the peer's
    /// choice unless `response_topics` was given).
    #[getter]
    fn responses(&self) -> &'static str {
        self.inner.responses().as_str()
    }

    /// The filters a client in `role` ("producer", "consumer", "monitor") subscribes to.
    #[pyo3(signature = (role, device_id = None, profiles = None))]
    fn subscriptions(
        &self,
        py: Python<'_>,
        role: &Bound<'_, PyAny>,
        device_id: Option<&Bound<'_, PyAny>>,
        profiles: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<String>> {
        let role = role_arg(role)?;
        let id = convert::opt_string_arg(device_id, "device_id")?;
        self.inner
            .subscriptions(role, id.as_deref(), &profiles_arg(profiles)?)
            .py_err(py)
    }

    /// The topics a command is published on: one per `to` entry, else the
    /// actuator's profile topic, else `oc2/cmd/all`.
    fn command_topics(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        self.inner
            .command_topics(&message_arg(message, "message")?)
            .py_err(py)
    }

    /// The topics a response is published on, from its `to` header.
    fn response_topics(&self, message: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        Ok(self
            .inner
            .response_topics(&message_arg(message, "message")?))
    }

    /// The topics a response to `producer_id` is published on.
    #[pyo3(signature = (producer_id = None))]
    fn response_topics_to(&self, producer_id: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
        let id = convert::opt_string_arg(producer_id, "producer_id")?;
        Ok(self.inner.response_topics_to(id.as_deref()))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Topics")
            .field("prefix", self.inner.prefix())?
            .field("peer", self.inner.peer().as_str())?
            .field("response_topics", self.inner.responses().as_str())?
            .finish())
    }
}

/// The filters a client in `role` ("producer", "consumer", "monitor") subscribes to.
#[pyfunction]
#[pyo3(signature = (role, device_id = None, profiles = None))]
pub fn subscriptions(
    py: Python<'_>,
    role: &Bound<'_, PyAny>,
    device_id: Option<&Bound<'_, PyAny>>,
    profiles: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<String>> {
    let role = role_arg(role)?;
    let id = convert::opt_string_arg(device_id, "device_id")?;
    Topics::new()
        .subscriptions(role, id.as_deref(), &profiles_arg(profiles)?)
        .py_err(py)
}

/// The topics a command is published on.
#[pyfunction]
pub fn command_topics(py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    Topics::new()
        .command_topics(&message_arg(message, "message")?)
        .py_err(py)
}

/// The topics a response is published on.
#[pyfunction]
pub fn response_topics(message: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    Ok(Topics::new().response_topics(&message_arg(message, "message")?))
}

/// Whether the MQTT filter (with `+`, `#`, or `$share/<group>/`) matches the topic.
#[pyfunction]
pub fn topic_matches(filter: &Bound<'_, PyAny>, topic: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(topics::filter_matches(
        &convert::string_arg(filter, "filter")?,
        &convert::string_arg(topic, "topic")?,
    ))
}

/// Raises `TopicError` unless `id` can stand as a topic level; `what` names it in the message.
#[pyfunction]
#[pyo3(signature = (id, what = None))]
pub fn validate_id(
    py: Python<'_>,
    id: &Bound<'_, PyAny>,
    what: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let what = convert::opt_string_arg(what, "what")?.unwrap_or_else(|| "id".to_owned());
    topics::validate_id(&what, &convert::string_arg(id, "id")?).py_err(py)
}

/// The dialect of `oc2mqtt.otupy`'s `wire` keyword, or `ConfigError`
/// (`topics::otupy::wire`).
#[pyfunction]
pub fn _otupy_wire(py: Python<'_>, wire: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    let wire = convert::string_arg(wire, "wire")?;
    Ok(topics::otupy::wire(&wire).py_err(py)?.as_str())
}

/// The MQTT client id of `oc2mqtt.otupy`'s transfer given none: core's
/// `oc2mqtt-<role>-<device_id>` (`topics::otupy::client_id`).
#[pyfunction]
pub fn _otupy_client_id(role: &Bound<'_, PyAny>, device_id: &Bound<'_, PyAny>) -> PyResult<String> {
    let id = convert::string_arg(device_id, "device_id")?;
    Ok(topics::otupy::client_id(role_arg(role)?, &id))
}
