//! Apply: every member applies committed entries in log order. A Txn changes the tree and
//! fires its watches before any later read can see the change; its side effects on sessions
//! follow (a session created is tracked and, on the member its client asked, attached; a
//! session closed loses its watches and its requests); then the member the Txn came from
//! answers whoever waits, which is where that session's next reads run. A snapshot from the
//! leader replaces the tree the same way, as one big step.

use std::io;
use std::sync::Arc;

use parking_lot::RwLock;
use protobuf::Message as _;
use raft::eraftpb::{ConfChangeV2, Entry, EntryType, Snapshot};

use crate::op::{Op, OpResult, Reply, SetWatchesRequest};
use crate::prepare::Refusal;
use crate::proto::{ErrorCode, Id, KeeperState, Perms, WatchedEvent};
use crate::server::client_sessions::{attach_resumed, OpenSession, ResumeSession};
use crate::server::driver::{resolve, Driver};
use crate::server::engine::Engine;
use crate::server::read;
use crate::server::session_layer::LocalSession;
use crate::storage::{decode_payload, SNAPSHOT_FORMAT_VERSION};
use crate::tree::{acl, Applied, DataTree, TxnResult};
use crate::txn::{Proposal, Txn, TxnOp};

/// Who waits for a request of this member.
pub(super) enum Waiter {
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
    /// A session's sync, pipeline entry `seq`.
    Sync {
        session: Arc<LocalSession>,
        seq: u64,
        path: String,
    },
    /// A client opening a session.
    Open(OpenSession),
    /// A client resuming a session on a follower, once it caught up with the leader.
    Resume(ResumeSession),
}

impl Waiter {
    /// The request failed with `code` (its Txn will never apply, or its outcome is unknown).
    pub(super) fn fail(self, engine: &Engine, code: ErrorCode) {
        match self {
            Waiter::Request { session, seq, .. }
            | Waiter::Close { session, seq }
            | Waiter::Sync { session, seq, .. } => resolve(engine, &session, seq, Err(code)),
            Waiter::Open(open) => (open.done)(Err(code)),
            Waiter::Resume(resume) => (resume.done)(Err(code)),
        }
    }

    /// Prepare refused the request.
    pub(super) fn refused(self, engine: &Engine, refusal: Refusal) {
        match (self, refusal) {
            (Waiter::Request { session, seq, .. }, Refusal::Multi(results)) => {
                resolve(engine, &session, seq, Ok(Reply::Multi(results)))
            }
            (waiter, Refusal::Code(code)) => waiter.fail(engine, code),
            (waiter, Refusal::Multi(_)) => waiter.fail(engine, ErrorCode::MarshallingError),
        }
    }

    /// The read index it waited for applied here.
    pub(super) fn caught_up(self, engine: &Engine) {
        match self {
            Waiter::Sync { session, seq, path } => {
                resolve(engine, &session, seq, Ok(Reply::Sync(path)))
            }
            Waiter::Resume(resume) => {
                let alive = engine.tree.read().session(resume.session_id).is_some();
                let result = attach_resumed(engine, &resume, alive);
                (resume.done)(result);
            }
            other => other.fail(engine, ErrorCode::SystemError),
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
    /// A reconfig answers the new "/zookeeper/config", as getData would.
    Reconfig,
}

impl Shape {
    pub(super) fn of(op: &Op) -> Shape {
        match op {
            Op::Create(_) => Shape::Create,
            Op::SetData { .. } | Op::SetAcl { .. } => Shape::Stat,
            Op::Check { path, .. } => Shape::Check(path.clone()),
            Op::Multi(_) => Shape::Multi,
            Op::Reconfig(_) => Shape::Reconfig,
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
            (Shape::Reconfig, TxnResult::Stat(stat)) => {
                let tree = tree.read();
                let node = tree
                    .get(crate::tree::path::CONFIG_ZNODE)
                    .ok_or(ErrorCode::NoNode)?;
                Reply::Data {
                    data: node.data().map(<[u8]>::to_vec),
                    stat,
                }
            }
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
    /// Applies one committed entry. An entry that does not decode stops the member: every
    /// member must apply the same Txns.
    pub(super) fn apply_entry(&mut self, engine: &Engine, entry: Entry) -> io::Result<()> {
        let index = entry.index;
        let corrupt = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("committed entry {index}: {what}"),
            )
        };
        match entry.get_entry_type() {
            EntryType::EntryNormal if entry.data.is_empty() => engine.mark_applied(index),
            EntryType::EntryNormal => {
                let proposal = match self.take_proposed(index, entry.term) {
                    Some(proposal) => proposal,
                    None => {
                        Proposal::decode(&entry.data).map_err(|error| corrupt(error.to_string()))?
                    }
                };
                let reconfig = matches!(proposal.txn.op, TxnOp::Reconfig { .. });
                let applied = engine.apply_txn(index as i64, &proposal.txn);
                self.applied = index;
                self.after_txn(engine, proposal, applied);
                if reconfig {
                    self.membership_changed(engine);
                }
            }
            // raft took the membership change when it was handed out (`Replica::process`).
            EntryType::EntryConfChange => engine.mark_applied(index),
            EntryType::EntryConfChangeV2 => {
                let change = ConfChangeV2::parse_from_bytes(&entry.data)
                    .map_err(|error| corrupt(error.to_string()))?;
                // A reconfig's Txn rides in the change that enters the new membership (the
                // change that leaves the old one carries nothing).
                if change.context.is_empty() {
                    engine.mark_applied(index);
                } else {
                    let proposal = Proposal::decode(&change.context)
                        .map_err(|error| corrupt(error.to_string()))?;
                    let applied = engine.apply_txn(index as i64, &proposal.txn);
                    self.applied = index;
                    self.answer_when_joint_left.push((proposal, applied));
                }
                self.applied = index;
                self.membership_changed(engine);
                let joint = self
                    .replica
                    .as_ref()
                    .is_some_and(|replica| !replica.conf_state().voters_outgoing.is_empty());
                if !joint {
                    for (proposal, applied) in std::mem::take(&mut self.answer_when_joint_left) {
                        self.after_txn(engine, proposal, applied);
                    }
                }
            }
        }
        self.applied = index;
        self.pending.applied_through(index as i64);
        Ok(())
    }

    /// This member's own proposal for the entry at `index` in `term`, if it proposed it: the
    /// entry then needs no decoding. Older ones were cut from the log by a later leader.
    fn take_proposed(&mut self, index: u64, term: u64) -> Option<Proposal> {
        while self
            .proposed
            .front()
            .is_some_and(|(proposed, _, _)| *proposed < index)
        {
            self.proposed.pop_front();
        }
        match self.proposed.front() {
            Some((proposed, proposed_term, _)) if *proposed == index && *proposed_term == term => {
                self.proposed.pop_front().map(|(_, _, proposal)| proposal)
            }
            _ => None,
        }
    }

    /// A Txn's side effects on sessions, then its outcome to whoever waits here.
    fn after_txn(&mut self, engine: &Engine, proposal: Proposal, applied: Applied) {
        let waiter = proposal
            .origin
            .filter(|origin| self.is_mine(origin))
            .and_then(|origin| self.waiting.remove(&origin.request));
        match &proposal.txn.op {
            TxnOp::CreateSession {
                session_id,
                timeout_ms,
                ..
            } if applied.result.is_ok() => {
                self.tracker
                    .add(*session_id, *timeout_ms, engine.clock.now_ms());
                if let Some(origin) = &proposal.origin {
                    self.tracker.set_owner(*session_id, origin.member);
                }
            }
            TxnOp::CloseSession { session_id } => {
                self.tracker.remove(*session_id);
                let asked = match &waiter {
                    Some(Waiter::Close { seq, .. }) => Some(*seq),
                    _ => None,
                };
                engine.end_local_session(*session_id, asked);
                return;
            }
            _ => {}
        }
        let Some(waiter) = waiter else {
            return;
        };
        if let TxnOp::Failed(refusal) = proposal.txn.op {
            return waiter.refused(engine, refusal);
        }
        match waiter {
            Waiter::Request {
                session,
                seq,
                shape,
            } => {
                let result = shape.reply(applied.result, &engine.tree);
                resolve(engine, &session, seq, result);
            }
            Waiter::Open(open) => {
                let result = match (&proposal.txn.op, applied.result) {
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
                    (_, Ok(_)) => Err(ErrorCode::SystemError),
                };
                (open.done)(result);
            }
            other => other.fail(engine, ErrorCode::SystemError),
        }
    }

    /// A snapshot from the leader replaced the tree through `index`: what this member waited
    /// for in the entries it covers cannot be told apart anymore, so it is answered
    /// ConnectionLoss.
    pub(super) fn snapshot_installed(&mut self, engine: &Engine, index: u64) {
        self.applied = index;
        self.abandon_requests(engine);
        self.membership_changed(engine);
        engine
            .snapshot_index
            .store(index, std::sync::atomic::Ordering::Release);
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

    /// An entry without a Txn applied at `index`.
    pub(super) fn mark_applied(&self, index: u64) {
        let mut tree = self.tree.write();
        tree.mark_applied(index as i64);
        self.applied_zxid
            .store(tree.last_zxid(), std::sync::atomic::Ordering::Release);
    }

    /// Takes a snapshot from the leader: made durable first (when the member keeps a data
    /// directory), then the tree is replaced, and each session attached here hears what it
    /// missed as if its client had reconnected with setWatches from the old tree's zxid;
    /// a session the snapshot no longer holds has ended.
    pub(super) fn install_snapshot(&self, snapshot: &Snapshot) -> io::Result<()> {
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let (_, tree_bytes) =
            decode_payload(SNAPSHOT_FORMAT_VERSION, &snapshot.data).map_err(invalid)?;
        let new_tree =
            DataTree::from_snapshot(tree_bytes).map_err(|error| invalid(error.to_string()))?;
        let index = snapshot.get_metadata().index;
        if let Some(store) = &self.snapshots {
            store.write(index as i64, &snapshot.data)?;
        }
        let sessions: Vec<Arc<LocalSession>> = self.sessions.read().values().cloned().collect();
        let mut tree = self.tree.write();
        let relative_zxid = tree.last_zxid();
        let mut rewatch = Vec::new();
        {
            let mut watches = self.watches.lock();
            for session in &sessions {
                let held = watches.session_watches(session.id());
                watches.remove_session(session.id());
                let (exist, data) = held
                    .data
                    .into_iter()
                    .partition(|path| tree.stat(path).is_none());
                rewatch.push((
                    session.clone(),
                    SetWatchesRequest {
                        relative_zxid,
                        data,
                        exist,
                        child: held.child,
                        persistent: held.persistent,
                        persistent_recursive: held.persistent_recursive,
                    },
                ));
            }
        }
        *tree = new_tree;
        super::reconfig::recovered_membership(&self.config, &mut tree);
        self.applied_zxid
            .store(tree.last_zxid(), std::sync::atomic::Ordering::Release);
        for (session, request) in rewatch {
            if tree.session(session.id()).is_none() {
                continue;
            }
            let _ = read::set_watches(&tree, &self.watches, &session, &request, &mut |_, _| {});
        }
        let ended: Vec<i64> = sessions
            .iter()
            .map(|session| session.id())
            .filter(|session_id| tree.session(*session_id).is_none())
            .collect();
        drop(tree);
        for session_id in ended {
            self.end_local_session(session_id, None);
        }
        Ok(())
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
