//! `import`: Apache ZooKeeper's data directory in, our snapshot out. The newest snapshot that
//! reads whole is loaded, the logs' transactions after it are replayed through our tree's own
//! apply, and the result is written as our snapshot at ZooKeeper's last zxid, then read back
//! and compared before the import counts as done.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::convert::{to_txn, zookeeper_password};
use super::jute::JuteError;
use super::zk_log::{parse_log_name, read_log};
use super::zk_snapshot::{decompress, parse_snapshot_name, read_snapshot, ZkSnapshot};
use super::{io_error, list, prepare_target, MigrateError, Progress, Summary};
use crate::storage::{encode_payload, RealDisk, SnapshotMeta, SnapshotStore};
use crate::tree::path::CONFIG_ZNODE;
use crate::tree::{DataTree, SessionRecord, ZnodeImage};

/// How an import treats its source.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Where the transaction logs are when not beside the snapshots (zoo.cfg's dataLogDir).
    pub log_dir: Option<PathBuf>,
    /// At a torn or damaged log record, keep what came before it (and say so) instead of
    /// refusing the import.
    pub stop_at_last_valid: bool,
}

/// ZooKeeper keeps its files in `version-2` under dataDir; the directory itself is accepted too.
fn version_dir(dir: &Path) -> PathBuf {
    let nested = dir.join("version-2");
    if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// Whether `zxid` is the first any ZooKeeper writes (counter 1 of epoch 0 or 1).
fn is_first_zxid(zxid: i64) -> bool {
    zxid == 1 || zxid == (1 << 32) | 1
}

fn corrupt(file: &Path, error: JuteError) -> MigrateError {
    MigrateError::Corrupt {
        file: file.to_path_buf(),
        offset: error.offset,
        reason: error.reason,
    }
}

/// Converts the ZooKeeper data in `from` into a new data directory `to` (which must be empty
/// or missing). `from` is only read.
///
/// # Errors
/// `TargetNotEmpty`; `NothingToConvert`; `Corrupt` naming the file and offset of a damaged
/// log record (unless `stop_at_last_valid`) or, when no snapshot reads whole, of the newest
/// one; `Gap` when transactions are missing; `Io`; `Invalid` when the data breaks a tree rule.
pub fn import(
    from: &Path,
    to: &Path,
    options: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, MigrateError> {
    let snapshot_dir = version_dir(from);
    let log_dir = version_dir(options.log_dir.as_deref().unwrap_or(from));
    let mut snapshots: Vec<(i64, PathBuf, _)> = list(&snapshot_dir)?
        .into_iter()
        .filter_map(|name| {
            parse_snapshot_name(&name).map(|(zxid, kind)| (zxid, snapshot_dir.join(name), kind))
        })
        .collect();
    snapshots.sort_by_key(|snapshot| std::cmp::Reverse(snapshot.0));
    let mut logs: Vec<(i64, PathBuf)> = list(&log_dir)?
        .into_iter()
        .filter_map(|name| parse_log_name(&name).map(|zxid| (zxid, log_dir.join(name))))
        .collect();
    logs.sort();
    if snapshots.is_empty() && logs.is_empty() {
        return Err(MigrateError::NothingToConvert {
            dir: snapshot_dir.clone(),
        });
    }
    prepare_target(to)?;

    let size_of = |path: &Path| std::fs::metadata(path).map_or(0, |meta| meta.len());
    let total_bytes = snapshots.first().map_or(0, |(_, path, _)| size_of(path))
        + logs.iter().map(|(_, path)| size_of(path)).sum::<u64>();
    let mut done_bytes = 0u64;
    let mut summary = Summary::default();

    // The newest snapshot that reads whole, as ZooKeeper chooses at its start.
    let mut tree = None;
    let mut first_damage = None;
    for (zxid, path, kind) in &snapshots {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        let file_bytes = bytes.len() as u64;
        let read = decompress(&bytes, *kind).and_then(|plain| {
            let scale = |read: u64| read * file_bytes / (plain.len() as u64).max(1);
            read_snapshot(&plain, &mut |read| {
                progress(Progress {
                    done_bytes: scale(read),
                    total_bytes,
                })
            })
        });
        match read {
            Ok(mut snapshot) => {
                add_config_znode(&mut snapshot);
                let sessions: Vec<(i64, SessionRecord)> = snapshot
                    .sessions
                    .iter()
                    .map(|(id, timeout_ms)| {
                        let record = SessionRecord {
                            timeout_ms: (*timeout_ms).max(0) as u32,
                            password: zookeeper_password(*id),
                        };
                        (*id, record)
                    })
                    .collect();
                let built =
                    DataTree::from_images(*zxid, &snapshot.acls, &sessions, &snapshot.znodes)
                        .map_err(|error| MigrateError::Invalid {
                            reason: format!("{}: {error}", path.display()),
                        })?;
                tree = Some(built);
                summary.snapshot = Some(path.clone());
                done_bytes += file_bytes;
                break;
            }
            Err(error) => {
                let error = corrupt(path, error);
                summary
                    .warnings
                    .push(format!("passed over a damaged snapshot: {error}"));
                first_damage.get_or_insert(error);
            }
        }
    }
    let mut tree = match (tree, first_damage) {
        (Some(tree), _) => tree,
        // Only the logs from the very first transaction can stand in for a snapshot: zxid 1
        // of a standalone server (epoch 0) or of an ensemble's first epoch.
        (None, damage) if logs.first().is_some_and(|(zxid, _)| is_first_zxid(*zxid)) => {
            if let Some(error) = damage {
                tracing::warn!(%error, "no snapshot reads whole; replaying every log");
            }
            DataTree::new()
        }
        (None, Some(damage)) => return Err(damage),
        (None, None) => {
            return Err(MigrateError::Invalid {
                reason: format!(
                    "no snapshot and the logs start at zxid {:#x}: earlier data is missing",
                    logs.first().map_or(0, |(zxid, _)| *zxid)
                ),
            })
        }
    };

    // The log holding the first transaction after the snapshot and every later one, as
    // ZooKeeper's Util.getLogFiles picks them.
    let start = tree.last_zxid();
    let first_log = logs
        .iter()
        .rposition(|(zxid, _)| *zxid <= start)
        .unwrap_or(0);
    'files: for (_, path) in &logs[first_log..] {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        let file = read_log(&bytes).map_err(|error| corrupt(path, error))?;
        for record in &file.records {
            let zxid = record.header.zxid;
            let last = tree.last_zxid();
            if zxid <= last {
                continue;
            }
            // Within an epoch zxids count up by one; a new epoch restarts the counter.
            let continues = zxid == last + 1 || (zxid >> 32) > (last >> 32);
            if !continues {
                return Err(MigrateError::Gap {
                    file: path.clone(),
                    offset: record.offset,
                    after_zxid: last,
                    found_zxid: zxid,
                });
            }
            match to_txn(&record.header, &record.txn) {
                // A Txn a fuzzy snapshot already holds fails harmlessly, as in ZooKeeper.
                Some(txn) => drop(tree.apply(zxid, &txn)),
                None => tree.mark_applied(zxid),
            }
            summary.transactions += 1;
            if summary.transactions % 4096 == 0 {
                progress(Progress {
                    done_bytes: done_bytes + record.offset,
                    total_bytes,
                });
            }
        }
        done_bytes += bytes.len() as u64;
        if let Some(damage) = file.damage {
            let error = corrupt(path, damage);
            if !options.stop_at_last_valid {
                return Err(error);
            }
            summary.warnings.push(format!(
                "stopped at the last valid transaction ({:#x}): {error}",
                tree.last_zxid()
            ));
            break 'files;
        }
    }
    progress(Progress {
        done_bytes: total_bytes,
        total_bytes,
    });
    write_ours(&tree, to)?;
    summary.znodes = tree.node_count() as u64;
    summary.data_bytes = tree.approximate_data_size();
    summary.sessions = tree.sessions().count() as u64;
    summary.last_zxid = tree.last_zxid();
    Ok(summary)
}

/// Adds /zookeeper/config, as our fresh tree has it, to a snapshot from before ZooKeeper 3.5
/// (which has none): our members write their membership there at each start. It goes right
/// after /zookeeper, which keeps the znodes in pre-order.
fn add_config_znode(snapshot: &mut ZkSnapshot) {
    if snapshot
        .znodes
        .iter()
        .any(|znode| znode.path == CONFIG_ZNODE)
    {
        return;
    }
    let Some(parent) = snapshot
        .znodes
        .iter()
        .position(|znode| znode.path == "/zookeeper")
    else {
        return;
    };
    let fresh = DataTree::new();
    let (acls, images) = fresh.images();
    let Some(config) = images.into_iter().find(|znode| znode.path == CONFIG_ZNODE) else {
        return;
    };
    snapshot.acls.push(acls[config.acl as usize].clone());
    let config = ZnodeImage {
        acl: (snapshot.acls.len() - 1) as u32,
        ..config
    };
    snapshot.znodes.insert(parent + 1, config);
}

/// Writes the tree as our snapshot at its last zxid, reads it back and compares: a conversion
/// that cannot be read back must not look done.
fn write_ours(tree: &DataTree, to: &Path) -> Result<(), MigrateError> {
    let zxid = tree.last_zxid();
    if zxid <= 0 {
        // Nothing ever happened: an empty directory starts the same tree.
        return Ok(());
    }
    let store = SnapshotStore::open(Arc::new(RealDisk), to).map_err(io_error(to))?;
    // No member knew of this data: an empty membership makes each member that starts on it
    // take its configured one (server/recovery.rs). Term 1, as a first leader's.
    let meta = SnapshotMeta {
        index: zxid as u64,
        term: 1,
        membership: Default::default(),
    };
    // No member has claimed the data yet: the first start, standalone or member, does.
    let identity = to.join(crate::server::member_setup::IDENTITY_FILE);
    std::fs::write(&identity, crate::server::member_setup::UNCLAIMED_IDENTITY)
        .and_then(|()| std::fs::File::open(&identity)?.sync_all())
        .map_err(io_error(&identity))?;
    let tree_bytes = tree.to_snapshot();
    store
        .write(zxid, &encode_payload(&meta, &tree_bytes))
        .map_err(io_error(&store.path_of(zxid)))?;
    let path = store.path_of(zxid);
    let files = store.load().map_err(|error| MigrateError::Invalid {
        reason: format!("{}: reading back: {error}", path.display()),
    })?;
    let read_back = files
        .into_iter()
        .find(|file| file.zxid == zxid)
        .and_then(|file| file.payload.ok());
    let same = read_back.is_some_and(|payload| {
        crate::storage::decode_payload(crate::storage::SNAPSHOT_FORMAT_VERSION, &payload)
            .ok()
            .and_then(|(_, bytes)| DataTree::from_snapshot(bytes).ok())
            .is_some_and(|back| back.to_snapshot() == tree_bytes)
    });
    if !same {
        return Err(MigrateError::Invalid {
            reason: format!("{} does not read back as written", path.display()),
        });
    }
    Ok(())
}
