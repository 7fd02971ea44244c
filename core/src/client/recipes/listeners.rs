//! The listeners of a recipe that tells them what happens (the leader latch, the tree cache):
//! added and removed by id from any thread, called one at a time on the recipe's worker
//! thread, each call shielded from a listener's panic, and silenced for good at close.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Listeners of type `L` (a `dyn Fn(..)`).
pub(super) struct Listeners<L: ?Sized> {
    registered: Mutex<Vec<(u64, Arc<L>)>>,
    next_id: AtomicU64,
    /// Held while a listener runs, so `silence` can wait for a call in progress.
    calling: Mutex<()>,
    /// Set by `silence`: no call starts after that.
    silenced: AtomicBool,
}

impl<L: ?Sized> Listeners<L> {
    pub(super) fn new() -> Listeners<L> {
        Listeners {
            registered: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            calling: Mutex::new(()),
            silenced: AtomicBool::new(false),
        }
    }

    /// Adds `listener`; returns the id `remove` takes.
    pub(super) fn add(&self, listener: Arc<L>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.registered.lock().push((id, listener));
        id
    }

    /// Stops calling the listener `id`; unknown ids are ignored.
    pub(super) fn remove(&self, id: u64) {
        self.registered.lock().retain(|(known, _)| *known != id);
    }

    /// Calls every listener with `call`, in the order they were added, until silenced. A
    /// panicking listener is logged as one of `recipe`'s and the rest still run: a listener's
    /// bug must not stop the recipe.
    pub(super) fn call_each(&self, recipe: &str, call: impl Fn(&L)) {
        let _calling = self.calling.lock();
        // Taken under `calling`: a listener removed before this call started is not called.
        let listeners: Vec<Arc<L>> = self
            .registered
            .lock()
            .iter()
            .map(|(_, listener)| listener.clone())
            .collect();
        for listener in listeners {
            if self.silenced.load(Ordering::Acquire) {
                return;
            }
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&listener))).is_err() {
                tracing::error!(recipe, "a listener panicked; the recipe goes on");
            }
        }
    }

    /// No listener is called once this returns: a call in progress is waited for, unless
    /// `from_a_listener` (the caller is that very call, which would wait on itself).
    pub(super) fn silence(&self, from_a_listener: bool) {
        self.silenced.store(true, Ordering::Release);
        self.registered.lock().clear();
        if !from_a_listener {
            drop(self.calling.lock());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    type Counter = dyn Fn(usize) + Send + Sync;

    #[test]
    fn listeners_run_in_order_survive_a_panic_and_stop_once_silenced() {
        let listeners: Listeners<Counter> = Listeners::new();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let first = Arc::clone(&calls);
        let first_id = listeners.add(Arc::new(move |n| first.lock().push((1, n))));
        listeners.add(Arc::new(|_| panic!("a listener's bug")));
        let third = Arc::clone(&calls);
        listeners.add(Arc::new(move |n| third.lock().push((3, n))));
        listeners.call_each("test", |listener| listener(7));
        assert_eq!(*calls.lock(), [(1, 7), (3, 7)]);
        listeners.remove(first_id);
        listeners.call_each("test", |listener| listener(8));
        assert_eq!(*calls.lock(), [(1, 7), (3, 7), (3, 8)]);
        listeners.silence(false);
        listeners.call_each("test", |listener| listener(9));
        assert_eq!(calls.lock().len(), 3);
    }

    #[test]
    fn silencing_from_a_listener_stops_the_rest_of_that_round() {
        let listeners: Arc<Listeners<Counter>> = Arc::new(Listeners::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let inner = Arc::clone(&listeners);
        listeners.add(Arc::new(move |_| inner.silence(true)));
        let counted = Arc::clone(&calls);
        listeners.add(Arc::new(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        }));
        listeners.call_each("test", |listener| listener(1));
        assert_eq!(calls.load(Ordering::Relaxed), 0);
    }
}
