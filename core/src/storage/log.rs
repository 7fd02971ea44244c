//! The replicated log on disk: entries (index, term, payload) and hard-state records in
//! segment files of checksummed records, made durable by `sync`.
//!
//! # Format
//!
//! A segment is named `log.<index of its first entry as 16 lowercase hex digits>`. It opens
//! with a 12-byte header (`ZKRSLOG\0`, then the format version as u32 big-endian) followed by
//! records: u32 BE payload length, u32 BE crc32c of the payload, then the payload, postcard of
//! a `LogRecord`. Entry indexes increase by one from record to record, across segments too;
//! hard-state records sit between entries. Segments are preallocated with zeros, so eight
//! zero bytes where a record would start mark the end of the written part.
//!
//! The newest hard-state record of the last segment holding one is the member's hard state.
//! A segment opens with a copy of the hard state current when it started, so purging older
//! segments never loses it. The last segment may hold only hard states (a vote before any
//! entry, or what a cut or a reset keeps); the next entry appended names it after itself.
//!
//! A follower whose entries conflict with the leader's cuts them off (`truncate_after`), made
//! durable before anything is written after the cut, so the log never holds a stale entry
//! beyond a newer one. A segment cut or emptied that way is replaced whole: written as
//! `log-replacement.tmp`, synced, renamed over it.
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

use super::disk::{Disk, DiskFile, FileRemoval, REMOVING_PREFIX};
use super::error::StorageError;
use super::log_scan::scan_segment;
use super::record::{EntryKind, HardState, LogEntry, LogRecord};

/// The first bytes of every segment.
pub const MAGIC: &[u8; 8] = b"ZKRSLOG\0";
/// The segment format this build writes and the newest it reads. Version 3 holds raft
/// entries (index, term, payload) and hard states; versions 1 and 2 held `(zxid, Txn)` pairs
/// (2 with null data kept apart from empty) and are read as entries of term 1.
pub const FORMAT_VERSION: u32 = 3;
/// The largest record payload the log writes or accepts when reading; a longer length field
/// is damage, not a record.
pub const PAYLOAD_BYTES_MAX: u32 = 64 << 20;

pub(super) const HEADER_BYTES: u64 = 12;
pub(super) const RECORD_HEADER_BYTES: u64 = 8;
const SEGMENT_PREFIX: &str = "log.";
/// Where a segment's replacement is written before it is renamed over the segment; not a
/// `log.*` name, so `open` passes over one a crash left behind.
const REPLACEMENT_NAME: &str = "log-replacement.tmp";

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
    /// The index in its name, also its first entry's.
    first_index: u64,
    /// Its newest entry's index (`first_index - 1` while it holds none).
    last_index: u64,
}

/// The segment appends go to.
struct OpenSegment {
    file: Box<dyn DiskFile>,
    /// Where the next record goes.
    write_offset: u64,
    /// The file's length (preallocated zeros beyond `write_offset`).
    allocated_bytes: u64,
    /// Entries it holds.
    entries: u64,
    /// Records appended but not yet written, to go at `pending_offset` in one call: a round's
    /// records cost one write, not one each.
    pending: Vec<u8>,
    pending_offset: u64,
}

/// Buffered record bytes past which they are written without waiting for the next flush.
const PENDING_BYTES_MAX: usize = 1 << 20;

impl OpenSegment {
    fn new(
        file: Box<dyn DiskFile>,
        write_offset: u64,
        allocated_bytes: u64,
        entries: u64,
    ) -> OpenSegment {
        OpenSegment {
            file,
            write_offset,
            allocated_bytes,
            entries,
            pending: Vec::new(),
            pending_offset: write_offset,
        }
    }

    /// Writes what was appended since the last flush.
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_at(self.pending_offset, &self.pending)?;
            self.pending.clear();
        }
        self.pending_offset = self.write_offset;
        Ok(())
    }
}

/// The replicated log: append entries and hard states, then `sync` to make them durable.
///
/// Invariants: entry indexes increase by one across the whole log; every segment but the
/// last is fully durable (data and directory entry); `segments` is empty exactly when
/// `current` is `None`, and otherwise its last entry is the current segment.
pub struct FileLog {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    options: LogOptions,
    segments: Vec<Segment>,
    current: Option<OpenSegment>,
    /// The newest entry's index; the log continues at `last_index + 1` (after a snapshot it
    /// may start there with no entry written yet).
    last_index: u64,
    /// The newest hard state written, rewritten after anything that may remove it.
    hard_state: Option<HardState>,
    /// A segment was created or removed since the last `sync_dir`.
    dir_unsynced: bool,
    /// Set by the first I/O failure; every later call fails (fail-stop).
    poisoned: Option<(io::ErrorKind, String)>,
}

/// What reading one segment found.
pub(super) struct Scan {
    pub(super) records: Vec<LogRecord>,
    /// The end of the valid records (where the next record goes).
    pub(super) end: u64,
    /// One past the last nonzero byte after `end` (`end` when only zeros follow).
    pub(super) dirty_until: u64,
    pub(super) file_bytes: u64,
    /// The segment's format version (records are decoded as that version wrote them).
    pub(super) version: u32,
}

/// What `FileLog::open` found: every entry in index order, and the newest hard state.
#[derive(Debug, Default)]
pub struct LogContents {
    /// The entries, indexes increasing by one.
    pub entries: Vec<LogEntry>,
    /// The newest hard state written, if any.
    pub hard_state: Option<HardState>,
}

impl FileLog {
    /// Writes one entry; it is durable only after the next successful `sync`. Rolls to a new
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
    /// If `entry.index` is not `last_index() + 1` while the log holds entries (cut conflicting
    /// entries off first with `truncate_after`): such a log could not be opened again. A log
    /// holding no entry takes any index.
    pub fn append(&mut self, entry: &LogEntry) -> io::Result<()> {
        self.append_entry(entry.index, entry.term, entry.kind, &entry.data)
    }

    /// `append` from borrowed parts (raft's entries), so the payload is copied once, into the
    /// record.
    pub fn append_entry(
        &mut self,
        index: u64,
        term: u64,
        kind: EntryKind,
        data: &[u8],
    ) -> io::Result<()> {
        self.check_poisoned()?;
        assert!(
            index == self.last_index + 1 || self.holds_no_entries(),
            "entries must follow on: {index} after {}",
            self.last_index
        );
        let entry = EntryRecord {
            index,
            term,
            kind,
            data,
        };
        let record = encode_record(&RecordRef::Entry(entry), data.len())?;
        let result = self.append_record(Some(index), &record);
        self.poison_on_error(result)
    }

    /// Writes the member's hard state (durable after the next `sync`).
    pub fn set_hard_state(&mut self, state: HardState) -> io::Result<()> {
        self.check_poisoned()?;
        let record = encode_record(&RecordRef::HardState(state), 0)?;
        let result = self.append_record(None, &record);
        self.poison_on_error(result)?;
        self.hard_state = Some(state);
        Ok(())
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
        self.poison_on_error(result)
    }

    /// Writes every record appended so far, without waiting for the disk (what `forceSync=no`
    /// does each round: the records survive the process, not a power cut).
    ///
    /// # Errors
    ///
    /// Any failure poisons the log.
    pub fn flush(&mut self) -> io::Result<()> {
        self.check_poisoned()?;
        let result = self.flush_current();
        self.poison_on_error(result)
    }

    /// Writes the current segment's buffered records.
    pub(super) fn flush_current(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some(current) => current.flush(),
            None => Ok(()),
        }
    }

    /// The newest entry's index, 0 when the log holds none (after `reset_after`, the index it
    /// continues after).
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// Writes a record; `entry_index` is Some for an entry, which may roll the segment.
    fn append_record(&mut self, entry_index: Option<u64>, record: &[u8]) -> io::Result<()> {
        let record_bytes = record.len() as u64;
        let roll = match (&self.current, entry_index) {
            (None, _) => true,
            // A segment always takes its first entry; a hard state never rolls.
            (Some(current), Some(_)) => {
                current.entries > 0
                    && current.write_offset + record_bytes > self.options.segment_bytes_max
            }
            (Some(_), None) => false,
        };
        if roll {
            self.roll(entry_index.unwrap_or(self.last_index + 1))?;
        } else if let Some(index) = entry_index {
            let segment = self.segments.last().expect("the current segment is listed");
            if segment.last_index < segment.first_index && segment.first_index != index {
                // A segment of hard states only, named before the log's next index was known
                // (a cut or a reset that a crash interrupted): it takes the first entry's name.
                self.rename_empty_segment(index)?;
            }
        }
        self.write_record(record)?;
        if let Some(index) = entry_index {
            self.current
                .as_mut()
                .expect("a segment is open after writing")
                .entries += 1;
            self.last_index = index;
            self.segments
                .last_mut()
                .expect("the current segment is listed")
                .last_index = index;
        }
        Ok(())
    }

    /// Writes `record` at the end of the current segment, growing the file by whole chunks.
    fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        let current = self
            .current
            .as_mut()
            .expect("a segment is open after rolling");
        let end = current.write_offset + record.len() as u64;
        if self.options.preallocate_bytes > 0 && end > current.allocated_bytes {
            let chunks = (end - current.allocated_bytes).div_ceil(self.options.preallocate_bytes);
            let allocated_bytes = current.allocated_bytes + chunks * self.options.preallocate_bytes;
            current.file.set_len(allocated_bytes)?;
            current.allocated_bytes = allocated_bytes;
        }
        current.pending.extend_from_slice(record);
        current.write_offset = end;
        if current.pending.len() >= PENDING_BYTES_MAX {
            current.flush()?;
        }
        Ok(())
    }

    /// Starts the segment `log.<first_index>`, opening with a copy of the hard state so that
    /// purging older segments never loses it. The previous segment is made fully durable
    /// first, data and directory entry, so a crash can only ever tear the last segment.
    fn roll(&mut self, first_index: u64) -> io::Result<()> {
        if let Some(mut previous) = self.current.take() {
            previous.flush()?;
            previous.file.sync()?;
            if self.dir_unsynced {
                self.disk.sync_dir(&self.dir)?;
                self.dir_unsynced = false;
            }
        }
        let path = self.dir.join(segment_name(first_index));
        let mut file = self.disk.open(&path)?;
        self.dir_unsynced = true;
        file.write_at(0, &segment_header())?;
        let mut allocated_bytes = HEADER_BYTES;
        if self.options.preallocate_bytes > 0 {
            allocated_bytes = self.options.preallocate_bytes.max(HEADER_BYTES);
            file.set_len(allocated_bytes)?;
        }
        self.segments.push(Segment {
            path,
            first_index,
            last_index: first_index - 1,
        });
        self.current = Some(OpenSegment::new(file, HEADER_BYTES, allocated_bytes, 0));
        if let Some(state) = self.hard_state {
            self.write_record(&encode_record(&RecordRef::HardState(state), 0)?)?;
        }
        Ok(())
    }

    fn sync_inner(&mut self) -> io::Result<()> {
        if let Some(current) = self.current.as_mut() {
            current.flush()?;
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

/// The 12 bytes a segment of this format opens with.
fn segment_header() -> [u8; HEADER_BYTES as usize] {
    let mut header = [0u8; HEADER_BYTES as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    header
}

/// `log.<index as 16 lowercase hex digits>`.
fn segment_name(index: u64) -> String {
    format!("{SEGMENT_PREFIX}{index:016x}")
}

/// The index in a segment name's suffix, if it is 16 hex digits naming a positive index.
fn parse_index(digits: &str) -> Option<u64> {
    if digits.len() != 16 || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let index = u64::from_str_radix(digits, 16).ok()?;
    (index > 0 && index <= i64::MAX as u64).then_some(index)
}

/// A record's bytes: length, crc32c, postcard payload.
fn encode_record(record: &impl serde::Serialize, data_bytes: usize) -> io::Result<Vec<u8>> {
    // One allocation: the header's room, then the payload encoded after it.
    let mut bytes = Vec::with_capacity(RECORD_HEADER_BYTES as usize + 32 + data_bytes);
    bytes.extend_from_slice(&[0; RECORD_HEADER_BYTES as usize]);
    let mut bytes = postcard::to_extend(record, bytes)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?;
    let payload_bytes = bytes.len() - RECORD_HEADER_BYTES as usize;
    if payload_bytes > PAYLOAD_BYTES_MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a log record of {payload_bytes} bytes exceeds PAYLOAD_BYTES_MAX ({PAYLOAD_BYTES_MAX})"
            ),
        ));
    }
    let checksum = crc32c::crc32c(&bytes[RECORD_HEADER_BYTES as usize..]);
    bytes[..4].copy_from_slice(&(payload_bytes as u32).to_be_bytes());
    bytes[4..8].copy_from_slice(&checksum.to_be_bytes());
    Ok(bytes)
}

/// A `LogRecord` to write, borrowing the entry's payload: encodes to the same bytes.
#[derive(serde::Serialize)]
enum RecordRef<'a> {
    Entry(EntryRecord<'a>),
    HardState(HardState),
}

/// A `LogEntry` borrowing its payload: encodes to the same bytes.
#[derive(serde::Serialize)]
struct EntryRecord<'a> {
    index: u64,
    term: u64,
    kind: EntryKind,
    #[serde(with = "crate::serde_bytes::vec")]
    data: &'a [u8],
}

// Cutting the log (a conflicting suffix, a reset after a snapshot, purged segments).
#[path = "log_cut.rs"]
mod cut;
#[path = "log_open.rs"]
mod open;

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;

impl Drop for FileLog {
    /// Records appended and never flushed are written (best effort): a process that stops
    /// keeps what it wrote, as it did before buffering.
    fn drop(&mut self) {
        if self.poisoned.is_none() {
            let _ = self.flush_current();
        }
    }
}
