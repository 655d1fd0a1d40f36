//! The client a JavaScript object makes in `connect()`, after it was
//! constructed: what `Producer`, `Consumer` and `Monitor` share.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The connected client of a JavaScript object: none before `connect()`
/// and after `close()`; `connect()` calls run one at a time, and one on a
/// connected object does nothing.
pub(crate) struct Later<T> {
    /// "producer", "consumer", "monitor": for the error before `connect()`.
    what: &'static str,
    slot: Arc<Mutex<Option<T>>>,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl<T: Clone + Send + 'static> Later<T> {
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            slot: Arc::default(),
            gate: Arc::default(),
        }
    }

    /// The client, when connected.
    pub(crate) fn get(&self) -> Option<T> {
        lock(&self.slot).clone()
    }

    /// What `f` says of the client, when connected.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        lock(&self.slot).as_ref().map(f)
    }

    /// The client, or the `OC2_CLOSED` error that says to connect first.
    pub(crate) fn require(&self) -> oc2mqtt::Result<T> {
        self.get().ok_or_else(|| self.not_connected())
    }

    /// The error for a call that needs the client before `connect()`.
    pub(crate) fn not_connected(&self) -> oc2mqtt::Error {
        oc2mqtt::Error::Closed(format!(
            "the {} is not connected: call connect() first",
            self.what
        ))
    }

    /// Takes the client out, for `close()`.
    pub(crate) fn take(&self) -> Option<T> {
        lock(&self.slot).take()
    }

    /// The work of `connect()`: runs `make` and keeps the client it makes,
    /// unless one is there already.
    pub(crate) fn connect(
        &self,
        make: impl Future<Output = oc2mqtt::Result<T>> + Send + 'static,
    ) -> impl Future<Output = oc2mqtt::Result<()>> + Send + 'static {
        let (slot, gate) = (Arc::clone(&self.slot), Arc::clone(&self.gate));
        async move {
            let _one_at_a_time = gate.lock().await;
            if lock(&slot).is_some() {
                return Ok(());
            }
            let client = make.await?;
            *lock(&slot) = Some(client);
            Ok(())
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing holds this lock across a panic that could leave it inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
