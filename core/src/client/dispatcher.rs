//! The dispatcher: one thread per client that runs watch callbacks in the order events
//! happened, never under an engine lock; and the session sink that feeds it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::read_cache::ReadCache;
use super::watch_gate::WatchGate;
use super::watcher::{WatchTables, Watcher};
use super::ClientState;
use crate::proto::{EventType, KeeperState, WatchedEvent};
use crate::server::SessionSink;

pub(super) enum Dispatch {
    Event(Vec<Watcher>, WatchedEvent),
    /// An async call's completion, run in order with the events.
    Completion(Box<dyn FnOnce() + Send>),
    Stop,
}

/// Shared by the client, its session sink and its dispatcher.
pub(super) struct Shared {
    pub(super) tables: Mutex<WatchTables>,
    /// The read cache, invalidated here as events are produced.
    pub(super) cache: Option<ReadCache>,
    /// Keeps watch removals and calls setting watches apart.
    pub(super) gate: Arc<WatchGate>,
    pub(super) state: AtomicU8,
    pub(super) dispatch: Sender<Dispatch>,
}

impl Shared {
    pub(super) fn state(&self) -> ClientState {
        ClientState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Moves to `to` if the client is in one of `from`; false (and no change) otherwise, so
    /// terminal states stay terminal and each is announced once.
    pub(super) fn transition(&self, from: &[ClientState], to: ClientState) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if !from.contains(&ClientState::from_u8(current)) {
                return false;
            }
            match self.state.compare_exchange(
                current,
                to as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Hands an event to the dispatcher with the watchers it reaches, decided now: a watcher
    /// registered after this point must not see an event that happened before its read.
    pub(super) fn dispatch(&self, event: WatchedEvent) {
        if let Some(cache) = &self.cache {
            cache.observe(&event);
        }
        let watchers = self.tables.lock().materialize(&event);
        if !watchers.is_empty() {
            let _ = self.dispatch.send(Dispatch::Event(watchers, event));
        }
    }
}

impl SessionSink for Shared {
    fn deliver(&self, event: WatchedEvent) {
        let expired = event.event_type == EventType::None && event.state == KeeperState::Expired;
        // A client closed by its user does not also hear that its session expired.
        if expired
            && !self.transition(
                &[
                    ClientState::Connected,
                    ClientState::Connecting,
                    ClientState::AuthFailed,
                ],
                ClientState::Expired,
            )
        {
            return;
        }
        self.dispatch(event);
    }

    /// The server stopped. A durable server's session lives on in its data directory, but an
    /// in-process client cannot follow the server to a restart: it is disconnected for good,
    /// and its calls answer ConnectionLoss. An in-memory server's session went with it.
    fn member_stopped(&self, session_lives_on: bool) {
        if !session_lives_on {
            return self.detach();
        }
        if self.transition(
            &[ClientState::Connected, ClientState::AuthFailed],
            ClientState::Connecting,
        ) {
            self.dispatch(WatchedEvent::state(KeeperState::Disconnected));
        }
    }

    /// The member lost its leader: the session lives on, so the client waits, connecting,
    /// for the member to serve again (its calls answer ConnectionLoss meanwhile).
    fn disconnected(&self) {
        if self.transition(
            &[ClientState::Connected, ClientState::AuthFailed],
            ClientState::Connecting,
        ) {
            self.dispatch(WatchedEvent::state(KeeperState::Disconnected));
        }
    }

    fn reconnected(&self) {
        if self.transition(&[ClientState::Connecting], ClientState::Connected) {
            self.dispatch(WatchedEvent::state(KeeperState::SyncConnected));
        }
    }

    /// The session ended without an event: the client is expired, as a TCP client finds its
    /// session when it reaches a server again.
    fn detach(&self) {
        if self.transition(
            &[
                ClientState::Connected,
                ClientState::Connecting,
                ClientState::AuthFailed,
            ],
            ClientState::Expired,
        ) {
            self.dispatch(WatchedEvent::state(KeeperState::Expired));
        }
    }
}

pub(super) fn dispatch_loop(receiver: Receiver<Dispatch>) {
    for message in receiver {
        match message {
            Dispatch::Event(watchers, event) => {
                for watcher in watchers {
                    let event = event.clone();
                    // A panicking watcher must not silence the ones after it.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        watcher.call(event)
                    }))
                    .is_err()
                    {
                        tracing::error!("a watcher panicked; the dispatcher goes on");
                    }
                }
            }
            Dispatch::Completion(completion) => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(completion)).is_err() {
                    tracing::error!("a completion panicked; the dispatcher goes on");
                }
            }
            Dispatch::Stop => return,
        }
    }
}
