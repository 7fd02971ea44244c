//! Snapshot files: each one a whole tree's bytes at a zxid, checksummed, written so that a crash
//! at any moment leaves either the previous snapshots or the new one, never a half file that
//! reads as valid.
//!
//! A file is `snapshot.<zxid as 16 hex digits>` holding a 32-byte header — magic `ZKRSSNAP`,
//! u32 format version, i64 zxid, u64 payload length, u32 crc32c of the payload, all big-endian —
//! then the payload. A write goes to `snapshot.<zxid>.tmp`, is synced, renamed into place, and
//! the directory synced; a crash before the rename is durable leaves only a `.tmp` file, which
//! reading ignores and the next write removes.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::disk::{Disk, FileRemoval};
use super::error::StorageError;

const MAGIC: &[u8; 8] = b"ZKRSSNAP";
/// The format this build writes and the newest it reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 3;
/// Magic, version, zxid, payload length, checksum.
const HEADER_BYTES: usize = 8 + 4 + 8 + 8 + 4;
const NAME_PREFIX: &str = "snapshot.";
const TMP_SUFFIX: &str = ".tmp";
const ZXID_HEX_DIGITS: usize = 16;

/// What a snapshot stands for in the replicated log: the index it holds the tree through, that
/// entry's term, and the membership then (raft's SnapshotMetadata). Format 3 writes it at the
/// head of the payload; formats 1 and 2 (a single member's, before replication) had none.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotMeta {
    /// The newest log index the tree holds (the snapshot's zxid).
    pub index: u64,
    /// That entry's term.
    pub term: u64,
    /// The membership as of `index`.
    pub membership: Membership,
}

/// Raft's ConfState: who votes (and, during a joint change, who voted), who learns.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Membership {
    /// Voting members.
    pub voters: Vec<u64>,
    /// Non-voting members (observers).
    pub learners: Vec<u64>,
    /// The outgoing voters of a joint configuration.
    pub voters_outgoing: Vec<u64>,
    /// Learners that become so when a joint configuration is left.
    pub learners_next: Vec<u64>,
    /// Whether a joint configuration is left on its own.
    pub auto_leave: bool,
}

/// A format-3 payload: the metadata, then the tree's bytes.
pub fn encode_payload(meta: &SnapshotMeta, tree: &[u8]) -> Vec<u8> {
    let mut payload = postcard::to_allocvec(meta).expect("a Vec never refuses bytes");
    payload.extend_from_slice(tree);
    payload
}

/// Splits a payload of format `version` into its metadata (None before format 3) and the
/// tree's bytes.
pub fn decode_payload(
    version: u32,
    payload: &[u8],
) -> Result<(Option<SnapshotMeta>, &[u8]), String> {
    if version < 3 {
        return Ok((None, payload));
    }
    postcard::take_from_bytes::<SnapshotMeta>(payload)
        .map(|(meta, tree)| (Some(meta), tree))
        .map_err(|error| format!("snapshot metadata does not decode: {error}"))
}

/// One snapshot file found by [`SnapshotStore::load`].
#[derive(Debug)]
pub struct SnapshotFile {
    /// The zxid its name gives (the header's agrees when the payload is `Ok`).
    pub zxid: i64,
    /// Where it is.
    pub path: PathBuf,
    /// The verified payload, or why this file cannot be used.
    pub payload: Result<Vec<u8>, StorageError>,
    /// The payload's format version, as its header gives it (meaningful when `payload` is Ok).
    pub version: u32,
}

/// The snapshot files in one directory.
#[derive(Clone)]
pub struct SnapshotStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
}

impl SnapshotStore {
    /// A store over `dir`, created if missing. Other files may share the directory (the log's);
    /// only `snapshot.*` names are the store's.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(disk: Arc<dyn Disk>, dir: impl Into<PathBuf>) -> io::Result<SnapshotStore> {
        let dir = dir.into();
        disk.create_dir_all(&dir)?;
        Ok(SnapshotStore { disk, dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the snapshot at `zxid`.
    pub fn path_of(&self, zxid: i64) -> PathBuf {
        self.dir.join(file_name(zxid))
    }

    /// Writes `payload` as the snapshot at `zxid` and returns once it is durable: the file is
    /// written under a `.tmp` name, synced, renamed into place and the directory synced, each
    /// one `Disk` call. Leftover `.tmp` files from an earlier crash are removed first. A
    /// snapshot already at `zxid` is replaced.
    ///
    /// `zxid` must not be negative (zxids are; names are its 16 hex digits).
    ///
    /// # Errors
    /// `InvalidInput` for a negative zxid; otherwise an I/O error, after which the new snapshot
    /// may or may not survive a crash but older ones are untouched. A failed sync cannot be
    /// retried safely: the caller should stop (fail-stop) or write a new snapshot from scratch.
    pub fn write(&self, zxid: i64, payload: &[u8]) -> io::Result<()> {
        if zxid < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("snapshot zxid {zxid} is negative"),
            ));
        }
        for name in self.disk.list(&self.dir)? {
            if parse_name(&name) == Some(Name::Tmp) {
                self.disk.remove(&self.dir.join(&name))?;
            }
        }
        let final_path = self.path_of(zxid);
        let tmp_path = self.dir.join(format!("{}{TMP_SUFFIX}", file_name(zxid)));
        let mut file = self.disk.open(&tmp_path)?;
        file.write_at(0, &header(zxid, payload))?;
        file.write_at(HEADER_BYTES as u64, payload)?;
        file.sync()?;
        drop(file);
        self.disk.rename(&tmp_path, &final_path)?;
        self.disk.sync_dir(&self.dir)
    }

    /// Every snapshot file, newest first, each read and verified (magic, version, zxid, length,
    /// checksum). A damaged file is listed with its error so the caller can fall back to an
    /// older one; `.tmp` files and names not starting with `snapshot.` are skipped.
    ///
    /// A `NewerFormat` payload means a newer build wrote that file: recovering from an older
    /// snapshot instead would forget what the newer build committed, so a caller should stop
    /// rather than fall back past it.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed; `Foreign` for a `snapshot.*` name that is not a
    /// zxid (a file someone else put there). Reading one file failing is that file's `Io` error.
    pub fn load(&self) -> Result<Vec<SnapshotFile>, StorageError> {
        let mut found = Vec::new();
        for name in self.disk.list(&self.dir)? {
            match parse_name(&name) {
                None | Some(Name::Tmp) => {}
                Some(Name::Foreign) => {
                    return Err(StorageError::Foreign {
                        file: self.dir.join(&name),
                    })
                }
                Some(Name::Snapshot(zxid)) => found.push((zxid, self.dir.join(&name))),
            }
        }
        found.sort_unstable_by_key(|(zxid, _)| std::cmp::Reverse(*zxid));
        Ok(found
            .into_iter()
            .map(|(zxid, path)| {
                let verified = self
                    .disk
                    .read(&path)
                    .map_err(StorageError::Io)
                    .and_then(|bytes| verify(&path, zxid, bytes));
                let (payload, version) = match verified {
                    Ok((version, payload)) => (Ok(payload), version),
                    Err(error) => (Err(error), 0),
                };
                SnapshotFile {
                    zxid,
                    path,
                    payload,
                    version,
                }
            })
            .collect())
    }

    /// Keeps the newest `keep` valid snapshots and removes every snapshot file older than the
    /// oldest of them, valid or not; damaged files newer than it are left for inspection.
    /// Returns the oldest kept zxid: the log is needed only after it. `None` (and nothing
    /// removed) when no snapshot is valid.
    ///
    /// Verifying reads every snapshot; purges are rare, so the cost is accepted for never
    /// counting a damaged file as kept.
    ///
    /// # Errors
    /// `InvalidInput` when `keep` is 0 (recovery needs a snapshot); any error `load` reports
    /// (as `InvalidData` unless it is I/O); a failed remove or directory sync.
    pub fn purge(&self, keep: usize) -> io::Result<Option<i64>> {
        let (oldest_kept, removal) = self.detach(keep)?;
        removal.run()?;
        Ok(oldest_kept)
    }

    /// `purge`, with the removal of the files answered rather than run, for a caller to run
    /// a step at a time (`FileRemoval::run_paced`): a large snapshot's unlink holds up the
    /// log's next fsync as a log segment's does.
    ///
    /// # Errors
    /// As `purge`, but for the removal itself.
    pub fn detach(&self, keep: usize) -> io::Result<(Option<i64>, FileRemoval)> {
        let mut removal = FileRemoval {
            disk: self.disk.clone(),
            dir: self.dir.clone(),
            paths: Vec::new(),
        };
        if keep == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "purge must keep at least one snapshot",
            ));
        }
        let files = self.load().map_err(|error| match error {
            StorageError::Io(error) => error,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        })?;
        let Some(oldest_kept) = files
            .iter()
            .filter(|file| file.payload.is_ok())
            .take(keep)
            .map(|file| file.zxid)
            .last()
        else {
            return Ok((None, removal));
        };
        removal.paths = files
            .into_iter()
            .filter(|file| file.zxid < oldest_kept)
            .map(|file| file.path)
            .collect();
        Ok((Some(oldest_kept), removal))
    }
}

fn file_name(zxid: i64) -> String {
    format!(
        "{NAME_PREFIX}{:0width$x}",
        zxid as u64,
        width = ZXID_HEX_DIGITS
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Name {
    Snapshot(i64),
    Tmp,
    Foreign,
}

/// What a directory entry is to the store; `None` when it is not the store's at all.
fn parse_name(name: &str) -> Option<Name> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (digits, tmp) = match rest.strip_suffix(TMP_SUFFIX) {
        Some(digits) => (digits, true),
        None => (rest, false),
    };
    let zxid = (digits.len() == ZXID_HEX_DIGITS
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| u64::from_str_radix(digits, 16).ok())
    .flatten()
    .and_then(|zxid| i64::try_from(zxid).ok());
    Some(match (zxid, tmp) {
        (Some(_), true) => Name::Tmp,
        (Some(zxid), false) => Name::Snapshot(zxid),
        (None, _) => Name::Foreign,
    })
}

fn header(zxid: i64, payload: &[u8]) -> [u8; HEADER_BYTES] {
    let mut header = [0; HEADER_BYTES];
    header[0..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_be_bytes());
    header[12..20].copy_from_slice(&zxid.to_be_bytes());
    header[20..28].copy_from_slice(&(payload.len() as u64).to_be_bytes());
    header[28..32].copy_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    header
}

/// The format version and payload of a snapshot file's bytes, checked against its header and
/// its name's zxid.
fn verify(path: &Path, zxid: i64, mut bytes: Vec<u8>) -> Result<(u32, Vec<u8>), StorageError> {
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        file: path.to_path_buf(),
        offset,
        reason,
    };
    if bytes.len() < HEADER_BYTES {
        return Err(corrupt(
            bytes.len() as u64,
            format!("{} bytes, shorter than the header", bytes.len()),
        ));
    }
    if &bytes[0..8] != MAGIC {
        return Err(corrupt(0, "not a snapshot (bad magic)".into()));
    }
    let field = |range: std::ops::Range<usize>| -> [u8; 8] {
        let mut buf = [0; 8];
        buf[8 - range.len()..].copy_from_slice(&bytes[range]);
        buf
    };
    let version = u64::from_be_bytes(field(8..12)) as u32;
    if version > SNAPSHOT_FORMAT_VERSION {
        return Err(StorageError::NewerFormat {
            file: path.to_path_buf(),
            version,
        });
    }
    if version == 0 {
        return Err(corrupt(8, "format version 0".into()));
    }
    let header_zxid = i64::from_be_bytes(field(12..20));
    if header_zxid != zxid {
        return Err(corrupt(
            12,
            format!("header zxid {header_zxid:#x} but the name says {zxid:#x}"),
        ));
    }
    let payload_bytes = u64::from_be_bytes(field(20..28));
    let held_bytes = (bytes.len() - HEADER_BYTES) as u64;
    if payload_bytes != held_bytes {
        return Err(corrupt(
            20,
            format!("header says {payload_bytes} payload bytes, the file holds {held_bytes}"),
        ));
    }
    let checksum = u64::from_be_bytes(field(28..32)) as u32;
    let computed = crc32c::crc32c(&bytes[HEADER_BYTES..]);
    if checksum != computed {
        return Err(corrupt(
            HEADER_BYTES as u64,
            format!("payload checksum {computed:#010x}, header says {checksum:#010x}"),
        ));
    }
    bytes.drain(..HEADER_BYTES);
    Ok((version, bytes))
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
