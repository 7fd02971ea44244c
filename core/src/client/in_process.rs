//! The in-process link's half of the engine's entry point: where an answer to a request goes
//! (a waiting caller, or a completion on the dispatcher), and the client's watch tables kept
//! in step with the watches the engine registers.

use std::sync::Arc;

use super::dispatcher::Shared;
use super::watch_gate::SettingTicket;
use super::{Completion, Error, Watcher};
use crate::op::Response;
use crate::server::{Answer, WatchRegistered};

/// Where an in-process answer goes.
pub(super) enum Destination {
    /// Straight to the caller's completion, on the thread that answers (a waiting caller).
    Direct(Completion),
    /// Through the dispatcher, in order with watch events (async calls).
    Dispatched(Completion),
}

/// One in-process request's answer.
pub(super) struct InProcessAnswer {
    pub(super) shared: Arc<Shared>,
    pub(super) watcher: Option<Watcher>,
    /// Held until answered: a watch removal waits for calls setting watches.
    pub(super) ticket: Option<SettingTicket>,
    pub(super) path: Option<String>,
    pub(super) destination: Destination,
}

impl Answer for InProcessAnswer {
    fn watch_registered(&mut self, path: &str, kind: WatchRegistered) {
        if let Some(watcher) = &self.watcher {
            self.shared
                .tables
                .lock()
                .register(path, kind, watcher.clone());
        }
    }

    fn respond(self: Box<Self>, response: Response) {
        let InProcessAnswer {
            shared,
            ticket,
            path,
            destination,
            ..
        } = *self;
        drop(ticket);
        let reply = response
            .result
            .map_err(|code| Error::new(code, path.as_deref()));
        match destination {
            Destination::Direct(done) => done(reply),
            Destination::Dispatched(done) => {
                shared.dispatcher.completion(Box::new(move || done(reply)));
            }
        }
    }
}
