//! Persist stage: where committed Txns are kept (the `LogStore` seam).
//!
//! Two stores: `MemoryLogStore` for a member without a data directory, and `DiskLogStore` over
//! the segmented, checksummed `FileLog` (docs/format.md). A store never interprets a Txn: it
//! keeps (zxid, Txn) pairs in order. Snapshots live in `snapshot`.

pub mod disk;
pub mod error;
mod fake_disk;
pub mod log;
mod log_scan;
pub mod snapshot;

pub use disk::{Disk, DiskFile, RealDisk};
pub use error::StorageError;
pub use fake_disk::{Crash, FakeDisk};
pub use log::{FileLog, LogOptions};
pub use snapshot::{SnapshotFile, SnapshotStore, SNAPSHOT_FORMAT_VERSION};

use std::collections::VecDeque;
use std::sync::Arc;

use crate::txn::Txn;

/// An append-only sequence of Txns, indexed by zxid, made durable in batches.
///
/// Contract: zxids passed to `append` strictly increase. `append` may buffer; `sync` returns
/// only once every appended Txn is as durable as the store promises (memory: at once; disk:
/// after fsync), so one sync can cover many appends (group commit). An `Err` from either means
/// the store can no longer promise durability and the member must stop (fail-stop): a retried
/// fsync can lie.
pub trait LogStore: Send {
    /// Appends one Txn (not yet durable).
    fn append(&mut self, zxid: i64, txn: Arc<Txn>) -> std::io::Result<()>;
    /// Makes every appended Txn durable.
    fn sync(&mut self) -> std::io::Result<()>;
    /// The newest zxid appended, 0 when empty.
    fn last_zxid(&self) -> i64;
    /// Drops Txns up to `zxid` that a snapshot now covers (a store may keep more).
    fn purge_through(&mut self, _zxid: i64) -> std::io::Result<()> {
        Ok(())
    }
}

/// The durable log as the replicate stage uses it. With `force_sync` off (zoo.cfg's
/// `forceSync=no`) records are written but never fsynced: for tests and benchmarks that choose
/// speed over durability.
pub struct DiskLogStore {
    log: FileLog,
    force_sync: bool,
}

impl DiskLogStore {
    /// A store over an opened log.
    pub fn new(log: FileLog, force_sync: bool) -> DiskLogStore {
        DiskLogStore { log, force_sync }
    }
}

impl LogStore for DiskLogStore {
    fn append(&mut self, zxid: i64, txn: Arc<Txn>) -> std::io::Result<()> {
        self.log.append(zxid, &txn)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        if self.force_sync {
            self.log.sync()
        } else {
            Ok(())
        }
    }

    fn last_zxid(&self) -> i64 {
        self.log.last_zxid()
    }

    fn purge_through(&mut self, zxid: i64) -> std::io::Result<()> {
        self.log.purge_through(zxid)
    }
}

/// A log kept in memory, retaining the newest `entries_max` Txns so that memory stays bounded
/// under a sustained write load; older ones are what a snapshot would cover.
pub struct MemoryLogStore {
    entries: VecDeque<(i64, Arc<Txn>)>,
    entries_max: usize,
    last_zxid: i64,
}

impl MemoryLogStore {
    /// A store that keeps at most `entries_max` Txns.
    pub fn new(entries_max: usize) -> MemoryLogStore {
        MemoryLogStore {
            entries: VecDeque::new(),
            entries_max,
            last_zxid: 0,
        }
    }
}

impl LogStore for MemoryLogStore {
    fn append(&mut self, zxid: i64, txn: Arc<Txn>) -> std::io::Result<()> {
        debug_assert!(
            zxid > self.last_zxid,
            "zxids must grow: {zxid} after {}",
            self.last_zxid
        );
        if self.entries_max > 0 {
            if self.entries.len() == self.entries_max {
                self.entries.pop_front();
            }
            self.entries.push_back((zxid, txn));
        }
        self.last_zxid = zxid;
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn last_zxid(&self) -> i64 {
        self.last_zxid
    }
}

impl MemoryLogStore {
    /// Retained Txns with zxid greater than `after`, oldest first.
    pub fn entries_after(&self, after: i64) -> Vec<(i64, Arc<Txn>)> {
        self.entries
            .iter()
            .filter(|(zxid, _)| *zxid > after)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::TxnOp;

    fn txn(path: &str) -> Arc<Txn> {
        Arc::new(Txn {
            time_ms: 1,
            op: TxnOp::Delete { path: path.into() },
        })
    }

    #[test]
    fn keeps_the_newest_entries_only() {
        let mut log = MemoryLogStore::new(2);
        for zxid in 1..=3 {
            log.append(zxid, txn(&format!("/{zxid}"))).unwrap();
        }
        assert_eq!(log.last_zxid(), 3);
        let zxids: Vec<i64> = log.entries_after(0).iter().map(|(z, _)| *z).collect();
        assert_eq!(zxids, vec![2, 3]);
        assert_eq!(log.entries_after(2).len(), 1);
    }
}
