//! Guards against a log that loses an acknowledged entry in a crash, refuses to open after a
//! torn tail (or silently drops entries after real corruption), keeps acknowledging writes after
//! a failed fsync, or reads a file another build or program wrote as one of its segments.
//!
//! What is new with raft (hard states, cutting a conflicting suffix, resetting after a
//! snapshot, legacy segments as term-1 entries) is tested in `log_raft_tests.rs`; crashes at
//! every disk operation in `log_crash_tests.rs`.

#[path = "log_crash_tests.rs"]
mod crash;
#[path = "log_raft_tests.rs"]
mod replicated;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::storage::disk::{Disk, DiskFile, RealDisk};
use crate::storage::{Crash, EntryKind, FakeDisk};
use crate::txn::{Txn, TxnOp};

/// The entry at `index` written in `term`. Its kind and payload vary with both, so records
/// straddle segment and chunk boundaries at different places and a stale entry never equals
/// the one that replaces it.
fn entry_in(index: u64, term: u64) -> LogEntry {
    let kind = match index % 10 {
        3 => EntryKind::ConfChange,
        7 => EntryKind::ConfChangeV2,
        _ => EntryKind::Normal,
    };
    LogEntry {
        index,
        term,
        kind,
        data: vec![(index + term) as u8 | 1; ((index * 7 + term * 3) % 40) as usize],
    }
}

/// The entry at `index` of a log whose term grows every 16 entries.
fn entry(index: u64) -> LogEntry {
    entry_in(index, 1 + index / 16)
}

fn expected(indexes: impl IntoIterator<Item = u64>) -> Vec<LogEntry> {
    indexes.into_iter().map(entry).collect()
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

/// Segments of a few records, grown in small chunks: every path (roll, preallocation) runs often.
fn small() -> LogOptions {
    LogOptions {
        segment_bytes_max: 200,
        preallocate_bytes: 64,
    }
}

fn dir() -> &'static Path {
    Path::new("/data/log")
}

fn open(disk: &FakeDisk) -> Result<(FileLog, LogContents), StorageError> {
    FileLog::open(Arc::new(disk.clone()), dir(), small())
}

/// What a restarted machine finds: the contents of the log on a clean crash image of `disk`.
fn reopened(disk: &FakeDisk) -> LogContents {
    open(&disk.crash(Crash::Clean)).unwrap().1
}

fn segment_names(disk: &FakeDisk) -> Vec<String> {
    disk.list(dir()).unwrap()
}

/// The index a segment's name says its first entry has.
fn first_index_of(name: &str) -> u64 {
    parse_index(name.strip_prefix("log.").unwrap()).unwrap()
}

/// A disk holding a synced log of `entry(1..=count)`.
fn synced_log(count: u64) -> FakeDisk {
    let disk = FakeDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    for index in 1..=count {
        log.append(&entry(index)).unwrap();
    }
    log.sync().unwrap();
    disk
}

fn record_bytes(index: u64) -> u64 {
    encode_record(&LogRecord::Entry(entry(index)), 0)
        .unwrap()
        .len() as u64
}

/// Every segment's path with the byte offset of each of its records, as `(index, offset)`, for
/// a log of `entry(..=last_index)` and no hard state.
fn layout(disk: &FakeDisk, last_index: u64) -> Vec<(PathBuf, Vec<(u64, u64)>)> {
    let names = segment_names(disk);
    let firsts: Vec<u64> = names.iter().map(|name| first_index_of(name)).collect();
    let mut segments = Vec::new();
    for (position, name) in names.iter().enumerate() {
        let end = firsts.get(position + 1).map_or(last_index, |next| next - 1);
        let mut offset = HEADER_BYTES;
        let mut records = Vec::new();
        for index in firsts[position]..=end {
            records.push((index, offset));
            offset += record_bytes(index);
        }
        segments.push((dir().join(name), records));
    }
    segments
}

fn payload_middle(index: u64, offset: u64) -> usize {
    (offset + RECORD_HEADER_BYTES + (record_bytes(index) - RECORD_HEADER_BYTES) / 2) as usize
}

/// A record around `payload`: its length and crc32c, the same framing in every format version.
fn raw_record(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// Writes (and syncs) a segment file of `version` holding `records`.
fn write_segment(disk: &FakeDisk, name: &str, version: u32, records: &[Vec<u8>]) -> PathBuf {
    disk.create_dir_all(dir()).unwrap();
    let path = dir().join(name);
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&version.to_be_bytes());
    for record in records {
        bytes.extend_from_slice(record);
    }
    let mut file = disk.open(&path).unwrap();
    file.write_at(0, &bytes).unwrap();
    file.sync().unwrap();
    disk.sync_dir(dir()).unwrap();
    path
}

#[test]
fn entries_survive_reopening_across_many_segments() {
    let disk = FakeDisk::new();
    let (mut log, contents) = open(&disk).unwrap();
    assert_eq!((contents.entries.len(), contents.hard_state), (0, None));
    assert_eq!(log.last_index(), 0);
    // A log that starts after a snapshot: its first entry may have any index, and segment
    // names follow the index of their first entry.
    for index in 7..=126 {
        log.append(&entry(index)).unwrap();
        if index % 30 == 0 {
            log.sync().unwrap();
        }
    }
    assert_eq!(log.last_index(), 126);
    log.sync().unwrap();
    drop(log);

    let names = segment_names(&disk);
    assert!(names.len() > 10, "{names:?}");
    assert_eq!(names[0], "log.0000000000000007");
    let restarted = disk.crash(Crash::Clean);
    let (mut log, contents) = open(&restarted).unwrap();
    assert_eq!(contents.entries, expected(7..=126));
    assert_eq!(contents.hard_state, None);
    assert_eq!(log.last_index(), 126);
    log.append(&entry(127)).unwrap();
    log.sync().unwrap();
    assert_eq!(reopened(&restarted).entries, expected(7..=127));
}

#[test]
fn a_flipped_bit_before_the_last_record_is_corruption_naming_file_and_offset() {
    // The shortest log from 30 entries on whose last segment holds at least three.
    let (count, segments) = (30..90)
        .map(|count| (count, layout(&synced_log(count), count)))
        .find(|(_, segments)| segments.last().unwrap().1.len() >= 3)
        .unwrap();
    assert!(segments.len() >= 3);
    let last_segment = segments.last().unwrap();
    let cases = [
        // The second record of the first segment (in its payload).
        (segments[0].0.clone(), segments[0].1[1], false),
        // The last record of a segment that is not the last.
        (segments[1].0.clone(), *segments[1].1.last().unwrap(), false),
        // A record of the last segment with a valid one after it.
        (last_segment.0.clone(), last_segment.1[1], false),
        // The same record's length field: the next record is found by scanning.
        (last_segment.0.clone(), last_segment.1[1], true),
    ];
    for (path, (index, offset), in_length) in cases {
        let disk = synced_log(count);
        let at = if in_length {
            offset as usize + 3
        } else {
            payload_middle(index, offset)
        };
        disk.flip_bit(&path, at);
        match open(&disk) {
            Err(error @ StorageError::Corrupt { .. }) => {
                let message = error.to_string();
                let StorageError::Corrupt {
                    file,
                    offset: reported,
                    reason,
                } = error
                else {
                    unreachable!()
                };
                assert_eq!((&file, reported), (&path, offset), "{reason}");
                assert!(message.contains(&format!("offset {offset}")), "{message}");
                assert!(message.contains("/data/log/log."), "{message}");
            }
            other => panic!("entry {index} flipped at {at}: {:?}", other.map(|(_, c)| c)),
        }
    }
}

#[test]
fn a_flipped_bit_in_the_last_record_is_a_torn_tail() {
    const COUNT: u64 = 30;
    let disk = synced_log(COUNT);
    let segments = layout(&disk, COUNT);
    let (path, records) = segments.last().unwrap();
    let (index, offset) = *records.last().unwrap();
    assert_eq!(index, COUNT);
    disk.flip_bit(path, payload_middle(index, offset));

    let (mut log, contents) = open(&disk).unwrap();
    assert_eq!(contents.entries, expected(1..COUNT));
    assert_eq!(log.last_index(), COUNT - 1);
    // A shorter record overwrites the damaged one without leaving its bytes behind.
    let shorter = LogEntry {
        index: COUNT,
        term: 9,
        kind: EntryKind::Normal,
        data: Vec::new(),
    };
    log.append(&shorter).unwrap();
    log.sync().unwrap();
    let entries = reopened(&disk).entries;
    assert_eq!(entries.len(), COUNT as usize);
    assert_eq!(entries.last().unwrap(), &shorter);
}

#[test]
fn a_failed_sync_poisons_the_log() {
    let disk = FakeDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    log.append(&entry(1)).unwrap();
    log.sync().unwrap();
    disk.fail_sync_after(1);
    log.append(&entry(2)).unwrap();
    assert!(log.sync().is_err());
    assert_eq!(log.last_index(), 2);
    // Fail-stop: nothing works any more, even calls that need no sync.
    assert!(log.append(&entry(3)).is_err());
    assert!(log.set_hard_state(hard_state(1, 1, 1)).is_err());
    assert!(log.truncate_after(1).is_err());
    assert!(log.reset_after(5).is_err());
    assert!(log.purge_through(1).is_err());
    assert!(log.sync().is_err());
    assert_eq!(reopened(&disk).entries, expected([1]));
}

#[test]
fn a_failed_sync_while_rolling_poisons_the_log() {
    let disk = FakeDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    disk.fail_sync_after(1);
    let failed = (1..=20).find(|&index| log.append(&entry(index)).is_err());
    assert!(failed.is_some(), "a roll syncs the segment it leaves");
    assert!(log.sync().is_err());
}

#[test]
fn a_newer_format_or_a_foreign_log_file_is_refused() {
    let disk = FakeDisk::new();
    let path = write_segment(&disk, "log.0000000000000001", FORMAT_VERSION + 1, &[]);
    match open(&disk) {
        Err(StorageError::NewerFormat { file, version }) => {
            assert_eq!((file, version), (path, FORMAT_VERSION + 1));
        }
        other => panic!("{:?}", other.map(|(_, contents)| contents)),
    }

    let disk = synced_log(3);
    // The snapshot store's files and other names are not the log's business.
    disk.open(&dir().join("snapshot.0000000000000002")).unwrap();
    disk.open(&dir().join("log")).unwrap();
    assert_eq!(open(&disk).unwrap().1.entries, expected(1..=3));
    for name in ["log.xyz", "log.00000000000000001", "log.+000000000000001"] {
        let disk = synced_log(3);
        disk.open(&dir().join(name)).unwrap();
        match open(&disk) {
            Err(StorageError::Foreign { file }) => assert_eq!(file, dir().join(name)),
            other => panic!("{name}: {:?}", other.map(|(_, contents)| contents)),
        }
    }
}

#[test]
fn indexes_that_do_not_follow_on_are_corruption() {
    let record = |index: u64| encode_record(&LogRecord::Entry(entry(index)), 0).unwrap();
    let corrupt_at = |disk: &FakeDisk| match open(disk) {
        Err(StorageError::Corrupt { file, offset, .. }) => (file, offset),
        other => panic!("{:?}", other.map(|(_, contents)| contents)),
    };

    // Across segments: log.2 after a segment holding 1..=3.
    let disk = FakeDisk::new();
    let (mut log, _) = FileLog::open(Arc::new(disk.clone()), dir(), LogOptions::default()).unwrap();
    for index in 1..=3 {
        log.append(&entry(index)).unwrap();
    }
    log.sync().unwrap();
    let path = write_segment(&disk, "log.0000000000000002", FORMAT_VERSION, &[record(2)]);
    assert_eq!(corrupt_at(&disk), (path, HEADER_BYTES));

    // Inside a segment: 1, 2, then 4.
    let disk = FakeDisk::new();
    let records = [record(1), record(2), record(4)];
    let path = write_segment(&disk, "log.0000000000000001", FORMAT_VERSION, &records);
    let offset = HEADER_BYTES + (records[0].len() + records[1].len()) as u64;
    assert_eq!(corrupt_at(&disk), (path, offset));

    // A first entry that is not the one the segment's name says.
    let disk = FakeDisk::new();
    let path = write_segment(&disk, "log.0000000000000005", FORMAT_VERSION, &[record(6)]);
    assert_eq!(corrupt_at(&disk), (path, HEADER_BYTES));

    // A segment of hard states only: named among the entries before it, or not the last.
    let state = encode_record(&LogRecord::HardState(hard_state(1, 1, 0)), 0).unwrap();
    let disk = FakeDisk::new();
    write_segment(
        &disk,
        "log.0000000000000001",
        FORMAT_VERSION,
        &[record(1), record(2)],
    );
    let path = write_segment(
        &disk,
        "log.0000000000000002",
        FORMAT_VERSION,
        std::slice::from_ref(&state),
    );
    assert_eq!(corrupt_at(&disk), (path, HEADER_BYTES));
    let disk = FakeDisk::new();
    let path = write_segment(&disk, "log.0000000000000001", FORMAT_VERSION, &[state]);
    write_segment(&disk, "log.0000000000000002", FORMAT_VERSION, &[record(2)]);
    assert_eq!(corrupt_at(&disk), (path, HEADER_BYTES));
}

#[test]
fn purge_keeps_the_segment_holding_the_next_index() {
    const COUNT: u64 = 60;
    let disk = synced_log(COUNT);
    let before = layout(&disk, COUNT);
    let (mut log, _) = open(&disk).unwrap();
    log.purge_through(25).unwrap();
    let after = layout(&disk, COUNT);
    assert!(after.len() < before.len());
    let holding = |segments: &[(PathBuf, Vec<(u64, u64)>)], index: u64| {
        segments
            .iter()
            .find(|(_, records)| records.iter().any(|(held, _)| *held == index))
            .map(|(path, _)| path.clone())
    };
    assert_eq!(after[0].0, holding(&before, 26).unwrap());
    // Durable: the removals survive a crash.
    assert_eq!(reopened(&disk).entries, expected(after[0].1[0].0..=COUNT));

    // Never the current segment, even when everything is covered.
    log.purge_through(COUNT).unwrap();
    assert_eq!(segment_names(&disk).len(), 1);
    log.append(&entry(COUNT + 1)).unwrap();
    log.sync().unwrap();
    assert_eq!(reopened(&disk).entries.last(), Some(&entry(COUNT + 1)));
}

/// A purge may leave its files to another thread: until the removal runs, or when a crash
/// comes first, the log reopens whole, as if never purged; while it waits, the log goes on.
#[test]
fn a_detached_purge_removes_files_only_when_it_runs() {
    const COUNT: u64 = 60;
    let disk = synced_log(COUNT);
    let before = segment_names(&disk);
    let (mut log, _) = open(&disk).unwrap();
    let removal = log.detach_through(25).unwrap();
    assert!(!removal.is_empty());
    assert_eq!(segment_names(&disk), before, "nothing removed yet");
    assert_eq!(reopened(&disk).entries, expected(1..=COUNT));
    log.append(&entry(COUNT + 1)).unwrap();
    log.sync().unwrap();

    removal.run().unwrap();
    let after = segment_names(&disk);
    assert!(after.len() < before.len());
    let reopened = reopened(&disk).entries;
    assert_eq!(reopened.last(), Some(&entry(COUNT + 1)));
    assert!(reopened[0].index <= 26, "{:?}", reopened[0]);
    // Nothing more to detach through the same index.
    assert!(log.detach_through(25).unwrap().is_empty());
}

/// A paced removal renames its files out of the log's way first: a crash after that leaves
/// files recovery ignores and removes, never a segment cut short in the middle of the log.
#[test]
fn a_paced_removal_never_shows_recovery_a_segment_cut_short() {
    const COUNT: u64 = 60;
    let disk = synced_log(COUNT);
    let before = segment_names(&disk);
    let (mut log, _) = open(&disk).unwrap();
    log.detach_through(25).unwrap().run_paced().unwrap();
    let after = segment_names(&disk);
    assert!(after.len() < before.len());
    assert!(
        after.iter().all(|name| name.starts_with("log.")),
        "{after:?}"
    );
    let first = reopened(&disk).entries[0].index;
    assert!(first <= 26, "{first}");

    // What a crash between the rename and the removal leaves: the next open removes it.
    let mut file = disk
        .open(&dir().join("removing.log.0000000000000001"))
        .unwrap();
    file.write_at(0, b"half a segment").unwrap();
    file.sync().unwrap();
    disk.sync_dir(dir()).unwrap();
    let image = disk.crash(Crash::Clean);
    assert_eq!(open(&image).unwrap().1.entries[0].index, first);
    assert_eq!(segment_names(&image), after);
}

#[test]
fn the_real_disk_round_trips() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let root = std::env::temp_dir().join(format!("zk-log-{}-{nanos}", std::process::id()));
    let dir = root.join("log");
    /// Removes the directory even when an assertion fails.
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(root);
    let disk: Arc<dyn Disk> = Arc::new(RealDisk);
    let (mut log, contents) = FileLog::open(disk.clone(), &dir, small()).unwrap();
    assert!(contents.entries.is_empty());
    for index in 1..=50 {
        log.append(&entry(index)).unwrap();
    }
    log.set_hard_state(hard_state(4, 2, 30)).unwrap();
    log.sync().unwrap();
    drop(log);
    let (mut log, contents) = FileLog::open(disk.clone(), &dir, small()).unwrap();
    assert_eq!(contents.entries, expected(1..=50));
    assert_eq!(contents.hard_state, Some(hard_state(4, 2, 30)));
    // Cutting a suffix rewrites files in place of others: the real file system must agree.
    log.truncate_after(35).unwrap();
    for index in 36..=40 {
        log.append(&entry_in(index, 5)).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let (mut log, contents) = FileLog::open(disk.clone(), &dir, small()).unwrap();
    let kept = expected(1..=35).into_iter();
    assert_eq!(
        contents.entries,
        kept.chain((36..=40).map(|index| entry_in(index, 5)))
            .collect::<Vec<_>>()
    );
    assert_eq!(contents.hard_state, Some(hard_state(4, 2, 30)));
    log.purge_through(40).unwrap();
    let names = disk.list(&dir).unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("log."), "{names:?}");
}

/// Guards against a binary upgrade losing an older data directory: a format-1 segment (data
/// never null) is read as entries of term 1, and new entries go to a new segment in today's
/// format rather than being appended under the old header.
#[test]
fn a_format_1_segment_is_read_and_continued_in_a_new_segment() {
    /// TxnOp as format 1 laid it out, up to the variant written here (postcard writes the
    /// variant's index, so the unused variants' shapes do not matter).
    #[derive(serde::Serialize)]
    enum V1Op {
        _CreateSession,
        _CloseSession,
        _Create,
        _Delete,
        SetData {
            path: String,
            data: Vec<u8>,
            version: i32,
        },
    }
    let records: Vec<Vec<u8>> = (1..=2i64)
        .map(|zxid| {
            let op = V1Op::SetData {
                path: format!("/v1/{zxid}"),
                data: vec![7; zxid as usize],
                version: 1,
            };
            raw_record(&postcard::to_allocvec(&(zxid, (5i64, op))).unwrap())
        })
        .collect();
    let disk = FakeDisk::new();
    write_segment(&disk, "log.0000000000000001", 1, &records);

    let v1 = |zxid: i64| {
        let txn = Txn {
            time_ms: 5,
            op: TxnOp::SetData {
                path: format!("/v1/{zxid}"),
                data: Some(vec![7; zxid as usize]),
                version: 1,
            },
        };
        LogEntry::legacy(zxid, txn)
    };
    let (mut log, contents) = open(&disk).unwrap();
    assert_eq!(contents.entries, vec![v1(1), v1(2)]);
    assert_eq!(contents.entries[0].term, 1);
    assert_eq!(contents.hard_state, None);
    assert_eq!(log.last_index(), 2);
    log.append(&entry_in(3, 2)).unwrap();
    log.sync().unwrap();
    drop(log);
    assert_eq!(
        open(&disk).unwrap().1.entries,
        vec![v1(1), v1(2), entry_in(3, 2)]
    );
    assert_eq!(
        segment_names(&disk),
        ["log.0000000000000001", "log.0000000000000003"]
    );
}
