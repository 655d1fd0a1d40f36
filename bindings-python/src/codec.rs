//! `decode`, `encode`, the message builders, and `Decoded`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;

use crate::repr::Repr;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use oc2mqtt::codec::{self, Decoded, Dialect, Encoding, PublishProperties};
use oc2mqtt::message::{Command, Message, Response};

use crate::convert::{self, py_to_value};
use crate::errors::IntoPyResult;

/// A message decoded from a payload, and how it arrived.
#[pyclass(name = "Decoded", module = "oc2mqtt", frozen)]
pub struct PyDecoded {
    pub(crate) inner: Decoded,
    message: Py<PyDict>,
    /// The payload object it was decoded from (for duplicate keys).
    pub(crate) payload: Option<Py<PyAny>>,
}

impl PyDecoded {
    pub(crate) fn new(
        py: Python<'_>,
        inner: Decoded,
        payload: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let message = message_to_dict(py, &inner.message)?.unbind();
        Ok(Self {
            inner,
            message,
            payload,
        })
    }
}

#[pymethods]
impl PyDecoded {
    /// The message in the specification's shape: `{"headers": {...}, "body": {"openc2": {...}}}`.
    #[getter]
    fn message(&self, py: Python<'_>) -> Py<PyDict> {
        self.message.clone_ref(py)
    }

    /// `"json"` or `"cbor"`.
    #[getter]
    fn encoding(&self) -> &'static str {
        self.inner.encoding.as_str()
    }

    /// `"spec"`, `"otupy"` or `"bare"`: the shape on the wire (reply in the same).
    #[getter]
    fn dialect(&self) -> &'static str {
        self.inner.dialect.as_str()
    }

    /// `"request"`, `"response"` or `"notification"`.
    #[getter]
    fn msg_type(&self) -> &'static str {
        self.inner.message.msg_type().as_key()
    }

    /// The `request_id` header, if any.
    #[getter]
    fn request_id(&self) -> Option<&str> {
        self.inner.message.headers.request_id.as_deref()
    }

    /// The `from` header, if any.
    #[getter]
    fn sender(&self) -> Option<&str> {
        self.inner.message.headers.from.as_deref()
    }

    /// The `status` of a response, else `None`.
    #[getter]
    fn status(&self) -> Option<u16> {
        self.inner.message.response().map(|r| r.status)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Decoded")
            .field("msg_type", self.msg_type())?
            .field("encoding", self.encoding())?
            .field("dialect", self.dialect())?
            .field("request_id", self.request_id())?
            .field("sender", self.sender())?
            .finish())
    }
}

/// A message as the canonical dict.
pub fn message_to_dict<'py>(py: Python<'py>, m: &Message) -> PyResult<Bound<'py, PyDict>> {
    Ok(crate::pyser::to_py(py, m)?.cast_into::<PyDict>()?)
}

/// A message argument: a `Decoded` or a dict in the specification's shape.
pub fn message_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Message> {
    if let Ok(d) = obj.cast::<PyDecoded>() {
        return Ok(d.get().inner.message.clone());
    }
    if obj.cast::<PyDict>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a dict ({{\"headers\": ..., \"body\": {{\"openc2\": ...}}}}) or a Decoded, found {}",
            obj.get_type().name()?
        )));
    }
    let value = py_to_value(obj, what)?;
    Message::from_json_value(value).py_err(obj.py())
}

pub fn encoding_arg(obj: &Bound<'_, PyAny>) -> PyResult<Encoding> {
    convert::string_arg(obj, "encoding")?
        .parse::<Encoding>()
        .py_err(obj.py())
}

pub fn dialect_arg(obj: &Bound<'_, PyAny>) -> PyResult<Dialect> {
    convert::string_arg(obj, "dialect")?
        .parse::<Dialect>()
        .py_err(obj.py())
}

const PROPERTY_NAMES: [&str; 3] = [
    "payload_format_indicator",
    "content_type",
    "user_properties",
];

fn user_properties(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<(String, String)>> {
    if obj.is_none() {
        return Ok(Vec::new());
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a list of (name, value) pairs, found {}",
            obj.get_type().name()?
        )));
    };
    // Error paths are formatted only on error: this runs for every decode.
    let text = |o: &Bound<'_, PyAny>, i: usize, j: usize| -> PyResult<String> {
        match o.cast::<PyString>() {
            Ok(s) => Ok(s.to_cow()?.into_owned()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "{what}[{i}][{j}]: expected str, found {}",
                o.get_type().name()?
            ))),
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, pair)| {
            let parts: Vec<Bound<'_, PyAny>> = if let Ok(t) = pair.cast::<PyTuple>() {
                t.iter().collect()
            } else if let Ok(l) = pair.cast::<PyList>() {
                l.iter().collect()
            } else {
                return Err(PyTypeError::new_err(format!(
                    "{what}[{i}]: expected a (name, value) pair, found {}",
                    pair.get_type().name()?
                )));
            };
            match parts.as_slice() {
                [k, v] => Ok((text(k, i, 0)?, text(v, i, 1)?)),
                _ => Err(PyValueError::new_err(format!(
                    "{what}[{i}]: expected a (name, value) pair, found {} items",
                    parts.len()
                ))),
            }
        })
        .collect()
}

fn pfi_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<u8>> {
    if obj.is_none() {
        return Ok(None);
    }
    // Any byte; which values MQTT gives it is core's to say (`decode`).
    let v = convert::u64_arg(obj, what)?;
    u8::try_from(v)
        .map(Some)
        .map_err(|_| PyValueError::new_err(format!("{what}: {v} does not fit in a byte")))
}

/// MQTT properties from a dict (`payload_format_indicator`, `content_type`,
/// `user_properties`) or from a paho-mqtt `Properties` object.
pub fn properties_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<PublishProperties>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let mut p = PublishProperties::default();
    if let Ok(d) = obj.cast::<PyDict>() {
        // Looked up by interned keys: no key is converted to a Rust string.
        let py = obj.py();
        let mut known = 0;
        if let Some(v) = d.get_item(intern!(py, "payload_format_indicator"))? {
            p.payload_format_indicator = pfi_arg(&v, "properties.payload_format_indicator")?;
            known += 1;
        }
        if let Some(v) = d.get_item(intern!(py, "content_type"))? {
            p.content_type = convert::opt_string_arg(Some(&v), "properties.content_type")?;
            known += 1;
        }
        if let Some(v) = d.get_item(intern!(py, "user_properties"))? {
            p.user_properties = user_properties(&v, "properties.user_properties")?;
            known += 1;
        }
        if known < d.len() {
            for k in d.keys() {
                let key = convert::string_arg(&k, "properties key")?;
                if !PROPERTY_NAMES.contains(&key.as_str()) {
                    return Err(PyValueError::new_err(format!(
                        "properties: unknown key '{key}'; expected {}",
                        PROPERTY_NAMES.join(", ")
                    )));
                }
            }
        }
        return Ok(Some(p));
    }
    // paho-mqtt's Properties: attributes exist only when the property was present.
    if obj.get_type().name()? == "Properties" {
        if let Ok(v) = obj.getattr("PayloadFormatIndicator") {
            p.payload_format_indicator = pfi_arg(&v, "properties.PayloadFormatIndicator")?;
        }
        if let Ok(v) = obj.getattr("ContentType") {
            p.content_type = convert::opt_string_arg(Some(&v), "properties.ContentType")?;
        }
        if let Ok(v) = obj.getattr("UserProperty") {
            p.user_properties = user_properties(&v, "properties.UserProperty")?;
        }
        return Ok(Some(p));
    }
    Err(PyTypeError::new_err(format!(
        "properties: expected a dict ({}), a paho-mqtt Properties or None, found {}",
        PROPERTY_NAMES.join(", "),
        obj.get_type().name()?
    )))
}

/// Properties as the dict `encode` returns.
pub fn properties_to_dict<'py>(
    py: Python<'py>,
    p: &PublishProperties,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("payload_format_indicator", p.payload_format_indicator)?;
    d.set_item("content_type", p.content_type.as_deref())?;
    let pairs = PyList::empty(py);
    for (k, v) in &p.user_properties {
        pairs.append(PyTuple::new(
            py,
            [PyString::new(py, k), PyString::new(py, v)],
        )?)?;
    }
    d.set_item("user_properties", pairs)?;
    Ok(d)
}

/// Decodes an OpenC2 payload (JSON or CBOR, in any dialect).
#[pyfunction]
#[pyo3(signature = (payload, properties = None, *, max_payload = None))]
pub fn decode(
    py: Python<'_>,
    payload: &Bound<'_, PyAny>,
    properties: Option<&Bound<'_, PyAny>>,
    max_payload: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyDecoded> {
    let props = properties_arg(properties)?;
    let limit = match max_payload.filter(|m| !m.is_none()) {
        None => codec::DEFAULT_MAX_PAYLOAD,
        Some(m) => usize::try_from(convert::u64_arg(m, "max_payload")?).unwrap_or(usize::MAX),
    };
    let decoded = convert::with_payload(payload, "payload", |bytes| {
        codec::decode_with_limit(bytes, props.as_ref(), limit)
    })?
    .py_err(py)?;
    PyDecoded::new(py, decoded, Some(payload.clone().unbind()))
}

/// Validates and encodes a message; returns `(payload, properties)`.
#[pyfunction]
#[pyo3(signature = (message, encoding = None, dialect = None))]
pub fn encode<'py>(
    py: Python<'py>,
    message: &Bound<'py, PyAny>,
    encoding: Option<&Bound<'py, PyAny>>,
    dialect: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyDict>)> {
    let msg = message_arg(message, "message")?;
    let encoding = encoding
        .filter(|e| !e.is_none())
        .map(encoding_arg)
        .transpose()?
        .unwrap_or_default();
    let dialect = dialect
        .filter(|d| !d.is_none())
        .map(dialect_arg)
        .transpose()?
        .unwrap_or_default();
    let (bytes, props) = codec::encode(&msg, encoding, dialect).py_err(py)?;
    Ok((PyBytes::new(py, &bytes), properties_to_dict(py, &props)?))
}

/// A command argument: the command object as a dict (`{"action": ..., "target": {...}}`).
pub fn command_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Command> {
    if obj.cast::<PyDict>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a dict ({{\"action\": ..., \"target\": {{...}}}}), found {}",
            obj.get_type().name()?
        )));
    }
    Command::from_json_value(py_to_value(obj, what)?).py_err(obj.py())
}

/// A response argument: the response object as a dict (`{"status": 200, ...}`).
pub fn response_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Response> {
    if obj.cast::<PyDict>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a dict ({{\"status\": ..., \"status_text\": ..., \"results\": {{...}}}}), found {}",
            obj.get_type().name()?
        )));
    }
    response_value(obj.py(), py_to_value(obj, what)?)
}

/// A response from its JSON object (`{"status": 200, ...}`), validated.
pub fn response_value(py: Python<'_>, value: serde_json::Value) -> PyResult<Response> {
    Response::from_json_value(value).py_err(py)
}

/// The command object of a request message as a dict.
pub fn command_to_dict<'py>(py: Python<'py>, m: &Message) -> PyResult<Bound<'py, PyDict>> {
    let cmd = m
        .command()
        .ok_or_else(|| PyValueError::new_err("internal: not a request"))?;
    Ok(crate::pyser::to_py(py, cmd)?.cast_into::<PyDict>()?)
}

/// A request message for `command` with a fresh `request_id` and `created`;
/// `sender` sets `from`, `to` (one id or a list) sets `to` (default: neither).
#[pyfunction]
#[pyo3(signature = (command, *, sender = None, to = None))]
pub fn request<'py>(
    py: Python<'py>,
    command: &Bound<'py, PyAny>,
    sender: Option<&Bound<'py, PyAny>>,
    to: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cmd = command_arg(command, "command")?;
    let mut msg = Message::request(cmd);
    if let Some(sender) = convert::opt_string_arg(sender, "sender")? {
        msg = msg.from(sender);
    }
    if let Some(to) = to.filter(|t| !t.is_none()) {
        msg = msg.to(convert::one_or_many(to, "to")?);
    }
    message_to_dict(py, &msg)
}

/// A response to `command_message`: same `request_id`, addressed to its sender.
#[pyfunction]
#[pyo3(signature = (command_message, status, *, status_text = None, results = None, sender = None))]
pub fn response_to<'py>(
    py: Python<'py>,
    command_message: &Bound<'py, PyAny>,
    status: &Bound<'py, PyAny>,
    status_text: Option<&Bound<'py, PyAny>>,
    results: Option<&Bound<'py, PyAny>>,
    sender: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cmd = message_arg(command_message, "command_message")?;
    let status = convert::u64_arg(status, "status")?;
    let status = u16::try_from(status)
        .map_err(|_| PyValueError::new_err(format!("status: {status} is not a status code")))?;
    let mut rsp = Response::new(status);
    if let Some(text) = convert::opt_string_arg(status_text, "status_text")? {
        rsp = rsp.with_text(text);
    }
    if let Some(results) = results.filter(|r| !r.is_none()) {
        let Ok(d) = results.cast::<PyDict>() else {
            return Err(PyTypeError::new_err(format!(
                "results: expected a dict, found {}",
                results.get_type().name()?
            )));
        };
        for (k, v) in d.iter() {
            let key = convert::string_arg(&k, "results key")?;
            let value = py_to_value(&v, &format!("results.{key}"))?;
            rsp = rsp.with_result(key, value);
        }
    }
    let mut msg = Message::response_to(&cmd, rsp);
    if let Some(sender) = convert::opt_string_arg(sender, "sender")? {
        msg = msg.from(sender);
    }
    message_to_dict(py, &msg)
}
