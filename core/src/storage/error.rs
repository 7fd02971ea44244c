//! The errors storage reports when reading what is on disk: I/O failures, damaged files, files
//! from a newer version, and files it does not recognise.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why stored state could not be read.
#[derive(Debug)]
pub enum StorageError {
    /// The file system failed.
    Io(io::Error),
    /// A file's bytes are damaged (bad magic, length or checksum, torn record).
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Where in it the damage was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file written by a newer format this build cannot read.
    NewerFormat {
        /// The file.
        file: PathBuf,
        /// Its format version.
        version: u32,
    },
    /// A file in the storage directory that storage did not write.
    Foreign {
        /// The file.
        file: PathBuf,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io(error) => write!(f, "storage I/O failed: {error}"),
            StorageError::Corrupt {
                file,
                offset,
                reason,
            } => write!(
                f,
                "{} is corrupt at offset {offset}: {reason}",
                file.display()
            ),
            StorageError::NewerFormat { file, version } => write!(
                f,
                "{} has format version {version}, newer than this build reads",
                file.display()
            ),
            StorageError::Foreign { file } => {
                write!(f, "{} was not written by this storage", file.display())
            }
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
