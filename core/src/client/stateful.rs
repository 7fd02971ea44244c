//! The calls that keep client-side state, blocking and async: addAuth (the AuthFailed state a
//! failure ends in), and watch removal and check (the client's watch tables). The bookkeeping
//! is done where the server's answer arrives, so an async form never blocks its caller for a
//! round trip.

use std::sync::Arc;

use super::dispatcher::Shared;
use super::validate::validate;
use super::watch_gate::Removal;
use super::{keep, Client, ClientState, Completion, Error, Result, Route, Watcher};
use crate::op::{Op, Reply};
use crate::proto::{ErrorCode, KeeperState, WatchedEvent, WatcherType};

impl Client {
    /// Adds an identity (`digest` with `user:password`). An unknown scheme fails with AuthFailed
    /// and, as in ZooKeeper's clients, every later call then fails the same way.
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        self.route().add_auth(
            scheme.into(),
            auth.into(),
            Box::new(move |reply| drop(sender.send(reply))),
        );
        answer(&receiver)
    }

    /// Removes every watcher of `watcher_type` on `path`; each is told with a *WatchRemoved
    /// event. NoWatcher when there is none.
    pub fn remove_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        self.remove(path, watcher_type, None)
    }

    /// Removes one watcher; the server drops its watch once no other watcher of the kind remains.
    pub fn remove_watcher(
        &self,
        path: &str,
        watcher: &Watcher,
        watcher_type: WatcherType,
    ) -> Result<()> {
        self.remove(path, watcher_type, Some(watcher))
    }

    fn remove(
        &self,
        path: &str,
        watcher_type: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Result<()> {
        validate(path)?;
        // No call setting a watch is on its way while this removal is (see watch_gate.rs).
        let removal = self.shared.gate.exclusive();
        let (sender, receiver) = crossbeam_channel::bounded(1);
        self.route().remove_holding(
            removal,
            path.into(),
            watcher_type,
            watcher.cloned(),
            Box::new(move |reply| drop(sender.send(reply))),
        );
        answer(&receiver)
    }

    /// NoWatcher unless a watcher of `watcher_type` waits on `path`.
    pub fn check_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        validate(path)?;
        if !self.shared.tables.lock().contains(path, watcher_type, None) {
            return Err(Error::new(ErrorCode::NoWatcher, Some(path)));
        }
        self.call(
            Op::CheckWatches {
                path: path.into(),
                watcher_type,
            },
            Some(path),
            None,
        )
        .map(drop)
    }

    /// `submit` of an op that keeps client-side state, through its typed call.
    pub(super) fn submit_stateful(&self, op: Op, watcher: Option<Watcher>) -> Result<Reply> {
        match op {
            Op::AddAuth { scheme, auth } => self.add_auth(&scheme, &auth),
            Op::RemoveWatches { path, watcher_type } => {
                self.remove(&path, watcher_type, watcher.as_ref())
            }
            Op::CheckWatches { path, watcher_type } => self.check_watches(&path, watcher_type),
            _ => self.close(),
        }
        .map(|()| Reply::Done)
    }

    /// `submit_async` of an op that keeps client-side state: `done` runs on the dispatcher.
    /// The caller never waits for this call's own answer (a close excepted); a removal waits,
    /// as calls setting watches do, while the watch gate is held by another call.
    pub(super) fn submit_stateful_async(&self, op: Op, watcher: Option<Watcher>, done: Completion) {
        let route = self.route();
        let done = on_dispatcher(&self.shared, done);
        match op {
            Op::AddAuth { scheme, auth } => route.add_auth(scheme, auth, done),
            Op::RemoveWatches { path, watcher_type } => {
                if let Err(error) = validate(&path) {
                    return done(Err(error));
                }
                // As any call, it waits out the watch gate: a call setting a watch, or another
                // removal, that is on its way (see watch_gate.rs). Waiting later instead would
                // let calls made after this one reach the server first.
                let removal = self.shared.gate.exclusive();
                route.remove_holding(removal, path, watcher_type, watcher, done);
            }
            Op::CheckWatches { path, watcher_type } => {
                if let Err(error) = validate(&path) {
                    return done(Err(error));
                }
                if !self
                    .shared
                    .tables
                    .lock()
                    .contains(&path, watcher_type, None)
                {
                    return done(Err(Error::new(ErrorCode::NoWatcher, Some(&path))));
                }
                let op = Op::CheckWatches {
                    path: path.clone(),
                    watcher_type,
                };
                route.start(op, Some(&path), None, keep, done, false);
            }
            _ => done(self.close().map(|()| Reply::Done)),
        }
    }
}

impl Route<'_> {
    /// Sends an addAuth. A failure that ends the connection moves the client to AuthFailed
    /// (announced to its watchers) before `done` hears it, on the answering thread.
    fn add_auth(self, scheme: String, auth: Vec<u8>, done: Completion) {
        let shared = self.shared.clone();
        let answered: Completion = Box::new(move |reply| {
            // Only the failure that ends the connection is announced; later calls just answer
            // it.
            if matches!(&reply, Err(error) if error.code() == ErrorCode::AuthFailed)
                && shared.transition(&[ClientState::Connected], ClientState::AuthFailed)
            {
                shared.dispatch(WatchedEvent::state(KeeperState::AuthFailed));
            }
            done(reply)
        });
        self.start(
            Op::AddAuth { scheme, auth },
            None,
            None,
            keep,
            answered,
            false,
        );
    }

    /// Removes watchers with the watch gate held (`removal`): from the client's tables at
    /// once, and from the server once no local watcher of the kind is left. `done` hears the
    /// outcome on the answering thread, after the removed watchers' *WatchRemoved events were
    /// queued; the gate is let go there too, never on the dispatcher.
    fn remove_holding(
        self,
        removal: Removal,
        path: String,
        watcher_type: WatcherType,
        watcher: Option<Watcher>,
        done: Completion,
    ) {
        let (removed, none_left) = {
            let mut tables = self.shared.tables.lock();
            if !tables.contains(&path, watcher_type, watcher.as_ref()) {
                drop(tables);
                drop(removal);
                return done(Err(Error::new(ErrorCode::NoWatcher, Some(&path))));
            }
            let removed = tables.remove(&path, watcher_type, watcher.as_ref());
            (removed, tables.none_left(&path, watcher_type))
        };
        let shared = self.shared.clone();
        let announce = move |path: &str| {
            for (watcher, event_type) in removed {
                let event = WatchedEvent::node(event_type, path, -1);
                shared.dispatcher.event(vec![watcher], event);
            }
        };
        // The server keeps one watch per session and kind, so it is told only once no local
        // watcher of the kind is left.
        if !none_left {
            drop(removal);
            announce(&path);
            return done(Ok(Reply::Done));
        }
        let shared = self.shared.clone();
        let sent = path.clone();
        let op = Op::RemoveWatches {
            path: path.clone(),
            watcher_type,
        };
        let answered: Completion = Box::new(move |answer| {
            // The server dropped the session's data watch, which the read cache relies on: the
            // entry goes once that happened, so no fill can slip in before it.
            if matches!(watcher_type, WatcherType::Data | WatcherType::Any) {
                if let Some(cache) = &shared.cache {
                    cache.invalidate(&path);
                }
            }
            drop(removal);
            match answer {
                // A one-shot watch may have fired on the server already.
                Err(error) if error.code() != ErrorCode::NoWatcher => done(Err(error)),
                _ => {
                    announce(&path);
                    done(Ok(Reply::Done))
                }
            }
        });
        self.start(op, Some(&sent), None, keep, answered, false);
    }
}

/// `done`, run on the client's dispatcher thread after whatever was queued before it.
fn on_dispatcher(shared: &Arc<Shared>, done: Completion) -> Completion {
    let shared = shared.clone();
    Box::new(move |reply| shared.dispatcher.completion(Box::new(move || done(reply))))
}

/// A blocking call's answer, from the completion that sent it.
fn answer(receiver: &crossbeam_channel::Receiver<Result<Reply>>) -> Result<()> {
    receiver
        .recv()
        .unwrap_or_else(|_| Err(Error::new(ErrorCode::ConnectionLoss, None)))
        .map(drop)
}

/// Ops that keep client-side state (identities, watch tables, the session's end): they go
/// through this module.
pub(super) fn is_stateful(op: &Op) -> bool {
    matches!(
        op,
        Op::AddAuth { .. } | Op::RemoveWatches { .. } | Op::CheckWatches { .. } | Op::CloseSession
    )
}
