//! The binding's tokio runtime, and Promises settled from it.
//!
//! Work runs on the binding's runtime ([`handle`]), never on the JavaScript
//! thread; only the conversion of the result happens there, when the
//! Promise is settled. Each pending Promise keeps the Node event loop alive,
//! and none is left pending once its future ends: a panic in the future
//! rejects it instead.
//!
//! All Promises of a JavaScript thread are settled through one long-lived
//! threadsafe function (napi's deferred makes one per Promise, with its own
//! libuv handle): a finished future queues its settlement, and the first
//! one queued wakes the JavaScript thread, which then settles every queued
//! Promise in one call. A burst of replies costs one wake-up.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use futures::FutureExt;
use napi::bindgen_prelude::{Env, FromNapiValue, JsValue, Object, ToNapiValue};
use napi::{JsError, sys};

use crate::error;

/// A JavaScript value made on the JavaScript thread, handed to napi as is.
pub(crate) struct Raw(sys::napi_value);

impl Raw {
    pub(crate) fn of<'a, V: JsValue<'a>>(v: &V) -> Self {
        Self(v.raw())
    }
}

impl FromNapiValue for Raw {
    unsafe fn from_napi_value(_env: sys::napi_env, val: sys::napi_value) -> napi::Result<Self> {
        Ok(Self(val))
    }
}

impl ToNapiValue for Raw {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}

type Resolver = Box<dyn FnOnce(Env) -> napi::Result<Raw> + Send>;

/// A Promise's deferred handle: made on the JavaScript thread, only used there.
struct Deferred(sys::napi_deferred);

// SAFETY: the handle only travels through the queue; it is resolved on the
// JavaScript thread that made it (the settler's threadsafe function calls there).
unsafe impl Send for Deferred {}

/// The settlements waiting for the JavaScript thread, and the threadsafe
/// function that wakes it: `None` once Node finalized it (the environment
/// is being torn down); the lock keeps it from being finalized mid-call.
struct Settler {
    tsfn: RwLock<Option<TsfnHandle>>,
    queue: Mutex<Vec<(Deferred, Resolver)>>,
}

struct TsfnHandle(sys::napi_threadsafe_function);

// SAFETY: napi's threadsafe functions are made to be called from any thread.
unsafe impl Send for TsfnHandle {}
unsafe impl Sync for TsfnHandle {}

impl Settler {
    /// Queues a settlement; the first queued after a drain wakes the JavaScript thread.
    fn push(&self, deferred: Deferred, resolver: Resolver) {
        let first = {
            let mut q = lock(&self.queue);
            q.push((deferred, resolver));
            q.len() == 1
        };
        if first {
            let tsfn = self
                .tsfn
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(t) = tsfn.as_ref() {
                // SAFETY: not finalized (checked under the lock finalization takes).
                unsafe {
                    sys::napi_call_threadsafe_function(
                        t.0,
                        ptr::null_mut(),
                        sys::ThreadsafeFunctionCallMode::nonblocking,
                    );
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing holds this lock across a panic that could leave it inconsistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

thread_local! {
    /// This JavaScript thread's settler, with the environment it belongs to.
    static SETTLER: RefCell<Option<(sys::napi_env, Arc<Settler>)>> = const { RefCell::new(None) };
    /// Promises of this thread not settled yet: while any is, the settler
    /// keeps the event loop alive.
    static PENDING: Cell<usize> = const { Cell::new(0) };
}

/// This thread's settler, made on first use.
fn settler(env: &Env) -> napi::Result<Arc<Settler>> {
    let raw = env.raw();
    if let Some(s) = SETTLER.with_borrow(|s| {
        s.as_ref()
            .filter(|(e, _)| *e == raw)
            .map(|(_, s)| Arc::clone(s))
    }) {
        return Ok(s);
    }
    let s = Arc::new(Settler {
        tsfn: RwLock::new(None),
        queue: Mutex::new(Vec::new()),
    });
    let name = env.create_string("oc2mqtt.settle")?;
    let mut tsfn = ptr::null_mut();
    let context = Arc::into_raw(Arc::clone(&s)).cast_mut().cast::<c_void>();
    // SAFETY: plain N-API calls on the JavaScript thread; `context` is an
    // `Arc<Settler>` that `finalize` takes back.
    unsafe {
        let status = sys::napi_create_threadsafe_function(
            raw,
            ptr::null_mut(),
            ptr::null_mut(),
            name.raw(),
            0,
            1,
            context,
            Some(finalize),
            context,
            Some(drain),
            &mut tsfn,
        );
        if status != sys::Status::napi_ok {
            drop(Arc::from_raw(context.cast::<Settler>()));
            return Err(napi::Error::new(
                napi::Status::GenericFailure,
                "cannot create the threadsafe function that settles Promises".to_owned(),
            ));
        }
        // Idle, it does not keep the event loop alive; `promise` refs it while Promises are pending.
        sys::napi_unref_threadsafe_function(raw, tsfn);
    }
    *s.tsfn
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(TsfnHandle(tsfn));
    PENDING.set(0);
    SETTLER.set(Some((raw, Arc::clone(&s))));
    Ok(s)
}

/// Node finalizes the threadsafe function when the environment goes away.
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the `Arc` given to napi_create_threadsafe_function.
    let s = unsafe { Arc::from_raw(data.cast::<Settler>()) };
    *s.tsfn
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    lock(&s.queue).clear();
}

/// On the JavaScript thread: settles every queued Promise.
unsafe extern "C" fn drain(
    env: sys::napi_env,
    _js_callback: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() || context.is_null() {
        return;
    }
    // SAFETY: the settler outlives its threadsafe function (`finalize` drops it).
    let s = unsafe { &*context.cast::<Settler>() };
    let batch = std::mem::take(&mut *lock(&s.queue));
    let settled = batch.len();
    for (deferred, resolver) in batch {
        // SAFETY: N-API calls on the JavaScript thread, in a scope per Promise.
        unsafe { settle(env, deferred.0, resolver) };
    }
    let left = PENDING.get().saturating_sub(settled);
    PENDING.set(left);
    if left == 0 {
        if let Some(t) = s
            .tsfn
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            // SAFETY: on the JavaScript thread, not finalized.
            unsafe { sys::napi_unref_threadsafe_function(env, t.0) };
        }
    }
}

unsafe fn settle(env: sys::napi_env, deferred: sys::napi_deferred, resolver: Resolver) {
    let mut scope = ptr::null_mut();
    // SAFETY (whole body): N-API calls on the JavaScript thread.
    unsafe {
        sys::napi_open_handle_scope(env, &mut scope);
        match resolver(Env::from_raw(env)) {
            Ok(v) => {
                sys::napi_resolve_deferred(env, deferred, v.0);
            }
            Err(e) => {
                // A conversion that threw leaves its exception pending: that is the rejection.
                let mut pending = false;
                sys::napi_is_exception_pending(env, &mut pending);
                let reason = if pending {
                    let mut ex = ptr::null_mut();
                    sys::napi_get_and_clear_last_exception(env, &mut ex);
                    ex
                } else {
                    JsError::from(e).into_value(env)
                };
                sys::napi_reject_deferred(env, deferred, reason);
            }
        }
        sys::napi_close_handle_scope(env, scope);
    }
}

/// Runs `fut` on the core runtime and returns a Promise of its result,
/// converted by `to_js` on the JavaScript thread. Core errors reject with
/// the mapped `Error` (`code: 'OC2_...'`).
pub(crate) fn promise<'e, T, F, C>(env: &'e Env, fut: F, to_js: C) -> napi::Result<Object<'e>>
where
    T: Send + 'static,
    F: Future<Output = oc2mqtt::Result<T>> + Send + 'static,
    C: FnOnce(&Env, T) -> napi::Result<Raw> + Send + 'static,
{
    let (p, task) = promise_task(env, fut, to_js)?;
    handle().spawn(task);
    Ok(p)
}

/// Work for the runtime that settles a Promise when done.
pub(crate) type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// [`promise`] without the spawn: the Promise, and the task that settles
/// it, for the caller to run on the runtime as it sees fit (with other work,
/// or through [`defer`]); the Promise stays pending until it is run.
pub(crate) fn promise_task<'e, T, F, C>(
    env: &'e Env,
    fut: F,
    to_js: C,
) -> napi::Result<(Object<'e>, Task)>
where
    T: Send + 'static,
    F: Future<Output = oc2mqtt::Result<T>> + Send + 'static,
    C: FnOnce(&Env, T) -> napi::Result<Raw> + Send + 'static,
{
    let settler = settler(env)?;
    let (mut deferred, mut raw_promise) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: N-API calls on the JavaScript thread.
    unsafe {
        let status = sys::napi_create_promise(env.raw(), &mut deferred, &mut raw_promise);
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                napi::Status::GenericFailure,
                "cannot create a Promise".to_owned(),
            ));
        }
        if PENDING.get() == 0 {
            if let Some(t) = settler
                .tsfn
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
            {
                sys::napi_ref_threadsafe_function(env.raw(), t.0);
            }
        }
    }
    PENDING.set(PENDING.get() + 1);
    let deferred = Deferred(deferred);
    let task = Box::pin(async move {
        let outcome = AssertUnwindSafe(fut).catch_unwind().await;
        settler.push(
            deferred,
            Box::new(move |env: Env| match outcome {
                Ok(Ok(v)) => to_js(&env, v),
                Ok(Err(e)) => Err(error::rejection(&env, &e)),
                Err(panic) => Err(error::rejection(
                    &env,
                    &oc2mqtt::Error::Handler(format!(
                        "internal error: a task panicked: {}",
                        oc2mqtt::client::panic_text(panic.as_ref())
                    )),
                )),
            }),
        );
    });
    // SAFETY: the Promise just made in this env.
    let p = unsafe { Object::from_napi_value(env.raw(), raw_promise) }?;
    Ok((p, task))
}

thread_local! {
    /// Tasks of this JavaScript turn, spawned together by [`flush_spawns`].
    static BATCH: RefCell<Vec<Task>> = const { RefCell::new(Vec::new()) };
}

/// Spawns `task` on the runtime at the end of this JavaScript turn, with
/// the other tasks of the turn: `index.js` queues one microtask per turn
/// that calls [`flush_spawns`].
///
/// For work made in bursts: the continuations of a burst of settled
/// Promises run in one turn, and each spawn from this thread costs an
/// eventfd write and, when the runtime's thread sleeps, a wake-up of it
/// for one task (tokio wakes its driver on every spawn from outside).
/// Spawned together, the burst costs one.
pub(crate) fn spawn_batched(task: Task) {
    BATCH.with_borrow_mut(|b| b.push(task));
}

/// Spawns this turn's [`spawn_batched`] tasks: one spawn from this thread,
/// whose task spawns the rest on the runtime's thread (no wake-up there).
#[napi_derive::napi(js_name = "__flushSpawns", skip_typescript)]
pub fn flush_spawns() {
    let mut tasks = BATCH.take();
    match tasks.len() {
        0 => {}
        1 => drop(handle().spawn(tasks.remove(0))),
        _ => drop(handle().spawn(async move {
            for task in tasks {
                drop(tokio::spawn(task));
            }
        })),
    }
}

/// Work handed to the runtime's thread without waking it ([`defer`]).
type Job = Box<dyn FnOnce() + Send>;

/// Jobs for the runtime's thread, run when it next wakes up or goes idle.
static INBOX: Mutex<Vec<Job>> = Mutex::new(Vec::new());
/// Whether [`INBOX`] may hold a job: the thread's park hooks look at this first.
static QUEUED: AtomicBool = AtomicBool::new(false);
/// Whether [`handle`] is this binding's runtime, whose park hooks run [`INBOX`].
static OWN: AtomicBool = AtomicBool::new(false);
/// When the earliest guard ([`defer`]) wakes the runtime's thread, in ns
/// since [`epoch`]; 0: none armed.
static GUARD: AtomicU64 = AtomicU64::new(0);

fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

fn ns(t: std::time::Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `job` on the runtime's thread the next time that thread wakes up
/// or is about to sleep, without waking it now, and by `by` at the latest.
///
/// For work that follows something the runtime's thread wakes up for
/// anyway: a PUBLISH just written by the calling thread, whose PUBACK comes
/// back on the socket. Waking the thread as well (a spawn, a waker fired
/// from this thread) costs an eventfd write and a wake-up of that thread
/// per call, for nothing. Should nothing wake it (a broker that stopped
/// answering), a guard timer does, by `by`: one guard covers every job due
/// after it, so a steady stream of jobs arms about one per interval.
pub(crate) fn defer(job: Job, by: std::time::Instant) {
    if !OWN.load(Ordering::SeqCst) {
        // The core's runtime has no hooks that run the inbox.
        drop(handle().spawn(async move { job() }));
        return;
    }
    lock(&INBOX).push(job);
    QUEUED.store(true, Ordering::SeqCst);
    // Read after the push: a guard that fired before it is seen as gone.
    let (now, due) = (ns(std::time::Instant::now()), ns(by));
    let due = due.max(now.saturating_add(1));
    let armed = GUARD.load(Ordering::SeqCst);
    if armed > now && armed <= due {
        return;
    }
    GUARD.store(due, Ordering::SeqCst);
    handle().spawn(async move {
        tokio::time::sleep_until(by.into()).await;
        let _ = GUARD.compare_exchange(due, 0, Ordering::SeqCst, Ordering::SeqCst);
        run_inbox();
    });
}

/// On the runtime's thread: runs every job of [`INBOX`].
fn run_inbox() {
    if !QUEUED.swap(false, Ordering::SeqCst) {
        return;
    }
    let jobs = std::mem::take(&mut *lock(&INBOX));
    for job in jobs {
        // A job only spawns or completes a channel; should one panic, the
        // runtime's thread must go on.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

/// The runtime of this binding's network work: a current-thread tokio
/// runtime driven by one thread of its own, `oc2mqtt-io`, for every
/// connection of the process (its blocking pool, `oc2mqtt-block`, only
/// runs what tokio runs there: name resolution, file I/O).
///
/// Not the core's multi-threaded runtime: the application's work runs on
/// the JavaScript thread, so one thread is enough for the network, and a
/// single scheduler has no second worker to wake and steal tasks. On the
/// pipelined benchmark it cost less CPU per exchange than the core's two
/// workers in every alternating A/B batch (`bench/node/RESULTS.md`).
/// Should that thread not start, the core's runtime is used.
pub(crate) fn handle() -> &'static tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RT.get_or_init(|| {
        let own = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(8192)
            // The jobs handed over without a wake-up (`defer`).
            .on_thread_park(run_inbox)
            .on_thread_unpark(run_inbox)
            .thread_name("oc2mqtt-block")
            .enable_all()
            .build()
            .ok()
            .and_then(|rt| {
                let h = rt.handle().clone();
                std::thread::Builder::new()
                    .name("oc2mqtt-io".to_owned())
                    .spawn(move || rt.block_on(std::future::pending::<()>()))
                    .ok()
                    .map(|_| {
                        OWN.store(true, Ordering::SeqCst);
                        h
                    })
            });
        own.unwrap_or_else(|| oc2mqtt::client::runtime().handle().clone())
    })
}

/// `undefined`, for Promises of nothing.
pub(crate) fn undefined(env: &Env) -> napi::Result<Raw> {
    // SAFETY: `()` converts to `undefined` in this env.
    Ok(Raw(unsafe { <()>::to_napi_value(env.raw(), ()) }?))
}

impl Raw {
    /// The raw handle, for conversions on the JavaScript thread.
    pub(crate) fn into_raw(self) -> sys::napi_value {
        self.0
    }

    /// The raw handle, borrowed.
    pub(crate) fn as_raw(&self) -> sys::napi_value {
        self.0
    }
}
