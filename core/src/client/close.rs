//! Ending a client: closing its session, and stopping its dispatcher thread, either on its own
//! time (`Drop`) or waiting until no callback of the client can run any more
//! (`close_and_join`, which a C program needs before it frees what its callbacks use).

use super::in_process::{Destination, InProcessAnswer};
use super::{Client, ClientState, Error, Link, Result};
use crate::op::Op;
use crate::proto::{ErrorCode, KeeperState, WatchedEvent};

impl Client {
    /// Closes the session: its ephemerals are deleted and its watches dropped. Later calls
    /// answer SessionExpired, as ZooKeeper's clients do after close. Calls still on their way
    /// are answered before this returns (their completions are queued on the dispatcher).
    pub fn close(&self) -> Result<()> {
        let from = [ClientState::Connected, ClientState::Connecting];
        let was_connected = self.shared.transition(&from, ClientState::Closed);
        let was_auth_failed = !was_connected
            && self
                .shared
                .transition(&[ClientState::AuthFailed], ClientState::Closed);
        if !was_connected && !was_auth_failed {
            return Ok(()); // closed or expired already
        }
        let result = match &self.link {
            Link::InProcess { engine, session } => {
                let (sender, receiver) = crossbeam_channel::bounded(1);
                let answer = InProcessAnswer {
                    shared: self.shared.clone(),
                    watcher: None,
                    ticket: None,
                    path: None,
                    destination: Destination::Direct(Box::new(move |reply| {
                        drop(sender.send(reply))
                    })),
                };
                // The engine answers a session's requests in order: every earlier call is
                // answered before the close is.
                engine.submit(session, Op::CloseSession, Box::new(answer));
                receiver
                    .recv()
                    .unwrap_or_else(|_| Err(Error::new(ErrorCode::ConnectionLoss, None)))
                    .map(drop)
            }
            Link::Tcp(connection) => connection.close(),
        };
        if was_connected {
            // As ZooKeeper's clients (3.5+): the default watcher and every waiting watcher hear
            // (None, Closed), so nothing waits forever on a closed client.
            self.shared
                .dispatch(WatchedEvent::state(KeeperState::Closed));
        }
        match result {
            // The session ended first (expired meanwhile): it is closed either way.
            Err(error) if error.code() == ErrorCode::SessionExpired => Ok(()),
            other => other,
        }
    }

    /// Closes the session (as `close`), then runs every watcher and completion still queued
    /// and stops the dispatcher: once this returns, no callback of this client runs, now or
    /// later (events and completions that come after are dropped unrun).
    ///
    /// Called from one of the client's own callbacks, it runs the queued ones itself before
    /// returning, as ZooKeeper's C client drains its completions when `zookeeper_close` is
    /// called from one. From any other thread it waits for the callback running now: do not
    /// call it while holding something a callback of this client waits for.
    pub fn close_and_join(&self) -> Result<()> {
        let closed = self.close();
        self.shared.dispatcher.stop_and_join();
        closed
    }

    /// True on this client's dispatcher thread, that is inside one of its watchers or
    /// completions. A call that waits for an event of this client cannot be made there: the
    /// event would queue behind the waiting callback (recipes refuse it).
    pub fn is_dispatcher_thread(&self) -> bool {
        self.shared.dispatcher.is_current_thread()
    }
}

impl Drop for Client {
    /// Closes the session. The dispatcher thread finishes the events already queued and stops
    /// on its own; it is not joined, so a callback waiting on the dropping thread cannot
    /// deadlock the drop (ZooKeeper's Java close does not join its event thread either). Use
    /// `close_and_join` to wait for it.
    fn drop(&mut self) {
        let _ = self.close();
        self.shared.dispatcher.stop();
    }
}
