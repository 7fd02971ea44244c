//! The replicated log as raft reads it (`raft::Storage`): entries since the last compaction
//! in memory, the hard state and membership, and the newest snapshot for a follower too far
//! behind; every change written through to the durable log when the member has one.

use std::collections::VecDeque;
use std::io;

use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

use crate::storage::{self, EntryKind, FileLog, FileRemoval, LogEntry};

/// Where entries and hard states are made durable.
pub struct DurableLog {
    log: FileLog,
    /// fsync on `sync` (zoo.cfg's forceSync; off only for tests and benchmarks).
    force_sync: bool,
}

impl DurableLog {
    /// A durable log over an opened `FileLog`.
    pub fn new(log: FileLog, force_sync: bool) -> DurableLog {
        DurableLog { log, force_sync }
    }
}

/// The member's replicated log: what raft reads, kept in memory from the compaction point on,
/// and written through to disk when the member is durable.
///
/// Contract (raft-rs `Storage`): `first_index() = compacted + 1`, `term(compacted)` is known,
/// entries are contiguous from `first_index()` to `last_index()`.
pub struct RaftLog {
    hard_state: HardState,
    conf_state: ConfState,
    /// Entries after `compacted`, in index order.
    entries: VecDeque<Entry>,
    /// What `entries` hold, by `entry_bytes`: compaction keeps the log's memory under a bound.
    entries_bytes: usize,
    /// The newest index compacted away (covered by a snapshot or applied), and its term.
    compacted: (u64, u64),
    /// The newest snapshot, for a follower whose next entry was compacted away.
    snapshot: Option<Snapshot>,
    /// The commit index moved since the last hard state written: it goes with the next sync.
    commit_unwritten: bool,
    /// Set when raft asked for a snapshot this log did not have: the driver takes one.
    snapshot_wanted: std::cell::Cell<bool>,
    durable: Option<DurableLog>,
}

impl RaftLog {
    /// A log that continues after `compacted` (index, term) with `entries`, under `hard_state`
    /// and `conf_state`. The entries must follow on from `compacted`.
    pub fn new(
        hard_state: HardState,
        conf_state: ConfState,
        compacted: (u64, u64),
        entries: Vec<Entry>,
        durable: Option<DurableLog>,
    ) -> RaftLog {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(offset, entry)| entry.index == compacted.0 + 1 + offset as u64));
        RaftLog {
            hard_state,
            conf_state,
            entries_bytes: entries.iter().map(entry_bytes).sum(),
            entries: entries.into(),
            compacted,
            snapshot: None,
            snapshot_wanted: std::cell::Cell::new(false),
            commit_unwritten: false,
            durable,
        }
    }

    /// The newest entry's index.
    pub fn last_index(&self) -> u64 {
        self.entries
            .back()
            .map_or(self.compacted.0, |entry| entry.index)
    }

    /// The membership.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// Appends entries from the leader or from this member's own proposals, first cutting off
    /// any entry they replace (a follower's entries that conflict with its leader's).
    ///
    /// # Panics
    /// If the entries do not continue the log or reach below the compaction point: raft hands
    /// out only what fits.
    pub fn append(&mut self, new: &[Entry]) -> io::Result<()> {
        let Some(first) = new.first() else {
            return Ok(());
        };
        assert!(
            first.index > self.compacted.0 && first.index <= self.last_index() + 1,
            "entries from {} do not continue the log after {} (compacted through {})",
            first.index,
            self.last_index(),
            self.compacted.0
        );
        if first.index <= self.last_index() {
            let keep = (first.index - self.compacted.0 - 1) as usize;
            self.entries_bytes -= self.entries.range(keep..).map(entry_bytes).sum::<usize>();
            self.entries.truncate(keep);
            if let Some(durable) = &mut self.durable {
                durable.log.truncate_after(first.index - 1)?;
            }
        }
        for entry in new {
            if let Some(durable) = &mut self.durable {
                let kind = entry_kind(entry.get_entry_type());
                durable
                    .log
                    .append_entry(entry.index, entry.term, kind, &entry.data)?;
            }
            self.entries_bytes += entry_bytes(entry);
            self.entries.push_back(entry.clone());
        }
        Ok(())
    }

    /// Records the hard state (durable with the next `sync`).
    pub fn set_hard_state(&mut self, hard_state: &HardState) -> io::Result<()> {
        self.hard_state = hard_state.clone();
        self.commit_unwritten = false;
        if let Some(durable) = &mut self.durable {
            durable.log.set_hard_state(storage::HardState {
                term: hard_state.term,
                vote: hard_state.vote,
                commit: hard_state.commit,
            })?;
        }
        Ok(())
    }

    /// Records a newer commit index, written with the next `sync` (one hard state record per
    /// round at most: a commit index that lags after a crash only replays less at start-up,
    /// raft commits the rest again).
    pub fn set_commit(&mut self, commit: u64) -> io::Result<()> {
        self.hard_state.commit = commit;
        self.commit_unwritten = true;
        Ok(())
    }

    /// Records the membership a committed configuration change left.
    pub fn set_conf_state(&mut self, conf_state: ConfState) {
        self.conf_state = conf_state;
    }

    /// True when `sync` fsyncs (a durable log with forceSync).
    pub fn fsyncs(&self) -> bool {
        matches!(&self.durable, Some(durable) if durable.force_sync)
    }

    /// Makes everything written durable: one write and one fsync for every record of a round
    /// (without forceSync, the write only).
    pub fn sync(&mut self) -> io::Result<()> {
        if self.commit_unwritten {
            let hard_state = self.hard_state.clone();
            self.set_hard_state(&hard_state)?;
        }
        match &mut self.durable {
            Some(durable) if durable.force_sync => durable.log.sync(),
            Some(durable) => durable.log.flush(),
            None => Ok(()),
        }
    }

    /// Replaces the log with a snapshot from the leader: every entry goes, the log continues
    /// after the snapshot's index.
    pub fn install_snapshot(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let meta = snapshot.get_metadata();
        self.entries.clear();
        self.entries_bytes = 0;
        self.compacted = (meta.index, meta.term);
        self.conf_state = meta.get_conf_state().clone();
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.snapshot = Some(snapshot.clone());
        if let Some(durable) = &mut self.durable {
            durable.log.reset_after(meta.index)?;
        }
        let hard_state = self.hard_state.clone();
        self.set_hard_state(&hard_state)
    }

    /// Keeps `snapshot` for followers whose next entry was compacted away, unless the one
    /// kept is newer (installed from the leader while this one was taken). Entries stay:
    /// followers still streaming may need them (compaction decides, `compact_through`).
    pub fn set_snapshot(&mut self, snapshot: Snapshot) {
        let newer_kept = self
            .snapshot
            .as_ref()
            .is_some_and(|kept| kept.get_metadata().index > snapshot.get_metadata().index);
        if !newer_kept {
            self.snapshot = Some(snapshot);
        }
    }

    /// Drops entries through `index` from memory (they are applied; no follower needs them
    /// from here: a single member's, or ones a kept snapshot covers).
    pub fn compact_through(&mut self, index: u64) {
        let index = index.min(self.last_index());
        if index <= self.compacted.0 {
            return;
        }
        let term = self.term_of(index).unwrap_or(self.compacted.1);
        let drop = (index - self.compacted.0) as usize;
        self.entries_bytes -= self.entries.range(..drop).map(entry_bytes).sum::<usize>();
        self.entries.drain(..drop);
        self.compacted = (index, term);
    }

    /// Lets the durable log drop segments a durable snapshot through `index` covers; answers
    /// the removal of their files, for the caller to run where it suits (see
    /// `FileLog::detach_through`). `None` for a log kept in memory only.
    pub fn detach_through(&mut self, index: u64) -> io::Result<Option<FileRemoval>> {
        match &mut self.durable {
            Some(durable) => durable.log.detach_through(index).map(Some),
            None => Ok(None),
        }
    }

    /// True (once) when raft asked for a snapshot newer than the one kept: the driver should
    /// take one of the tree as applied and `set_snapshot` it; raft asks again meanwhile.
    pub fn take_snapshot_wanted(&self) -> bool {
        self.snapshot_wanted.replace(false)
    }

    /// Entries held in memory.
    pub fn entries_in_memory(&self) -> usize {
        self.entries.len()
    }

    /// The bytes those entries hold (payloads plus a fixed overhead each).
    pub fn bytes_in_memory(&self) -> usize {
        self.entries_bytes
    }

    fn term_of(&self, index: u64) -> Option<u64> {
        if index == self.compacted.0 {
            return Some(self.compacted.1);
        }
        let offset = index.checked_sub(self.compacted.0 + 1)? as usize;
        self.entries.get(offset).map(|entry| entry.term)
    }
}

impl raft::Storage for RaftLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.compacted.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        assert!(
            high <= self.last_index() + 1,
            "entries up to {high} asked of a log ending at {}",
            self.last_index()
        );
        let start = (low - self.compacted.0 - 1) as usize;
        let end = (high - self.compacted.0 - 1) as usize;
        let mut entries: Vec<Entry> = self.entries.range(start..end).cloned().collect();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index < self.compacted.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.term_of(index)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.compacted.0 + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(RaftLog::last_index(self))
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        match &self.snapshot {
            // A snapshot from before `to` was (re)added to the membership is of no use to it:
            // raft refuses a snapshot whose membership lacks it, so it needs a newer one. One
            // older than the compaction point leaves a gap no entry fills: also a newer one.
            Some(snapshot)
                if snapshot.get_metadata().index >= request_index
                    && snapshot.get_metadata().index >= self.compacted.0
                    && names(snapshot.get_metadata().get_conf_state(), to) =>
            {
                Ok(snapshot.clone())
            }
            _ => {
                self.snapshot_wanted.set(true);
                Err(raft::Error::Store(
                    StorageError::SnapshotTemporarilyUnavailable,
                ))
            }
        }
    }
}

/// What an entry costs the log's memory: its payloads and the `Entry` around them.
fn entry_bytes(entry: &Entry) -> usize {
    entry.data.len() + entry.context.len() + std::mem::size_of::<Entry>()
}

/// True when `conf_state` counts member `id` (voting or not, in either half of a joint one).
fn names(conf_state: &ConfState, id: u64) -> bool {
    [
        &conf_state.voters,
        &conf_state.learners,
        &conf_state.voters_outgoing,
        &conf_state.learners_next,
    ]
    .iter()
    .any(|ids| ids.contains(&id))
}

/// A raft entry as the durable log keeps it.
pub fn to_log_entry(entry: &Entry) -> LogEntry {
    LogEntry {
        index: entry.index,
        term: entry.term,
        kind: entry_kind(entry.get_entry_type()),
        data: entry.data.to_vec(),
    }
}

/// raft's entry type as the log names it.
fn entry_kind(entry_type: EntryType) -> EntryKind {
    match entry_type {
        EntryType::EntryNormal => EntryKind::Normal,
        EntryType::EntryConfChange => EntryKind::ConfChange,
        EntryType::EntryConfChangeV2 => EntryKind::ConfChangeV2,
    }
}

/// A durable log entry as raft takes it.
pub fn from_log_entry(entry: LogEntry) -> Entry {
    let mut raft_entry = Entry {
        index: entry.index,
        term: entry.term,
        data: entry.data.into(),
        ..Entry::default()
    };
    raft_entry.set_entry_type(match entry.kind {
        EntryKind::Normal => EntryType::EntryNormal,
        EntryKind::ConfChange => EntryType::EntryConfChange,
        EntryKind::ConfChangeV2 => EntryType::EntryConfChangeV2,
    });
    raft_entry
}

/// Snapshot metadata: index, term and membership.
pub fn snapshot_metadata(index: u64, term: u64, conf_state: &ConfState) -> SnapshotMetadata {
    let mut meta = SnapshotMetadata {
        index,
        term,
        ..SnapshotMetadata::default()
    };
    meta.set_conf_state(conf_state.clone());
    meta
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
