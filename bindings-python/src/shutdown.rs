//! Python at exit: the runtime's threads stop taking the GIL before the
//! interpreter finalizes.
//!
//! CPython ends a thread that waits for the GIL while `Py_FinalizeEx` runs
//! (`PyThread_exit_thread`); for a tokio runtime thread that is an abort of
//! the whole process (issue 19: an asyncio script exited with SIGABRT in 1
//! run of 5-25 with both cores busy). `atexit` handlers run first, with the
//! interpreter intact: ours closes the gate and waits, without the GIL, until
//! no runtime thread is inside it. Every GIL acquisition from a thread Python
//! did not start goes through [`attach`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

static CLOSED: AtomicBool = AtomicBool::new(false);
static INSIDE: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` with the GIL, unless the interpreter is exiting: then `None`.
pub(crate) fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    // Enter first, then look: the closing side sets CLOSED, then waits for
    // INSIDE to drain, so one of the two always sees the other.
    INSIDE.fetch_add(1, Ordering::SeqCst);
    let out = if CLOSED.load(Ordering::SeqCst) {
        None
    } else {
        Python::try_attach(f)
    };
    INSIDE.fetch_sub(1, Ordering::SeqCst);
    out
}

/// A Python thread state this thread keeps between GIL holds, made by
/// [`keep_thread_state`] and deleted when the thread ends.
struct KeptState {
    gstate: pyo3::ffi::PyGILState_STATE,
    tstate: *mut pyo3::ffi::PyThreadState,
}

impl Drop for KeptState {
    fn drop(&mut self) {
        // The thread ends: delete its state, unless Python is exiting (it
        // deletes every thread state itself then, and this thread must not
        // wait for a GIL it would never get).
        INSIDE.fetch_add(1, Ordering::SeqCst);
        if !CLOSED.load(Ordering::SeqCst) {
            // SAFETY: the state was made on this thread by `PyGILState_Ensure`
            // and detached by `PyEval_SaveThread`; this thread holds no GIL
            // (pyo3's guards are gone when thread-locals are destroyed).
            unsafe {
                pyo3::ffi::PyEval_RestoreThread(self.tstate);
                pyo3::ffi::PyGILState_Release(self.gstate);
            }
        }
        INSIDE.fetch_sub(1, Ordering::SeqCst);
    }
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<KeptState>> = const { std::cell::RefCell::new(None) };
}

/// Gives this thread (one Python did not start) a Python thread state kept
/// until the thread ends, detached meanwhile: every later GIL hold on it
/// (`Python::attach`, which is `PyGILState_Ensure`) takes the GIL with that
/// state instead of making a thread state, mapping a frame stack, and
/// deleting both when it lets go. For the threads that take the GIL over
/// and over (`serve()`'s handler threads). Call it without the GIL.
pub(crate) fn keep_thread_state() {
    let _ = KEPT.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.is_some() {
            return;
        }
        INSIDE.fetch_add(1, Ordering::SeqCst);
        // SAFETY: always safe to call.
        if !CLOSED.load(Ordering::SeqCst) && unsafe { pyo3::ffi::Py_IsInitialized() } != 0 {
            // SAFETY: Python is initialized and not exiting (checked just
            // above, through the gate), and this thread holds no GIL.
            *kept = Some(unsafe {
                let gstate = pyo3::ffi::PyGILState_Ensure();
                let tstate = pyo3::ffi::PyEval_SaveThread();
                KeptState { gstate, tstate }
            });
        }
        INSIDE.fetch_sub(1, Ordering::SeqCst);
    });
}

/// The Python exception for a core error, made on a runtime thread.
pub(crate) fn error(e: &oc2mqtt::Error) -> PyErr {
    attach(|py| crate::errors::to_py(py, e)).unwrap_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err("the Python interpreter is shutting down")
    })
}

/// The `atexit` handler: closes the gate and lets the threads inside finish
/// (at most 2 s), with the GIL released so that they can.
#[pyfunction]
pub(crate) fn _close_gil_gate(py: Python<'_>) {
    CLOSED.store(true, Ordering::SeqCst);
    py.detach(|| {
        let until = Instant::now() + Duration::from_secs(2);
        while INSIDE.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Registers [`_close_gil_gate`] with `atexit`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let gate = wrap_pyfunction!(_close_gil_gate, m)?;
    m.py().import("atexit")?.call_method1("register", (gate,))?;
    Ok(())
}
