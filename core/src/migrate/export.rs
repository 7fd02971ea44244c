//! `export`: our data directory in, a snapshot Apache ZooKeeper 3.8 loads out. The tree is
//! recovered as a start would recover it (newest snapshot plus the committed log), from an
//! in-memory copy so the source stays exactly as it was.

use std::path::Path;
use std::sync::Arc;

use super::zk_snapshot::{write_snapshot, ZkSnapshot};
use super::{io_error, list, prepare_target, MigrateError, Progress, Summary};
use crate::storage::{Disk, FakeDisk};

/// Writes the tree in our data directory `from` as `to/version-2/snapshot.<last zxid>`, which
/// Apache ZooKeeper loads as its dataDir. `to` must be empty or missing; `from` is only read.
///
/// Sessions keep their ids and timeouts. ZooKeeper checks a resuming client's password by
/// deriving it from the session id, so only sessions that came from ZooKeeper (or whose
/// client never resumes) survive the way back; the others expire there after their timeout.
///
/// # Errors
/// `TargetNotEmpty`; `Invalid` when our directory cannot be recovered (damaged, newer
/// format); `Io`.
pub fn export(
    from: &Path,
    to: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, MigrateError> {
    prepare_target(to)?;
    // Recovery cuts a torn log tail and may reset the log: it runs on a copy in memory.
    let copy = FakeDisk::new();
    let mut total_bytes = 0u64;
    copy.create_dir_all(from).map_err(io_error(from))?;
    for name in list(from)? {
        if !(name.starts_with("log.") || name.starts_with("snapshot.")) {
            continue;
        }
        let path = from.join(&name);
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        total_bytes += bytes.len() as u64;
        let mut file = copy.open(&path).map_err(io_error(&path))?;
        file.write_at(0, &bytes).map_err(io_error(&path))?;
        file.sync().map_err(io_error(&path))?;
    }
    copy.sync_dir(from).map_err(io_error(from))?;
    progress(Progress {
        done_bytes: total_bytes / 2,
        total_bytes,
    });
    let tree = crate::server::recover_tree(from, Arc::new(copy)).map_err(|error| {
        MigrateError::Invalid {
            reason: format!("{}: {error}", from.display()),
        }
    })?;
    let (acls, znodes) = tree.images();
    let snapshot = ZkSnapshot {
        sessions: tree
            .sessions()
            .map(|(id, record)| (id, record.timeout_ms.min(i32::MAX as u32) as i32))
            .collect(),
        acls,
        znodes,
        digest_zxid: None,
    };
    let zxid = tree.last_zxid();
    let dir = to.join("version-2");
    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let path = dir.join(format!("snapshot.{zxid:x}"));
    write_durably(&path, &write_snapshot(&snapshot))?;
    progress(Progress {
        done_bytes: total_bytes,
        total_bytes,
    });
    Ok(Summary {
        znodes: snapshot.znodes.len() as u64,
        data_bytes: tree.approximate_data_size(),
        sessions: snapshot.sessions.len() as u64,
        last_zxid: zxid,
        snapshot: Some(path),
        transactions: 0,
        warnings: Vec::new(),
    })
}

/// Writes a file and syncs it and its directory, so a finished export survives a crash.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), MigrateError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(dir))?;
    }
    Ok(())
}
