//! Who is heard from: each member's last word (a leader's synced followers, for mntr), and a
//! leader gone silent on a member that will not campaign for itself (an observer, a raft
//! learner, keeps the leader it last knew forever): after twice the election timeout without
//! a word from it, the member stops serving, as a ZooKeeper observer does when it loses its
//! leader, and serves again when the leader (or a new one) is heard.

use raft::StateRole;

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
