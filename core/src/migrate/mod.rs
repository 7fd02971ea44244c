//! Moving between Apache ZooKeeper's data directory and ours: `import` reads ZooKeeper's
//! snapshots and transaction logs (never changing them) and writes our snapshot; `export`
//! writes a snapshot Apache ZooKeeper 3.8 loads.
//!
//! zxids are kept: ZooKeeper's zxid (epoch << 32 | counter) becomes our log index. The import
//! writes our snapshot at index = ZooKeeper's last zxid, so our log continues right above it
//! and every zxid a client remembers (Stat fields, its last-seen zxid) stays below the ones
//! it sees next. Sessions keep their ids and timeouts and get the password ZooKeeper derives
//! from the id, so a client resumes with the id and password Apache gave it.
//!
//! One job per file: `jute` (ZooKeeper's record encoding), `zk_snapshot` (its snapshot files),
//! `zk_log` (its transaction logs), `convert` (its transactions and passwords in our terms),
//! `import` and `export` (the two directions, end to end).

mod convert;
mod export;
mod import;
mod jute;
mod zk_log;
mod zk_snapshot;

use std::fmt;
use std::path::{Path, PathBuf};

pub use convert::zookeeper_password;
pub use export::export;
pub use import::{import, ImportOptions};

/// Why a conversion stopped.
#[derive(Debug)]
pub enum MigrateError {
    /// A file or directory could not be read or written.
    Io {
        /// Which.
        file: PathBuf,
        /// The failure.
        error: std::io::Error,
    },
    /// A source file is torn or damaged.
    Corrupt {
        /// The file.
        file: PathBuf,
        /// The byte offset of the first bad record or field (in the decompressed stream for a
        /// compressed snapshot).
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The target directory holds files; a conversion never overwrites.
    TargetNotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// The source holds no snapshot or log to convert.
    NothingToConvert {
        /// The directory searched.
        dir: PathBuf,
    },
    /// The transactions do not continue each other or the snapshot: some are missing.
    Gap {
        /// The file where the next transaction was found.
        file: PathBuf,
        /// Its offset.
        offset: u64,
        /// The last zxid applied.
        after_zxid: i64,
        /// The zxid found.
        found_zxid: i64,
    },
    /// The source's data breaks a tree rule, or ours cannot be read.
    Invalid {
        /// What.
        reason: String,
    },
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::Io { file, error } => write!(f, "{}: {error}", file.display()),
            MigrateError::Corrupt {
                file,
                offset,
                reason,
            } => write!(
                f,
                "{} is damaged at byte {offset}: {reason}",
                file.display()
            ),
            MigrateError::TargetNotEmpty { dir } => write!(
                f,
                "{} is not empty; a conversion writes only into an empty or new directory",
                dir.display()
            ),
            MigrateError::NothingToConvert { dir } => {
                write!(f, "{} holds no snapshot.* or log.* files", dir.display())
            }
            MigrateError::Gap {
                file,
                offset,
                after_zxid,
                found_zxid,
            } => write!(
                f,
                "{} at byte {offset}: zxid {found_zxid:#x} does not follow {after_zxid:#x}; \
                 transactions are missing",
                file.display()
            ),
            MigrateError::Invalid { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for MigrateError {}

/// How far a conversion is, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Source bytes handled so far.
    pub done_bytes: u64,
    /// Source bytes to handle in all.
    pub total_bytes: u64,
}

/// What a conversion produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Znodes written, the system znodes included.
    pub znodes: u64,
    /// Paths and data of the znodes, in bytes.
    pub data_bytes: u64,
    /// Open sessions carried over.
    pub sessions: u64,
    /// The newest zxid the written data holds.
    pub last_zxid: i64,
    /// The snapshot file the conversion started from (import) or wrote (export).
    pub snapshot: Option<PathBuf>,
    /// Transactions replayed after it.
    pub transactions: u64,
    /// What was passed over or where the conversion stopped early (damaged files).
    pub warnings: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} znodes, {} bytes, {} sessions, last zxid {:#x}",
            self.znodes, self.data_bytes, self.sessions, self.last_zxid
        )?;
        if self.transactions > 0 {
            write!(f, ", {} transactions replayed", self.transactions)?;
        }
        Ok(())
    }
}

fn io_error(file: &Path) -> impl FnOnce(std::io::Error) -> MigrateError + '_ {
    move |error| MigrateError::Io {
        file: file.to_path_buf(),
        error,
    }
}

/// Refuses a target that holds anything; creates it when missing.
fn prepare_target(dir: &Path) -> Result<(), MigrateError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(MigrateError::TargetNotEmpty {
                    dir: dir.to_path_buf(),
                });
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(dir)(error)),
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))
}

/// File names in `dir`, sorted.
fn list(dir: &Path) -> Result<Vec<String>, MigrateError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests;
