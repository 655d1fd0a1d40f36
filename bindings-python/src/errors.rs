//! The exception classes and the one mapping from `oc2mqtt::Error` to them.
//!
//! Python wants `MessageError` to be both an `oc2mqtt.Error` and a
//! `ValueError`, which `create_exception!` (one base) cannot express, so the
//! classes are made once with `type(name, bases, namespace)` and cached.

use pyo3::exceptions::{
    PyConnectionError, PyException, PyOSError, PyPermissionError, PyTimeoutError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use oc2mqtt::error::Salvage;
use oc2mqtt::{Error, MessageError};

/// Every exception class of the package, base first.
pub struct Classes {
    pub error: Py<PyType>,
    pub message: Py<PyType>,
    pub topic: Py<PyType>,
    pub config: Py<PyType>,
    pub connect: Py<PyType>,
    pub auth: Py<PyType>,
    pub tls: Py<PyType>,
    pub timeout: Py<PyType>,
    pub publish: Py<PyType>,
    pub closed: Py<PyType>,
    pub handler: Py<PyType>,
    pub io: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn make_class(
    py: Python<'_>,
    name: &str,
    bases: Vec<Bound<'_, PyType>>,
    doc: &str,
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "oc2mqtt")?;
    namespace.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let class = py.get_type::<PyType>().call1((name, bases, namespace))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

fn build(py: Python<'_>) -> PyResult<Classes> {
    let error = make_class(
        py,
        "Error",
        vec![py.get_type::<PyException>()],
        "Base class of every oc2mqtt error.",
    )?;
    let base = || error.bind(py).clone();
    let sub = |name: &str, natural: Option<Bound<'_, PyType>>, doc: &str| {
        let mut bases = vec![base()];
        bases.extend(natural);
        make_class(py, name, bases, doc)
    };
    Ok(Classes {
        message: sub(
            "MessageError",
            Some(py.get_type::<PyValueError>()),
            "A message is malformed or invalid. Attributes: kind (one of the decode error \
             kinds), path (dotted field path, empty for the whole payload), reason, salvage \
             (what could still be read, a dict of the stub's `_Salvage` keys).",
        )?,
        topic: sub(
            "TopicError",
            Some(py.get_type::<PyValueError>()),
            "An identifier or topic cannot be used as an MQTT topic (level).",
        )?,
        config: sub(
            "ConfigError",
            Some(py.get_type::<PyValueError>()),
            "The configuration is inconsistent or out of range.",
        )?,
        connect: sub(
            "ConnectError",
            Some(py.get_type::<PyConnectionError>()),
            "The broker could not be reached or the connection was lost.",
        )?,
        auth: sub(
            "AuthError",
            Some(py.get_type::<PyPermissionError>()),
            "The broker refused the credentials or the authorisation (bad password, ACL).",
        )?,
        tls: sub(
            "TlsError",
            Some(py.get_type::<PyConnectionError>()),
            "The TLS handshake failed (certificate, protocol version).",
        )?,
        timeout: sub(
            "TimeoutExpired",
            Some(py.get_type::<PyTimeoutError>()),
            "A wait ran out of time.",
        )?,
        publish: sub(
            "PublishError",
            None,
            "The broker did not accept a publish or subscribe.",
        )?,
        closed: sub(
            "ClosedError",
            Some(py.get_type::<PyConnectionError>()),
            "The object was closed or its connection shut down.",
        )?,
        handler: sub("HandlerError", None, "A user-supplied handler failed.")?,
        io: sub(
            "IoError",
            Some(py.get_type::<PyOSError>()),
            "A local I/O operation failed (reading a file named in the configuration).",
        )?,
        error,
    })
}

/// The exception classes, made on first use.
pub fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || build(py))
}

fn raise(py: Python<'_>, class: &Py<PyType>, text: String) -> PyErr {
    match class.bind(py).call1((text,)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// The `salvage` attribute of a `MessageError`: the core's fields, as a dict.
pub fn salvage_dict<'py>(py: Python<'py>, s: &Salvage) -> PyResult<Bound<'py, PyAny>> {
    crate::pyser::to_py(py, s)
}

fn message_error(py: Python<'_>, e: &MessageError) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let instance = classes(py)?.message.bind(py).call1((e.to_string(),))?;
        instance.setattr("kind", e.kind.as_str())?;
        instance.setattr("path", e.path.as_str())?;
        instance.setattr("reason", e.reason.as_str())?;
        instance.setattr("salvage", salvage_dict(py, &e.salvage)?)?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|err| err)
}

/// The Python exception for a core error: one arm per kind.
pub fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let c = match classes(py) {
        Ok(c) => c,
        Err(err) => return err,
    };
    let class = match e {
        Error::Message(m) => return message_error(py, m),
        Error::Topic(_) => &c.topic,
        Error::Config(_) => &c.config,
        Error::Connect(_) => &c.connect,
        Error::Auth(_) => &c.auth,
        Error::Tls(_) => &c.tls,
        Error::Timeout(_) => &c.timeout,
        Error::Publish(_) => &c.publish,
        Error::Closed(_) => &c.closed,
        Error::Handler(_) => &c.handler,
        Error::Io(_) => &c.io,
    };
    raise(py, class, e.to_string())
}

/// Extension for `Result<T, oc2mqtt::Error>` and `Result<T, MessageError>`.
pub trait IntoPyResult<T> {
    /// Maps the error to its Python exception.
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}

impl<T> IntoPyResult<T> for Result<T, MessageError> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| message_error(py, &e))
    }
}

/// Adds every class to the module under its Python name.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let c = classes(m.py())?;
    for class in [
        &c.error, &c.message, &c.topic, &c.config, &c.connect, &c.auth, &c.tls, &c.timeout,
        &c.publish, &c.closed, &c.handler, &c.io,
    ] {
        let class = class.bind(m.py());
        m.add(class.name()?, class)?;
    }
    Ok(())
}
