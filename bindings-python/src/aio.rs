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
//! The Rust future's first poll runs on the loop's thread, with the GIL
//! released: one that is ready at once resolves its asyncio future there and
//! then (no runtime thread, no wake-up), and one that waits (for the broker)
//! is spawned on the runtime by its own waker when it can go on, so no
//! runtime thread is woken just to start it.
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

/// The completions waiting for one event loop, and how the loop learns of them.
struct LoopWaker {
    queue: Arc<Mutex<Queue>>,
    wake: Wake,
}

/// How a thread that finished a future wakes the loop.
enum Wake {
    /// `loop.call_soon_threadsafe(drain)`: that thread takes the GIL.
    CallSoon {
        event_loop: Py<PyAny>,
        drain: Py<Drain>,
    },
    /// A datagram on a socket pair whose other end the loop watches
    /// (`add_reader`): that thread does not take the GIL at all. The loop
    /// keeps this waker (through the reader it calls) until it is closed.
    #[cfg(unix)]
    Datagram {
        event_loop: Py<pyo3::types::PyWeakrefReference>,
        wakeup: std::os::unix::net::UnixDatagram,
    },
}

/// A finished future: the asyncio future, its [`CancelOnDone`] callback,
/// and what makes its value.
type Completion = (Py<PyAny>, Py<PyAny>, Finish);

#[derive(Default)]
struct Queue {
    ready: Vec<Completion>,
    /// A drain is scheduled on the loop and has not yet taken the queue.
    scheduled: bool,
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// The waker of the last loop seen on this thread (a thread runs one loop
    /// at a time). Weak: the futures in flight keep it (and the loop's reader
    /// with `Wake::Datagram`); once none is left, a finished loop is not kept
    /// by this thread.
    static CURRENT: RefCell<Weak<LoopWaker>> = const { RefCell::new(Weak::new()) };
}

impl LoopWaker {
    /// The waker of `event_loop`, made on first use on this thread.
    fn of(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<LoopWaker>> {
        CURRENT.with(|cur| {
            let mut cur = cur.borrow_mut();
            if let Some(w) = cur.upgrade()
                && w.is_for(py, event_loop)
            {
                return Ok(w);
            }
            let w = match Self::watched(py, event_loop) {
                Some(w) => w,
                None => {
                    let queue = Arc::new(Mutex::new(Queue::default()));
                    Arc::new(LoopWaker {
                        wake: Wake::CallSoon {
                            event_loop: event_loop.clone().unbind(),
                            drain: Py::new(
                                py,
                                Drain {
                                    queue: Arc::clone(&queue),
                                    watched: None,
                                },
                            )?,
                        },
                        queue,
                    })
                }
            };
            *cur = Arc::downgrade(&w);
            Ok(w)
        })
    }

    fn is_for(&self, py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> bool {
        match &self.wake {
            Wake::CallSoon { event_loop: l, .. } => l.bind(py).is(event_loop),
            #[cfg(unix)]
            Wake::Datagram { event_loop: l, .. } => {
                use pyo3::types::PyWeakrefMethods;
                l.bind(py).upgrade().is_some_and(|l| l.is(event_loop))
            }
        }
    }

    /// A waker whose socket the loop watches; `None` where the loop cannot
    /// watch one (Windows' proactor loop), and then the loop is called.
    #[cfg(unix)]
    fn watched(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> Option<Arc<LoopWaker>> {
        use std::os::fd::AsRawFd;
        let (wakeup, watched) = std::os::unix::net::UnixDatagram::pair().ok()?;
        wakeup.set_nonblocking(true).ok()?;
        watched.set_nonblocking(true).ok()?;
        let fd = watched.as_raw_fd();
        let queue = Arc::new(Mutex::new(Queue::default()));
        let w = Arc::new(LoopWaker {
            wake: Wake::Datagram {
                event_loop: pyo3::types::PyWeakrefReference::new(event_loop)
                    .ok()?
                    .unbind(),
                wakeup,
            },
            queue: Arc::clone(&queue),
        });
        let drain = Drain {
            queue,
            watched: Some((watched, Arc::clone(&w))),
        };
        event_loop
            .call_method1(intern!(py, "add_reader"), (fd, drain))
            .ok()?;
        Some(w)
    }

    #[cfg(not(unix))]
    fn watched(_py: Python<'_>, _event_loop: &Bound<'_, PyAny>) -> Option<Arc<LoopWaker>> {
        None
    }

    /// Queues a finished future (called on a runtime thread, without the GIL).
    fn complete(&self, done: Completion) {
        let schedule = {
            let mut q = lock(&self.queue);
            q.ready.push(done);
            !std::mem::replace(&mut q.scheduled, true)
        };
        if !schedule {
            return;
        }
        let scheduled = match &self.wake {
            // A full socket buffer has wake-ups waiting already.
            #[cfg(unix)]
            Wake::Datagram { wakeup, .. } => match wakeup.send(&[1]) {
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            },
            Wake::CallSoon { event_loop, drain } => crate::shutdown::attach(|py| {
                event_loop
                    .bind(py)
                    .call_method1(intern!(py, "call_soon_threadsafe"), (drain.clone_ref(py),))
                    .is_ok()
            })
            .is_some_and(|ok| ok),
        };
        if !scheduled {
            // The loop is closed, or Python is exiting: nobody can await these any more.
            let mut q = lock(&self.queue);
            q.scheduled = false;
            q.ready.clear();
        }
    }
}

/// Resolves every queued future; runs on the loop's thread, called by the
/// loop (`call_soon_threadsafe`) or as the reader of the waker's socket.
#[pyclass(frozen)]
struct Drain {
    queue: Arc<Mutex<Queue>>,
    /// The socket the loop watches, and the waker that writes to it (kept
    /// as long as the loop keeps this reader).
    #[cfg(unix)]
    watched: Option<(std::os::unix::net::UnixDatagram, Arc<LoopWaker>)>,
    #[cfg(not(unix))]
    watched: Option<()>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        // The wake-up first: one sent after this takes the queue is for what
        // that queue does not hold. One datagram is sent per drain (when
        // `scheduled` turns true), so one read takes it: a read more would
        // only find the socket empty; the loop calls again for any left.
        #[cfg(unix)]
        if let Some((watched, _)) = &self.watched {
            let _ = watched.recv(&mut [0u8; 8]);
        }
        let ready = {
            let mut q = lock(&self.queue);
            q.scheduled = false;
            std::mem::take(&mut q.ready)
        };
        for (fut, on_done, finish) in ready {
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
                && let Err(e) = resolve(fut, on_done.bind(py), result)
            {
                e.write_unraisable(py, Some(fut));
            }
        }
    }
}

/// Resolves `fut`, which is not done (the loop's thread checked, and
/// nothing ran on it since).
fn resolve(
    fut: &Bound<'_, PyAny>,
    on_done: &Bound<'_, PyAny>,
    result: PyResult<Py<PyAny>>,
) -> PyResult<()> {
    let py = fut.py();
    // Not cancelled: its cancel hook has nothing to do, and scheduling it on
    // the loop (as every done callback is) would cost a loop turn's handle.
    fut.call_method1(intern!(py, "remove_done_callback"), (on_done,))?;
    match result {
        Ok(v) => fut.call_method1(intern!(py, "set_result"), (v,))?,
        Err(e) => fut.call_method1(intern!(py, "set_exception"), (e.into_value(py),))?,
    };
    Ok(())
}

/// Drops the Rust future when its asyncio future is cancelled.
#[pyclass(frozen)]
struct CancelOnDone(Arc<Running>);

#[pymethods]
impl CancelOnDone {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut
            .call_method0(intern!(fut.py(), "cancelled"))?
            .is_truthy()?
        {
            self.0.cancel();
        }
        Ok(())
    }
}

/// A task for the runtime: the Rust future and what hands its result to the loop.
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where a Rust future is after its first poll, made on the loop's thread
/// (so a future that is ready at once, or only needs the broker, costs no
/// runtime thread a wake-up to start it): waiting for its waker, which
/// spawns it on the runtime, or spawned.
struct Running(Mutex<Stage>);

enum Stage {
    /// In its first poll; `woken` when its waker fired meanwhile.
    Polling {
        woken: bool,
    },
    /// Waiting for its waker, on no thread.
    Parked(Task),
    Spawned(tokio::task::AbortHandle),
    Over,
}

impl Running {
    fn stage(&self) -> MutexGuard<'_, Stage> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a first poll that returned `Pending`: park `task` until its
    /// waker fires, or spawn it if it fired already.
    fn park(&self, task: Task) {
        let mut stage = self.stage();
        *stage = match *stage {
            Stage::Polling { woken: true } => {
                Stage::Spawned(oc2mqtt::client::runtime().spawn(task).abort_handle())
            }
            _ => Stage::Parked(task),
        };
    }

    fn cancel(&self) {
        let mut stage = self.stage();
        match std::mem::replace(&mut *stage, Stage::Over) {
            Stage::Spawned(task) => task.abort(),
            // Dropped on the runtime, not on the loop's thread (with the
            // GIL): closing a core exchange takes a lock a network thread
            // may hold while it waits for the GIL.
            Stage::Parked(task) => {
                drop(oc2mqtt::client::runtime().spawn(async move { drop(task) }))
            }
            Stage::Polling { .. } | Stage::Over => {}
        }
    }
}

impl std::task::Wake for Running {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut stage = self.stage();
        match std::mem::replace(&mut *stage, Stage::Over) {
            Stage::Polling { .. } => *stage = Stage::Polling { woken: true },
            // From then on the runtime polls it, with its own waker.
            Stage::Parked(task) => {
                *stage = Stage::Spawned(oc2mqtt::client::runtime().spawn(task).abort_handle());
            }
            other => *stage = other,
        }
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
    // The first poll here, without the GIL (the core's locks are taken) and
    // in the runtime's context (its timers).
    let running = Arc::new(Running(Mutex::new(Stage::Polling { woken: false })));
    let first_waker = std::task::Waker::from(Arc::clone(&running));
    let fut = CatchUnwind(Box::pin(fut));
    let first = py.detach(move || {
        let _rt = oc2mqtt::client::runtime().enter();
        let mut fut = fut;
        match Pin::new(&mut fut).poll(&mut Context::from_waker(&first_waker)) {
            Poll::Ready(outcome) => Ok(outcome),
            Poll::Pending => Err(fut),
        }
    });
    let fut = match first {
        Ok(outcome) => {
            match finished(py, outcome) {
                Ok(v) => py_fut.call_method1(intern!(py, "set_result"), (v,))?,
                Err(e) => py_fut.call_method1(intern!(py, "set_exception"), (e.into_value(py),))?,
            };
            return Ok(py_fut);
        }
        Err(fut) => fut,
    };
    let target = py_fut.clone().unbind();
    let on_done = Bound::new(py, CancelOnDone(Arc::clone(&running)))?;
    let hook = on_done.clone().into_any().unbind();
    running.park(Box::pin(async move {
        let outcome = fut.await;
        let finish: Finish = Box::new(move |py, wanted| match outcome {
            Ok(Ok(v)) if !wanted => {
                unclaimed(v);
                None
            }
            _ if !wanted => None,
            outcome => Some(finished(py, outcome)),
        });
        waker.complete((target, hook, finish));
    }));
    py_fut.call_method1(intern!(py, "add_done_callback"), (on_done,))?;
    Ok(py_fut)
}

/// The Python value (or exception) of a finished Rust future.
fn finished<T>(
    py: Python<'_>,
    outcome: Result<PyResult<T>, Box<dyn Any + Send>>,
) -> PyResult<Py<PyAny>>
where
    T: for<'py> IntoPyObject<'py>,
{
    match outcome {
        Ok(result) => result.and_then(|v| v.into_py_any(py)),
        Err(panic) => Err(PyRuntimeError::new_err(format!(
            "oc2mqtt: internal error (a Rust panic): {}",
            oc2mqtt::client::panic_text(&*panic)
        ))),
    }
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
