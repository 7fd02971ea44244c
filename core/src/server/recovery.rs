//! Start-up: a member's state rebuilt from its newest valid snapshot plus the transaction log,
//! refusing to start (with the file and offset) rather than silently dropping committed data.

use std::fmt;
use std::sync::Arc;

use crate::server::config::{ConfigError, ServerConfig};
use raft::eraftpb::{ConfState, HardState};

use crate::replication::log::from_log_entry;
use crate::replication::{raft_id, DurableLog, RaftLog};
use crate::storage::{
    decode_payload, EntryKind, FileLog, Membership, SnapshotMeta, SnapshotStore, StorageError,
};
use crate::tree::DataTree;
use crate::txn::Proposal;

/// Why a server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration breaks a rule.
    Config(ConfigError),
    /// The data directory cannot be used: unreadable, damaged, or from a newer version.
    Storage(StorageError),
    /// A client port could not be bound.
    Listen(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(error) => write!(f, "{error}"),
            StartError::Storage(error) => write!(f, "cannot use the data directory: {error}"),
            StartError::Listen(error) => write!(f, "cannot open the client port: {error}"),
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
    /// The replicated log as raft will read it.
    pub(super) log: RaftLog,
    pub(super) snapshots: Option<SnapshotStore>,
    /// The index of the snapshot the tree came from (0: none).
    pub(super) snapshot_index: u64,
    /// The newest index the tree holds (the snapshot's, or the last committed entry replayed).
    pub(super) applied: u64,
}

/// The membership a member starts with when its data has none: the configured one.
pub(super) fn configured_membership(config: &ServerConfig) -> ConfState {
    ConfState {
        voters: config.voters().into_iter().map(raft_id).collect(),
        learners: config.observers.iter().copied().map(raft_id).collect(),
        ..ConfState::default()
    }
}

/// Rebuilds the state in `config.data_dir` (or an empty one in memory).
pub(super) fn recover(config: &ServerConfig) -> Result<Recovered, StartError> {
    let membership = configured_membership(config);
    let Some(dir) = &config.data_dir else {
        return Ok(Recovered {
            tree: DataTree::new(),
            log: RaftLog::new(HardState::default(), membership, (0, 0), Vec::new(), None),
            snapshots: None,
            snapshot_index: 0,
            applied: 0,
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
    let (mut log, contents) = FileLog::open(disk, dir, config.log_options)?;
    let first_logged = contents.entries.first().map(|entry| entry.index);

    // The newest snapshot the log continues without a gap. A damaged snapshot is passed over
    // only when an older one plus the log still hold everything; otherwise start-up stops.
    let mut damaged = None;
    let mut chosen = None;
    for file in files {
        match file.payload {
            Ok(bytes) => {
                let index = file.zxid as u64;
                if first_logged.is_some_and(|first| first > index + 1) {
                    // The log was purged past this snapshot: it cannot be continued.
                    continue;
                }
                let corrupt = |reason: String| StorageError::Corrupt {
                    file: file.path.clone(),
                    offset: 0,
                    reason,
                };
                let (meta, tree_bytes) = decode_payload(file.version, &bytes).map_err(corrupt)?;
                // Formats 1 and 2 were a single member's, in term 1.
                let mut meta = meta.unwrap_or(SnapshotMeta {
                    index,
                    term: 1,
                    membership: membership_of(&membership),
                });
                // An imported snapshot (migrate/) names no voters: no member knew of it, so
                // it takes the configured membership, as a single member's older format does.
                if meta.membership.voters.is_empty() && meta.membership.learners.is_empty() {
                    meta.membership = membership_of(&membership);
                }
                let tree = DataTree::from_snapshot_of_version(tree_bytes, file.version)
                    .map_err(|error| corrupt(error.to_string()))?;
                chosen = Some((meta, tree));
                break;
            }
            Err(error @ StorageError::NewerFormat { .. }) => return Err(error.into()),
            Err(error) => {
                tracing::warn!(%error, "skipping a damaged snapshot");
                damaged.get_or_insert(error);
            }
        }
    }
    let (snapshot, mut tree) = match chosen {
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
                        "the log starts at index {} and no snapshot covers what came before",
                        first_logged.unwrap_or_default()
                    ),
                }
                .into());
            }
            let meta = SnapshotMeta {
                index: 0,
                term: 0,
                membership: membership_of(&membership),
            };
            (meta, DataTree::new())
        }
    };
    let entries: Vec<_> = contents
        .entries
        .into_iter()
        .filter(|entry| entry.index > snapshot.index)
        .collect();
    if let Some(first) = entries.first() {
        if first.index != snapshot.index + 1 {
            return Err(StorageError::Corrupt {
                file: dir.clone(),
                offset: 0,
                reason: format!(
                    "the log jumps from index {} to {}",
                    snapshot.index, first.index
                ),
            }
            .into());
        }
    }
    let last_index = entries.last().map_or(snapshot.index, |entry| entry.index);
    // Everything the log holds is older than the snapshot (a follower crashed soon after
    // installing one): it continues after the snapshot, not after its own last entry.
    if log.last_index() < snapshot.index {
        log.reset_after(snapshot.index)?;
    }
    let hard_state = match contents.hard_state {
        // A snapshot holds only committed entries: the commit index is at least its index
        // (a crash may keep the snapshot and lose the hard state written after it).
        Some(state) => HardState {
            term: state.term.max(snapshot.term),
            vote: state.vote,
            commit: state.commit.clamp(snapshot.index, last_index),
            ..HardState::default()
        },
        // Written before replication (or never written): a single member's log holds only
        // what it made durable, all committed, in term 1 (or nothing at all).
        None if last_index > 0 || snapshot.index > 0 => HardState {
            term: snapshot.term.max(1),
            vote: raft_id(config.member_id),
            commit: last_index,
            ..HardState::default()
        },
        None => HardState::default(),
    };
    // Replay what was committed: the tree then holds everything through `applied`.
    let mut applied = snapshot.index;
    for entry in entries
        .iter()
        .take_while(|entry| entry.index <= hard_state.commit)
    {
        if entry.kind != EntryKind::Normal {
            // A membership change: raft must take it too, so it and what follows are handed
            // out by raft after start, as committed entries are to any member.
            break;
        }
        if !entry.data.is_empty() {
            let proposal =
                Proposal::decode(&entry.data).map_err(|error| StorageError::Corrupt {
                    file: dir.clone(),
                    offset: 0,
                    reason: format!("entry {} does not decode: {error}", entry.index),
                })?;
            // Replay is idempotent: a Txn the snapshot already holds fails harmlessly.
            let _ = tree.apply(entry.index as i64, &proposal.txn);
        }
        applied = entry.index;
    }
    tracing::info!(
        snapshot_index = format_args!("0x{:x}", snapshot.index),
        applied = format_args!("0x{applied:x}"),
        last_index = format_args!("0x{last_index:x}"),
        znodes = tree.node_count(),
        "recovered"
    );
    let raft_entries = entries.into_iter().map(from_log_entry).collect();
    let conf_state = conf_state_of(&snapshot.membership);
    Ok(Recovered {
        tree,
        log: RaftLog::new(
            hard_state,
            conf_state,
            (snapshot.index, snapshot.term),
            raft_entries,
            Some(DurableLog::new(log, config.force_sync)),
        ),
        snapshots: Some(snapshots),
        snapshot_index: snapshot.index,
        applied,
    })
}

/// The tree a data directory holds (newest valid snapshot plus the committed log after it),
/// as a server would start with it, for tools (`export`). `disk` should be a copy when the
/// directory must not change: recovery cuts a torn log tail as a start does.
///
/// # Errors
/// As a start: a damaged or newer-format directory.
pub fn recover_tree(
    data_dir: &std::path::Path,
    disk: Arc<dyn crate::storage::Disk>,
) -> Result<DataTree, StartError> {
    let config = ServerConfig {
        data_dir: Some(data_dir.to_path_buf()),
        disk,
        ..ServerConfig::default()
    };
    Ok(recover(&config)?.tree)
}

/// raft's ConfState as a snapshot keeps it.
pub(super) fn membership_of(conf_state: &ConfState) -> Membership {
    Membership {
        voters: conf_state.voters.clone(),
        learners: conf_state.learners.clone(),
        voters_outgoing: conf_state.voters_outgoing.clone(),
        learners_next: conf_state.learners_next.clone(),
        auto_leave: conf_state.auto_leave,
    }
}

/// A snapshot's membership as raft's ConfState.
pub(super) fn conf_state_of(membership: &Membership) -> ConfState {
    ConfState {
        voters: membership.voters.clone(),
        learners: membership.learners.clone(),
        voters_outgoing: membership.voters_outgoing.clone(),
        learners_next: membership.learners_next.clone(),
        auto_leave: membership.auto_leave,
        ..ConfState::default()
    }
}
