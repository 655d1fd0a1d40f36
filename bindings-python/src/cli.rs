//! The command line from the wheel: `python -m oc2mqtt` and the `oc2mqtt`
//! console script run the Rust command line itself (the `oc2mqtt_cli`
//! crate, linked into this module), not a Python copy of it.

use std::ffi::OsString;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Runs the command line on `args` (the program name first) with the GIL
/// released, and returns its exit status. For a process's entry point
/// (`oc2mqtt.__main__`): the command line sets up its own logging and its
/// own SIGINT and SIGTERM handling, which the caller leaves to it.
#[pyfunction]
pub fn _cli(py: Python<'_>, args: Vec<OsString>) -> PyResult<u8> {
    if crate::logging::installed() {
        return Err(PyRuntimeError::new_err(
            "the oc2mqtt command line runs in a process of its own (python -m oc2mqtt), \
             not in one that already made a Producer, Consumer or Monitor",
        ));
    }
    // A panic was reported by the panic hook; 101 is what a Rust binary exits with then.
    Ok(py.detach(move || std::panic::catch_unwind(move || oc2mqtt_cli::run(args)).unwrap_or(101)))
}
