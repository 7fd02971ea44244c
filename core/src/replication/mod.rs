//! Replicate stage: a Txn is committed once a quorum holds it durably (the `Replicator` seam).
//!
//! zxid = the index of the committed log entry. `SingleMember` is the ensemble of one: its quorum
//! is itself, so a Txn commits as soon as its own log has it durably. The driver
//! (server/driver.rs) is the only caller; the Raft replicator (raft-rs) replaces this seam
//! for ensembles.

use std::sync::Arc;

use crate::storage::LogStore;
use crate::txn::Txn;

/// Orders Txns and commits them.
///
/// Contract: `propose` gives each Txn the next zxid (they strictly increase) and starts making
/// it durable; `commit` returns once every proposed Txn is committed (a quorum holds it
/// durably) and answers the newest committed zxid, so one call can commit many proposals
/// (group commit). An `Err` means the member cannot commit anymore (storage failed,
/// leadership lost): no Txn proposed since the last successful commit may be treated as
/// committed.
pub trait Replicator: Send {
    /// Orders one Txn; answers its zxid.
    fn propose(&mut self, txn: Arc<Txn>) -> std::io::Result<i64>;
    /// Commits everything proposed so far; answers the newest committed zxid.
    fn commit(&mut self) -> std::io::Result<i64>;
    /// The newest committed zxid.
    fn committed_zxid(&self) -> i64;
    /// The zxid the next proposal will get.
    fn next_zxid(&self) -> i64;
    /// Lets the log drop what a snapshot through `zxid` covers.
    fn purge_through(&mut self, zxid: i64) -> std::io::Result<()>;
}

/// An ensemble of one member: commit = the member's own log made durable.
pub struct SingleMember {
    log: Box<dyn LogStore>,
    next_zxid: i64,
    committed_zxid: i64,
}

impl SingleMember {
    /// A replicator over `log`, continuing after the log's last zxid (all of it committed:
    /// a single member's log holds only what it made durable).
    pub fn new(log: Box<dyn LogStore>) -> SingleMember {
        SingleMember::after(log, 0)
    }

    /// A replicator whose state already holds everything through `recovered_zxid` (a snapshot
    /// may reach past a purged log's end).
    pub fn after(log: Box<dyn LogStore>, recovered_zxid: i64) -> SingleMember {
        let last = log.last_zxid().max(recovered_zxid);
        SingleMember {
            log,
            next_zxid: last + 1,
            committed_zxid: last,
        }
    }
}

impl Replicator for SingleMember {
    fn propose(&mut self, txn: Arc<Txn>) -> std::io::Result<i64> {
        let zxid = self.next_zxid;
        self.log.append(zxid, txn)?;
        self.next_zxid += 1;
        Ok(zxid)
    }

    fn commit(&mut self) -> std::io::Result<i64> {
        let through = self.next_zxid - 1;
        if self.committed_zxid < through {
            self.log.sync()?;
            self.committed_zxid = through;
        }
        Ok(self.committed_zxid)
    }

    fn committed_zxid(&self) -> i64 {
        self.committed_zxid
    }

    fn next_zxid(&self) -> i64 {
        self.next_zxid
    }

    fn purge_through(&mut self, zxid: i64) -> std::io::Result<()> {
        self.log.purge_through(zxid)
    }
}
