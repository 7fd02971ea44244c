//! Keeps a watch removal and the calls that set watches apart, without holding any lock the
//! engine or the connection's reader needs.
//!
//! The server keeps one watch per session, path and kind, so `removeWatches` drops the watch of
//! every local watcher of the kind. A call that sets a watch while a removal is on its way
//! could have its server-side watch dropped right after it was set, and its watcher (or the
//! read cache's entry) would wait forever. So a removal waits until the calls setting watches
//! have been answered, and calls that set watches wait while a removal is on its way. Tickets
//! are released when the reply has been handled (watcher recorded), on the reader's thread,
//! never on the dispatcher: a removal made from a callback cannot wait on itself.

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
struct GateState {
    /// Calls setting a watch, sent and not yet answered.
    setting: usize,
    /// A removal is on its way.
    removing: bool,
}

#[derive(Default)]
pub(crate) struct WatchGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

impl WatchGate {
    /// Before sending a call that sets a watch: waits out a removal on its way.
    pub(crate) fn enter(self: &std::sync::Arc<Self>) -> SettingTicket {
        let mut state = self.state.lock();
        while state.removing {
            self.changed.wait(&mut state);
        }
        state.setting += 1;
        SettingTicket(self.clone())
    }

    /// Before a removal: waits for other removals and for the calls setting watches.
    pub(crate) fn exclusive(self: &std::sync::Arc<Self>) -> Removal {
        let mut state = self.state.lock();
        while state.removing {
            self.changed.wait(&mut state);
        }
        // Claimed at once, so setters arriving now wait and the count can only fall.
        state.removing = true;
        while state.setting > 0 {
            self.changed.wait(&mut state);
        }
        Removal(self.clone())
    }
}

/// Held by a call setting a watch until its reply has been handled.
pub(crate) struct SettingTicket(std::sync::Arc<WatchGate>);

impl Drop for SettingTicket {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.setting -= 1;
        if state.setting == 0 {
            self.0.changed.notify_all();
        }
    }
}

/// Held by a removal until the server answered it.
pub(crate) struct Removal(std::sync::Arc<WatchGate>);

impl Drop for Removal {
    fn drop(&mut self) {
        self.0.state.lock().removing = false;
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_removal_waits_for_setters_and_holds_new_ones_back() {
        let gate = Arc::new(WatchGate::default());
        let ticket = gate.enter();
        let (sender, removed) = crossbeam_channel::unbounded();
        let remover = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let _removal = gate.exclusive();
                sender.send("removal").unwrap();
                std::thread::sleep(Duration::from_millis(50));
            })
        };
        assert!(removed.recv_timeout(Duration::from_millis(50)).is_err());
        drop(ticket);
        assert_eq!(removed.recv_timeout(Duration::from_secs(5)), Ok("removal"));
        // A setter arriving during the removal waits for its end.
        let _late = gate.enter();
        remover.join().unwrap();
    }
}
