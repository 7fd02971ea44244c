//! Replicate stage: raft (tikv's raft-rs) under one member, event-driven. The driver feeds
//! it proposals, peer messages and ticks, then `process` hands back what raft decided: messages
//! to send, committed entries to apply, a snapshot to install, answered ReadIndex requests,
//! after making the round's entries and hard state durable with one sync (group commit).
//!
//! zxid = the index of a committed entry. A single member is an ensemble of one on the same
//! path: its quorum is itself, so an entry commits once its own log holds it durably.

pub mod log;
pub mod memory;
pub mod tcp;
pub mod transport;

use std::io;

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, Snapshot};
use raft::{RawNode, ReadState, StateRole};

use crate::random::SplitMix64;

pub use log::{DurableLog, RaftLog};
pub use tcp::{
    PeerReceiver, PeerTlsConfig, TcpTransport, TcpTransportConfig, TcpTransportError,
    TcpTransportStats,
};
pub use transport::{Forwarded, ForwardedRequest, PeerMessage, Transport};

/// A raft member id: this engine's `member_id + 1` (raft reserves 0 for "nobody").
pub fn raft_id(member_id: u8) -> u64 {
    u64::from(member_id) + 1
}

/// The member id of a raft id.
pub fn member_of(raft_id: u64) -> u8 {
    debug_assert!((1..=256).contains(&raft_id), "raft id {raft_id}");
    (raft_id - 1) as u8
}

/// How a member's raft runs.
#[derive(Clone, Copy, Debug)]
pub struct ReplicaConfig {
    /// This member's raft id.
    pub id: u64,
    /// Ticks without a leader's word before a follower campaigns (raft randomizes it within
    /// `[election_ticks, 2 x election_ticks)`).
    pub election_ticks: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// The newest index already applied to the member's tree (at start: what recovery
    /// restored).
    pub applied: u64,
    /// Seeds the election timeouts, so a simulation replays from its seed.
    pub seed: u64,
}

/// raft's state as operators see it (`Replica::status`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The current term.
    pub term: u64,
    /// The leader this member knows (0: none).
    pub leader_id: u64,
    /// True on the leader.
    pub leading: bool,
    /// How many members vote.
    pub voters: usize,
    /// On the leader, every other member.
    pub learners: Vec<LearnerStatus>,
}

/// One follower or observer as its leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnerStatus {
    /// Its raft id.
    pub id: u64,
    /// It votes (a follower), or not (an observer).
    pub voter: bool,
    /// It is replicating and was heard from within an election timeout.
    pub synced: bool,
    /// It is being sent a snapshot (ZooKeeper's pending sync).
    pub receiving_snapshot: bool,
    /// Entries it lacks.
    pub behind_entries: u64,
}

/// Why a proposal was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// This member is not the leader: the request must go to the leader.
    NotLeader,
    /// Raft refused it for now (a leadership transfer, too much uncommitted): retry later.
    Dropped,
}

/// A change of who leads, as this member sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// This member's own role.
    pub state: StateRole,
    /// The leader it knows (0: none).
    pub leader: u64,
    /// The term.
    pub term: u64,
}

/// What one `process` call leaves for the driver: messages to send, committed entries to
/// apply in order, read states to answer once applied, and a change of role.
#[derive(Default)]
pub struct Output {
    /// Set when a snapshot from the leader was installed (through `process`'s `install`):
    /// its index. Committed entries it covers are not in `committed`.
    pub snapshot_index: Option<u64>,
    /// Entries committed and durable here, to apply in index order.
    pub committed: Vec<Entry>,
    /// ReadIndex requests answered: wait until that index applied, then answer.
    pub read_states: Vec<ReadState>,
    /// Messages for other members (safe to send: what they vouch for is durable).
    pub messages: Vec<Message>,
    /// Set when who leads changed during the call.
    pub role: Option<Role>,
    /// Each fsync of the call: how long it took and how many new entries it made durable.
    pub fsyncs: Vec<(std::time::Duration, usize)>,
}

/// One member's raft.
pub struct Replica {
    node: RawNode<RaftLog>,
    /// Seeded randomness for election timeouts. raft-rs draws its own from the thread's
    /// generator; this one overrides each draw, so a seeded simulation stays deterministic.
    random: SplitMix64,
    /// raft's election timeout range in ticks, `[low, high)`.
    election_ticks: (usize, usize),
    /// The (state, term, leader) the current election timeout was drawn for.
    timer_key: (StateRole, u64, u64),
    role: Role,
}

impl Replica {
    /// A member's raft over `log`.
    pub fn new(config: ReplicaConfig, log: RaftLog) -> Result<Replica, String> {
        let raft_config = raft::Config {
            id: config.id,
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            applied: config.applied,
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            // Bounds what proposals may pile up uncommitted (a leader cut off from its quorum).
            max_uncommitted_size: 256 << 20,
            ..raft::Config::default()
        };
        raft_config
            .validate()
            .map_err(|error| format!("raft configuration: {error}"))?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let node = RawNode::new(&raft_config, log, &logger)
            .map_err(|error| format!("raft cannot start: {error}"))?;
        let role = Role {
            state: node.raft.state,
            leader: node.raft.leader_id,
            term: node.raft.term,
        };
        let mut replica = Replica {
            random: SplitMix64::new(config.seed ^ config.id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            election_ticks: (
                raft_config.min_election_tick(),
                raft_config.max_election_tick(),
            ),
            timer_key: (node.raft.state, node.raft.term, node.raft.leader_id),
            node,
            role,
        };
        replica.draw_election_timeout();
        Ok(replica)
    }

    /// Proposes an entry carrying `data`.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), ProposeError> {
        if self.node.raft.state != StateRole::Leader {
            return Err(ProposeError::NotLeader);
        }
        self.node
            .propose(Vec::new(), data)
            .map_err(|_| ProposeError::Dropped)
    }

    /// Proposes a membership change.
    pub fn propose_conf_change(&mut self, change: ConfChangeV2) -> Result<(), ProposeError> {
        if self.node.raft.state != StateRole::Leader {
            return Err(ProposeError::NotLeader);
        }
        self.node
            .propose_conf_change(Vec::new(), change)
            .map_err(|_| ProposeError::Dropped)
    }

    /// True while a membership change is in the log and not applied (raft takes no other).
    pub fn has_pending_conf(&self) -> bool {
        self.node.raft.has_pending_conf()
    }

    /// Hands leadership to `to` once its log caught up (a leader leaving the membership).
    pub fn transfer_leader(&mut self, to: u64) {
        self.node.transfer_leader(to);
        self.after_call();
    }

    /// A leader that is no longer a voter (a reconfig removed it, or made it an observer)
    /// and is not handing its role on steps down, so the voters elect one of their own:
    /// raft-rs lets it lead on otherwise. Answers whether it stepped down.
    pub fn step_down_if_not_voter(&mut self) -> bool {
        let raft = &mut self.node.raft;
        let conf = raft.prs().conf();
        if raft.state != StateRole::Leader
            || conf.voters().contains(raft.id)
            || raft.lead_transferee.is_some()
        {
            return false;
        }
        let term = raft.term;
        raft.become_follower(term, raft::INVALID_ID);
        self.after_call();
        true
    }

    /// Member `from`'s connection ended on its side. When it is the leader this follower
    /// knows, the follower leaves the leader's lease at once (its election clock jumps to the
    /// election timeout, as if that long had passed in silence) and campaigns after a short
    /// wait that grows with its rank among the voters, so the survivors do not split their
    /// votes. Safe whatever the cause: a leader that is alive keeps its followers' lease with
    /// its next heartbeat, and pre-vote keeps a lone campaigner from disturbing the term.
    pub fn leader_unreachable(&mut self, from: u64) {
        let raft = &mut self.node.raft;
        if raft.state != StateRole::Follower || raft.leader_id != from {
            return;
        }
        let timeout = raft.election_timeout();
        let rank = raft
            .prs()
            .conf()
            .voters()
            .ids()
            .iter()
            .filter(|id| *id != from && *id < raft.id)
            .count();
        // One tick for the other survivors to see the same loss, then two per rank.
        let wait_ticks = 1 + 2 * rank;
        let campaign_at = (timeout + wait_ticks).min(2 * timeout - 1);
        raft.set_randomized_election_timeout(campaign_at);
        raft.election_elapsed = raft.election_elapsed.max(timeout);
    }

    /// Takes a message from another member (stale or foreign ones are dropped by raft).
    pub fn step(&mut self, message: Message) {
        let _ = self.node.step(message);
        self.after_call();
    }

    /// One tick of raft time (elections, heartbeats).
    pub fn tick(&mut self) {
        self.node.tick();
        self.after_call();
    }

    /// Starts an election now (a single member does at start).
    pub fn campaign(&mut self) {
        let _ = self.node.campaign();
        self.after_call();
    }

    /// Asks for a read index: answered in a later `Output::read_states` with `context`.
    pub fn read_index(&mut self, context: Vec<u8>) {
        self.node.read_index(context);
        self.after_call();
    }

    /// Applies the membership changes among committed `entries` to raft at once, before raft
    /// hears they applied: raft then sees the membership it must (a leader leaves a joint
    /// membership as soon as it entered it). The driver applies the rest of each entry.
    fn apply_conf_changes(&mut self, entries: &[Entry]) -> io::Result<()> {
        for entry in entries {
            let applied = match entry.get_entry_type() {
                EntryType::EntryNormal => continue,
                EntryType::EntryConfChange => ConfChange::parse_from_bytes(&entry.data)
                    .map_err(|error| error.to_string())
                    .and_then(|change| {
                        self.node
                            .apply_conf_change(&change)
                            .map_err(|error| error.to_string())
                    }),
                EntryType::EntryConfChangeV2 => ConfChangeV2::parse_from_bytes(&entry.data)
                    .map_err(|error| error.to_string())
                    .and_then(|change| {
                        self.node
                            .apply_conf_change(&change)
                            .map_err(|error| error.to_string())
                    }),
            };
            let conf_state = applied.map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("membership change at index {}: {error}", entry.index),
                )
            })?;
            // raft reads the membership from the log's state when it restarts.
            self.node.mut_store().set_conf_state(conf_state);
        }
        Ok(())
    }

    /// True when raft has something for `process`.
    pub fn has_ready(&self) -> bool {
        self.node.has_ready()
    }

    /// The index of the first entry of the current term in this member's log (a new leader's
    /// empty entry): once it applied, the leader's tree holds everything committed before it.
    pub fn term_start_index(&self) -> u64 {
        let term = self.term();
        let mut index = self.last_index();
        while index > 0 && self.term_of(index - 1) == Some(term) {
            index -= 1;
        }
        index
    }

    /// True while this member leads.
    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// Who leads as this member knows (0: nobody).
    pub fn leader(&self) -> u64 {
        self.node.raft.leader_id
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    /// The newest index this member knows committed.
    pub fn committed(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The newest index in the log.
    pub fn last_index(&self) -> u64 {
        self.node.raft.raft_log.last_index()
    }

    /// The term of the entry at `index`, when the log still has it.
    pub fn term_of(&self, index: u64) -> Option<u64> {
        self.node.raft.raft_log.term(index).ok()
    }

    /// The log.
    pub fn log(&self) -> &RaftLog {
        self.node.store()
    }

    /// The log, to keep snapshots and compact.
    pub fn log_mut(&mut self) -> &mut RaftLog {
        self.node.mut_store()
    }

    /// The membership.
    pub fn conf_state(&self) -> ConfState {
        self.node.store().conf_state().clone()
    }

    /// A one-line account of raft's state, for diagnostics: term, role, log bounds, commit
    /// and, on a leader, each follower's progress.
    pub fn describe(&self) -> String {
        let raft = &self.node.raft;
        let mut text = format!(
            "term {} {:?} leader {} log {}..={} committed {} applied {}",
            raft.term,
            raft.state,
            raft.leader_id,
            raft.raft_log.first_index(),
            raft.raft_log.last_index(),
            raft.raft_log.committed,
            raft.raft_log.applied,
        );
        if raft.state == StateRole::Leader {
            for (id, progress) in raft.prs().iter() {
                text.push_str(&format!(
                    " | {id}: matched {} next {} {:?} paused {} pending snapshot {}",
                    progress.matched,
                    progress.next_idx,
                    progress.state,
                    progress.is_paused(),
                    progress.pending_snapshot
                ));
            }
        }
        text
    }

    /// What operators see of raft (the four-letter words' roles and quorum counters).
    pub fn status(&self) -> ReplicaStatus {
        let raft = &self.node.raft;
        let mut status = ReplicaStatus {
            term: raft.term,
            leader_id: raft.leader_id,
            leading: raft.state == StateRole::Leader,
            voters: raft.prs().conf().voters().ids().len(),
            learners: Vec::new(),
        };
        if status.leading {
            let last_index = raft.raft_log.last_index();
            let learner_ids = raft.prs().conf().learners();
            for (id, progress) in raft.prs().iter() {
                if *id == raft.id {
                    continue;
                }
                status.learners.push(LearnerStatus {
                    id: *id,
                    voter: !learner_ids.contains(id),
                    // Replicating (not probing, not waiting for a snapshot). Whether it was
                    // heard from lately is the driver's to add: raft's own recent_active
                    // flags are reset every election timeout, before replies come back.
                    synced: progress.state == raft::ProgressState::Replicate,
                    receiving_snapshot: progress.state == raft::ProgressState::Snapshot,
                    behind_entries: last_index.saturating_sub(progress.matched),
                });
            }
        }
        status
    }

    /// While leading: the lowest index every follower that streams entries (raft's Replicate
    /// state) holds. Followers probing (unreachable, restarting) do not count: when they come
    /// back they get entries if still kept, a snapshot if not. None when not leading or when
    /// no follower streams.
    pub fn slowest_streaming_match(&self) -> Option<u64> {
        let raft = &self.node.raft;
        if raft.state != StateRole::Leader {
            return None;
        }
        raft.prs()
            .iter()
            .filter(|(id, progress)| {
                **id != raft.id && progress.state == raft::ProgressState::Replicate
            })
            .map(|(_, progress)| progress.matched)
            .min()
    }

    /// Tells raft a snapshot message was handed to the transport: it then probes the
    /// follower, and sends the snapshot again if the message was lost.
    pub fn report_snapshot_sent(&mut self, id: u64) {
        self.node.report_snapshot(id, raft::SnapshotStatus::Finish);
    }

    /// Tells raft a member cannot be reached (it then probes instead of streaming).
    pub fn report_unreachable(&mut self, id: u64) {
        self.node.report_unreachable(id);
    }

    /// Runs raft's Ready loop: persists entries and hard state (one sync per ready), and
    /// gathers what the driver must do. Errors are storage failures: the member must stop
    /// (fail-stop), since a retried fsync may lie.
    ///
    /// `install` runs first for a snapshot from the leader: it must make the snapshot durable
    /// (and take it into the tree) before the log drops what the snapshot replaces.
    pub fn process(
        &mut self,
        install: &mut dyn FnMut(&Snapshot) -> io::Result<()>,
    ) -> io::Result<Output> {
        let mut output = Output::default();
        while self.node.has_ready() {
            let mut ready = self.node.ready();
            output.messages.extend(ready.take_messages());
            if !ready.snapshot().is_empty() {
                let snapshot = ready.snapshot().clone();
                // Entries handed out earlier in this call that the snapshot covers.
                let index = snapshot.get_metadata().index;
                output.committed.retain(|entry| entry.index > index);
                install(&snapshot)?;
                self.node.mut_store().install_snapshot(&snapshot)?;
                output.snapshot_index = Some(snapshot.get_metadata().index);
            }
            let committed = ready.take_committed_entries();
            self.apply_conf_changes(&committed)?;
            output.committed.extend(committed);
            let mut appended = 0;
            if !ready.entries().is_empty() {
                let entries = ready.take_entries();
                appended = entries.len();
                self.node.mut_store().append(&entries)?;
            }
            if let Some(hard_state) = ready.hs() {
                self.node.mut_store().set_hard_state(hard_state)?;
            }
            output.read_states.extend(ready.take_read_states());
            if ready.must_sync() {
                let started = std::time::Instant::now();
                self.node.mut_store().sync()?;
                if self.node.store().fsyncs() {
                    output.fsyncs.push((started.elapsed(), appended));
                }
            }
            output.messages.extend(ready.take_persisted_messages());
            let mut light = self.node.advance(ready);
            if let Some(commit) = light.commit_index() {
                self.node.mut_store().set_commit(commit)?;
            }
            output.messages.extend(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply_conf_changes(&committed)?;
            output.committed.extend(committed);
            // The driver applies everything handed out before it calls again.
            self.node.advance_apply();
        }
        self.after_call();
        if self.role_changed() {
            output.role = Some(self.role);
        }
        Ok(output)
    }

    /// After raft may have reset its election timer: draw the timeout from the seeded
    /// generator instead of raft's own.
    fn after_call(&mut self) {
        let raft = &self.node.raft;
        let now = (raft.state, raft.term, raft.leader_id);
        if now != self.timer_key {
            self.timer_key = now;
            self.draw_election_timeout();
        }
    }

    fn role_changed(&mut self) -> bool {
        let raft = &self.node.raft;
        let now = Role {
            state: raft.state,
            leader: raft.leader_id,
            term: raft.term,
        };
        let changed = now != self.role;
        self.role = now;
        changed
    }

    fn draw_election_timeout(&mut self) {
        let (low, high) = self.election_ticks;
        let timeout = low + (self.random.next_u64() % (high - low).max(1) as u64) as usize;
        self.node.raft.set_randomized_election_timeout(timeout);
    }
}
