//! Rust futures awaited from asyncio, handed back to the event loop in batches.
//!
//! Every `*_async` method returns a future of the running event loop and runs
//! its Rust future on the core's runtime. When Rust futures finish, their
//! results are queued for their loop and one `call_soon_threadsafe` hands the
//! whole queue over; the loop thread then converts each result to Python and
//! resolves its future. So a runtime thread takes the GIL at most once per
//! batch, not once per future, and no thread hop beyond that one wake-up is
//! added: with 64 exchanges in flight most completions ride on a wake-up
//! already scheduled. (pyo3-async-runtimes, used before, took a blocking-pool
//! thread and the GIL for each future: about 115 µs per await, measured.)
//!
//! Cancelling the asyncio future drops the Rust future. A panic in the Rust
//! future becomes a `RuntimeError` on the awaiting side, never a hang.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{IntoPyObjectExt, intern};

/// Converts a finished Rust result into the Python value (on the loop's
/// thread). With `false` the asyncio future was cancelled meanwhile: nobody
/// awaits the value, which goes to the future's `unclaimed` hook instead.
type Finish = Box<dyn FnOnce(Python<'_>, bool) -> Option<PyResult<Py<PyAny>>> + Send>;

/// The completions waiting for one event loop.
struct LoopWaker {
    event_loop: Py<PyAny>,
    /// What `call_soon_threadsafe` runs; it shares the queue.
    drain: Py<Drain>,
    queue: Arc<Mutex<Queue>>,
}

#[derive(Default)]
struct Queue {
    ready: Vec<(Py<PyAny>, Finish)>,
    /// A drain is scheduled on the loop and has not yet taken the queue.
    scheduled: bool,
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// The waker of the last loop seen on this thread (a thread runs one loop
    /// at a time). Weak: the futures in flight keep it, and with it the loop,
    /// alive; once none is left, a finished loop is not kept by this thread.
    static CURRENT: RefCell<Weak<LoopWaker>> = const { RefCell::new(Weak::new()) };
}

impl LoopWaker {
    /// The waker of `event_loop`, made on first use on this thread.
    fn of(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<LoopWaker>> {
        CURRENT.with(|cur| {
            let mut cur = cur.borrow_mut();
            if let Some(w) = cur.upgrade()
                && w.event_loop.bind(py).is(event_loop)
            {
                return Ok(w);
            }
            let queue = Arc::new(Mutex::new(Queue::default()));
            let w = Arc::new(LoopWaker {
                event_loop: event_loop.clone().unbind(),
                drain: Py::new(py, Drain(Arc::clone(&queue)))?,
                queue,
            });
            *cur = Arc::downgrade(&w);
            Ok(w)
        })
    }

    /// Queues a finished future (called on a runtime thread, without the GIL).
    fn complete(&self, fut: Py<PyAny>, finish: Finish) {
        let schedule = {
            let mut q = lock(&self.queue);
            q.ready.push((fut, finish));
            !std::mem::replace(&mut q.scheduled, true)
        };
        if !schedule {
            return;
        }
        let scheduled = crate::shutdown::attach(|py| {
            self.event_loop
                .bind(py)
                .call_method1(
                    intern!(py, "call_soon_threadsafe"),
                    (self.drain.clone_ref(py),),
                )
                .is_ok()
        });
        if scheduled != Some(true) {
            // The loop is closed, or Python is exiting: nobody can await these any more.
            let mut q = lock(&self.queue);
            q.scheduled = false;
            q.ready.clear();
        }
    }
}

/// Resolves every queued future; runs on the loop's thread.
#[pyclass(frozen)]
struct Drain(Arc<Mutex<Queue>>);

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        let ready = {
            let mut q = lock(&self.0);
            q.scheduled = false;
            std::mem::take(&mut q.ready)
        };
        for (fut, finish) in ready {
            let fut = fut.bind(py);
            // Only a broken future object fails here; the others still resolve.
            let wanted = match fut
                .call_method0(intern!(py, "done"))
                .and_then(|d| d.is_truthy())
            {
                Ok(done) => !done,
                Err(e) => {
                    e.write_unraisable(py, Some(fut));
                    continue;
                }
            };
            if let Some(result) = finish(py, wanted)
                && let Err(e) = resolve(fut, result)
            {
                e.write_unraisable(py, Some(fut));
            }
        }
    }
}

fn resolve(fut: &Bound<'_, PyAny>, result: PyResult<Py<PyAny>>) -> PyResult<()> {
    let py = fut.py();
    // Cancelled while the Rust side finished.
    if fut.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match result {
        Ok(v) => fut.call_method1(intern!(py, "set_result"), (v,))?,
        Err(e) => fut.call_method1(intern!(py, "set_exception"), (e.into_value(py),))?,
    };
    Ok(())
}

/// Aborts the Rust future when its asyncio future is cancelled.
#[pyclass(frozen)]
struct CancelOnDone(tokio::task::AbortHandle);

#[pymethods]
impl CancelOnDone {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut
            .call_method0(intern!(fut.py(), "cancelled"))?
            .is_truthy()?
        {
            self.0.abort();
        }
        Ok(())
    }
}

/// A panic in the wrapped future becomes its output's error.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// `asyncio.get_running_loop()`: raises `RuntimeError` outside a coroutine.
fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()
}

/// Runs `fut` on the core's runtime and returns an asyncio future of the
/// running loop that resolves to its result.
pub fn future_into_py<F, T>(py: Python<'_>, fut: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    future_into_py_or(py, fut, drop)
}

/// [`future_into_py`], handing a result that arrives after its asyncio
/// future was cancelled to `unclaimed` instead of dropping it (a command
/// taken from the consumer's queue must not be lost).
pub fn future_into_py_or<F, T, U>(
    py: Python<'_>,
    fut: F,
    unclaimed: U,
) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
    U: FnOnce(T) + Send + 'static,
{
    let event_loop = running_loop(py)?;
    let waker = LoopWaker::of(py, &event_loop)?;
    let py_fut = event_loop.call_method0(intern!(py, "create_future"))?;
    let target = py_fut.clone().unbind();
    let task = oc2mqtt::client::runtime().spawn(async move {
        let outcome = CatchUnwind(Box::pin(fut)).await;
        let finish: Finish = Box::new(move |py, wanted| match outcome {
            Ok(Ok(v)) if !wanted => {
                unclaimed(v);
                None
            }
            _ if !wanted => None,
            Ok(result) => Some(result.and_then(|v| v.into_py_any(py))),
            Err(panic) => Some(Err(PyRuntimeError::new_err(format!(
                "oc2mqtt: internal error (a Rust panic): {}",
                oc2mqtt::client::panic_text(&*panic)
            )))),
        });
        waker.complete(target, finish);
    });
    py_fut.call_method1(
        intern!(py, "add_done_callback"),
        (CancelOnDone(task.abort_handle()),),
    )?;
    Ok(py_fut)
}

/// An awaitable already resolved to `value` (for `__aenter__` of a connected object).
pub fn ready<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let fut = running_loop(py)?.call_method0(intern!(py, "create_future"))?;
    fut.call_method1(intern!(py, "set_result"), (value,))?;
    Ok(fut)
}

/// Runs `work` (a close) to its end on the core's runtime, and returns an
/// asyncio future of its completion. Cancelling the await does not cut the
/// close short: a half-closed connection would be worse than a late one.
pub fn detached<'py, F>(py: Python<'py>, work: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = ()> + Send + 'static,
{
    let task = oc2mqtt::client::runtime().spawn(work);
    future_into_py(py, async move {
        task.await
            .map_err(|e| PyRuntimeError::new_err(format!("oc2mqtt: internal error: {e}")))
    })
}

/// A connection under way: `await` it for the connected object, or use it
/// as `async with Producer.connect_async(...) as producer:`, which also
/// closes it at the end of the block. Neither blocks the event loop.
#[pyclass(name = "Connecting", module = "oc2mqtt", frozen)]
pub struct PyConnecting {
    fut: Py<PyAny>,
    what: &'static str,
}

impl PyConnecting {
    /// Connects with `fut` on the core's runtime; `what` names the role in reprs.
    pub fn start<F, T>(py: Python<'_>, what: &'static str, fut: F) -> PyResult<Self>
    where
        F: Future<Output = PyResult<T>> + Send + 'static,
        T: for<'py> IntoPyObject<'py> + Send + 'static,
    {
        Ok(Self {
            fut: future_into_py(py, fut)?.unbind(),
            what,
        })
    }
}

#[pymethods]
impl PyConnecting {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.fut.bind(py).call_method0(intern!(py, "__await__"))
    }

    /// Awaiting the same future again gives the connected object.
    fn __aenter__(&self, py: Python<'_>) -> Py<PyAny> {
        self.fut.clone_ref(py)
    }

    /// Closes the object `__aenter__` gave (it connected, or the block never ran).
    #[pyo3(signature = (*exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let connected = self.fut.bind(py).call_method0(intern!(py, "result"))?;
        connected.call_method1(intern!(py, "__aexit__"), exc)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let done = self
            .fut
            .bind(py)
            .call_method0(intern!(py, "done"))?
            .is_truthy()?;
        Ok(format!(
            "<Connecting {} ({})>",
            self.what,
            if done { "done" } else { "pending" }
        ))
    }
}
