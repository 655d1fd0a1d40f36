//! `Deduplicator`: drops QoS 1 redeliveries and copies arriving on several topics.

use pyo3::prelude::*;

use crate::repr::Repr;
use pyo3::types::PyDict;

use oc2mqtt::dedup::{DedupKey, DedupOptions, Deduplicator};

use crate::codec::{PyDecoded, message_arg};
use crate::convert;
use crate::errors::IntoPyResult;
use crate::settings;

/// Remembers recently seen messages for `window_ms` (default 60 000), at most
/// `capacity` of them (default 100 000, at least 1; the oldest is forgotten
/// first).
#[pyclass(name = "Deduplicator", module = "oc2mqtt")]
pub struct PyDeduplicator {
    inner: Deduplicator,
}

#[pymethods]
impl PyDeduplicator {
    #[new]
    #[pyo3(signature = (window_ms = None, capacity = None))]
    fn new(
        py: Python<'_>,
        window_ms: Option<&Bound<'_, PyAny>>,
        capacity: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // Names, defaults and range (a capacity of 0 is refused) are core's table's.
        let options: DedupOptions = settings::keywords! { py; window_ms, capacity }?;
        let inner = Deduplicator::with_options(options).py_err(py)?;
        Ok(Self { inner })
    }

    /// `True` the first time a message is seen within the window (process it),
    /// `False` for a duplicate (drop it). `message` is a `Decoded` (its payload
    /// is used) or a dict with the `payload` it came in.
    #[pyo3(signature = (message, payload = None, *, now_ms = None))]
    fn check(
        &mut self,
        py: Python<'_>,
        message: &Bound<'_, PyAny>,
        payload: Option<&Bound<'_, PyAny>>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let now = convert::now_ms(py, now_ms)?;
        let payload = match payload.filter(|p| !p.is_none()) {
            Some(p) => Some(p.clone()),
            None => message
                .cast::<PyDecoded>()
                .ok()
                .and_then(|d| d.get().payload.as_ref().map(|p| p.bind(py).clone())),
        };
        let key = match message.cast::<PyDecoded>() {
            Ok(d) => key_of(&d.get().inner.message, payload.as_ref())?,
            Err(_) => key_of(&message_arg(message, "message")?, payload.as_ref())?,
        };
        Ok(self.inner.check(key, now))
    }

    /// Keys currently remembered.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Counters, as core keeps them: a dict of the stub's `_DedupStats` keys.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        Ok(crate::pyser::to_py(py, &self.inner.stats())?.cast_into::<PyDict>()?)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let o = self.inner.options();
        Ok(Repr::new(py, "Deduplicator")
            .field("window_ms", o.window_ms)?
            .field("capacity", o.capacity)?
            .field("remembered", self.inner.len())?
            .finish())
    }
}

fn key_of(msg: &oc2mqtt::Message, payload: Option<&Bound<'_, PyAny>>) -> PyResult<DedupKey> {
    match payload {
        Some(p) => convert::with_payload(p, "payload", |bytes| DedupKey::of_message(msg, bytes)),
        None => Ok(DedupKey::of_message(msg, b"")),
    }
}
