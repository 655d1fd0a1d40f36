//! `Deduplicator`: drops QoS 1 redeliveries and copies arriving on several topics.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::repr::Repr;
use pyo3::types::PyDict;

use oc2mqtt::dedup::{self, DedupKey, Deduplicator};

use crate::codec::{PyDecoded, message_arg};
use crate::convert;

/// Remembers recently seen messages for `window_ms` (default 60 000), at most
/// `capacity` of them (default 100 000; the oldest is forgotten first).
#[pyclass(name = "Deduplicator", module = "oc2mqtt")]
pub struct PyDeduplicator {
    inner: Deduplicator,
    window_ms: u64,
    capacity: usize,
}

#[pymethods]
impl PyDeduplicator {
    #[new]
    #[pyo3(signature = (window_ms = None, capacity = None))]
    fn new(
        window_ms: Option<&Bound<'_, PyAny>>,
        capacity: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let window = match window_ms.filter(|w| !w.is_none()) {
            Some(w) => convert::u64_arg(w, "window_ms")?,
            None => dedup::DEFAULT_WINDOW_MS,
        };
        let capacity = match capacity.filter(|c| !c.is_none()) {
            Some(c) => {
                let n = convert::u64_arg(c, "capacity")?;
                if n == 0 {
                    return Err(PyValueError::new_err("capacity: must be at least 1"));
                }
                usize::try_from(n)
                    .map_err(|_| PyValueError::new_err(format!("capacity: {n} is too large")))?
            }
            None => dedup::DEFAULT_CAPACITY,
        };
        Ok(Self {
            inner: Deduplicator::new(window, capacity),
            window_ms: window,
            capacity,
        })
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

    /// Counters: `checked`, `duplicates`, `evicted`, `expired`.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("checked", s.checked)?;
        d.set_item("duplicates", s.duplicates)?;
        d.set_item("evicted", s.evicted)?;
        d.set_item("expired", s.expired)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(Repr::new(py, "Deduplicator")
            .field("window_ms", self.window_ms)?
            .field("capacity", self.capacity)?
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
