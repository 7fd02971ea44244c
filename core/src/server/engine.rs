//! One member's engine and its single entry point: every front end (the in-process client,
//! the TCP client port, the C ABI) hands requests to `submit`, which decides how each one
//! runs. Sessions open, resume, tick and stop here too, and other members' messages come in
//! through `receive`.
//!
//! The stages behind it: per-session order (pipeline.rs), the driver that leads or forwards,
//! replicates, persists and applies (driver.rs and its neighbours), and reads (read.rs).
//!
//! Locks, in the order they may be taken: `driver`, a session's `pipeline`, `tree`,
//! `watches`, `sessions`; `inbox` is taken alone (or last). The driver is the single writer:
//! it alone prepares, proposes and applies, so zxids follow prepare order. Reads take the tree
//! shared; a read that leaves a watch registers it while holding the tree lock, so no change
//! can slip between the read and its watch, and apply fires a change's watches before any
//! later read can see the change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::op::{Op, OpKind, Reply, Response};
use crate::prepare::WriteLimits;
use crate::proto::ErrorCode;
use crate::replication::{raft_id, PeerMessage, Replica, ReplicaConfig};
use crate::server::client_sessions::{OpenSession, ResumeSession};
use crate::server::clock::Clock;
use crate::server::config::{DriverThread, ServerConfig};
use crate::server::driver::{Driver, Event};
use crate::server::inbox::Inbox;
use crate::server::membership::Membership;
use crate::server::pipeline::{Answer, Front};
use crate::server::read::{self, WatchRegistered};
use crate::server::recovery::{recover, StartError};
use crate::server::session_layer::{LocalSession, SessionSink};
use crate::storage::SnapshotStore;
use crate::tree::DataTree;
use crate::watch::{WatchKind, WatchRegistry};

/// One member's engine.
pub struct Engine {
    pub(super) config: ServerConfig,
    pub(super) limits: WriteLimits,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) tree: RwLock<DataTree>,
    /// The newest applied zxid, readable without the tree lock.
    pub(super) applied_zxid: AtomicI64,
    pub(super) watches: Mutex<WatchRegistry>,
    /// The sessions attached to this member, by id (ordered, so what is done to each of them
    /// happens in the same order every run).
    pub(super) sessions: RwLock<BTreeMap<i64, Arc<LocalSession>>>,
    /// The single writer's state: prepare, replicate, persist, apply.
    pub(super) driver: Mutex<Driver>,
    pub(super) inbox: Mutex<Inbox>,
    /// Wakes the driver thread when the inbox fills.
    pub(super) wake: Condvar,
    /// Wakes callers waiting for a paused member.
    pub(super) resumed: Condvar,
    /// A durable member that fsyncs drives on its own thread, so no front end (a TCP
    /// connection on a runtime thread) ever waits on the disk; an in-memory one drives on the
    /// thread that submits, which costs no hand-off.
    pub(super) threaded: bool,
    /// Set when the log failed: the member stops accepting writes (fail-stop).
    pub(super) failed: AtomicBool,
    /// Set once the member stopped serving.
    pub(super) stopped: AtomicBool,
    /// Set while the member knows a leader (and, leading, its term started): only then are
    /// requests taken.
    serving: AtomicBool,
    /// Set while the member leads.
    pub(super) leading: AtomicBool,
    /// Since when (`Clock::now_ms`) the member has not served; u64::MAX while it serves.
    pub(super) not_serving_since_ms: AtomicU64,
    /// Read-only sessions, while the member serves read-only clients.
    pub(super) read_only: Mutex<super::read_only::ReadOnlySessions>,
    /// When it last started leading (`Clock::now_ms`), for mntr's zk_leader_uptime.
    pub(super) leading_since_ms: AtomicU64,
    /// The one metrics registry (mntr, /metrics and the AdminServer read it).
    pub(super) metrics: super::metrics::Metrics,
    /// Where snapshots go (none in memory).
    pub(super) snapshots: Option<SnapshotStore>,
    /// The index of the newest durable snapshot.
    pub(super) snapshot_index: AtomicU64,
    /// The membership the member runs with ("/zookeeper/config"'s, kept by the driver).
    pub(super) membership: RwLock<Membership>,
}

impl Engine {
    /// An engine over the state recovered from `config.data_dir` (empty in memory when there
    /// is none). `config` must be valid. A durable engine drives on its own thread, started by
    /// `start_driver`.
    pub fn open(config: ServerConfig) -> Result<Engine, StartError> {
        let mut recovered = recover(&config)?;
        let clock = config.clock.clone();
        let membership = super::reconfig::recovered_membership(&config, &mut recovered.tree);
        let threaded = match config.driver_thread {
            DriverThread::Auto => {
                (config.data_dir.is_some() && config.force_sync) || config.is_ensemble()
            }
            DriverThread::Own => true,
            DriverThread::Caller => false,
        };
        let applied_zxid = recovered.tree.last_zxid();
        let replica = Replica::new(
            ReplicaConfig {
                id: raft_id(config.member_id),
                election_ticks: config.election_ticks as usize,
                heartbeat_ticks: config.heartbeat_ticks as usize,
                applied: recovered.applied,
                seed: config.raft_seed,
            },
            recovered.log,
        )
        .map_err(|reason| {
            StartError::Storage(crate::storage::StorageError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                reason,
            )))
        })?;
        let driver = Driver::recovered(
            &config,
            &recovered.tree,
            replica,
            recovered.applied,
            clock.now_ms(),
        );
        let engine = Engine {
            limits: WriteLimits {
                data_bytes_max: config.data_bytes_max,
                ephemerals_per_session_max: config.ephemerals_per_session_max,
                ttl_enabled: config.ttl_enabled,
                enforce_quota: config.enforce_quota,
                x509_enabled: config.x509_auth_enabled,
            },
            snapshots: recovered.snapshots,
            snapshot_index: AtomicU64::new(recovered.snapshot_index),
            membership: RwLock::new(membership),
            failed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            serving: AtomicBool::new(false),
            leading: AtomicBool::new(false),
            not_serving_since_ms: AtomicU64::new(clock.now_ms()),
            read_only: Mutex::new(Default::default()),
            leading_since_ms: AtomicU64::new(0),
            metrics: super::metrics::Metrics::default(),
            tree: RwLock::new(recovered.tree),
            applied_zxid: AtomicI64::new(applied_zxid),
            watches: Mutex::new(WatchRegistry::new(config.watches_per_session_max)),
            sessions: RwLock::new(BTreeMap::new()),
            driver: Mutex::new(driver),
            inbox: Mutex::new(Inbox::default()),
            wake: Condvar::new(),
            resumed: Condvar::new(),
            threaded,
            clock,
            config,
        };
        engine.driver.lock().start(&engine);
        Ok(engine)
    }

    /// Starts the driver's thread if this engine drives on one (see `threaded`).
    pub fn start_driver(self: &Arc<Self>) -> std::io::Result<Option<JoinHandle<()>>> {
        if !self.threaded {
            return Ok(None);
        }
        let engine = Arc::clone(self);
        std::thread::Builder::new()
            .name("zk-driver".into())
            .spawn(move || engine.driver_loop())
            .map(Some)
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The newest applied zxid.
    pub fn last_zxid(&self) -> i64 {
        self.applied_zxid.load(Ordering::Acquire)
    }

    /// True once the member stopped serving (`shutdown`).
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// True while the member takes requests: it knows a leader (a single member always
    /// does) and has not stopped.
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire) && !self.is_stopped()
    }

    /// Runs `look` on the member's tree as applied now (for introspection: tests, the
    /// simulation's checks). Holds the tree's read lock meanwhile: keep it short.
    pub fn with_tree<R>(&self, look: impl FnOnce(&DataTree) -> R) -> R {
        look(&self.tree.read())
    }

    /// True while the member leads its ensemble (a single member always does once started).
    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// The driver says whether the member serves; sessions attached here hear of a change.
    pub(super) fn set_serving(&self, serving: bool) {
        if self.serving.swap(serving, Ordering::AcqRel) == serving {
            return;
        }
        let since = if serving {
            u64::MAX
        } else {
            self.clock.now_ms()
        };
        self.not_serving_since_ms.store(since, Ordering::Release);
        if serving {
            self.end_read_only_sessions();
        }
        for session in self.sessions.read().values() {
            if serving {
                session.reconnected();
            } else {
                session.disconnected();
            }
        }
    }

    /// The clock the engine runs on (the client's read cache times its entries by it, so a
    /// test's manual clock moves both).
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The one entry point: runs `op` for `session` and answers through `answer`, in the
    /// session's request order (addAuth, which takes effect as it arrives, is answered at
    /// once). Writes go to the driver; reads run at once when nothing of the session is
    /// waiting, else in their turn.
    pub fn submit(&self, session: &Arc<LocalSession>, op: Op, mut answer: Box<dyn Answer>) {
        self.wait_while_paused();
        if session.is_read_only() {
            return self.submit_read_only(session, op, answer);
        }
        if !self.is_serving() {
            answer.respond(self.response(Err(ErrorCode::ConnectionLoss)));
            return;
        }
        session.touch(self.clock.now_ms());
        match op.kind() {
            OpKind::AtOnce => {
                let result = match op {
                    Op::AddAuth { scheme, auth } => {
                        session.add_auth(&scheme, &auth, self.config.super_digest.as_deref())
                    }
                    other => unreachable!("{other:?} is not an addAuth"),
                };
                answer.respond(self.response(result));
            }
            OpKind::InTurn => {
                let mut pipeline = session.pipeline.lock();
                if pipeline.is_idle() {
                    let mut on_watch = |path: &str, kind| answer.watch_registered(path, kind);
                    let response = self.run_in_turn(session, op, &mut on_watch);
                    answer.respond(response);
                } else {
                    pipeline.push_in_turn(op, answer);
                }
            }
            OpKind::Write => {
                let mut pipeline = session.pipeline.lock();
                if session.is_closed() {
                    let result = Err(ErrorCode::SessionExpired);
                    if pipeline.is_idle() {
                        answer.respond(self.response(result));
                    } else {
                        pipeline.push_answered(result, answer);
                    }
                    return;
                }
                let seq = pipeline.push_write(answer);
                // Queued while the pipeline is held, so two threads sharing a session cannot
                // hand the driver their writes in another order than they queued them.
                self.send(Event::Request {
                    session: session.clone(),
                    seq,
                    op,
                    identities: session.identities_now(),
                });
                drop(pipeline);
                self.kick();
            }
            OpKind::Sync => {
                let Op::Sync { path } = op else {
                    unreachable!("{op:?} is not a sync");
                };
                let seq = session.pipeline.lock().push_write(answer);
                self.send(Event::Sync {
                    session: session.clone(),
                    seq,
                    path,
                });
                self.kick();
            }
        }
    }

    /// Runs an in-turn op (a read) on the caller's thread when the session has nothing
    /// waiting, which is the in-process client's fast path: no allocation, no queue. Gives
    /// the op back when it must go through `submit`.
    // The op comes back by value for the caller to send on; boxing it would allocate for
    // every write.
    #[allow(clippy::result_large_err)]
    pub fn call_now(
        &self,
        session: &LocalSession,
        op: Op,
        on_watch: &mut dyn FnMut(&str, WatchRegistered),
    ) -> Result<Response, Op> {
        self.wait_while_paused();
        if op.kind() != OpKind::InTurn || !self.is_serving() || session.is_read_only() {
            return Err(op);
        }
        let pipeline = session.pipeline.lock();
        if !pipeline.is_idle() {
            return Err(op);
        }
        session.touch(self.clock.now_ms());
        let response = self.run_in_turn(session, op, on_watch);
        drop(pipeline);
        Ok(response)
    }

    /// Opens a session with the requested timeout (clamped into the configured range);
    /// `done` hears the session once its CreateSession Txn applied. `ip` is the connection's
    /// address for ip ACLs and whoAmI.
    pub fn open_session_then(
        &self,
        requested_timeout_ms: i64,
        sink: Arc<dyn SessionSink>,
        ip: Option<&str>,
        done: Box<dyn FnOnce(Result<Arc<LocalSession>, ErrorCode>) + Send>,
    ) {
        self.send(Event::Open(OpenSession {
            requested_timeout_ms,
            sink,
            ip: ip.map(str::to_string),
            done,
        }));
        self.kick();
    }

    /// `open_session_then`, waiting for the session.
    pub fn open_session(
        &self,
        requested_timeout_ms: i64,
        sink: Arc<dyn SessionSink>,
        ip: Option<&str>,
    ) -> Result<Arc<LocalSession>, ErrorCode> {
        let (opened, open) = crossbeam_channel::bounded(1);
        self.open_session_then(
            requested_timeout_ms,
            sink,
            ip,
            Box::new(move |result| drop(opened.send(result))),
        );
        open.recv().unwrap_or(Err(ErrorCode::ConnectionLoss))
    }

    /// Resumes a session on a new connection (a client reconnecting with id and password);
    /// `done` hears it. SessionExpired when the session is unknown, closed, or the password
    /// is wrong, as ZooKeeper answers all three.
    pub fn resume_session_then(
        &self,
        session_id: i64,
        password: &[u8],
        sink: Arc<dyn SessionSink>,
        ip: Option<&str>,
        done: Box<dyn FnOnce(Result<Arc<LocalSession>, ErrorCode>) + Send>,
    ) {
        self.send(Event::Resume(ResumeSession {
            session_id,
            password: password.to_vec(),
            sink,
            ip: ip.map(str::to_string),
            done,
        }));
        self.kick();
    }

    /// `resume_session_then`, waiting for the answer.
    pub fn resume_session(
        &self,
        session_id: i64,
        password: &[u8],
        sink: Arc<dyn SessionSink>,
        ip: Option<&str>,
    ) -> Result<Arc<LocalSession>, ErrorCode> {
        let (resumed, resume) = crossbeam_channel::bounded(1);
        self.resume_session_then(
            session_id,
            password,
            sink,
            ip,
            Box::new(move |result| drop(resumed.send(result))),
        );
        resume.recv().unwrap_or(Err(ErrorCode::ConnectionLoss))
    }

    /// Takes a message another member sent this one (`Transport`'s receiving half).
    pub fn receive(&self, from: u64, message: PeerMessage) {
        self.send(Event::Peer { from, message });
        self.kick();
    }

    /// The transport saw member `from`'s connection close on its side (a crash, a stop): if
    /// that member leads, this one stops waiting out the election timeout for it.
    pub fn peer_lost(&self, from: u64) {
        self.send(Event::PeerLost { from });
        self.kick();
    }

    /// One tick of raft time (`ServerConfig::raft_tick_ms`): elections, heartbeats and
    /// retransmissions. A single member needs none.
    pub fn raft_tick(&self) {
        self.send(Event::RaftTick);
        self.kick();
    }

    /// `tick` without waiting: `done` runs once what the tick decided has applied (or never
    /// will). For drivers that run on the caller's thread, such as a simulation.
    pub fn tick_then(&self, done: Box<dyn FnOnce() + Send>) {
        self.expire_read_only_sessions();
        self.send(Event::Tick(done));
        self.kick();
    }

    /// Records that the session's client is alive (a ping, or any packet).
    pub fn touch(&self, session: &LocalSession) {
        session.touch(self.clock.now_ms());
    }

    /// Moves time forward for the core: expires sessions whose timeout passed, reaps empty
    /// containers and expired TTL znodes, and writes a snapshot when one is due. Returns once
    /// what the tick decided has applied. Called every tick by the ticker, or by tests.
    pub fn tick(&self) {
        let (ticked, tick) = crossbeam_channel::bounded(1);
        self.tick_then(Box::new(move || {
            let _ = ticked.send(());
        }));
        let _ = tick.recv();
    }

    /// Stops serving: what was proposed is made durable and applied, later requests answer
    /// ConnectionLoss, the driver's thread ends and the log is closed. Sessions are not
    /// closed: a durable member's sessions live on in its data directory for their clients
    /// to resume after a restart, as ZooKeeper's do; an in-memory member's go with it. Their
    /// attached clients are told either way. Idempotent.
    pub fn shutdown(&self, driver_thread: Option<JoinHandle<()>>) {
        self.set_paused(false);
        let (stopped, stop) = crossbeam_channel::bounded(1);
        self.send(Event::Stop(Box::new(move || {
            let _ = stopped.send(());
        })));
        self.kick();
        let _ = stop.recv();
        if let Some(thread) = driver_thread {
            let _ = thread.join();
        }
    }

    /// A response with the member's newest applied zxid.
    pub(super) fn response(&self, result: Result<Reply, ErrorCode>) -> Response {
        // A ConnectionLoss says nothing of what the session saw (ZooKeeper closes the
        // connection instead): clients take a reply's zxid as seen only when it is positive,
        // and one they had not seen would make their next setWatches skip events.
        let zxid = match result {
            Err(ErrorCode::ConnectionLoss) => -1,
            _ => self.last_zxid(),
        };
        Response { zxid, result }
    }

    /// Sends what the session's pipeline can send now: answers known, and in-turn ops run as
    /// they reach the front. Called after something in it was resolved.
    pub(super) fn advance(&self, session: &LocalSession) {
        let mut pipeline = session.pipeline.lock();
        loop {
            match pipeline.front() {
                Front::Blocked => return,
                Front::Respond(answer, result) => answer.respond(self.response(result)),
                Front::Run(mut answer, op) => {
                    let mut on_watch = |path: &str, kind| answer.watch_registered(path, kind);
                    let response = self.run_in_turn(session, op, &mut on_watch);
                    answer.respond(response);
                }
            }
        }
    }

    /// Runs an in-turn op: every earlier request of the session has been answered, so the
    /// tree shows every earlier write of the session and none of its later ones.
    pub(super) fn run_in_turn(
        &self,
        session: &LocalSession,
        op: Op,
        on_watch: &mut dyn FnMut(&str, WatchRegistered),
    ) -> Response {
        if session.is_closed() {
            return self.response(Err(ErrorCode::SessionExpired));
        }
        let result = match op {
            Op::Refused(code) => Err(code),
            Op::Ping | Op::Sasl => Ok(Reply::Done),
            Op::WhoAmI => Ok(Reply::WhoAmI(session.client_infos())),
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
                return Response {
                    zxid: tree.last_zxid(),
                    result: result.map(|()| Reply::Done),
                };
            }
            Op::RemoveWatches { path, watcher_type } => {
                let removed = self
                    .watches
                    .lock()
                    .remove(session.id(), &path, watcher_type);
                done_or(removed, ErrorCode::NoWatcher)
            }
            Op::CheckWatches { path, watcher_type } => {
                let present = self
                    .watches
                    .lock()
                    .contains(session.id(), &path, watcher_type);
                done_or(present, ErrorCode::NoWatcher)
            }
            Op::SetWatches(request) => {
                let tree = self.tree.read();
                let result = read::set_watches(&tree, &self.watches, session, &request, on_watch);
                return Response {
                    zxid: tree.last_zxid(),
                    result,
                };
            }
            read_op => {
                let tree = self.tree.read();
                let result = read::serve(
                    &tree,
                    &self.watches,
                    session,
                    read_op,
                    self.config.reply_bytes_max,
                    on_watch,
                );
                return Response {
                    zxid: tree.last_zxid(),
                    result,
                };
            }
        };
        self.response(result)
    }
}

fn done_or(ok: bool, code: ErrorCode) -> Result<Reply, ErrorCode> {
    if ok {
        Ok(Reply::Done)
    } else {
        Err(code)
    }
}
