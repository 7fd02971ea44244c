//! The driver: a member's single writer. It takes requests and time from the inbox in rounds:
//! prepares each write against the tree plus what is proposed and not yet applied, proposes
//! it to the replicate stage, makes the round durable (one fsync for every write of the round:
//! group commit), applies the committed Txns in zxid order and hands each outcome to whoever
//! waits for it. Session expiry, reaping and snapshots are its decisions too.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::op::{Op, Reply};
use crate::prepare::{PendingChanges, Prepare, Refusal, Requester, Role};
use crate::proto::{ErrorCode, Id, CONTAINER_EPHEMERAL_OWNER};
use crate::replication::{Replicator, SingleMember};
use crate::server::apply::{Shape, Waiter};
use crate::server::config::ServerConfig;
use crate::server::engine::Engine;
use crate::server::session_layer::{session_password, LocalSession, SessionSink};
use crate::session::{negotiate_timeout, SessionTracker};
use crate::storage::LogStore;
use crate::tree::DataTree;
use crate::txn::{Txn, TxnOp};

/// Runs once, when what it waits for is done.
pub(super) type Done = Box<dyn FnOnce() + Send>;
/// Hears the session an open or a resume gives, or why there is none.
pub(super) type SessionDone = Box<dyn FnOnce(Result<Arc<LocalSession>, ErrorCode>) + Send>;

/// What the driver is asked to do.
pub(super) enum Event {
    /// A write of a session (pipeline entry `seq`), judged with the session's identities as
    /// they were when it was sent.
    Request {
        session: Arc<LocalSession>,
        seq: u64,
        op: Op,
        identities: Vec<Id>,
    },
    Open(OpenSession),
    Resume(ResumeSession),
    /// A tick of time; `Done` runs once what it decided has applied.
    Tick(Done),
    /// Stop serving; `Done` runs once stopped.
    Stop(Done),
}

/// A client asking for a new session.
pub(super) struct OpenSession {
    pub(super) requested_timeout_ms: i64,
    pub(super) sink: Arc<dyn SessionSink>,
    pub(super) ip: Option<String>,
    pub(super) done: SessionDone,
}

/// A client reconnecting with a session's id and password.
pub(super) struct ResumeSession {
    pub(super) session_id: i64,
    pub(super) password: Vec<u8>,
    pub(super) sink: Arc<dyn SessionSink>,
    pub(super) ip: Option<String>,
    pub(super) done: SessionDone,
}

impl Event {
    /// Answers the event with `code` without running it (the member stopped).
    pub(super) fn refuse(self, engine: &Engine, code: ErrorCode) {
        match self {
            Event::Request { session, seq, .. } => resolve(engine, &session, seq, Err(code)),
            Event::Open(open) => (open.done)(Err(code)),
            Event::Resume(resume) => (resume.done)(Err(code)),
            Event::Tick(done) | Event::Stop(done) => done(),
        }
    }
}

/// Hands a session's write its outcome and sends what its pipeline can send now.
pub(super) fn resolve(
    engine: &Engine,
    session: &LocalSession,
    seq: u64,
    result: Result<Reply, ErrorCode>,
) {
    session.pipeline.lock().resolve(seq, result);
    engine.advance(session);
}

/// A Txn proposed and not yet applied.
pub(super) struct Proposed {
    pub(super) zxid: i64,
    pub(super) txn: Arc<Txn>,
    pub(super) waiter: Waiter,
}

/// The single writer's state.
pub(crate) struct Driver {
    /// Orders and commits Txns (the replicate and persist stages); None once stopped.
    replicator: Option<Box<dyn Replicator>>,
    /// What proposed but unapplied Txns will change, for prepare.
    pub(super) pending: PendingChanges,
    /// The sessions' liveness (the leader's, in an ensemble).
    pub(super) tracker: SessionTracker,
    next_session_id: i64,
    last_reap_ms: u64,
    /// Proposed Txns in zxid order.
    pub(super) proposed: VecDeque<Proposed>,
    /// Runs once everything through the zxid has applied (ticks wait on this).
    after_apply: Vec<(i64, Done)>,
}

impl Driver {
    /// The driver of an engine recovered to `tree`, continuing `log`.
    pub(super) fn recovered(
        config: &ServerConfig,
        tree: &DataTree,
        log: Box<dyn LogStore>,
        now_ms: u64,
    ) -> Driver {
        // Session ids as ZooKeeper makes them: member id in the top byte, then time-derived
        // bits so ids are not reused after a restart.
        let time_bits = ((config.clock.wall_ms() as u64) << 24) >> 8;
        let next_session_id = ((config.member_id as u64) << 56 | time_bits) as i64;
        // Never reuse a recovered session's id, even if the wall clock went back since.
        let next_session_id = tree
            .sessions()
            .map(|(session_id, _)| session_id)
            .filter(|session_id| (*session_id as u64 >> 56) == config.member_id as u64)
            .map(|session_id| session_id.wrapping_add(1))
            .fold(next_session_id, i64::max);
        let mut tracker = SessionTracker::new(config.tick_ms as u64, now_ms);
        // Recovered sessions get a whole timeout from now to reconnect, as in ZooKeeper.
        for (session_id, record) in tree.sessions() {
            tracker.add(session_id, record.timeout_ms, now_ms);
        }
        Driver {
            replicator: Some(Box::new(SingleMember::after(log, tree.last_zxid()))),
            pending: PendingChanges::default(),
            tracker,
            next_session_id,
            last_reap_ms: now_ms,
            proposed: VecDeque::new(),
            after_apply: Vec::new(),
        }
    }

    /// One round: runs every event, makes what they proposed durable, applies it and answers.
    pub(super) fn round(&mut self, engine: &Engine, events: Vec<Event>) {
        let mut stop = None;
        for event in events {
            match event {
                Event::Request {
                    session,
                    seq,
                    op,
                    identities,
                } => self.request(engine, session, seq, op, &identities),
                Event::Open(open) => self.open(engine, open),
                Event::Resume(resume) => self.resume(engine, resume),
                Event::Tick(done) => self.tick(engine, done),
                Event::Stop(done) => stop = Some(done),
            }
        }
        self.commit_and_apply(engine);
        if let Some(done) = stop {
            self.stop(engine);
            done();
        }
    }

    fn request(
        &mut self,
        engine: &Engine,
        session: Arc<LocalSession>,
        seq: u64,
        op: Op,
        identities: &[Id],
    ) {
        if engine.failed.load(Ordering::Acquire) {
            return resolve(engine, &session, seq, Err(ErrorCode::SystemError));
        }
        // A session closing (by its client or by expiry) takes no more writes: an ephemeral
        // created now would outlive the close that deletes the session's ephemerals.
        if session.is_closed() || !self.tracker.is_active(session.id()) {
            return resolve(engine, &session, seq, Err(ErrorCode::SessionExpired));
        }
        if op == Op::CloseSession {
            self.tracker.set_closing(session.id());
            let txn_op = self.prepare(engine, |prepare| prepare.close_session(session.id()));
            return self.propose(engine, txn_op, Waiter::Close { session, seq });
        }
        let who = Requester {
            session_id: session.id(),
            identities,
            role: Role::Client,
        };
        match self.prepare(engine, |prepare| prepare.request(who, &op)) {
            Ok(txn_op) => {
                let shape = Shape::of(&op);
                self.propose(
                    engine,
                    txn_op,
                    Waiter::Request {
                        session,
                        seq,
                        shape,
                    },
                );
            }
            // A failed write changes nothing and is answered without a Txn.
            Err(Refusal::Code(code)) => resolve(engine, &session, seq, Err(code)),
            Err(Refusal::Multi(results)) => {
                resolve(engine, &session, seq, Ok(Reply::Multi(results)))
            }
        }
    }

    fn open(&mut self, engine: &Engine, open: OpenSession) {
        if engine.failed.load(Ordering::Acquire) {
            return (open.done)(Err(ErrorCode::SystemError));
        }
        if engine.sessions.read().len() >= engine.config.sessions_max {
            return (open.done)(Err(ErrorCode::QuotaExceeded));
        }
        let timeout_ms = negotiate_timeout(
            open.requested_timeout_ms,
            engine.config.session_timeout_ms_min(),
            engine.config.session_timeout_ms_max(),
        );
        // 0 means "no owner" and the container marker means "container" in ephemeralOwner.
        while self.next_session_id == 0 || self.next_session_id == CONTAINER_EPHEMERAL_OWNER {
            self.next_session_id = self.next_session_id.wrapping_add(1);
        }
        let session_id = self.next_session_id;
        self.next_session_id = self.next_session_id.wrapping_add(1);
        let password = session_password(session_id, engine.clock.wall_ms());
        let txn_op = TxnOp::CreateSession {
            session_id,
            timeout_ms,
            password,
        };
        self.propose(engine, txn_op, Waiter::Open(open));
    }

    fn resume(&mut self, engine: &Engine, resume: ResumeSession) {
        let result = self.resumed(engine, &resume);
        (resume.done)(result);
    }

    /// The session a reconnecting client resumes. The driver decides expiry, so a session
    /// cannot end between this check and the move, and the new connection hears of any end.
    fn resumed(
        &mut self,
        engine: &Engine,
        resume: &ResumeSession,
    ) -> Result<Arc<LocalSession>, ErrorCode> {
        let session_id = resume.session_id;
        let known = engine.sessions.read().get(&session_id).cloned();
        let (session, attached_here) = match known {
            Some(session) => (session, false),
            // A session recovered at start-up whose client comes back: attach it here.
            None => {
                let record = engine.tree.read().session(session_id).cloned();
                let record = record.filter(|record| {
                    self.tracker.is_active(session_id) && record.password[..] == resume.password
                });
                let record = record.ok_or(ErrorCode::SessionExpired)?;
                let session = Arc::new(LocalSession::new(
                    session_id,
                    record.password,
                    record.timeout_ms,
                    Vec::new(),
                    resume.sink.clone(),
                    engine.clock.now_ms(),
                ));
                session.set_attached(false);
                engine.sessions.write().insert(session_id, session.clone());
                (session, true)
            }
        };
        if session.is_closed() || session.password()[..] != resume.password {
            return Err(ErrorCode::SessionExpired);
        }
        session.touch(engine.clock.now_ms());
        if let Some(ip) = &resume.ip {
            session.set_ip(ip);
        }
        if !attached_here {
            session.replace_sink(resume.sink.clone());
        }
        Ok(session)
    }

    /// Expires the sessions whose time passed, reaps, snapshots when due.
    fn tick(&mut self, engine: &Engine, done: Done) {
        let now_ms = engine.clock.now_ms();
        if !engine.failed.load(Ordering::Acquire) && self.replicator.is_some() {
            for session in engine.sessions.read().values() {
                let touched_ms = if session.is_attached() {
                    now_ms
                } else {
                    session.last_touch_ms()
                };
                self.tracker.touch(session.id(), touched_ms);
            }
            for session_id in self.tracker.expired(now_ms) {
                tracing::info!(
                    session_id = format_args!("0x{session_id:x}"),
                    "session expired"
                );
                // Its requests from now on answer SessionExpired; the close applies below.
                if let Some(session) = engine.sessions.read().get(&session_id) {
                    session.mark_closed();
                }
                let txn_op = self.prepare(engine, |prepare| prepare.close_session(session_id));
                self.propose(engine, txn_op, Waiter::Nobody);
            }
            if now_ms.saturating_sub(self.last_reap_ms) >= engine.config.container_check_interval_ms
            {
                self.last_reap_ms = now_ms;
                self.reap(engine);
            }
            self.snapshot_if_due(engine);
        }
        let through = self.last_proposed_zxid();
        self.after_apply.push((through, done));
    }

    /// Deletes empty containers and expired TTL znodes, as ZooKeeper's ContainerManager.
    fn reap(&mut self, engine: &Engine) {
        let candidates = engine.tree.read().reap_candidates(engine.clock.wall_ms());
        for path in candidates {
            let op = Op::DeleteContainer { path };
            match self.prepare(engine, |prepare| prepare.request(Requester::reaper(), &op)) {
                Ok(txn_op) => self.propose(engine, txn_op, Waiter::Nobody),
                Err(refusal) => tracing::debug!(?op, ?refusal, "reap candidate skipped"),
            }
        }
    }

    /// Runs `prepare_with` against the tree plus the pending changes, for the Txn that will
    /// get the next zxid.
    fn prepare<R>(
        &mut self,
        engine: &Engine,
        prepare_with: impl FnOnce(&mut Prepare<'_>) -> R,
    ) -> R {
        let zxid = self.last_proposed_zxid() + 1;
        let tree = engine.tree.read();
        let mut prepare = Prepare::new(&tree, &mut self.pending, &engine.limits, zxid);
        prepare_with(&mut prepare)
    }

    fn last_proposed_zxid(&self) -> i64 {
        match &self.replicator {
            Some(replicator) => replicator.next_zxid() - 1,
            None => 0,
        }
    }

    /// Proposes a prepared Txn; its outcome goes to `waiter` once it applies.
    fn propose(&mut self, engine: &Engine, txn_op: TxnOp, waiter: Waiter) {
        let txn = Arc::new(Txn {
            time_ms: engine.clock.wall_ms(),
            op: txn_op,
        });
        let Some(replicator) = &mut self.replicator else {
            return waiter.fail(engine, ErrorCode::ConnectionLoss);
        };
        match replicator.propose(txn.clone()) {
            Ok(zxid) => self.proposed.push_back(Proposed { zxid, txn, waiter }),
            Err(error) => {
                waiter.fail(engine, ErrorCode::SystemError);
                self.fail(engine, error);
            }
        }
    }

    /// Makes every proposed Txn durable (one fsync), then applies it.
    fn commit_and_apply(&mut self, engine: &Engine) {
        if !self.proposed.is_empty() {
            let Some(replicator) = &mut self.replicator else {
                return;
            };
            match replicator.commit() {
                Ok(committed) => self.apply_committed(engine, committed),
                Err(error) => self.fail(engine, error),
            }
        }
        let applied = engine.last_zxid();
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.after_apply)
            .into_iter()
            .partition(|(zxid, _)| *zxid <= applied || self.proposed.is_empty());
        self.after_apply = waiting;
        for (_, done) in due {
            done();
        }
    }

    /// Writes a snapshot once `snap_count` Txns have applied since the last one, then drops the
    /// snapshots past `snapshots_retained` and the log only they needed. The tree is
    /// read-locked while it is encoded, so the snapshot is exact.
    fn snapshot_if_due(&mut self, engine: &Engine) {
        let Some(store) = &engine.snapshots else {
            return;
        };
        if engine.last_zxid() - engine.snapshot_zxid.load(Ordering::Acquire)
            < engine.config.snap_count as i64
        {
            return;
        }
        let (zxid, bytes) = {
            let tree = engine.tree.read();
            (tree.last_zxid(), tree.to_snapshot())
        };
        if let Err(error) = store.write(zxid, &bytes) {
            return self.fail(engine, error);
        }
        engine.snapshot_zxid.store(zxid, Ordering::Release);
        tracing::info!(
            zxid = format_args!("0x{zxid:x}"),
            bytes = bytes.len(),
            "snapshot written"
        );
        match store.purge(engine.config.snapshots_retained) {
            Ok(Some(oldest)) => {
                if let Some(replicator) = &mut self.replicator {
                    if let Err(error) = replicator.purge_through(oldest) {
                        self.fail(engine, error);
                    }
                }
            }
            Ok(None) => {}
            // A snapshot that could not be removed costs disk space, nothing more.
            Err(error) => tracing::warn!(%error, "old snapshots not purged"),
        }
    }

    /// The member cannot promise durability anymore: it stops accepting writes (fail-stop),
    /// and what it proposed will never apply.
    fn fail(&mut self, engine: &Engine, error: std::io::Error) {
        tracing::error!(%error, "the log failed; this member stops accepting writes");
        engine.failed.store(true, Ordering::Release);
        self.pending.clear();
        for proposed in std::mem::take(&mut self.proposed) {
            proposed.waiter.fail(engine, ErrorCode::SystemError);
        }
    }

    /// Stops serving after the round's Txns applied: no event is taken anymore, requests
    /// still queued answer ConnectionLoss, attached clients hear that the member stopped,
    /// and the log is closed. Sessions stay as they are (see `Engine::shutdown`).
    fn stop(&mut self, engine: &Engine) {
        engine.stop_taking_events();
        let sessions_live_on = engine.config.data_dir.is_some();
        let sessions: Vec<Arc<LocalSession>> = engine.sessions.read().values().cloned().collect();
        for session in sessions {
            let waiting = session.pipeline.lock().drain();
            for answer in waiting {
                answer.respond(engine.response(Err(ErrorCode::ConnectionLoss)));
            }
            session.member_stopped(sessions_live_on);
        }
        self.replicator = None;
    }
}
