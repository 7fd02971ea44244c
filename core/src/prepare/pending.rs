//! What prepare has decided but apply has not yet done: each znode as pending Txns leave it,
//! and each session's pending ephemeral count, forgotten as the Txns apply.

use std::collections::{HashMap, VecDeque};

use super::NodeView;

/// A pending change to one znode: the zxid of the Txn that made it, and the znode as that Txn
/// leaves it (`None`: deleted).
pub(super) type PendingNode = (i64, Option<NodeView>);

/// Changes prepared but not yet applied, by path, each with the zxid of the Txn that made it
/// (ZooKeeper's outstanding ChangeRecords); `None` marks a pending delete.
#[derive(Default)]
pub struct PendingChanges {
    pub(super) nodes: HashMap<String, PendingNode>,
    /// Every record made, in zxid order, so forgetting the applied ones visits only them
    /// (a pipelined leader holds thousands; scanning them all per apply was a hot spot).
    /// A path recorded again, or rolled back with a failed multi, leaves a stale entry that
    /// is skipped when it comes up.
    pub(super) recorded: VecDeque<(i64, String)>,
    /// Ephemerals created (+1) or deleted (-1) by pending Txns, by session, with their zxids.
    pub(super) ephemerals_added: HashMap<i64, Vec<(i64, i64)>>,
}

impl PendingChanges {
    /// Forgets the changes of Txns with zxid up to `zxid`: the tree now shows them. A record a
    /// later Txn changed again stays until that Txn applies too.
    pub fn applied_through(&mut self, zxid: i64) {
        while let Some((made_by, _)) = self.recorded.front() {
            if *made_by > zxid {
                break;
            }
            let (_, path) = self.recorded.pop_front().expect("front exists");
            if self
                .nodes
                .get(&path)
                .is_some_and(|(latest, _)| *latest <= zxid)
            {
                self.nodes.remove(&path);
            }
        }
        if self.ephemerals_added.is_empty() {
            return;
        }
        self.ephemerals_added.retain(|_, deltas| {
            deltas.retain(|(made_by, _)| *made_by > zxid);
            !deltas.is_empty()
        });
    }

    /// Forgets every pending change (the member stopped: its pending Txns will never apply).
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.recorded.clear();
        self.ephemerals_added.clear();
    }

    /// True when no prepared Txn awaits apply.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.ephemerals_added.is_empty()
    }

    pub(super) fn ephemerals_added(&self, session_id: i64) -> i64 {
        self.ephemerals_added
            .get(&session_id)
            .map_or(0, |deltas| deltas.iter().map(|(_, delta)| delta).sum())
    }
}
