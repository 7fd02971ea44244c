//! Leading: the leader prepares every write of the ensemble (its own sessions' and those its
//! followers forward, each stream taken in order) against its tree plus what it proposed and
//! has not applied, and proposes the Txn; it decides session expiry and reaps containers and
//! TTL znodes. Until the empty entry that starts its term applied, its tree may lack entries
//! an earlier leader committed, so it holds requests until then.

use std::collections::{BTreeMap, VecDeque};

use raft::StateRole;

use crate::op::Op;
use crate::prepare::{Prepare, Refusal, Requester, Role};
use crate::proto::ErrorCode;
use crate::replication::{Forwarded, ForwardedRequest, PeerMessage, ProposeError};
use crate::server::driver::{Driver, Reached};
use crate::server::engine::Engine;
use crate::session::OwnerCheck;
use crate::txn::{Origin, Proposal, Txn, TxnOp};

/// A follower's stream as the leader takes it.
#[derive(Clone, Copy, Debug)]
struct Intake {
    /// The follower's run the stream belongs to (a newer run starts a new stream).
    run: u64,
    /// The next stream number to take.
    next_seq: u64,
}

/// The leader's state for its term.
#[derive(Default)]
pub(super) struct Lead {
    /// The index of the entry that starts the term.
    term_start: u64,
    /// True once that entry applied: requests are prepared from then on.
    pub(super) ready: bool,
    /// Requests that came before the term started, in order.
    held: VecDeque<Forwarded>,
    /// Each follower's stream, by raft id.
    intake: BTreeMap<u64, Intake>,
}

impl Lead {
    /// This member leads from now, its term starting at `term_start`.
    pub(super) fn start_term(&mut self, term_start: u64) {
        self.clear();
        self.term_start = term_start;
    }

    /// Not leading (anymore): forget the term.
    pub(super) fn clear(&mut self) {
        self.ready = false;
        self.held.clear();
        self.intake.clear();
    }
}

impl Driver {
    /// Starts preparing once the term's first entry applied: the tree then holds everything
    /// committed before, so expiry restarts from fresh touches and held requests go in order.
    pub(super) fn lead_if_ready(&mut self, engine: &Engine) {
        if self.role.state != StateRole::Leader
            || self.lead.ready
            || self.applied < self.lead.term_start
        {
            return;
        }
        self.lead.ready = true;
        let now_ms = engine.clock.now_ms();
        // As a new ZooKeeper leader: every session gets a whole timeout from now.
        let mut tracker = crate::session::SessionTracker::new(engine.config.tick_ms as u64, now_ms);
        for (session_id, record) in engine.tree.read().sessions() {
            tracker.add(session_id, record.timeout_ms, now_ms);
        }
        self.tracker = tracker;
        self.last_reap_ms = now_ms;
        for request in std::mem::take(&mut self.lead.held) {
            self.lead_request(engine, request);
        }
        engine.set_serving(true);
    }

    /// A request this member leads: prepared now, or held until the term started.
    pub(super) fn lead_request(&mut self, engine: &Engine, request: Forwarded) {
        if !self.lead.ready {
            self.lead.held.push_back(request);
            return;
        }
        let origin = request.origin;
        let outcome = match request.request {
            ForwardedRequest::OpenSession {
                timeout_ms,
                password,
            } => Ok(TxnOp::CreateSession {
                session_id: session_id_at(origin, self.next_index()),
                timeout_ms,
                password,
            }),
            ForwardedRequest::Attach => {
                // The session's client reconnected to the sender: its writes come from there
                // now, and the connection it left is told SessionMoved if it writes again.
                self.tracker.set_owner(request.session_id, origin.member);
                return;
            }
            ForwardedRequest::Write(op) => {
                let session_id = request.session_id;
                let owner = self.tracker.check_owner(session_id, origin.member);
                if let Err(check) = owner {
                    Err(Refusal::Code(match check {
                        OwnerCheck::Expired => ErrorCode::SessionExpired,
                        OwnerCheck::Moved => ErrorCode::SessionMoved,
                    }))
                } else if let Op::Reconfig(reconfig) = &op {
                    match self.lead_reconfig(engine, origin, &request.identities, reconfig) {
                        Ok(()) => return,
                        Err(refusal) => Err(refusal),
                    }
                } else if op == Op::CloseSession {
                    self.tracker.set_closing(session_id);
                    Ok(self.prepare(engine, |prepare| prepare.close_session(session_id)))
                } else {
                    self.tracker.touch(session_id, engine.clock.now_ms());
                    let who = Requester {
                        session_id,
                        identities: &request.identities,
                        role: Role::Client,
                    };
                    self.prepare(engine, |prepare| prepare.request(who, &op))
                }
            }
        };
        match outcome {
            Ok(txn_op) => self.propose(engine, Some(origin), txn_op),
            Err(refusal) if self.is_mine(&origin) => self.refuse_mine(engine, origin, refusal),
            // A follower learns the refusal in log order, between its session's writes.
            Err(refusal) => self.propose(engine, Some(origin), TxnOp::Failed(refusal)),
        }
    }

    /// A refusal for one of this member's requests needs no entry, but it was judged against
    /// everything proposed so far: it is answered once that applied, so the session's next
    /// reads cannot see a tree older than the refusal.
    fn refuse_mine(&mut self, engine: &Engine, origin: Origin, refusal: Refusal) {
        let Some(waiter) = self.waiting.remove(&origin.request) else {
            return;
        };
        let through = self
            .replica
            .as_ref()
            .map_or(0, |replica| replica.last_index());
        self.defer(
            engine,
            through,
            Box::new(move |engine, reached| match reached {
                Reached::Applied => waiter.refused(engine, refusal),
                Reached::Abandoned => waiter.fail(engine, ErrorCode::ConnectionLoss),
            }),
        );
    }

    /// The log index the next proposal takes.
    fn next_index(&self) -> u64 {
        self.replica
            .as_ref()
            .map_or(0, |replica| replica.last_index())
            + 1
    }

    /// Runs `prepare_with` against the tree plus the pending changes, for the Txn that will
    /// take the next log index.
    pub(super) fn prepare<R>(
        &mut self,
        engine: &Engine,
        prepare_with: impl FnOnce(&mut Prepare<'_>) -> R,
    ) -> R {
        let zxid = self
            .replica
            .as_ref()
            .map_or(0, |replica| replica.last_index())
            + 1;
        let tree = engine.tree.read();
        let mut prepare = Prepare::new(&tree, &mut self.pending, &engine.limits, zxid as i64);
        prepare_with(&mut prepare)
    }

    /// Proposes a prepared Txn; whoever waits for `origin` hears of it once it applies.
    pub(super) fn propose(&mut self, engine: &Engine, origin: Option<Origin>, op: TxnOp) {
        let proposal = Proposal {
            origin,
            txn: Txn {
                time_ms: engine.clock.wall_ms(),
                op,
            },
        };
        let Some(replica) = &mut self.replica else {
            return self.fail_origin(engine, origin, ErrorCode::ConnectionLoss);
        };
        let encoded = proposal.encode();
        let size_bytes = encoded.len();
        match replica.propose(encoded) {
            Ok(()) => {
                engine.metrics.proposal_sizes.record(size_bytes);
                // raft appended it at once: its index and term are known.
                let (index, term) = (replica.last_index(), replica.term());
                self.proposed.push_back((index, term, proposal));
            }
            Err(error) => self.propose_failed(engine, origin, error),
        }
    }

    /// raft did not take a proposal: what prepare recorded for it will not happen, so the next
    /// prepares judge against the tree alone (apply refuses what no longer fits), and whoever
    /// waits may ask again.
    fn propose_failed(&mut self, engine: &Engine, origin: Option<Origin>, error: ProposeError) {
        self.pending.clear();
        let code = match error {
            ProposeError::NotLeader | ProposeError::Dropped => ErrorCode::ConnectionLoss,
        };
        self.fail_origin(engine, origin, code);
    }

    pub(super) fn fail_origin(&mut self, engine: &Engine, origin: Option<Origin>, code: ErrorCode) {
        if let Some(origin) = origin.filter(|origin| self.is_mine(origin)) {
            if let Some(waiter) = self.waiting.remove(&origin.request) {
                waiter.fail(engine, code);
            }
        }
    }

    /// A follower's requests: taken in stream order, each once, then acknowledged.
    pub(super) fn take_forwarded(
        &mut self,
        engine: &Engine,
        from: u64,
        term: u64,
        run: u64,
        requests: Vec<Forwarded>,
    ) {
        if self.role.state != StateRole::Leader || term != self.role.term {
            return; // for another leader: the follower hears of this one and starts anew
        }
        let intake = self
            .lead
            .intake
            .entry(from)
            .or_insert(Intake { run, next_seq: 1 });
        if run > intake.run {
            *intake = Intake { run, next_seq: 1 };
        }
        let current = *intake;
        if run == current.run {
            let mut next_seq = current.next_seq;
            for request in requests {
                if request.seq != next_seq {
                    if request.seq > next_seq {
                        break; // a gap: the follower sends again what was lost
                    }
                    continue; // taken already
                }
                next_seq += 1;
                self.lead_request(engine, request);
            }
            if let Some(intake) = self.lead.intake.get_mut(&from) {
                intake.next_seq = next_seq;
            }
        }
        // An older run is answered with the newest, so a follower restarted with its clock
        // set back moves past it.
        let intake = self.lead.intake[&from];
        self.send(
            from,
            PeerMessage::ForwardAck {
                term,
                run: intake.run,
                through: intake.next_seq - 1,
            },
        );
    }

    /// Session time on the leader: sessions alive here are touched, the ones whose time
    /// passed expire (their CloseSession Txns apply on every member), and containers and
    /// TTL znodes are reaped when due.
    pub(super) fn expire_and_reap(&mut self, engine: &Engine, now_ms: u64) {
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
            // Its requests from now on answer SessionExpired; the close applies later.
            if let Some(session) = engine.sessions.read().get(&session_id) {
                session.mark_closed();
            }
            let op = self.prepare(engine, |prepare| prepare.close_session(session_id));
            self.propose(engine, None, op);
        }
        if now_ms.saturating_sub(self.last_reap_ms) >= engine.config.container_check_interval_ms {
            self.last_reap_ms = now_ms;
            self.reap(engine);
        }
    }

    /// Deletes empty containers and expired TTL znodes, as ZooKeeper's ContainerManager.
    fn reap(&mut self, engine: &Engine) {
        let candidates = engine.tree.read().reap_candidates(engine.clock.wall_ms());
        for path in candidates {
            let op = Op::DeleteContainer { path };
            match self.prepare(engine, |prepare| prepare.request(Requester::reaper(), &op)) {
                Ok(txn_op) => self.propose(engine, None, txn_op),
                Err(refusal) => tracing::debug!(?op, ?refusal, "reap candidate skipped"),
            }
        }
    }
}

/// A new session's id: the member its client asked in the top byte, as ZooKeeper's, then the
/// log index of its CreateSession entry, which no other entry ever takes; so ids are never
/// reused, whatever the clocks do. Never 0 ("no owner"), the container marker (index 0) or a
/// TTL marker (top byte 0xFF: member ids stop at 254).
fn session_id_at(origin: Origin, index: u64) -> i64 {
    let member = u64::from(crate::replication::member_of(origin.member));
    ((member << 56) | (index & ((1 << 56) - 1))) as i64
}
