//! Replicate stage: a Txn is committed once a quorum holds it durably (the `Replicator` seam).
//!
//! zxid = the index of the committed log entry. This replicator is the ensemble of one:
//! its quorum is itself, so a Txn commits as soon as its own log has it. The Raft replicator
//! (raft-rs) plugs in behind the same trait for ensembles.

use std::sync::Arc;

use crate::storage::LogStore;
use crate::txn::Txn;

/// Commits Txns in a single total order.
///
/// Contract: `propose` returns the zxid the Txn committed at; zxids strictly increase across
/// calls. An `Err` means the member cannot commit anymore (storage failed, leadership lost) and
/// the Txn must be treated as not committed.
pub trait Replicator: Send {
    /// Commits one Txn and returns its zxid.
    fn propose(&mut self, txn: Arc<Txn>) -> std::io::Result<i64>;
    /// The newest committed zxid.
    fn committed_zxid(&self) -> i64;
}

/// An ensemble of one member: commit = append to the member's own log.
pub struct SingleMember {
    log: Box<dyn LogStore>,
    next_zxid: i64,
}

impl SingleMember {
    /// A replicator over `log`, continuing after the log's last zxid.
    pub fn new(log: Box<dyn LogStore>) -> SingleMember {
        let next_zxid = log.last_zxid() + 1;
        SingleMember { log, next_zxid }
    }
}

impl Replicator for SingleMember {
    fn propose(&mut self, txn: Arc<Txn>) -> std::io::Result<i64> {
        let zxid = self.next_zxid;
        self.log.append(zxid, txn)?;
        self.next_zxid += 1;
        Ok(zxid)
    }

    fn committed_zxid(&self) -> i64 {
        self.next_zxid - 1
    }
}
