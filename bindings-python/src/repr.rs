//! Reprs as Python writes them: `Reply(sender='fw-1', status=200)`, values
//! shown by Python's own `repr()` (`None`, `True`, `'x'`, `[...]`), never
//! Rust's `Debug` output.

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;

/// `Name(a, key=value, ...)`, built field by field.
pub struct Repr<'py> {
    py: Python<'py>,
    name: &'static str,
    parts: Vec<String>,
}

impl<'py> Repr<'py> {
    pub fn new(py: Python<'py>, name: &'static str) -> Self {
        Self {
            py,
            name,
            parts: Vec::new(),
        }
    }

    /// A positional value, as Python's `repr()` shows it.
    pub fn arg(mut self, value: impl IntoPyObject<'py>) -> PyResult<Self> {
        let text = value.into_bound_py_any(self.py)?.repr()?.to_string();
        self.parts.push(text);
        Ok(self)
    }

    /// `key=value`, the value as Python's `repr()` shows it.
    pub fn field(mut self, key: &str, value: impl IntoPyObject<'py>) -> PyResult<Self> {
        let text = value.into_bound_py_any(self.py)?.repr()?;
        self.parts.push(format!("{key}={text}"));
        Ok(self)
    }

    /// `key=text`, the text as given (`password=<hidden>`).
    pub fn raw(mut self, key: &str, text: &str) -> Self {
        self.parts.push(format!("{key}={text}"));
        self
    }

    pub fn finish(self) -> String {
        format!("{}({})", self.name, self.parts.join(", "))
    }
}
