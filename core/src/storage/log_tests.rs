//! Guards against a transaction log that loses an acknowledged record in a crash, refuses to open
//! after a torn tail (or silently drops records after real corruption), or keeps acknowledging
//! writes after a failed fsync.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::storage::disk::{Disk, DiskFile, RealDisk};
use crate::storage::{Crash, FakeDisk};
use crate::txn::TxnOp;

/// A Txn whose size varies with its zxid, so records straddle segment and chunk boundaries
/// at different places.
fn txn(zxid: i64) -> Txn {
    Txn {
        time_ms: 1_700_000_000_000 + zxid,
        op: TxnOp::SetData {
            path: format!("/node/{zxid}"),
            data: Some(vec![(zxid % 200) as u8 + 1; (zxid as usize * 7) % 40]),
            version: zxid as i32,
        },
    }
}

fn expected(zxids: impl IntoIterator<Item = i64>) -> Vec<(i64, Txn)> {
    zxids.into_iter().map(|zxid| (zxid, txn(zxid))).collect()
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

fn open(disk: &FakeDisk) -> Result<(FileLog, Vec<(i64, Txn)>), StorageError> {
    FileLog::open(Arc::new(disk.clone()), dir(), small())
}

/// A disk holding a synced log of zxids `1..=count`.
fn synced_log(count: i64) -> FakeDisk {
    let disk = FakeDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    for zxid in 1..=count {
        log.append(zxid, &txn(zxid)).unwrap();
    }
    log.sync().unwrap();
    disk
}

/// Every segment's path with the byte offset of each of its records, as `(zxid, offset)`.
fn layout(disk: &FakeDisk, last_zxid: i64) -> Vec<(PathBuf, Vec<(i64, u64)>)> {
    let names = disk.list(dir()).unwrap();
    let firsts: Vec<i64> = names
        .iter()
        .map(|name| parse_zxid(name.strip_prefix("log.").unwrap()).unwrap())
        .collect();
    let mut segments = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let end = firsts.get(index + 1).map_or(last_zxid, |next| next - 1);
        let mut offset = HEADER_BYTES;
        let mut records = Vec::new();
        for zxid in firsts[index]..=end {
            records.push((zxid, offset));
            offset += encode_record(zxid, &txn(zxid)).unwrap().len() as u64;
        }
        segments.push((dir().join(name), records));
    }
    segments
}

fn payload_middle(zxid: i64, offset: u64) -> usize {
    let record = encode_record(zxid, &txn(zxid)).unwrap();
    (offset + RECORD_HEADER_BYTES) as usize + (record.len() - RECORD_HEADER_BYTES as usize) / 2
}

#[test]
fn records_survive_reopening_across_many_segments() {
    let disk = FakeDisk::new();
    let (mut log, records) = open(&disk).unwrap();
    assert!(records.is_empty());
    assert_eq!((log.last_zxid(), log.synced_zxid()), (0, 0));
    // Gaps in the zxids: segment names follow the first zxid, not a count.
    let zxids: Vec<i64> = (1..=120).map(|index| index * 3).collect();
    for &zxid in &zxids {
        log.append(zxid, &txn(zxid)).unwrap();
        if zxid % 30 == 0 {
            log.sync().unwrap();
        }
    }
    assert_eq!(log.last_zxid(), 360);
    log.sync().unwrap();
    assert_eq!(log.synced_zxid(), 360);
    drop(log);

    let names = disk.list(dir()).unwrap();
    assert!(names.len() > 10, "{names:?}");
    assert_eq!(names[0], "log.0000000000000003");
    let restarted = disk.crash(Crash::Clean);
    let (mut log, records) = open(&restarted).unwrap();
    assert_eq!(records, expected(zxids.iter().copied()));
    assert_eq!((log.last_zxid(), log.synced_zxid()), (360, 360));
    log.append(361, &txn(361)).unwrap();
    log.sync().unwrap();
    let (_, records) = open(&restarted.crash(Crash::Clean)).unwrap();
    assert_eq!(records.last().unwrap().0, 361);
    assert_eq!(records.len(), 121);
}

/// Records, after every disk operation, what a crash at that moment would leave behind and
/// which zxids had been acknowledged (appended, then synced successfully) by then.
#[derive(Clone)]
struct RecordingDisk {
    inner: FakeDisk,
    moments: Arc<Mutex<Vec<Moment>>>,
    acknowledged: Arc<AtomicI64>,
    purged_through: Arc<AtomicI64>,
}

struct Moment {
    disk: FakeDisk,
    crash: Crash,
    acknowledged: i64,
    purged_through: i64,
}

impl RecordingDisk {
    fn record(&self) {
        let mut moments = self.moments.lock();
        for crash in [Crash::Clean, Crash::TearLastWrite] {
            moments.push(Moment {
                disk: self.inner.crash(crash),
                crash,
                acknowledged: self.acknowledged.load(Ordering::SeqCst),
                purged_through: self.purged_through.load(Ordering::SeqCst),
            });
        }
    }

    fn after<T>(&self, result: io::Result<T>) -> io::Result<T> {
        self.record();
        result
    }
}

struct RecordingFile {
    inner: Box<dyn DiskFile>,
    disk: RecordingDisk,
}

impl DiskFile for RecordingFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let result = self.inner.write_at(offset, bytes);
        self.disk.after(result)
    }

    fn sync(&mut self) -> io::Result<()> {
        let result = self.inner.sync();
        self.disk.after(result)
    }

    fn set_len(&mut self, length: u64) -> io::Result<()> {
        let result = self.inner.set_len(length);
        self.disk.after(result)
    }
}

impl Disk for RecordingDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let inner = self.after(self.inner.open(path))?;
        Ok(Box::new(RecordingFile {
            inner,
            disk: self.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.after(self.inner.rename(from, to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.after(self.inner.remove(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.after(self.inner.sync_dir(dir))
    }
}

#[test]
fn a_crash_at_any_disk_operation_loses_no_acknowledged_record() {
    const APPENDS: i64 = 60;
    let disk = RecordingDisk {
        inner: FakeDisk::new(),
        moments: Arc::default(),
        acknowledged: Arc::default(),
        purged_through: Arc::default(),
    };
    disk.record();
    let (mut log, _) = FileLog::open(Arc::new(disk.clone()), dir(), small()).unwrap();
    for zxid in 1..=APPENDS {
        log.append(zxid, &txn(zxid)).unwrap();
        if zxid % 3 == 0 || zxid % 7 == 0 {
            log.sync().unwrap();
            disk.acknowledged.store(zxid, Ordering::SeqCst);
        }
        if zxid == 40 {
            disk.purged_through.store(20, Ordering::SeqCst);
            log.purge_through(20).unwrap();
        }
    }
    drop(log);
    let moments = std::mem::take(&mut *disk.moments.lock());
    assert!(moments.len() > 200, "{} moments", moments.len());

    for (index, moment) in moments.iter().enumerate() {
        let context = format!(
            "moment {index} ({:?}, acknowledged {}, purged through {})",
            moment.crash, moment.acknowledged, moment.purged_through
        );
        let (mut log, records) =
            open(&moment.disk).unwrap_or_else(|error| panic!("{context}: open failed: {error}"));
        let first = records.first().map_or(1, |(zxid, _)| *zxid);
        let last = records.last().map_or(0, |(zxid, _)| *zxid);
        assert!(last >= moment.acknowledged, "{context}: lost up to {last}");
        assert!(
            first <= moment.purged_through + 1,
            "{context}: starts at {first}"
        );
        assert_eq!(records, expected(first..=last), "{context}");
        assert_eq!(log.last_zxid(), last, "{context}");

        // The recovered log takes new records over its cut-off tail and keeps them.
        for zxid in last + 1..=last + 3 {
            log.append(zxid, &txn(zxid)).unwrap();
        }
        log.sync().unwrap();
        drop(log);
        let (_, records) = open(&moment.disk.crash(Crash::Clean))
            .unwrap_or_else(|error| panic!("{context}: reopen failed: {error}"));
        assert_eq!(records, expected(first..=last + 3), "{context}");
    }
}

#[test]
fn a_flipped_bit_before_the_last_record_is_corruption_naming_file_and_offset() {
    // The shortest log from 30 records on whose last segment holds at least three.
    let (count, segments) = (30..90)
        .map(|count| (count, layout(&synced_log(count), count)))
        .find(|(_, segments)| segments.last().unwrap().1.len() >= 3)
        .unwrap();
    assert!(segments.len() >= 3);
    let last_segment = segments.last().unwrap();
    assert!(last_segment.1.len() >= 3, "{:?}", last_segment.1);
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
    for (path, (zxid, offset), in_length) in cases {
        let disk = synced_log(count);
        let at = if in_length {
            offset as usize + 3
        } else {
            payload_middle(zxid, offset)
        };
        disk.flip_bit(&path, at);
        match open(&disk) {
            Err(StorageError::Corrupt {
                file,
                offset: reported,
                reason,
            }) => {
                assert_eq!((&file, reported), (&path, offset), "{reason}");
                let message = StorageError::Corrupt {
                    file,
                    offset,
                    reason,
                }
                .to_string();
                assert!(message.contains(&format!("offset {offset}")), "{message}");
                assert!(message.contains("/data/log/log."), "{message}");
            }
            other => panic!("zxid {zxid} flipped at {at}: {:?}", other.map(|(_, r)| r)),
        }
    }
}

#[test]
fn a_flipped_bit_in_the_last_record_is_a_torn_tail() {
    const COUNT: i64 = 30;
    let disk = synced_log(COUNT);
    let segments = layout(&disk, COUNT);
    let (path, records) = segments.last().unwrap();
    let (zxid, offset) = *records.last().unwrap();
    assert_eq!(zxid, COUNT);
    disk.flip_bit(path, payload_middle(zxid, offset));

    let (mut log, records) = open(&disk).unwrap();
    assert_eq!(records, expected(1..COUNT));
    assert_eq!(log.last_zxid(), COUNT - 1);
    // A shorter record overwrites the damaged one without leaving its bytes behind.
    let shorter = Txn {
        time_ms: 1,
        op: TxnOp::Delete { path: "/a".into() },
    };
    log.append(COUNT, &shorter).unwrap();
    log.sync().unwrap();
    let (_, records) = open(&disk.crash(Crash::Clean)).unwrap();
    assert_eq!(records.len(), COUNT as usize);
    assert_eq!(records.last().unwrap(), &(COUNT, shorter));
}

#[test]
fn a_failed_sync_poisons_the_log() {
    let disk = FakeDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    log.append(1, &txn(1)).unwrap();
    log.sync().unwrap();
    disk.fail_sync_after(1);
    log.append(2, &txn(2)).unwrap();
    assert!(log.sync().is_err());
    assert_eq!((log.last_zxid(), log.synced_zxid()), (2, 1));
    // Fail-stop: nothing works any more, even calls that need no sync.
    assert!(log.append(3, &txn(3)).is_err());
    assert!(log.sync().is_err());
    assert!(log.purge_through(1).is_err());
    let (_, records) = open(&disk.crash(Crash::Clean)).unwrap();
    assert_eq!(records, expected([1]));
}

#[test]
fn a_failed_sync_while_rolling_poisons_the_log() {
    let disk = FakeDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    disk.fail_sync_after(1);
    let failed = (1..=20).find(|&zxid| log.append(zxid, &txn(zxid)).is_err());
    assert!(failed.is_some(), "a roll syncs the segment it leaves");
    assert!(log.sync().is_err());
}

#[test]
fn a_newer_format_or_a_foreign_log_file_is_refused() {
    let disk = FakeDisk::new();
    disk.create_dir_all(dir()).unwrap();
    let path = dir().join("log.0000000000000001");
    let mut file = disk.open(&path).unwrap();
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&(FORMAT_VERSION + 1).to_be_bytes());
    file.write_at(0, &header).unwrap();
    match open(&disk) {
        Err(StorageError::NewerFormat { file, version }) => {
            assert_eq!((file, version), (path, FORMAT_VERSION + 1));
        }
        other => panic!("{:?}", other.map(|(_, records)| records)),
    }

    let disk = synced_log(3);
    // The snapshot store's files and other names are not the log's business.
    disk.open(&dir().join("snapshot.0000000000000002")).unwrap();
    disk.open(&dir().join("log")).unwrap();
    assert_eq!(open(&disk).unwrap().1, expected(1..=3));
    for name in ["log.xyz", "log.00000000000000001", "log.+000000000000001"] {
        let disk = synced_log(3);
        disk.open(&dir().join(name)).unwrap();
        match open(&disk) {
            Err(StorageError::Foreign { file }) => assert_eq!(file, dir().join(name)),
            other => panic!("{name}: {:?}", other.map(|(_, records)| records)),
        }
    }
}

#[test]
fn zxids_that_do_not_increase_across_segments_are_corruption() {
    let disk = FakeDisk::new();
    let (mut log, _) = FileLog::open(Arc::new(disk.clone()), dir(), LogOptions::default()).unwrap();
    for zxid in 1..=3 {
        log.append(zxid, &txn(zxid)).unwrap();
    }
    log.sync().unwrap();
    let path = dir().join("log.0000000000000002");
    let mut file = disk.open(&path).unwrap();
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    bytes.extend_from_slice(&encode_record(2, &txn(2)).unwrap());
    file.write_at(0, &bytes).unwrap();
    match open(&disk) {
        Err(StorageError::Corrupt { file, offset, .. }) => {
            assert_eq!((file, offset), (path, HEADER_BYTES));
        }
        other => panic!("{:?}", other.map(|(_, records)| records)),
    }
}

#[test]
fn purge_keeps_the_segment_holding_the_next_zxid() {
    const COUNT: i64 = 60;
    let disk = synced_log(COUNT);
    let before = layout(&disk, COUNT);
    let (mut log, _) = open(&disk).unwrap();
    log.purge_through(25).unwrap();
    let after = layout(&disk, COUNT);
    assert!(after.len() < before.len());
    let holding = |segments: &[(PathBuf, Vec<(i64, u64)>)], zxid: i64| {
        segments
            .iter()
            .find(|(_, records)| records.iter().any(|(z, _)| *z == zxid))
            .map(|(path, _)| path.clone())
    };
    assert_eq!(after[0].0, holding(&before, 26).unwrap());
    // Durable: the removals survive a crash.
    let (_, records) = open(&disk.crash(Crash::Clean)).unwrap();
    assert_eq!(records, expected(after[0].1[0].0..=COUNT));

    // Never the current segment, even when everything is covered.
    log.purge_through(COUNT).unwrap();
    assert_eq!(disk.list(dir()).unwrap().len(), 1);
    log.append(COUNT + 1, &txn(COUNT + 1)).unwrap();
    log.sync().unwrap();
    let (_, records) = open(&disk.crash(Crash::Clean)).unwrap();
    assert_eq!(records.last().unwrap().0, COUNT + 1);
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
    let (mut log, records) = FileLog::open(disk.clone(), &dir, small()).unwrap();
    assert!(records.is_empty());
    for zxid in 1..=50 {
        log.append(zxid, &txn(zxid)).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let (mut log, records) = FileLog::open(disk.clone(), &dir, small()).unwrap();
    assert_eq!(records, expected(1..=50));
    log.purge_through(50).unwrap();
    assert_eq!(disk.list(&dir).unwrap().len(), 1);
}

/// Guards against a binary upgrade losing an older data directory: a format-1 segment (data
/// never null) is read, and new records go to a new segment in today's format rather than
/// being appended under the old header.
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
    let disk = FakeDisk::new();
    disk.create_dir_all(dir()).unwrap();
    let mut file = disk.open(&dir().join("log.0000000000000001")).unwrap();
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&1u32.to_be_bytes());
    for zxid in 1..=2i64 {
        let op = V1Op::SetData {
            path: format!("/v1/{zxid}"),
            data: vec![7; zxid as usize],
            version: 1,
        };
        let payload = postcard::to_allocvec(&(zxid, (5i64, op))).unwrap();
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        bytes.extend_from_slice(&payload);
    }
    file.write_at(0, &bytes).unwrap();
    file.sync().unwrap();

    let v1 = |zxid: i64| Txn {
        time_ms: 5,
        op: TxnOp::SetData {
            path: format!("/v1/{zxid}"),
            data: Some(vec![7; zxid as usize]),
            version: 1,
        },
    };
    let (mut log, records) = open(&disk).unwrap();
    assert_eq!(records, vec![(1, v1(1)), (2, v1(2))]);
    let null = Txn {
        time_ms: 6,
        op: TxnOp::SetData {
            path: "/v1/1".into(),
            data: None,
            version: 2,
        },
    };
    log.append(3, &null).unwrap();
    log.sync().unwrap();
    drop(log);
    let (_, records) = open(&disk).unwrap();
    assert_eq!(records, vec![(1, v1(1)), (2, v1(2)), (3, null)]);
    let mut names = disk.list(dir()).unwrap();
    names.sort();
    assert_eq!(names, ["log.0000000000000001", "log.0000000000000003"]);
}
