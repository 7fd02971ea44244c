//! Guards against `RaftLog` breaking raft-rs's `Storage` contract (first and last index, the
//! term kept at the compaction point, `Compacted` below it, size limits, snapshots only once
//! one is kept), and against a conflicting suffix replaced in memory but left on disk.

use std::path::Path;
use std::sync::Arc;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Snapshot};
use raft::{GetEntriesContext, Storage, StorageError};

use super::*;
use crate::storage::{Crash, Disk, FakeDisk, FileLog, LogContents, LogOptions};

/// An entry whose payload grows with its index, so size limits cut at different places.
fn entry(index: u64, term: u64) -> Entry {
    let mut entry = Entry {
        index,
        term,
        data: vec![(index + term) as u8; index as usize * 5].into(),
        ..Entry::default()
    };
    if index % 4 == 0 {
        entry.set_entry_type(EntryType::EntryConfChange);
    }
    entry
}

fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    indexes.map(|index| entry(index, term)).collect()
}

fn voters(ids: &[u64]) -> ConfState {
    ConfState {
        voters: ids.to_vec(),
        ..ConfState::default()
    }
}

fn snapshot(index: u64, term: u64, conf_state: &ConfState) -> Snapshot {
    let mut snapshot = Snapshot {
        data: vec![9; 16].into(),
        ..Snapshot::default()
    };
    snapshot.set_metadata(snapshot_metadata(index, term, conf_state));
    snapshot
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..HardState::default()
    }
}

/// A log in memory only, holding `entries` after nothing compacted.
fn in_memory(held: Vec<Entry>) -> RaftLog {
    RaftLog::new(HardState::default(), voters(&[1]), (0, 0), held, None)
}

fn fetch(log: &RaftLog, low: u64, high: u64, max_size: Option<u64>) -> raft::Result<Vec<Entry>> {
    log.entries(low, high, max_size, GetEntriesContext::empty(false))
}

fn store_error(error: StorageError) -> raft::Result<u64> {
    Err(raft::Error::Store(error))
}

fn dir() -> &'static Path {
    Path::new("/data")
}

/// Segments of a few entries, so a cut reaches across segment files.
fn small() -> LogOptions {
    LogOptions {
        segment_bytes_max: 256,
        preallocate_bytes: 0,
    }
}

fn open_durable(disk: &FakeDisk) -> (DurableLog, LogContents) {
    let (log, contents) = FileLog::open(Arc::new(disk.clone()), dir(), small()).unwrap();
    (DurableLog::new(log, true), contents)
}

/// What a restarted member finds on a clean crash image of `disk`.
fn reopened(disk: &FakeDisk) -> (FileLog, LogContents) {
    FileLog::open(Arc::new(disk.crash(Crash::Clean)), dir(), small()).unwrap()
}

fn as_raft(contents: LogContents) -> Vec<Entry> {
    contents.entries.into_iter().map(from_log_entry).collect()
}

#[test]
fn indexes_and_terms_follow_appends_compaction_and_snapshot_install() {
    let mut log = in_memory(Vec::new());
    assert_eq!(
        (log.first_index(), Storage::last_index(&log)),
        (Ok(1), Ok(0))
    );
    assert_eq!(log.term(0), Ok(0));
    assert_eq!(log.term(1), store_error(StorageError::Unavailable));

    log.append(&[entry(1, 1), entry(2, 1), entry(3, 2)])
        .unwrap();
    assert_eq!(
        (log.first_index(), Storage::last_index(&log)),
        (Ok(1), Ok(3))
    );
    assert_eq!((log.term(1), log.term(3)), (Ok(1), Ok(2)));
    assert_eq!(log.term(4), store_error(StorageError::Unavailable));

    // The term at the compaction point stays known, for matching the entry after it.
    log.compact_through(2);
    assert_eq!(
        (log.first_index(), Storage::last_index(&log)),
        (Ok(3), Ok(3))
    );
    assert_eq!((log.term(2), log.term(3)), (Ok(1), Ok(2)));
    assert_eq!(log.term(1), store_error(StorageError::Compacted));
    assert_eq!(log.entries_in_memory(), 1);
    // Never past the last entry.
    log.compact_through(10);
    assert_eq!(
        (log.first_index(), Storage::last_index(&log)),
        (Ok(4), Ok(3))
    );
    assert_eq!(log.term(3), Ok(2));
    assert_eq!(log.entries_in_memory(), 0);

    let members = voters(&[1, 2, 3]);
    log.install_snapshot(&snapshot(10, 4, &members)).unwrap();
    assert_eq!(
        (log.first_index(), Storage::last_index(&log)),
        (Ok(11), Ok(10))
    );
    assert_eq!(log.term(10), Ok(4));
    assert_eq!(log.term(9), store_error(StorageError::Compacted));
    assert_eq!(log.term(11), store_error(StorageError::Unavailable));
    let state = log.initial_state().unwrap();
    assert_eq!(state.hard_state, hard_state(4, 0, 10));
    assert_eq!(state.conf_state, members);
    assert_eq!(log.snapshot(10, 2), Ok(snapshot(10, 4, &members)));

    log.append(&[entry(11, 4)]).unwrap();
    assert_eq!(
        (log.first_index(), Storage::last_index(&log)),
        (Ok(11), Ok(11))
    );
    assert_eq!(fetch(&log, 11, 12, None), Ok(vec![entry(11, 4)]));
}

#[test]
fn append_replaces_a_conflicting_suffix_in_memory() {
    let mut log = in_memory(entries(1..=5, 1));
    log.append(&[entry(3, 2), entry(4, 2)]).unwrap();
    assert_eq!(Storage::last_index(&log), Ok(4));
    let expected = [entries(1..=2, 1), entries(3..=4, 2)].concat();
    assert_eq!(fetch(&log, 1, 5, None), Ok(expected.clone()));
    assert_eq!(log.term(5), store_error(StorageError::Unavailable));

    // Entries that continue the log replace nothing.
    log.append(&[entry(5, 2)]).unwrap();
    assert_eq!(
        fetch(&log, 1, 6, None),
        Ok([expected, vec![entry(5, 2)]].concat())
    );
    // From the first entry on: everything is replaced.
    log.append(&[entry(1, 3)]).unwrap();
    assert_eq!(fetch(&log, 1, 2, None), Ok(vec![entry(1, 3)]));
    assert_eq!(Storage::last_index(&log), Ok(1));
}

#[test]
#[should_panic(expected = "do not continue the log")]
fn append_refuses_a_gap() {
    let mut log = in_memory(entries(1..=3, 1));
    let _ = log.append(&[entry(5, 1)]);
}

#[test]
fn append_replaces_a_conflicting_suffix_on_disk() {
    let disk = FakeDisk::new();
    let (durable, _) = open_durable(&disk);
    let mut log = RaftLog::new(
        HardState::default(),
        voters(&[1, 2, 3]),
        (0, 0),
        Vec::new(),
        Some(durable),
    );
    log.append(&entries(1..=20, 1)).unwrap();
    log.set_hard_state(&hard_state(2, 3, 8)).unwrap();
    log.sync().unwrap();
    let (_, contents) = reopened(&disk);
    assert_eq!(contents.hard_state.map(|state| state.term), Some(2));
    assert_eq!(as_raft(contents), entries(1..=20, 1));

    // The leader of term 2 disagrees from index 9 on: across segment files.
    let names = disk.list(dir()).unwrap();
    assert!(names.len() >= 4, "{names:?}");
    assert!(
        names[names.len() - 2].as_str() > "log.0000000000000009",
        "{names:?}"
    );
    log.append(&entries(9..=12, 2)).unwrap();
    log.set_commit(10).unwrap();
    log.sync().unwrap();
    let expected = [entries(1..=8, 1), entries(9..=12, 2)].concat();
    assert_eq!(fetch(&log, 1, 13, None), Ok(expected.clone()));
    let (file_log, contents) = reopened(&disk);
    assert_eq!(file_log.last_index(), 12);
    assert_eq!(
        contents.hard_state,
        Some(crate::storage::HardState {
            term: 2,
            vote: 3,
            commit: 10
        })
    );
    assert_eq!(as_raft(contents), expected);

    // A snapshot from the leader replaces the log, on disk too.
    let members = voters(&[1, 2, 3, 4]);
    log.install_snapshot(&snapshot(30, 3, &members)).unwrap();
    log.sync().unwrap();
    let (file_log, contents) = reopened(&disk);
    assert_eq!(file_log.last_index(), 30);
    assert_eq!(
        contents.hard_state,
        Some(crate::storage::HardState {
            term: 3,
            vote: 3,
            commit: 30
        })
    );
    assert!(contents.entries.is_empty());
    log.append(&entries(31..=32, 3)).unwrap();
    log.sync().unwrap();
    assert_eq!(as_raft(reopened(&disk).1), entries(31..=32, 3));
}

#[test]
fn entries_are_compacted_below_the_compaction_point_and_limited_in_size() {
    let mut log = in_memory(entries(1..=6, 1));
    log.compact_through(2);
    let compacted = Err(raft::Error::Store(StorageError::Compacted));
    assert_eq!(fetch(&log, 1, 4, None), compacted);
    assert_eq!(fetch(&log, 2, 4, None), compacted);
    assert_eq!(fetch(&log, 3, 7, None), Ok(entries(3..=6, 1)));
    assert_eq!(fetch(&log, 4, 6, None), Ok(entries(4..=5, 1)));
    assert_eq!(fetch(&log, 5, 5, None), Ok(Vec::new()));

    let size = |index: u64| u64::from(entry(index, 1).compute_size());
    // At least one entry, however small the limit.
    assert_eq!(fetch(&log, 3, 7, Some(0)), Ok(entries(3..=3, 1)));
    let two = size(3) + size(4);
    assert_eq!(fetch(&log, 3, 7, Some(two)), Ok(entries(3..=4, 1)));
    assert_eq!(
        fetch(&log, 3, 7, Some(two + size(5) - 1)),
        Ok(entries(3..=4, 1))
    );
    assert_eq!(
        fetch(&log, 3, 7, Some(two + size(5) + size(6))),
        Ok(entries(3..=6, 1))
    );
}

#[test]
#[should_panic(expected = "asked of a log ending at 3")]
fn entries_past_the_last_index_are_a_bug() {
    let _ = fetch(&in_memory(entries(1..=3, 1)), 1, 5, None);
}

#[test]
fn a_snapshot_is_temporarily_unavailable_until_one_is_kept() {
    let mut log = in_memory(entries(1..=5, 1));
    let unavailable = Err(raft::Error::Store(
        StorageError::SnapshotTemporarilyUnavailable,
    ));
    assert_eq!(log.snapshot(0, 2), unavailable);
    assert_eq!(log.snapshot(3, 2), unavailable);

    let members = voters(&[1, 2]);
    log.set_snapshot(snapshot(4, 1, &members));
    assert_eq!(log.snapshot(3, 2), Ok(snapshot(4, 1, &members)));
    assert_eq!(log.snapshot(4, 2), Ok(snapshot(4, 1, &members)));
    // Older than the follower needs: it must wait for a newer one.
    assert_eq!(log.snapshot(5, 2), unavailable);
    // Keeping it compacts nothing: followers still streaming may need those entries.
    assert_eq!((log.first_index(), log.entries_in_memory()), (Ok(1), 5));
    // Compacted past it, it no longer bridges to the first entry kept: a newer one is needed.
    log.compact_through(5);
    assert_eq!(log.snapshot(0, 2), unavailable);
    assert_eq!(log.bytes_in_memory(), 0);
}

#[test]
fn the_memory_held_follows_appends_truncations_and_compactions() {
    let held = |kept: Vec<Entry>| kept.iter().map(entry_bytes).sum::<usize>();
    let mut log = in_memory(entries(1..=3, 1));
    assert_eq!(log.bytes_in_memory(), held(entries(1..=3, 1)));
    // Entry 3 is replaced by the leader's.
    log.append(&entries(3..=6, 2)).unwrap();
    let mut kept = entries(1..=2, 1);
    kept.extend(entries(3..=6, 2));
    assert_eq!(log.bytes_in_memory(), held(kept));
    log.compact_through(4);
    assert_eq!(log.bytes_in_memory(), held(entries(5..=6, 2)));
}
