//! The driver of one member: runs each request through session layer -> prepare -> replicate ->
//! persist -> apply -> respond, and owns time (ticks for expiry and reaping).
//!
//! Locks, always taken in this order: `writer` (the single writer: prepare, replicate, apply
//! happen in one order), `tree`, `watches`, `sessions`. Reads take only `tree` (shared) and,
//! when they leave a watch, `watches`: so a watch is registered atomically with the read it
//! guards, and an apply fires watches before any later read can see its change.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::op::{Op, OpResult, Reply, Response, SetWatchesRequest};
use crate::prepare::{PendingChanges, Requester, WriteLimits};
use crate::proto::{ErrorCode, Id, KeeperState, WatchedEvent, CONTAINER_EPHEMERAL_OWNER};
use crate::replication::{Replicator, SingleMember};
use crate::server::clock::Clock;
use crate::server::commit::{Queued, Ticket};
use crate::server::config::ServerConfig;
use crate::server::read::{self, WatchRegistered};
use crate::server::recovery::{recover, StartError};
use crate::server::session_layer::{authenticate, session_password, LocalSession, SessionSink};
use crate::session::{negotiate_timeout, SessionTracker};
use crate::storage::SnapshotStore;
use crate::tree::{DataTree, TxnResult};
use crate::txn::{Txn, TxnOp};
use crate::watch::{WatchKind, WatchRegistry};

/// A write proposed and not yet answered: `Engine::finish` waits for its commit.
pub struct Proposal {
    op: Op,
    ticket: Ticket,
}

/// The single writer's state: what prepare and session bookkeeping change together.
pub(super) struct Writer {
    tracker: SessionTracker,
    next_session_id: i64,
    last_reap_ms: u64,
}

/// One member's engine.
pub struct Engine {
    pub(super) config: ServerConfig,
    pub(super) limits: WriteLimits,
    pub(super) clock: Arc<dyn Clock>,
    writer: Mutex<Writer>,
    /// Orders and commits Txns (the replicate and persist stages).
    pub(super) log: Mutex<Box<dyn Replicator>>,
    /// Proposed Txns waiting to apply, in zxid order.
    pub(super) applying: Mutex<VecDeque<Queued>>,
    /// What proposed but unapplied Txns will change, for prepare.
    pub(super) pending: Mutex<PendingChanges>,
    /// Set when the log failed: the member stops accepting writes (fail-stop).
    pub(super) failed: AtomicBool,
    /// Where snapshots go (none in memory).
    pub(super) snapshots: Option<SnapshotStore>,
    /// The zxid of the newest snapshot.
    pub(super) snapshot_zxid: AtomicI64,
    pub(super) tree: RwLock<DataTree>,
    pub(super) watches: Mutex<WatchRegistry>,
    pub(super) sessions: RwLock<HashMap<i64, Arc<LocalSession>>>,
}

impl Engine {
    /// An engine over the state recovered from `config.data_dir` (empty in memory when there
    /// is none). `config` must be valid.
    pub fn open(config: ServerConfig) -> Result<Engine, StartError> {
        let recovered = recover(&config)?;
        let clock = config.clock.clone();
        let now_ms = clock.now_ms();
        // Session ids as ZooKeeper makes them: member id in the top byte, then time-derived
        // bits so ids are not reused after a restart.
        let time_bits = ((clock.wall_ms() as u64) << 24) >> 8;
        let next_session_id = ((config.member_id as u64) << 56 | time_bits) as i64;
        // Never reuse a recovered session's id, even if the wall clock went back since.
        let next_session_id = recovered
            .tree
            .sessions()
            .map(|(session_id, _)| session_id)
            .filter(|session_id| (*session_id as u64 >> 56) == config.member_id as u64)
            .map(|session_id| session_id.wrapping_add(1))
            .fold(next_session_id, i64::max);
        let mut tracker = SessionTracker::new(config.tick_ms as u64, now_ms);
        // Recovered sessions get a whole timeout from now to reconnect, as in ZooKeeper.
        for (session_id, record) in recovered.tree.sessions() {
            tracker.add(session_id, record.timeout_ms, now_ms);
        }
        let last_zxid = recovered.tree.last_zxid();
        Ok(Engine {
            limits: WriteLimits {
                data_bytes_max: config.data_bytes_max,
                ephemerals_per_session_max: config.ephemerals_per_session_max,
                ttl_enabled: config.ttl_enabled,
            },
            writer: Mutex::new(Writer {
                tracker,
                next_session_id,
                last_reap_ms: now_ms,
            }),
            log: Mutex::new(Box::new(SingleMember::after(recovered.log, last_zxid))),
            snapshots: recovered.snapshots,
            snapshot_zxid: AtomicI64::new(recovered.snapshot_zxid),
            applying: Mutex::new(VecDeque::new()),
            pending: Mutex::new(PendingChanges::default()),
            failed: AtomicBool::new(false),
            tree: RwLock::new(recovered.tree),
            watches: Mutex::new(WatchRegistry::new(config.watches_per_session_max)),
            sessions: RwLock::new(HashMap::new()),
            clock,
            config,
        })
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The newest applied zxid.
    pub fn last_zxid(&self) -> i64 {
        self.tree.read().last_zxid()
    }

    /// Creates a session with the requested timeout (clamped into the configured range).
    /// `ip` is the connection's address for ip ACLs and whoAmI.
    pub fn open_session(
        &self,
        requested_timeout_ms: i64,
        sink: Arc<dyn SessionSink>,
        ip: Option<&str>,
    ) -> Result<Arc<LocalSession>, ErrorCode> {
        let timeout_ms = negotiate_timeout(
            requested_timeout_ms,
            self.config.session_timeout_ms_min(),
            self.config.session_timeout_ms_max(),
        );
        let mut writer = self.writer.lock();
        if self.sessions.read().len() >= self.config.sessions_max {
            return Err(ErrorCode::QuotaExceeded);
        }
        // 0 means "no owner" and the container marker means "container" in ephemeralOwner.
        while writer.next_session_id == 0 || writer.next_session_id == CONTAINER_EPHEMERAL_OWNER {
            writer.next_session_id = writer.next_session_id.wrapping_add(1);
        }
        let session_id = writer.next_session_id;
        writer.next_session_id = writer.next_session_id.wrapping_add(1);
        let password = session_password(session_id, self.clock.wall_ms());
        let txn = Txn {
            time_ms: self.clock.wall_ms(),
            op: TxnOp::CreateSession {
                session_id,
                timeout_ms,
                password,
            },
        };
        self.commit(txn)?.result?;
        let now_ms = self.clock.now_ms();
        writer.tracker.add(session_id, timeout_ms, now_ms);
        let identities = ip.map(|ip| vec![Id::new("ip", ip)]).unwrap_or_default();
        let session = Arc::new(LocalSession::new(
            session_id, password, timeout_ms, identities, sink, now_ms,
        ));
        self.sessions.write().insert(session_id, session.clone());
        Ok(session)
    }

    /// Resumes a session on a new connection (a client reconnecting with id and password).
    /// SessionExpired when the session is unknown, closed, or the password is wrong, as
    /// ZooKeeper answers all three.
    pub fn resume_session(
        &self,
        session_id: i64,
        password: &[u8],
        sink: Arc<dyn SessionSink>,
        ip: Option<&str>,
    ) -> Result<Arc<LocalSession>, ErrorCode> {
        // Under the writer lock: a session cannot end between the check and the move, so the
        // new connection hears of any later end.
        let writer = self.writer.lock();
        let known = self.sessions.read().get(&session_id).cloned();
        let (session, resumed_here) = match known {
            Some(session) => (session, false),
            // A session recovered at start-up whose client comes back: attach it here.
            None => {
                let record = self.tree.read().session(session_id).cloned();
                let record = record.filter(|record| {
                    writer.tracker.is_active(session_id) && record.password[..] == *password
                });
                let record = record.ok_or(ErrorCode::SessionExpired)?;
                let session = Arc::new(LocalSession::new(
                    session_id,
                    record.password,
                    record.timeout_ms,
                    Vec::new(),
                    sink.clone(),
                    self.clock.now_ms(),
                ));
                session.set_attached(false);
                self.sessions.write().insert(session_id, session.clone());
                (session, true)
            }
        };
        if session.is_closed() || session.password()[..] != *password {
            return Err(ErrorCode::SessionExpired);
        }
        session.touch(self.clock.now_ms());
        if let Some(ip) = ip {
            session.set_ip(ip);
        }
        // A session attached just above already sends to this connection.
        if !resumed_here {
            session.replace_sink(sink);
        }
        Ok(session)
    }

    /// Records that the session's client is alive (a ping, or any packet).
    pub fn touch(&self, session: &LocalSession) {
        session.touch(self.clock.now_ms());
    }

    /// Runs one request of `session` and answers it. `on_watch` hears of each watch the request
    /// leaves, while the tree lock is still held.
    pub fn submit(
        &self,
        session: &LocalSession,
        op: Op,
        on_watch: &mut dyn FnMut(&str, WatchRegistered),
    ) -> Response {
        if session.is_closed() {
            return self.error(ErrorCode::SessionExpired);
        }
        session.touch(self.clock.now_ms());
        match op {
            Op::Create(_)
            | Op::Delete { .. }
            | Op::SetData { .. }
            | Op::SetAcl { .. }
            | Op::Check { .. }
            | Op::Multi(_) => self.write(session, op),
            // Only the server's own reaper deletes containers: ZooKeeper's deleteContainer
            // checks no ACL, so a client could otherwise delete any childless znode.
            Op::DeleteContainer { .. } => self.error(ErrorCode::Unimplemented),
            Op::CloseSession => self.close_session(session),
            Op::AddAuth { scheme, auth } => self.add_auth(session, &scheme, &auth),
            Op::WhoAmI => self.ok(Reply::WhoAmI(session.client_infos())),
            Op::Sync { path } => self.ok(Reply::Sync(path)),
            Op::SetWatches(request) => self.set_watches(session, &request, on_watch),
            Op::AddWatch { path, mode } => {
                let (kind, registered) = match mode {
                    crate::proto::AddWatchMode::Persistent => {
                        (WatchKind::Persistent, WatchRegistered::Persistent)
                    }
                    crate::proto::AddWatchMode::PersistentRecursive => (
                        WatchKind::PersistentRecursive,
                        WatchRegistered::PersistentRecursive,
                    ),
                };
                let tree = self.tree.read();
                let result =
                    read::register(&self.watches, session, &path, kind, registered, on_watch);
                Response {
                    zxid: tree.last_zxid(),
                    result: result.map(|()| Reply::Done),
                }
            }
            Op::RemoveWatches { path, watcher_type } => {
                let removed = self
                    .watches
                    .lock()
                    .remove(session.id(), &path, watcher_type);
                self.done_or(removed, ErrorCode::NoWatcher)
            }
            Op::CheckWatches { path, watcher_type } => {
                let present = self
                    .watches
                    .lock()
                    .contains(session.id(), &path, watcher_type);
                self.done_or(present, ErrorCode::NoWatcher)
            }
            read => self.read(session, read, on_watch),
        }
    }

    fn ok(&self, reply: Reply) -> Response {
        Response {
            zxid: self.last_zxid(),
            result: Ok(reply),
        }
    }

    fn error(&self, code: ErrorCode) -> Response {
        Response {
            zxid: self.last_zxid(),
            result: Err(code),
        }
    }

    fn done_or(&self, ok: bool, code: ErrorCode) -> Response {
        if ok {
            self.ok(Reply::Done)
        } else {
            self.error(code)
        }
    }

    fn add_auth(&self, session: &LocalSession, scheme: &str, auth: &[u8]) -> Response {
        let ip = session
            .identities()
            .iter()
            .find(|id| id.scheme == "ip")
            .map(|id| id.id.clone());
        match authenticate(
            scheme,
            auth,
            self.config.super_digest.as_deref(),
            ip.as_deref(),
        ) {
            Some(ids) => {
                for id in ids {
                    session.add_identity(id);
                }
                self.ok(Reply::Done)
            }
            None => self.error(ErrorCode::AuthFailed),
        }
    }

    /// Serves a read from the local tree: every earlier request of the session has been applied
    /// because writes complete before their caller sends the next request.
    fn read(
        &self,
        session: &LocalSession,
        op: Op,
        on_watch: &mut dyn FnMut(&str, WatchRegistered),
    ) -> Response {
        let tree = self.tree.read();
        let result = read::serve(
            &tree,
            &self.watches,
            session,
            op,
            self.config.reply_bytes_max,
            on_watch,
        );
        Response {
            zxid: tree.last_zxid(),
            result,
        }
    }

    fn set_watches(
        &self,
        session: &LocalSession,
        request: &SetWatchesRequest,
        on_watch: &mut dyn FnMut(&str, WatchRegistered),
    ) -> Response {
        let tree = self.tree.read();
        let result = read::set_watches(&tree, &self.watches, session, request, on_watch);
        Response {
            zxid: tree.last_zxid(),
            result,
        }
    }

    fn write(&self, session: &LocalSession, op: Op) -> Response {
        match self.propose_write(session, op) {
            Ok(proposal) => self.finish(proposal),
            Err(response) => response,
        }
    }

    /// Starts a write: session checks, prepare and propose, but no waiting for the commit, so a
    /// connection can start its next request meanwhile and one fsync covers them all. A write
    /// that fails before it becomes a Txn is answered at once (`Err`).
    pub fn propose_write(&self, session: &LocalSession, op: Op) -> Result<Proposal, Response> {
        if session.is_closed() {
            return Err(self.error(ErrorCode::SessionExpired));
        }
        session.touch(self.clock.now_ms());
        let writer = self.writer.lock();
        if self.failed.load(Ordering::Acquire) {
            return Err(self.error(ErrorCode::SystemError));
        }
        // Checked again under the writer lock: a close or expiry that committed while this
        // request waited has deleted the session's ephemerals, and an ephemeral created now
        // would never be deleted.
        if session.is_closed() {
            return Err(self.error(ErrorCode::SessionExpired));
        }
        // A multi holds only writes ZooKeeper can decode in one (MultiOperationRecord): anything
        // else fails the whole request, as a request ZooKeeper cannot read.
        if let Op::Multi(ops) = &op {
            if !ops.iter().all(Op::is_multi_write) {
                return Err(self.error(ErrorCode::MarshallingError));
            }
        }
        let identities = session.identities();
        let who = Requester {
            session_id: session.id(),
            identities: &identities,
        };
        let prepared = self.prepare(|prepare| match &op {
            Op::Multi(ops) => prepare
                .multi(who, ops)
                .map_err(|results| Ok(Reply::Multi(results))),
            single => prepare.write(who, single).map_err(Err),
        });
        drop(identities);
        let txn_op = match prepared {
            Ok(txn_op) => txn_op,
            // A failed write changes nothing and is answered without a Txn.
            Err(result) => {
                return Err(Response {
                    zxid: self.last_zxid(),
                    result,
                })
            }
        };
        let txn = Txn {
            time_ms: self.clock.wall_ms(),
            op: txn_op,
        };
        // Proposed under the writer lock (zxids follow prepare order), committed without it,
        // so other writers prepare meanwhile and one fsync covers them all.
        let proposed = self.propose(txn);
        drop(writer);
        match proposed {
            Ok(ticket) => Ok(Proposal { op, ticket }),
            Err(code) => Err(self.error(code)),
        }
    }

    /// Waits for a proposed write to commit and apply; answers it.
    pub fn finish(&self, proposal: Proposal) -> Response {
        match self.complete(proposal.ticket) {
            Ok(applied) => Response {
                zxid: self.last_zxid(),
                result: reply_for(&proposal.op, applied.result, &self.tree),
            },
            Err(code) => self.error(code),
        }
    }

    fn close_session(&self, session: &LocalSession) -> Response {
        let mut writer = self.writer.lock();
        if let Err(code) = self.end_session(&mut writer, session.id(), false) {
            return self.error(code);
        }
        self.ok(Reply::Done)
    }

    /// Closes a session: its ephemerals go in one Txn, its watches and local state with it.
    /// `detach`: tell the session's connection it ended (expiry, shutdown); not when the
    /// connection asked for the close itself, since it still owes its client the reply.
    fn end_session(
        &self,
        writer: &mut Writer,
        session_id: i64,
        detach: bool,
    ) -> Result<(), ErrorCode> {
        if self.failed.load(Ordering::Acquire) {
            return Err(ErrorCode::SystemError);
        }
        let session = self.sessions.read().get(&session_id).cloned();
        if session
            .as_ref()
            .is_some_and(|session| !session.mark_closed())
        {
            return Err(ErrorCode::SessionExpired);
        }
        writer.tracker.set_closing(session_id);
        let txn_op = self.prepare(|prepare| prepare.close_session(session_id));
        let txn = Txn {
            time_ms: self.clock.wall_ms(),
            op: txn_op,
        };
        let result = self.commit(txn);
        writer.tracker.remove(session_id);
        self.watches.lock().remove_session(session_id);
        self.sessions.write().remove(&session_id);
        if detach {
            if let Some(session) = &session {
                session.detach_sink();
            }
        }
        result.map(|_| ())
    }

    /// Moves time forward for the core: expires sessions whose timeout passed and reaps empty
    /// containers and expired TTL znodes. Called every tick by the ticker, or by tests.
    pub fn tick(&self) {
        let now_ms = self.clock.now_ms();
        let mut writer = self.writer.lock();
        if self.failed.load(Ordering::Acquire) {
            return;
        }
        for session in self.sessions.read().values() {
            let touched_ms = if session.is_attached() {
                now_ms
            } else {
                session.last_touch_ms()
            };
            writer.tracker.touch(session.id(), touched_ms);
        }
        for session_id in writer.tracker.expired(now_ms) {
            let session = self.sessions.read().get(&session_id).cloned();
            tracing::info!(
                session_id = format_args!("0x{session_id:x}"),
                "session expired"
            );
            // Errors are logged inside commit; an expired session is gone either way.
            let _ = self.end_session(&mut writer, session_id, true);
            if let Some(session) = session {
                session.deliver(WatchedEvent::state(KeeperState::Expired));
            }
        }
        if now_ms.saturating_sub(writer.last_reap_ms) >= self.config.container_check_interval_ms {
            writer.last_reap_ms = now_ms;
            self.reap(&mut writer);
        }
        drop(writer);
        self.snapshot_if_due();
    }

    /// Deletes empty containers and expired TTL znodes, as ZooKeeper's ContainerManager. The
    /// writer lock (`_writer`) is held from candidate to delete, so no new write slips in
    /// between; prepare still sees writes proposed before and not yet applied.
    fn reap(&self, _writer: &mut Writer) {
        let candidates = self.tree.read().reap_candidates(self.clock.wall_ms());
        for path in candidates {
            let server = Requester {
                session_id: 0,
                identities: &[],
            };
            let prepared = self.prepare(|prepare| {
                prepare.write(server, &Op::DeleteContainer { path: path.clone() })
            });
            match prepared {
                Ok(txn_op) => {
                    let txn = Txn {
                        time_ms: self.clock.wall_ms(),
                        op: txn_op,
                    };
                    if self.commit(txn).is_err() {
                        return;
                    }
                }
                Err(code) => tracing::debug!(path, %code, "reap candidate skipped"),
            }
        }
    }

    /// Closes every session (server shutdown).
    pub fn close_all_sessions(&self) {
        let ids: Vec<i64> = self.sessions.read().keys().copied().collect();
        let mut writer = self.writer.lock();
        for session_id in ids {
            let _ = self.end_session(&mut writer, session_id, true);
        }
    }
}

/// Turns an applied Txn's result into the reply for the op that asked for it.
fn reply_for(
    op: &Op,
    result: Result<TxnResult, ErrorCode>,
    tree: &RwLock<DataTree>,
) -> Result<Reply, ErrorCode> {
    let result = result?;
    Ok(match (op, result) {
        (Op::Create(_), TxnResult::Created { path, stat }) => Reply::Create { path, stat },
        (Op::SetData { .. } | Op::SetAcl { .. }, TxnResult::Stat(stat)) => Reply::Stat(stat),
        (Op::Check { path, .. }, TxnResult::Checked) => {
            Reply::Stat(tree.read().stat(path).ok_or(ErrorCode::NoNode)?)
        }
        (Op::Delete { .. } | Op::DeleteContainer { .. }, TxnResult::Deleted) => Reply::Done,
        (Op::Multi(_), TxnResult::Multi(results)) => Reply::Multi(
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
        (op, result) => unreachable!("{op:?} applied as {result:?}"),
    })
}
