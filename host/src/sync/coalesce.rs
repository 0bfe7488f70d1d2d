//! A queue that gathers work while a burst lasts and hands it over in one go. Producers add to
//! the pending collection (which merges repeats) and wake the drain; the drain waits
//! [`COALESCE`] after the first wake, takes everything and hands it to the engine. Used for CRM
//! webhooks (records to pull) and real-time workspace changes (entities to push).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::SyncEngine;

/// How long the drain waits for more of a burst before handing it over.
const COALESCE: Duration = Duration::from_millis(200);

/// A collection of pending work that can tell whether it is empty.
pub(super) trait Pending: Default + Send + 'static {
    /// Whether nothing waits.
    fn is_empty(&self) -> bool;
}

impl<K: Send + 'static, V: Send + 'static> Pending for HashMap<K, V> {
    fn is_empty(&self) -> bool {
        HashMap::is_empty(self)
    }
}

impl<T: Send + 'static> Pending for BTreeSet<T> {
    fn is_empty(&self) -> bool {
        BTreeSet::is_empty(self)
    }
}

/// Pending work of kind `C` and the drain's state.
#[derive(Debug)]
pub(super) struct Coalescing<C> {
    pending: Mutex<C>,
    wake: tokio::sync::Notify,
    /// Raised while the drain hands taken work over (set before it leaves `pending`).
    draining: AtomicBool,
}

impl<C: Pending> Default for Coalescing<C> {
    fn default() -> Self {
        Self { pending: Mutex::new(C::default()), wake: tokio::sync::Notify::new(), draining: AtomicBool::new(false) }
    }
}

impl<C: Pending> Coalescing<C> {
    /// Adds work (`add` merges it into the pending collection) and wakes the drain.
    pub(super) fn add(&self, add: impl FnOnce(&mut C)) {
        add(&mut self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.notify_one();
    }

    /// Whether nothing waits and nothing is being handed over: all work added so far has been
    /// handed to the engine.
    pub(super) fn is_settled(&self) -> bool {
        // `pending` first: work leaves it only after `draining` is raised, so an empty queue read
        // before a lowered flag means nothing is in between.
        let empty = self.pending.lock().unwrap_or_else(PoisonError::into_inner).is_empty();
        empty && !self.draining.load(Ordering::SeqCst)
    }

    /// Starts the drain: after each burst, `hand_over` gets everything taken (it ends with the
    /// engine).
    pub(super) fn spawn_drain<F, Fut>(
        self: Arc<Self>,
        engine: Weak<SyncEngine>,
        hand_over: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn(Arc<SyncEngine>, C) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        tokio::spawn(async move {
            loop {
                self.wake.notified().await;
                tokio::time::sleep(COALESCE).await;
                let Some(engine) = engine.upgrade() else { return };
                self.draining.store(true, Ordering::SeqCst);
                let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
                hand_over(engine, taken).await;
                self.draining.store(false, Ordering::SeqCst);
            }
        })
    }
}
