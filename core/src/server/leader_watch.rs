//! Who leads and who is heard from: a change of leader as this member sees it (requests in
//! flight abandoned, serving only with a leader), each member's last word (a leader's synced
//! followers, for mntr), and a leader gone silent on a member that will not campaign for
//! itself (an observer, a raft learner, keeps the leader it last knew forever): after twice
//! the election timeout without a word from it, the member stops serving, as a ZooKeeper
//! observer does when it loses its leader, and serves again when the leader (or a new one) is
//! heard.

use std::sync::atomic::Ordering;

use raft::StateRole;

use crate::replication::Role;

use crate::server::driver::Driver;
use crate::server::engine::Engine;

/// Election timeouts of silence after which a member gives up on its leader.
const SILENT_ELECTION_TIMEOUTS: u64 = 2;

/// Ticks since the known leader was last heard, and whether the member gave up on it.
#[derive(Debug, Default)]
pub(super) struct LeaderWatch {
    silent_ticks: u64,
    given_up: bool,
}

impl Driver {
    /// Who leads changed as this member sees it. Requests in flight are answered
    /// ConnectionLoss (their outcome is unknown, as a ZooKeeper client hears when its server
    /// leaves the quorum), and the member serves only while it knows a leader.
    pub(super) fn role_changed(&mut self, engine: &Engine, role: Role) {
        let old = std::mem::replace(&mut self.role, role);
        self.watch_leader_reset();
        if role.state == StateRole::Leader && old.state != StateRole::Leader {
            engine
                .leading_since_ms
                .store(engine.clock.now_ms(), Ordering::Release);
        }
        engine
            .leading
            .store(role.state == StateRole::Leader, Ordering::Release);
        // Operators know members by their myid, not by raft's ids.
        let leader = (role.leader != 0).then(|| crate::replication::member_of(role.leader));
        tracing::info!(
            member = crate::replication::member_of(self.me),
            state = ?role.state,
            leader = ?leader,
            term = role.term,
            zxid = format_args!("0x{:x}", engine.last_zxid()),
            "raft role changed"
        );
        if (old.leader, old.term) != (role.leader, role.term) {
            self.abandon_requests(engine);
            engine.set_serving(false);
            self.forward.follow(role.leader, role.term);
        }
        if role.state == StateRole::Leader {
            let replica = self.replica.as_ref().expect("a leader has raft");
            self.lead.start_term(replica.term_start_index());
        } else if role.leader != 0 && !self.removed {
            engine.set_serving(true);
        }
    }

    /// One raft tick without (so far) a word from the leader.
    pub(super) fn watch_leader_tick(&mut self, engine: &Engine) {
        if self.role.state == StateRole::Leader || self.role.leader == 0 {
            return;
        }
        self.leader_watch.silent_ticks += 1;
        if self.leader_watch.given_up
            || self.leader_watch.silent_ticks < SILENT_ELECTION_TIMEOUTS * self.election_ticks
        {
            return;
        }
        self.leader_watch.given_up = true;
        tracing::warn!(
            member = crate::replication::member_of(self.me),
            leader = crate::replication::member_of(self.role.leader),
            term = self.role.term,
            "no word from the leader: not serving until it is heard again"
        );
        self.abandon_requests(engine);
        engine.set_serving(false);
    }

    /// True when member `raft_id` was heard from within an election timeout (a leader's
    /// synced followers, for mntr).
    pub(super) fn heard_lately(&self, raft_id: u64) -> bool {
        self.last_heard_tick
            .get(&raft_id)
            .is_some_and(|tick| self.raft_ticks.saturating_sub(*tick) <= self.election_ticks)
    }

    /// A message from member `from`: noted, and if it is the leader this member follows,
    /// the leader is heard.
    pub(super) fn watch_leader_heard(&mut self, engine: &Engine, from: u64) {
        self.last_heard_tick.insert(from, self.raft_ticks);
        if from != self.role.leader {
            return;
        }
        self.leader_watch.silent_ticks = 0;
        if std::mem::take(&mut self.leader_watch.given_up) {
            tracing::info!(
                member = crate::replication::member_of(self.me),
                leader = crate::replication::member_of(from),
                "the leader is heard again: serving"
            );
            engine.set_serving(true);
        }
    }

    /// The role changed: whatever it was, the watch starts over.
    pub(super) fn watch_leader_reset(&mut self) {
        self.leader_watch = LeaderWatch::default();
    }
}
