//! What an engine reports about itself, for the four-letter words and metrics: counts, watches
//! by session and by path, sessions by expiry, ephemerals. Read-only snapshots under the
//! engine's own locks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use super::Engine;
use crate::replication::ReplicaStatus;
use crate::server::membership::{MemberRole, Membership};

/// A member's role as ZooKeeper's `srvr` prints it (`Mode: ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerRole {
    /// Not in an ensemble.
    Standalone,
    /// Leads its ensemble.
    Leader,
    /// Votes and follows a leader.
    Follower,
    /// Follows without voting.
    Observer,
    /// Cut off from its quorum, serving read-only clients (`readonlymode.enabled`).
    ReadOnly,
}

impl ServerRole {
    /// The word `srvr`'s `Mode:` and mntr's `zk_server_state` print.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::Standalone => "standalone",
            ServerRole::Leader => "leader",
            ServerRole::Follower => "follower",
            ServerRole::Observer => "observer",
            ServerRole::ReadOnly => "read-only",
        }
    }
}

impl Engine {
    /// The member's role; None while it serves no one (no leader known, or stopped), when
    /// ZooKeeper answers "not currently serving requests".
    pub fn role(&self) -> Option<ServerRole> {
        if self.is_read_only() {
            return Some(ServerRole::ReadOnly);
        }
        if !self.is_serving() {
            return None;
        }
        let config = self.config();
        let membership = self.membership.read();
        let observer = match membership.members.get(&config.member_id) {
            Some(me) => me.role == MemberRole::Observer,
            // Left the membership by a reconfig: it serves no one.
            None if !membership.members.is_empty() => return None,
            // An in-process ensemble's members have no `server.N` lines.
            None => config.observers.contains(&config.member_id),
        };
        Some(if !config.is_ensemble() {
            ServerRole::Standalone
        } else if self.is_leader() {
            ServerRole::Leader
        } else if observer {
            ServerRole::Observer
        } else {
            ServerRole::Follower
        })
    }

    /// raft's state in one line, for diagnostics.
    pub fn describe_replication(&self) -> String {
        let driver = self.driver.lock();
        match &driver.replica {
            Some(replica) => replica.describe(),
            None => "no replication (stopped or failed)".into(),
        }
    }

    /// The membership this member runs with: zoo.cfg's, or the newer one a reconfig made
    /// (empty for a standalone server and an in-process ensemble).
    pub fn membership(&self) -> Membership {
        self.membership.read().clone()
    }

    /// Proposal sizes in bytes: (last, min, max, how many), -1 before the first.
    pub fn proposal_sizes(&self) -> (i64, i64, i64, u64) {
        self.metrics.proposal_sizes.read()
    }

    /// Milliseconds since this member started leading (0 when it does not lead).
    pub fn leader_uptime_ms(&self) -> u64 {
        if !self.is_leader() {
            return 0;
        }
        let since = self.leading_since_ms.load(Ordering::Acquire);
        self.clock.now_ms().saturating_sub(since)
    }

    /// raft's state for operators (None once stopped or failed).
    pub fn replication_status(&self) -> Option<ReplicaStatus> {
        let driver = self.driver.lock();
        let mut status = driver.replica.as_ref()?.status();
        for learner in &mut status.learners {
            learner.synced &= driver.heard_lately(learner.id);
        }
        Some(status)
    }

    /// True once storage failed and the engine stopped accepting writes (fail-stop).
    pub fn has_failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Live sessions attached to this member.
    pub fn session_count(&self) -> usize {
        self.sessions.read().len()
    }

    /// Number of znodes, the reserved ones included.
    pub fn znode_count(&self) -> usize {
        self.tree.read().node_count()
    }

    /// Number of watches held by all sessions.
    pub fn watch_count(&self) -> usize {
        self.watches.lock().watch_count()
    }

    /// Each session's watched paths (the wchc four-letter word).
    pub fn watches_by_session(&self) -> BTreeMap<i64, BTreeSet<String>> {
        self.watches.lock().paths_by_session()
    }

    /// Each watched path's sessions (the wchp four-letter word).
    pub fn watches_by_path(&self) -> BTreeMap<String, BTreeSet<i64>> {
        self.watches.lock().sessions_by_path()
    }

    /// The timeout of a live session (the cons four-letter word).
    pub fn session_timeout_ms(&self, session_id: i64) -> Option<u32> {
        self.sessions
            .read()
            .get(&session_id)
            .map(|session| session.timeout_ms())
    }

    /// Live sessions grouped by when they expire unless touched again, in wall-clock ms since
    /// the Unix epoch (the dump four-letter word). Expiry is rounded up to the next tick, as
    /// the session tracker schedules it.
    pub fn sessions_by_expiry(&self) -> BTreeMap<i64, BTreeSet<i64>> {
        let now_ms = self.clock.now_ms();
        let wall_ms = self.clock.wall_ms();
        let tick_ms = u64::from(self.config.tick_ms.max(1));
        let mut buckets: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for session in self.sessions.read().values() {
            let touched_ms = if session.is_attached() {
                now_ms
            } else {
                session.last_touch_ms()
            };
            let expiry_ms =
                (touched_ms + u64::from(session.timeout_ms())) / tick_ms * tick_ms + tick_ms;
            let expiry_wall_ms = wall_ms + (expiry_ms as i64 - now_ms as i64);
            buckets
                .entry(expiry_wall_ms)
                .or_default()
                .insert(session.id());
        }
        buckets
    }

    /// Each session's ephemeral paths, sorted; sessions without ephemerals are left out (the
    /// dump four-letter word).
    pub fn ephemerals_by_session(&self) -> BTreeMap<i64, Vec<String>> {
        let tree = self.tree.read();
        tree.sessions()
            .map(|(session_id, _)| (session_id, tree.ephemerals(session_id)))
            .filter(|(_, paths)| !paths.is_empty())
            .collect()
    }

    /// Number of ephemeral znodes of all sessions.
    pub fn ephemeral_count(&self) -> usize {
        let tree = self.tree.read();
        tree.sessions()
            .map(|(session_id, _)| tree.ephemeral_count(session_id))
            .sum()
    }

    /// The sum of every znode's path and data lengths in bytes (ZooKeeper's
    /// approximateDataSize).
    pub fn approximate_data_size(&self) -> u64 {
        self.tree.read().approximate_data_size()
    }
}
