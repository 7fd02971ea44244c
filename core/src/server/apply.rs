//! Apply: committed Txns change the tree in zxid order, their watches fire before any later
//! read can see the change, and their side effects on sessions follow (a session created is
//! attached here and tracked, a session closed loses its watches and its requests). Then each
//! Txn's outcome goes to whoever waits for it, which is where a session's next reads run.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::op::{Op, OpResult, Reply};
use crate::proto::{ErrorCode, Id, KeeperState, Perms, WatchedEvent};
use crate::server::driver::{resolve, Driver, OpenSession};
use crate::server::engine::Engine;
use crate::server::session_layer::LocalSession;
use crate::tree::{acl, Applied, DataTree, TxnResult};
use crate::txn::{Txn, TxnOp};

/// Who waits for a proposed Txn.
pub(super) enum Waiter {
    /// Nobody (expiry, reaping): its side effects are all there is.
    Nobody,
    /// A session's write, pipeline entry `seq`; `shape` turns the outcome into its reply.
    Request {
        session: Arc<LocalSession>,
        seq: u64,
        shape: Shape,
    },
    /// A session's closeSession, pipeline entry `seq`.
    Close {
        session: Arc<LocalSession>,
        seq: u64,
    },
    /// A client opening a session.
    Open(OpenSession),
}

impl Waiter {
    /// The Txn will never apply: tell whoever waits.
    pub(super) fn fail(self, engine: &Engine, code: ErrorCode) {
        match self {
            Waiter::Nobody => {}
            Waiter::Request { session, seq, .. } | Waiter::Close { session, seq } => {
                resolve(engine, &session, seq, Err(code))
            }
            Waiter::Open(open) => (open.done)(Err(code)),
        }
    }
}

/// The reply shape of a write: what its applied result becomes.
pub(super) enum Shape {
    Create,
    Stat,
    /// A standalone check answers the znode's Stat as it is.
    Check(String),
    Done,
    Multi,
}

impl Shape {
    pub(super) fn of(op: &Op) -> Shape {
        match op {
            Op::Create(_) => Shape::Create,
            Op::SetData { .. } | Op::SetAcl { .. } => Shape::Stat,
            Op::Check { path, .. } => Shape::Check(path.clone()),
            Op::Multi(_) => Shape::Multi,
            _ => Shape::Done,
        }
    }

    fn reply(
        self,
        result: Result<TxnResult, ErrorCode>,
        tree: &RwLock<DataTree>,
    ) -> Result<Reply, ErrorCode> {
        Ok(match (self, result?) {
            (Shape::Create, TxnResult::Created { path, stat }) => Reply::Create { path, stat },
            (Shape::Stat, TxnResult::Stat(stat)) => Reply::Stat(stat),
            (Shape::Check(path), TxnResult::Checked) => {
                Reply::Stat(tree.read().stat(&path).ok_or(ErrorCode::NoNode)?)
            }
            (Shape::Done, TxnResult::Deleted) => Reply::Done,
            (Shape::Multi, TxnResult::Multi(results)) => Reply::Multi(
                results
                    .into_iter()
                    .map(|result| match result {
                        Ok(TxnResult::Created { path, stat }) => OpResult::Create { path, stat },
                        Ok(TxnResult::Deleted) => OpResult::Delete,
                        Ok(TxnResult::Stat(stat)) => OpResult::SetData(stat),
                        Ok(TxnResult::Checked) => OpResult::Check,
                        Ok(other) => unreachable!("a multi applied {other:?}"),
                        Err(code) => OpResult::Error(Some(code)),
                    })
                    .collect(),
            ),
            (_, result) => unreachable!("a write applied as {result:?}"),
        })
    }
}

impl Driver {
    /// Applies, in zxid order, every proposed Txn committed through `committed`.
    pub(super) fn apply_committed(&mut self, engine: &Engine, committed: i64) {
        let mut applied_through = None;
        while self
            .proposed
            .front()
            .is_some_and(|proposed| proposed.zxid <= committed)
        {
            let proposed = self.proposed.pop_front().expect("front checked");
            let applied = engine.apply_txn(proposed.zxid, &proposed.txn);
            applied_through = Some(proposed.zxid);
            self.after_txn(engine, &proposed.txn, applied, proposed.waiter);
        }
        if let Some(zxid) = applied_through {
            self.pending.applied_through(zxid);
        }
    }

    /// A Txn's side effects on sessions, then its outcome to its waiter.
    fn after_txn(&mut self, engine: &Engine, txn: &Txn, applied: Applied, waiter: Waiter) {
        match &txn.op {
            TxnOp::CreateSession {
                session_id,
                timeout_ms,
                ..
            } if applied.result.is_ok() => {
                self.tracker
                    .add(*session_id, *timeout_ms, engine.clock.now_ms());
            }
            TxnOp::CloseSession { session_id } => {
                self.tracker.remove(*session_id);
                let asked = match &waiter {
                    Waiter::Close { seq, .. } => Some(*seq),
                    _ => None,
                };
                engine.end_local_session(*session_id, asked);
                return;
            }
            _ => {}
        }
        match waiter {
            Waiter::Nobody => {}
            Waiter::Request {
                session,
                seq,
                shape,
            } => {
                let result = shape.reply(applied.result, &engine.tree);
                resolve(engine, &session, seq, result);
            }
            Waiter::Close { .. } => unreachable!("a close applies as a CloseSession Txn"),
            Waiter::Open(open) => {
                let result = match (&txn.op, applied.result) {
                    (
                        TxnOp::CreateSession {
                            session_id,
                            timeout_ms,
                            password,
                        },
                        Ok(_),
                    ) => {
                        let identities = open
                            .ip
                            .as_deref()
                            .map(|ip| vec![Id::new("ip", ip)])
                            .unwrap_or_default();
                        let session = Arc::new(LocalSession::new(
                            *session_id,
                            *password,
                            *timeout_ms,
                            identities,
                            open.sink,
                            engine.clock.now_ms(),
                        ));
                        engine.sessions.write().insert(*session_id, session.clone());
                        Ok(session)
                    }
                    (_, Err(code)) => Err(code),
                    (other, Ok(_)) => unreachable!("a session opened by {other:?}"),
                };
                (open.done)(result);
            }
        }
    }
}

impl Engine {
    /// Applies one Txn and fires its watches before any later read can see its change.
    pub(super) fn apply_txn(&self, zxid: i64, txn: &Txn) -> Applied {
        let mut tree = self.tree.write();
        let applied = tree.apply(zxid, txn);
        self.applied_zxid
            .store(tree.last_zxid(), std::sync::atomic::Ordering::Release);
        if !applied.changes.is_empty() {
            let mut events = Vec::new();
            // The change each event came from, for its ACL.
            let mut sources = Vec::new();
            let mut watches = self.watches.lock();
            for (index, change) in applied.changes.iter().enumerate() {
                watches.fire(change, zxid, &mut events);
                sources.resize(events.len(), index);
            }
            drop(watches);
            if !events.is_empty() {
                let sessions = self.sessions.read();
                for ((session_id, event), index) in events.into_iter().zip(sources) {
                    let Some(session) = sessions.get(&session_id) else {
                        continue;
                    };
                    // As ZooKeeper 3.9 (CVE-2024-23944): a session hears only of znodes it may
                    // read; the watch is used up all the same.
                    if acl::check(
                        &applied.changes[index].acl,
                        Perms::READ,
                        &session.identities(),
                    ) {
                        session.deliver(event);
                    }
                }
            }
        }
        drop(tree);
        applied
    }

    /// A session's close applied: its watches go, and if it is attached here, its requests
    /// end. `asked`: the pipeline entry of the client's closeSession, which is answered (the
    /// client's connection then ends after the reply); otherwise the session expired and its
    /// client hears Expired.
    pub(super) fn end_local_session(&self, session_id: i64, asked: Option<u64>) {
        self.watches.lock().remove_session(session_id);
        let Some(session) = self.sessions.write().remove(&session_id) else {
            return;
        };
        session.mark_closed();
        if let Some(seq) = asked {
            session.pipeline.lock().resolve(seq, Ok(Reply::Done));
        }
        self.advance(&session);
        let left = session.pipeline.lock().drain();
        for answer in left {
            answer.respond(self.response(Err(ErrorCode::SessionExpired)));
        }
        if asked.is_none() {
            session.deliver(WatchedEvent::state(KeeperState::Expired));
            session.detach_sink();
        }
    }
}
