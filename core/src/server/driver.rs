//! The driver: a member's single writer. It takes requests, peer messages and time from the
//! inbox in rounds, routes each write (the leader prepares and proposes it, a follower
//! forwards it to its leader), runs raft until it has nothing left for the round (one fsync
//! covers every entry of a ready: group commit), applies what committed in log order and
//! answers whoever waits. Role changes, session expiry, reaping and snapshots are its
//! decisions too.
//!
//! The stages it runs live beside it: leading (leader.rs), forwarding (forward.rs), applying
//! (apply.rs), snapshots and compaction (compaction.rs).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use raft::eraftpb::{Message, MessageType};
use raft::StateRole;

use crate::op::{Op, Reply};
use crate::prepare::PendingChanges;
use crate::proto::{ErrorCode, Id};
use crate::replication::{Forwarded, ForwardedRequest, PeerMessage, Replica, Role, Transport};
use crate::server::apply::{Shape, Waiter};
use crate::server::client_sessions::{OpenSession, PendingSync, ResumeSession};
use crate::server::config::ServerConfig;
use crate::server::engine::Engine;
use crate::server::forward::ForwardStream;
use crate::server::leader::Lead;
use crate::server::session_layer::LocalSession;
use crate::session::SessionTracker;
use crate::tree::DataTree;
use crate::txn::{Origin, Proposal};

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
    /// A session's sync (pipeline entry `seq`).
    Sync {
        session: Arc<LocalSession>,
        seq: u64,
        path: String,
    },
    Open(OpenSession),
    Resume(ResumeSession),
    /// A tick of session time; `Done` runs once what it decided has applied (or never will).
    Tick(Done),
    /// A tick of raft time (elections, heartbeats, retransmissions).
    RaftTick,
    /// A message from another member (by raft id).
    Peer {
        from: u64,
        message: PeerMessage,
    },
    /// The transport saw member `from`'s connection end on its side (by raft id).
    PeerLost {
        from: u64,
    },
    /// Stop serving; `Done` runs once stopped.
    Stop(Done),
}

impl Event {
    /// Answers the event with `code` without running it (the member stopped).
    pub(super) fn refuse(self, engine: &Engine, code: ErrorCode) {
        match self {
            Event::Request { session, seq, .. } | Event::Sync { session, seq, .. } => {
                resolve(engine, &session, seq, Err(code))
            }
            Event::Open(open) => (open.done)(Err(code)),
            Event::Resume(resume) => (resume.done)(Err(code)),
            Event::Tick(done) | Event::Stop(done) => done(),
            Event::RaftTick | Event::Peer { .. } | Event::PeerLost { .. } => {}
        }
    }
}

/// Hands a session's request its outcome and sends what its pipeline can send now.
pub(super) fn resolve(
    engine: &Engine,
    session: &LocalSession,
    seq: u64,
    result: Result<Reply, ErrorCode>,
) {
    // ZooKeeper answers SessionMoved by closing the connection without a reply: the
    // client reconnects, and where it lands becomes the session's member again.
    if result == Err(ErrorCode::SessionMoved) {
        session.disconnected();
    }
    session.pipeline.lock().resolve(seq, result);
    engine.advance(session);
}

/// Whether what a deferred action waited for happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reached {
    /// The member applied through the index it waited for.
    Applied,
    /// It never will as things stand (leadership lost, member stopped): answer
    /// ConnectionLoss, the outcome is unknown.
    Abandoned,
}

/// Runs once the member applied through an index (or learns it will not).
pub(super) type Deferred = Box<dyn FnOnce(&Engine, Reached) + Send>;

/// The single writer's state.
pub(crate) struct Driver {
    /// This member's raft id.
    pub(super) me: u64,
    /// This run of the member (see `Origin::run`).
    pub(super) run: u64,
    /// The replicate stage; None once stopped or failed.
    pub(super) replica: Option<Replica>,
    pub(super) transport: Option<Arc<dyn Transport>>,
    /// What proposed but unapplied Txns will change, for prepare (the leader's).
    pub(super) pending: PendingChanges,
    /// The sessions' liveness; expiry is decided from it while this member leads.
    pub(super) tracker: SessionTracker,
    /// This member's requests waiting for their entry to apply, by request number (ordered
    /// maps here and below, so a simulation replays the same from its seed).
    pub(super) waiting: BTreeMap<u64, Waiter>,
    pub(super) next_request: u64,
    pub(super) syncs: BTreeMap<u64, PendingSync>,
    /// This member's proposals not applied yet, oldest first, with their index and term: they
    /// apply from here without decoding their entries (cleared with a new term).
    pub(super) proposed: VecDeque<(u64, u64, Proposal)>,
    /// What runs once an index applied, by (index, order of deferral).
    deferred: BTreeMap<(u64, u64), Deferred>,
    deferred_count: u64,
    /// The newest applied index.
    pub(super) applied: u64,
    /// The leader's half: holds requests until its term started, takes forwarded streams.
    pub(super) lead: Lead,
    /// The follower's half: its stream of requests to the leader.
    pub(super) forward: ForwardStream,
    pub(super) role: Role,
    /// Raft ticks so far.
    pub(super) raft_ticks: u64,
    pub(super) election_ticks: u64,
    /// Whether the leader this member follows is still heard from.
    pub(super) leader_watch: super::leader_watch::LeaderWatch,
    /// The raft tick each member was last heard from at (by raft id), for operators.
    pub(super) last_heard_tick: BTreeMap<u64, u64>,
    /// When sessions were last touched on the leader's behalf (a follower's touches).
    pub(super) last_touches_ms: u64,
    /// A durable snapshot being written on its own thread.
    pub(super) snapshot_in_flight: Option<super::compaction::SnapshotInFlight>,
    pub(super) last_reap_ms: u64,
    /// The index of the newest reconfig this member proposed (a second waits for it).
    pub(super) reconfig_index: u64,
    /// Where each member raft counts listens for peers (`host:port`, by raft id).
    pub(super) peer_addresses: BTreeMap<u64, String>,
    /// Set once a membership change left this member out: it serves no one.
    pub(super) removed: bool,
    /// Reconfigs applied while raft is between two memberships: answered once it left the
    /// old one, so the next reconfig after the answer is not refused as in progress.
    pub(super) answer_when_joint_left: Vec<(Proposal, crate::tree::Applied)>,
}

impl Driver {
    /// The driver of an engine recovered to `tree`, with `replica` over its log.
    pub(super) fn recovered(
        config: &ServerConfig,
        tree: &DataTree,
        replica: Replica,
        applied: u64,
        now_ms: u64,
    ) -> Driver {
        let mut tracker = SessionTracker::new(config.tick_ms as u64, now_ms);
        // Recovered sessions get a whole timeout from now to reconnect, as in ZooKeeper.
        for (session_id, record) in tree.sessions() {
            tracker.add(session_id, record.timeout_ms, now_ms);
        }
        let role = Role {
            state: StateRole::Follower,
            leader: 0,
            term: replica.term(),
        };
        Driver {
            me: crate::replication::raft_id(config.member_id),
            // Runs of successive starts differ (see `Origin::run`), with room for the bumps
            // a run takes when its requests are abandoned.
            run: (config.clock.wall_ms().max(0) as u64) << 20,
            replica: Some(replica),
            transport: config.transport.clone(),
            pending: PendingChanges::default(),
            tracker,
            waiting: BTreeMap::new(),
            next_request: 1,
            syncs: BTreeMap::new(),
            proposed: VecDeque::new(),
            deferred: BTreeMap::new(),
            deferred_count: 0,
            applied,
            lead: Lead::default(),
            forward: ForwardStream::default(),
            role,
            raft_ticks: 0,
            election_ticks: config.election_ticks as u64,
            leader_watch: Default::default(),
            last_heard_tick: BTreeMap::new(),
            last_touches_ms: now_ms,
            snapshot_in_flight: None,
            last_reap_ms: now_ms,
            reconfig_index: 0,
            peer_addresses: BTreeMap::new(),
            removed: false,
            answer_when_joint_left: Vec::new(),
        }
    }

    /// Starts raft: a member that is its ensemble's only voter elects itself at once, so a
    /// single server serves as soon as it started.
    pub(super) fn start(&mut self, engine: &Engine) {
        if engine.config.transport.is_some() {
            self.membership_changed(engine);
        }
        if let Some(replica) = &mut self.replica {
            if engine.config.voters() == [engine.config.member_id] {
                replica.campaign();
            }
        }
        self.drive(engine);
    }

    /// One round: runs every event, then raft until it has nothing left, applying and
    /// answering what committed.
    pub(super) fn round(&mut self, engine: &Engine, events: Vec<Event>) {
        let mut stop = None;
        for event in events {
            match event {
                Event::Request {
                    session,
                    seq,
                    op,
                    identities,
                } => self.request(engine, session, seq, op, identities),
                Event::Sync { session, seq, path } => self.sync(engine, session, seq, path),
                Event::Open(open) => self.open(engine, open),
                Event::Resume(resume) => self.resume(engine, resume),
                Event::Tick(done) => self.tick(engine, done),
                Event::RaftTick => self.raft_tick(engine),
                Event::Peer { from, message } => self.peer(engine, from, message),
                Event::PeerLost { from } => {
                    if let Some(replica) = &mut self.replica {
                        replica.leader_unreachable(from);
                    }
                }
                Event::Stop(done) => stop = Some(done),
            }
        }
        self.drive(engine);
        if let Some(done) = stop {
            self.stop(engine);
            done();
        }
    }

    /// Runs raft's ready loop until it has nothing more: persist, send, apply, answer.
    fn drive(&mut self, engine: &Engine) {
        loop {
            self.flush_forwards(engine);
            let Some(replica) = &mut self.replica else {
                return;
            };
            if !replica.has_ready() {
                break;
            }
            let output = match replica.process(&mut |snapshot| engine.install_snapshot(snapshot)) {
                Ok(output) => output,
                Err(error) => return self.fail(engine, error),
            };
            if let Some(index) = output.snapshot_index {
                self.snapshot_installed(engine, index);
            }
            let metrics = engine.metrics();
            for (elapsed, entries) in output.fsyncs {
                metrics.record_fsync(elapsed, entries);
            }
            self.send_raft(output.messages);
            metrics
                .apply_queue_depth
                .store(output.committed.len() as u64, Ordering::Relaxed);
            for entry in output.committed {
                let applied = self.apply_entry(engine, entry);
                metrics.apply_queue_depth.fetch_sub(1, Ordering::Relaxed);
                if let Err(error) = applied {
                    metrics.apply_queue_depth.store(0, Ordering::Relaxed);
                    return self.fail(engine, error);
                }
            }
            self.run_deferred(engine);
            for read_state in output.read_states {
                self.read_state(engine, read_state);
            }
            if let Some(role) = output.role {
                self.role_changed(engine, role);
            }
            self.lead_if_ready(engine);
            self.leave_joint_if_stuck();
        }
        self.compact_if_due(engine);
    }

    fn send_raft(&mut self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let Some(transport) = &self.transport else {
            return;
        };
        for message in messages {
            let to = message.to;
            let snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            transport.send(self.me, to, PeerMessage::Raft(message));
            // Delivery is best effort: raft probes the follower from here and sends the
            // snapshot again if it never arrived (else it would wait for it forever).
            if snapshot {
                if let Some(replica) = &mut self.replica {
                    replica.report_snapshot_sent(to);
                }
            }
        }
    }

    /// Sends `message` to member `to` (nothing without a transport: a single member).
    pub(super) fn send(&self, to: u64, message: PeerMessage) {
        if let Some(transport) = &self.transport {
            transport.send(self.me, to, message);
        }
    }

    /// A new request number for a waiter of this member.
    pub(super) fn wait_for(&mut self, waiter: Waiter) -> Origin {
        let request = self.next_request;
        self.next_request += 1;
        self.waiting.insert(request, waiter);
        self.origin(request)
    }

    pub(super) fn origin(&self, request: u64) -> Origin {
        Origin {
            member: self.me,
            run: self.run,
            request,
        }
    }

    /// True when `origin` is one of this run's requests.
    pub(super) fn is_mine(&self, origin: &Origin) -> bool {
        origin.member == self.me && origin.run == self.run
    }

    /// Runs `action` once the member applied through `index` (now, if it has).
    pub(super) fn defer(&mut self, engine: &Engine, index: u64, action: Deferred) {
        if index <= self.applied {
            return action(engine, Reached::Applied);
        }
        self.deferred_count += 1;
        self.deferred.insert((index, self.deferred_count), action);
    }

    fn run_deferred(&mut self, engine: &Engine) {
        while let Some(entry) = self.deferred.first_entry() {
            if entry.key().0 > self.applied {
                return;
            }
            entry.remove()(engine, Reached::Applied);
        }
    }

    /// A session's write: the leader prepares it, a follower forwards it to its leader.
    fn request(
        &mut self,
        engine: &Engine,
        session: Arc<LocalSession>,
        seq: u64,
        op: Op,
        identities: Vec<Id>,
    ) {
        if engine.failed.load(Ordering::Acquire) || self.replica.is_none() {
            return resolve(engine, &session, seq, Err(ErrorCode::SystemError));
        }
        // A session closing (by its client or by expiry) takes no more writes: an ephemeral
        // created now would outlive the close that deletes the session's ephemerals.
        if session.is_closed() {
            return resolve(engine, &session, seq, Err(ErrorCode::SessionExpired));
        }
        let session_id = session.id();
        let waiter = if op == Op::CloseSession {
            Waiter::Close { session, seq }
        } else {
            Waiter::Request {
                shape: Shape::of(&op),
                session,
                seq,
            }
        };
        let origin = self.wait_for(waiter);
        self.route(
            engine,
            origin,
            session_id,
            identities,
            ForwardedRequest::Write(op),
        );
    }

    /// Hands a request of this member to whoever leads (its stream number is the
    /// stream's to give).
    pub(super) fn route(
        &mut self,
        engine: &Engine,
        origin: Origin,
        session_id: i64,
        identities: Vec<Id>,
        request: ForwardedRequest,
    ) {
        let request = Forwarded {
            seq: 0,
            origin,
            session_id,
            identities,
            request,
        };
        if self.role.state == StateRole::Leader {
            self.lead_request(engine, request);
        } else if self.role.leader != 0 {
            self.forward.push(request);
        } else if let Some(waiter) = self.waiting.remove(&request.origin.request) {
            waiter.fail(engine, ErrorCode::ConnectionLoss);
        }
    }

    /// Session time: the leader expires sessions and reaps, a follower tells the leader which
    /// of its sessions are alive; every member snapshots when one is due.
    fn tick(&mut self, engine: &Engine, done: Done) {
        if engine.failed.load(Ordering::Acquire) || self.replica.is_none() {
            return done();
        }
        let now_ms = engine.clock.now_ms();
        if self.role.state == StateRole::Leader && self.lead.ready {
            self.expire_and_reap(engine, now_ms);
        } else if self.role.leader != 0 {
            self.send_touches(engine, now_ms);
        }
        self.snapshot_if_due(engine);
        let through = self.replica.as_ref().map_or(0, Replica::last_index);
        if self.role.state == StateRole::Leader {
            self.defer(engine, through, Box::new(move |_, _| done()));
        } else {
            done();
        }
    }

    /// Raft time: elections and heartbeats, and asking again what may have been lost.
    fn raft_tick(&mut self, engine: &Engine) {
        let Some(replica) = &mut self.replica else {
            return;
        };
        replica.tick();
        if replica.step_down_if_not_voter() {
            tracing::info!("no longer a voter: stepped down as leader");
        }
        self.raft_ticks += 1;
        self.watch_leader_tick(engine);
        let Some(replica) = &mut self.replica else {
            return;
        };
        let stale = self.raft_ticks.saturating_sub(self.election_ticks);
        for (request, sync) in &mut self.syncs {
            if sync.asked_at_tick <= stale {
                sync.asked_at_tick = self.raft_ticks;
                replica.read_index(request.to_le_bytes().to_vec());
            }
        }
        self.forward.tick();
        let _ = engine;
    }

    /// A message from member `from`.
    fn peer(&mut self, engine: &Engine, from: u64, message: PeerMessage) {
        self.watch_leader_heard(engine, from);
        let Some(replica) = &mut self.replica else {
            return;
        };
        match message {
            PeerMessage::Raft(message) => replica.step(message),
            PeerMessage::Forward {
                term,
                run,
                requests,
            } => self.take_forwarded(engine, from, term, run, requests),
            PeerMessage::ForwardAck { term, run, through } => {
                if let Some(newer) = self.forward.acked(from, term, run, self.run, through) {
                    self.abandon_requests(engine);
                    self.run = self.run.max(newer);
                }
            }
            PeerMessage::Touches(sessions) => {
                if self.role.state == StateRole::Leader {
                    let now_ms = engine.clock.now_ms();
                    for session_id in sessions {
                        self.tracker.touch(session_id, now_ms);
                    }
                }
            }
        }
    }

    /// Answers ConnectionLoss to everything waiting on raft: its outcome is unknown now.
    /// The member's run moves on, so an entry proposed for one of them that still commits
    /// is not taken for a later request.
    pub(super) fn abandon_requests(&mut self, engine: &Engine) {
        self.pending.clear();
        self.proposed.clear();
        self.answer_when_joint_left.clear();
        self.lead.clear();
        self.forward.restart();
        self.run += 1;
        // A session with a write or sync in flight loses everything it queued: a read behind
        // a request whose outcome is unknown must not run as if that request had been
        // answered (ZooKeeper closes the connection; nothing after it is answered either).
        let sessions: Vec<Arc<LocalSession>> = engine.sessions.read().values().cloned().collect();
        for session in sessions {
            let left = {
                let mut pipeline = session.pipeline.lock();
                if !pipeline.has_request_at_driver() {
                    continue;
                }
                pipeline.drain()
            };
            for answer in left {
                answer.respond(engine.response(Err(ErrorCode::ConnectionLoss)));
            }
        }
        let waiting: Vec<Waiter> = std::mem::take(&mut self.waiting).into_values().collect();
        for waiter in waiting {
            waiter.fail(engine, ErrorCode::ConnectionLoss);
        }
        let syncs: Vec<PendingSync> = std::mem::take(&mut self.syncs).into_values().collect();
        for sync in syncs {
            sync.waiter.fail(engine, ErrorCode::ConnectionLoss);
        }
        for (_, action) in std::mem::take(&mut self.deferred) {
            action(engine, Reached::Abandoned);
        }
    }

    /// The member cannot promise durability anymore: it stops taking part in replication
    /// (fail-stop) and answers writes SystemError; what it proposed is answered
    /// ConnectionLoss, since another member may still commit it.
    pub(super) fn fail(&mut self, engine: &Engine, error: std::io::Error) {
        tracing::error!(%error, "the log failed; this member stops accepting writes");
        engine.failed.store(true, Ordering::Release);
        self.replica = None;
        self.abandon_requests(engine);
    }

    /// Stops serving after the round: no event is taken anymore, requests still queued or in
    /// flight answer ConnectionLoss, attached clients hear that the member stopped, and the
    /// log is closed. Sessions stay as they are (see `Engine::shutdown`).
    fn stop(&mut self, engine: &Engine) {
        self.finish_snapshot(engine);
        engine.stop_taking_events();
        self.abandon_requests(engine);
        let sessions_live_on = engine.config.data_dir.is_some();
        let sessions: Vec<Arc<LocalSession>> = engine.sessions.read().values().cloned().collect();
        for session in sessions {
            let waiting = session.pipeline.lock().drain();
            for answer in waiting {
                answer.respond(engine.response(Err(ErrorCode::ConnectionLoss)));
            }
            session.member_stopped(sessions_live_on);
        }
        self.replica = None;
    }
}
