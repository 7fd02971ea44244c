//! The transaction log on disk: committed (zxid, Txn) pairs in segment files of checksummed
//! records, made durable by `sync`.
//!
//! # Format
//!
//! A segment is named `log.<first zxid as 16 lowercase hex digits>`. It opens with a 12-byte
//! header (`ZKRSLOG\0`, then the format version as u32 big-endian) followed by records: u32 BE
//! payload length, u32 BE crc32c of the payload, then the payload, postcard of `(zxid, Txn)`.
//! Segments are preallocated with zeros, so eight zero bytes where a record would start mark
//! the end of the written part.
//!
//! # Recovery
//!
//! A crash can only damage the tail of the last segment: a later segment is created only after
//! the earlier one is fully durable, data and directory entry. So a bad record (length past the
//! file end, checksum mismatch, undecodable payload) at the end of the last segment is a torn
//! write and the log ends before it; anywhere else, or with a valid record after it, it is
//! corruption and `open` refuses to guess.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::disk::{Disk, DiskFile};
use super::error::StorageError;
use super::log_scan::scan_segment;
use crate::txn::Txn;

/// The first bytes of every segment.
pub const MAGIC: &[u8; 8] = b"ZKRSLOG\0";
/// The segment format this build writes and the newest it reads. Version 2 keeps null znode
/// data apart from empty (`Option` data in `Txn`); version 1 segments are still read.
pub const FORMAT_VERSION: u32 = 2;
/// The largest record payload the log writes or accepts when reading; a longer length field
/// is damage, not a record.
pub const PAYLOAD_BYTES_MAX: u32 = 64 << 20;

pub(super) const HEADER_BYTES: u64 = 12;
pub(super) const RECORD_HEADER_BYTES: u64 = 8;
const SEGMENT_PREFIX: &str = "log.";

/// Sizes of the log's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// A segment stops taking records once the next one would carry it past this size (a
    /// segment always takes at least one record, so a larger record makes a larger segment).
    pub segment_bytes_max: u64,
    /// Segments grow in zero-filled chunks of this size, so most appends do not change the
    /// file's length (and fdatasync need not write its metadata). 0 turns preallocation off.
    pub preallocate_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            segment_bytes_max: 64 << 20,
            preallocate_bytes: 4 << 20,
        }
    }
}

impl LogOptions {
    fn validate(&self) -> io::Result<()> {
        if self.segment_bytes_max <= HEADER_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "segment_bytes_max ({}) must exceed the {HEADER_BYTES}-byte segment header",
                    self.segment_bytes_max
                ),
            ));
        }
        Ok(())
    }
}

/// One segment file.
#[derive(Clone, Debug)]
struct Segment {
    path: PathBuf,
    /// The zxid in its name, also its first record's.
    first_zxid: i64,
    /// Its newest record's zxid.
    last_zxid: i64,
}

/// The segment appends go to.
struct OpenSegment {
    file: Box<dyn DiskFile>,
    /// Where the next record goes.
    write_offset: u64,
    /// The file's length (preallocated zeros beyond `write_offset`).
    allocated_bytes: u64,
    records: u64,
}

/// ZooKeeper's transaction log: append, then `sync` to make the appended records durable.
///
/// Invariants: zxids strictly increase across the whole log; every segment but the last is
/// fully durable (data and directory entry); `segments` is empty exactly when `current` is
/// `None`, and otherwise its last entry is the current segment.
pub struct FileLog {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    options: LogOptions,
    segments: Vec<Segment>,
    current: Option<OpenSegment>,
    last_zxid: i64,
    synced_zxid: i64,
    /// A segment was created or removed since the last `sync_dir`.
    dir_unsynced: bool,
    /// Set by the first I/O failure; every later call fails (fail-stop).
    poisoned: Option<(io::ErrorKind, String)>,
}

/// What reading one segment found.
pub(super) struct Scan {
    pub(super) records: Vec<(i64, Txn)>,
    /// The end of the valid records (where the next record goes).
    pub(super) end: u64,
    /// One past the last nonzero byte after `end` (`end` when only zeros follow).
    pub(super) dirty_until: u64,
    pub(super) file_bytes: u64,
    /// The segment's format version (records are decoded as that version wrote them).
    pub(super) version: u32,
}

impl FileLog {
    /// Opens the log in `dir` (creating the directory if missing), recovering from a crash,
    /// and returns it with every record it holds, in zxid order; the caller skips those its
    /// snapshot covers.
    ///
    /// A torn tail of the last segment is cut off (later appends overwrite it). Files not named
    /// `log.*` are left alone.
    ///
    /// # Errors
    ///
    /// `Corrupt` for damage a crash cannot explain: a bad record followed by a valid one, a bad
    /// record in a segment other than the last, zxids that do not strictly increase, a segment
    /// whose first zxid is not its name's. `NewerFormat` for a header version above
    /// `FORMAT_VERSION`; `Foreign` for a `log.*` file not named by 16 hex digits; `Io` when the
    /// disk fails or `options` are invalid.
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: &Path,
        options: LogOptions,
    ) -> Result<(FileLog, Vec<(i64, Txn)>), StorageError> {
        options.validate()?;
        disk.create_dir_all(dir)?;
        let mut named: Vec<(i64, PathBuf)> = Vec::new();
        for name in disk.list(dir)? {
            let Some(digits) = name.strip_prefix(SEGMENT_PREFIX) else {
                continue;
            };
            let path = dir.join(&name);
            match parse_zxid(digits) {
                Some(zxid) => named.push((zxid, path)),
                None => return Err(StorageError::Foreign { file: path }),
            }
        }
        named.sort_by_key(|(zxid, _)| *zxid);

        let mut records: Vec<(i64, Txn)> = Vec::new();
        let mut segments: Vec<Segment> = Vec::new();
        let mut last_scan: Option<Scan> = None;
        let mut empty_last: Option<PathBuf> = None;
        for (index, (first_zxid, path)) in named.iter().enumerate() {
            let is_last = index + 1 == named.len();
            let bytes = disk.read(path)?;
            let previous_zxid = records.last().map_or(0, |(zxid, _)| *zxid);
            let mut scan = scan_segment(path, &bytes, *first_zxid, previous_zxid, is_last)?;
            let Some((last_zxid, _)) = scan.records.last() else {
                if is_last {
                    // Created but nothing in it survived the crash: no acknowledged record
                    // lives here, and keeping it would misname the next record appended.
                    empty_last = Some(path.clone());
                    continue;
                }
                return Err(StorageError::Corrupt {
                    file: path.clone(),
                    offset: HEADER_BYTES,
                    reason: "a segment other than the last holds no records".into(),
                });
            };
            segments.push(Segment {
                path: path.clone(),
                first_zxid: *first_zxid,
                last_zxid: *last_zxid,
            });
            records.append(&mut scan.records);
            last_scan = Some(scan);
        }
        debug_assert!(records.windows(2).all(|pair| pair[0].0 < pair[1].0));

        if let Some(path) = empty_last {
            disk.remove(&path)?;
            disk.sync_dir(dir)?;
            // The segment before it (if any) becomes the current one; it was scanned as a
            // non-last segment, so look at its tail again.
            last_scan = match segments.last() {
                Some(segment) => {
                    let bytes = disk.read(&segment.path)?;
                    Some(scan_segment(
                        &segment.path,
                        &bytes,
                        segment.first_zxid,
                        segment.first_zxid - 1,
                        true,
                    )?)
                }
                None => None,
            };
        }

        let mut current = None;
        if let (Some(segment), Some(scan)) = (segments.last(), last_scan) {
            let mut file = disk.open(&segment.path)?;
            if scan.dirty_until > scan.end {
                // Zero the torn tail so that only zeros follow the valid records: a shorter
                // record appended later must not leave stale bytes behind it.
                let zeros = vec![0u8; (scan.dirty_until - scan.end) as usize];
                file.write_at(scan.end, &zeros)?;
            }
            // What was read may have come from the page cache of a process that crashed:
            // make it durable before counting it as synced.
            file.sync()?;
            disk.sync_dir(dir)?;
            // A segment of an older format is left as it is: the next record starts a new
            // segment in this format, since a segment's records share its header's version.
            current = (scan.version == FORMAT_VERSION).then_some(OpenSegment {
                file,
                write_offset: scan.end,
                allocated_bytes: scan.file_bytes,
                records: 1,
            });
        }
        let last_zxid = records.last().map_or(0, |(zxid, _)| *zxid);
        let log = FileLog {
            disk,
            dir: dir.to_path_buf(),
            options,
            segments,
            current,
            last_zxid,
            synced_zxid: last_zxid,
            dir_unsynced: false,
            poisoned: None,
        };
        Ok((log, records))
    }

    /// Writes one record; it is durable only after the next successful `sync`. Rolls to a new
    /// segment when this record would carry the current one past `segment_bytes_max`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the encoded record exceeds `PAYLOAD_BYTES_MAX` (the log is
    /// unchanged). Any I/O failure poisons the log: this and every later call fail, and the
    /// member must stop and reopen.
    ///
    /// # Panics
    ///
    /// If `zxid` is not greater than `last_zxid()`: such a log could not be opened again.
    pub fn append(&mut self, zxid: i64, txn: &Txn) -> io::Result<()> {
        self.check_poisoned()?;
        assert!(
            zxid > self.last_zxid,
            "zxids must grow: {zxid:#x} after {:#x}",
            self.last_zxid
        );
        let record = encode_record(zxid, txn)?;
        let result = self.append_record(zxid, &record);
        self.poison_on_error(result)
    }

    /// Makes every appended record durable: the current segment's bytes, then the directory
    /// entry of a segment created since the last sync.
    ///
    /// # Errors
    ///
    /// Any failure poisons the log (fail-stop): after a failed fsync the kernel may have
    /// dropped the dirty pages, so a retry that succeeds would lie.
    pub fn sync(&mut self) -> io::Result<()> {
        self.check_poisoned()?;
        let result = self.sync_inner();
        self.poison_on_error(result)?;
        self.synced_zxid = self.last_zxid;
        Ok(())
    }

    /// The newest zxid appended, 0 when the log is empty.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The newest zxid known durable, 0 when none is.
    pub fn synced_zxid(&self) -> i64 {
        self.synced_zxid
    }

    /// Removes the oldest segments whose records all have zxids at most `zxid` (never the
    /// current segment), then syncs the directory. Call it once a durable snapshot covers
    /// `zxid`.
    ///
    /// # Errors
    ///
    /// A failed removal leaves the log usable (the segments not yet removed stay listed); a
    /// failed directory sync poisons it.
    pub fn purge_through(&mut self, zxid: i64) -> io::Result<()> {
        self.check_poisoned()?;
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[0].last_zxid <= zxid {
            self.disk.remove(&self.segments[0].path)?;
            self.segments.remove(0);
            self.dir_unsynced = true;
            removed += 1;
        }
        if removed > 0 {
            let result = self.disk.sync_dir(&self.dir);
            self.poison_on_error(result)?;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    fn append_record(&mut self, zxid: i64, record: &[u8]) -> io::Result<()> {
        let record_bytes = record.len() as u64;
        let roll = match &self.current {
            None => true,
            Some(current) => {
                current.records > 0
                    && current.write_offset + record_bytes > self.options.segment_bytes_max
            }
        };
        if roll {
            self.roll(zxid)?;
        }
        let current = self
            .current
            .as_mut()
            .expect("a segment is open after rolling");
        let end = current.write_offset + record_bytes;
        if self.options.preallocate_bytes > 0 && end > current.allocated_bytes {
            let chunks = (end - current.allocated_bytes).div_ceil(self.options.preallocate_bytes);
            let allocated_bytes = current.allocated_bytes + chunks * self.options.preallocate_bytes;
            current.file.set_len(allocated_bytes)?;
            current.allocated_bytes = allocated_bytes;
        }
        current.file.write_at(current.write_offset, record)?;
        current.write_offset = end;
        current.records += 1;
        self.last_zxid = zxid;
        self.segments
            .last_mut()
            .expect("the current segment is listed")
            .last_zxid = zxid;
        Ok(())
    }

    /// Starts the segment `log.<zxid>`. The previous segment is made fully durable first, data
    /// and directory entry, so a crash can only ever tear the last segment.
    fn roll(&mut self, zxid: i64) -> io::Result<()> {
        if let Some(mut previous) = self.current.take() {
            previous.file.sync()?;
            if self.dir_unsynced {
                self.disk.sync_dir(&self.dir)?;
                self.dir_unsynced = false;
            }
            self.synced_zxid = self.last_zxid;
        }
        let path = self.dir.join(segment_name(zxid));
        let mut file = self.disk.open(&path)?;
        self.dir_unsynced = true;
        let mut header = [0u8; HEADER_BYTES as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        file.write_at(0, &header)?;
        let mut allocated_bytes = HEADER_BYTES;
        if self.options.preallocate_bytes > 0 {
            allocated_bytes = self.options.preallocate_bytes.max(HEADER_BYTES);
            file.set_len(allocated_bytes)?;
        }
        self.segments.push(Segment {
            path,
            first_zxid: zxid,
            last_zxid: self.last_zxid,
        });
        self.current = Some(OpenSegment {
            file,
            write_offset: HEADER_BYTES,
            allocated_bytes,
            records: 0,
        });
        Ok(())
    }

    fn sync_inner(&mut self) -> io::Result<()> {
        if let Some(current) = self.current.as_mut() {
            current.file.sync()?;
        }
        if self.dir_unsynced {
            self.disk.sync_dir(&self.dir)?;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    fn check_poisoned(&self) -> io::Result<()> {
        match &self.poisoned {
            None => Ok(()),
            Some((kind, message)) => Err(io::Error::new(
                *kind,
                format!("the log stopped after an I/O failure and must be reopened: {message}"),
            )),
        }
    }

    fn poison_on_error<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let Err(error) = &result {
            self.poisoned = Some((error.kind(), error.to_string()));
        }
        result
    }
}

/// `log.<zxid as 16 lowercase hex digits>`.
fn segment_name(zxid: i64) -> String {
    format!("{SEGMENT_PREFIX}{zxid:016x}")
}

/// The zxid in a segment name's suffix, if it is 16 hex digits naming a positive zxid.
fn parse_zxid(digits: &str) -> Option<i64> {
    if digits.len() != 16 || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let zxid = i64::try_from(u64::from_str_radix(digits, 16).ok()?).ok()?;
    (zxid > 0).then_some(zxid)
}

/// A record's bytes: length, crc32c, postcard payload.
fn encode_record(zxid: i64, txn: &Txn) -> io::Result<Vec<u8>> {
    let payload = postcard::to_allocvec(&(zxid, txn))
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?;
    if payload.len() > PAYLOAD_BYTES_MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a log record of {} bytes exceeds PAYLOAD_BYTES_MAX ({PAYLOAD_BYTES_MAX})",
                payload.len()
            ),
        ));
    }
    let mut record = Vec::with_capacity(RECORD_HEADER_BYTES as usize + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    record.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    record.extend_from_slice(&payload);
    Ok(record)
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
