//! Errors from opening durable storage (the transaction log and snapshots), each naming the
//! file at fault so an operator can find it.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why durable storage could not be opened or read.
///
/// Only `Io` can be transient; the others mean the files on disk need an operator: a crash
/// cannot explain them, and guessing past them could silently lose acknowledged writes.
#[derive(Debug)]
pub enum StorageError {
    /// The disk failed.
    Io(io::Error),
    /// A file's bytes are damaged in a way a crash cannot explain.
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// The byte offset of the first damaged record or header.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A file was written by a newer format than this build reads.
    NewerFormat {
        /// The file.
        file: PathBuf,
        /// The format version in its header.
        version: u32,
    },
    /// A file is named like one of ours but is not one we could have written.
    Foreign {
        /// The file.
        file: PathBuf,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io(error) => write!(formatter, "storage I/O failed: {error}"),
            StorageError::Corrupt {
                file,
                offset,
                reason,
            } => write!(
                formatter,
                "{}: corrupt at byte offset {offset}: {reason}",
                file.display()
            ),
            StorageError::NewerFormat { file, version } => write!(
                formatter,
                "{}: format version {version} is newer than this build reads",
                file.display()
            ),
            StorageError::Foreign { file } => write!(
                formatter,
                "{}: named like a storage file but not one this store writes",
                file.display()
            ),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for StorageError {
    fn from(error: io::Error) -> StorageError {
        StorageError::Io(error)
    }
}
