//! Start-up: a member's state rebuilt from its newest valid snapshot plus the transaction log,
//! refusing to start (with the file and offset) rather than silently dropping committed data.

use std::fmt;
use std::sync::Arc;

use crate::server::config::{ConfigError, ServerConfig};
use crate::storage::{
    DiskLogStore, FileLog, LogOptions, LogStore, MemoryLogStore, SnapshotStore, StorageError,
};
use crate::tree::DataTree;

/// Why a server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration breaks a rule.
    Config(ConfigError),
    /// The data directory cannot be used: unreadable, damaged, or from a newer version.
    Storage(StorageError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(error) => write!(f, "{error}"),
            StartError::Storage(error) => write!(f, "cannot use the data directory: {error}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<ConfigError> for StartError {
    fn from(error: ConfigError) -> Self {
        StartError::Config(error)
    }
}

impl From<StorageError> for StartError {
    fn from(error: StorageError) -> Self {
        StartError::Storage(error)
    }
}

impl From<std::io::Error> for StartError {
    fn from(error: std::io::Error) -> Self {
        StartError::Storage(StorageError::Io(error))
    }
}

/// What start-up hands the engine.
pub(super) struct Recovered {
    pub(super) tree: DataTree,
    pub(super) log: Box<dyn LogStore>,
    pub(super) snapshots: Option<SnapshotStore>,
    /// The zxid of the snapshot the tree came from (0: none).
    pub(super) snapshot_zxid: i64,
}

/// Rebuilds the state in `config.data_dir` (or an empty one in memory).
pub(super) fn recover(config: &ServerConfig) -> Result<Recovered, StartError> {
    let Some(dir) = &config.data_dir else {
        return Ok(Recovered {
            tree: DataTree::new(),
            log: Box::new(MemoryLogStore::new(config.log_entries_max)),
            snapshots: None,
            snapshot_zxid: 0,
        });
    };
    let disk = Arc::clone(&config.disk);
    disk.create_dir_all(dir).map_err(|error| {
        StorageError::Io(std::io::Error::new(
            error.kind(),
            format!("{}: {error}", dir.display()),
        ))
    })?;
    let snapshots = SnapshotStore::open(Arc::clone(&disk), dir)?;
    let files = snapshots.load()?;
    let (log, records) = FileLog::open(disk, dir, LogOptions::default())?;
    let first_logged = records.first().map(|(zxid, _)| *zxid);

    // The newest snapshot the log continues without a gap. A damaged snapshot is passed over
    // only when an older one plus the log still hold everything; otherwise start-up stops.
    let mut damaged = None;
    let mut chosen = None;
    for file in files {
        match file.payload {
            Ok(bytes) => {
                if first_logged.is_some_and(|first| first > file.zxid + 1) {
                    // The log was purged past this snapshot: it cannot be continued.
                    continue;
                }
                let tree =
                    DataTree::from_snapshot_of_version(&bytes, file.version).map_err(|error| {
                        StorageError::Corrupt {
                            file: file.path.clone(),
                            offset: 0,
                            reason: error.to_string(),
                        }
                    })?;
                chosen = Some((file.zxid, tree));
                break;
            }
            Err(error @ StorageError::NewerFormat { .. }) => return Err(error.into()),
            Err(error) => {
                tracing::warn!(%error, "skipping a damaged snapshot");
                damaged.get_or_insert(error);
            }
        }
    }
    let (snapshot_zxid, mut tree) = match chosen {
        Some(found) => found,
        None => {
            if let Some(error) = damaged {
                if first_logged != Some(1) {
                    return Err(error.into());
                }
            } else if first_logged.is_some_and(|first| first != 1) {
                return Err(StorageError::Corrupt {
                    file: dir.clone(),
                    offset: 0,
                    reason: format!(
                        "the log starts at zxid {} and no snapshot covers what came before",
                        first_logged.unwrap_or_default()
                    ),
                }
                .into());
            }
            (0, DataTree::new())
        }
    };
    let replaying: Vec<_> = records
        .into_iter()
        .filter(|(zxid, _)| *zxid > snapshot_zxid)
        .collect();
    let replayed = replaying.len();
    for (expected, (zxid, txn)) in (snapshot_zxid + 1..).zip(replaying) {
        if zxid != expected {
            return Err(StorageError::Corrupt {
                file: dir.clone(),
                offset: 0,
                reason: format!("the log jumps from zxid {} to {zxid}", expected - 1),
            }
            .into());
        }
        // Replay is idempotent: a Txn the snapshot already holds fails harmlessly.
        let _ = tree.apply(zxid, &txn);
    }
    tracing::info!(
        snapshot_zxid = format_args!("0x{snapshot_zxid:x}"),
        replayed,
        znodes = tree.node_count(),
        "recovered"
    );
    Ok(Recovered {
        tree,
        log: Box::new(DiskLogStore::new(log, config.force_sync)),
        snapshots: Some(snapshots),
        snapshot_zxid,
    })
}
