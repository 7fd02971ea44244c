//! Guards against a crash mid-write leaving a half snapshot that reads as valid (or losing the
//! previous one), a damaged file hiding the older good ones, and purge removing the snapshot
//! recovery needs.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::storage::disk::DiskFile;
use crate::storage::{Crash, FakeDisk, RealDisk};

fn dir() -> PathBuf {
    PathBuf::from("/data/snapshots")
}

fn store(disk: &FakeDisk) -> SnapshotStore {
    SnapshotStore::open(Arc::new(disk.clone()), dir()).unwrap()
}

fn payload(zxid: i64) -> Vec<u8> {
    (0..1_000).map(|i| (i as i64 * 31 + zxid) as u8).collect()
}

/// (zxid, payload if valid) newest first.
fn summary(store: &SnapshotStore) -> Vec<(i64, Option<Vec<u8>>)> {
    store
        .load()
        .unwrap()
        .into_iter()
        .map(|file| (file.zxid, file.payload.ok()))
        .collect()
}

/// A disk that refuses every operation FakeDisk counts once `ops_left` of them have run: the
/// process dies there, and what the FakeDisk made durable is what a restart finds.
struct CutDisk {
    inner: FakeDisk,
    ops_left: Arc<AtomicU64>,
}

struct CutFile {
    inner: Box<dyn DiskFile>,
    ops_left: Arc<AtomicU64>,
}

fn spend(ops_left: &AtomicU64) -> io::Result<()> {
    ops_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .map(|_| ())
        .map_err(|_| io::Error::other("crashed"))
}

impl DiskFile for CutFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        spend(&self.ops_left)?;
        self.inner.write_at(offset, bytes)
    }
    fn sync(&mut self) -> io::Result<()> {
        spend(&self.ops_left)?;
        self.inner.sync()
    }
    fn set_len(&mut self, length: u64) -> io::Result<()> {
        spend(&self.ops_left)?;
        self.inner.set_len(length)
    }
}

impl Disk for CutDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        spend(&self.ops_left)?;
        Ok(Box::new(CutFile {
            inner: self.inner.open(path)?,
            ops_left: self.ops_left.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        spend(&self.ops_left)?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        spend(&self.ops_left)?;
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        spend(&self.ops_left)?;
        self.inner.sync_dir(dir)
    }
}

/// A disk holding snapshot 5 (durable) and a leftover `.tmp` from an earlier crash.
fn disk_with_an_old_snapshot() -> FakeDisk {
    let disk = FakeDisk::new();
    let store = store(&disk);
    store.write(5, &payload(5)).unwrap();
    let mut leftover = disk
        .open(&dir().join("snapshot.0000000000000006.tmp"))
        .unwrap();
    leftover.write_at(0, b"half").unwrap();
    leftover.sync().unwrap();
    disk.sync_dir(&dir()).unwrap();
    disk
}

#[test]
fn a_crash_after_any_disk_operation_leaves_the_old_snapshot_or_the_new_one() {
    let full = disk_with_an_old_snapshot();
    let before = full.operations();
    store(&full).write(9, &payload(9)).unwrap();
    let write_ops = full.operations() - before;
    // Remove the leftover, open, header, payload, sync, rename, sync_dir.
    assert_eq!(write_ops, 7);

    let mut outcomes = Vec::new();
    for cut_after in 0..=write_ops {
        for crash in [Crash::Clean, Crash::TearLastWrite] {
            let disk = disk_with_an_old_snapshot();
            let cut = CutDisk {
                inner: disk.clone(),
                ops_left: Arc::new(AtomicU64::new(cut_after)),
            };
            let cut_store = SnapshotStore::open(Arc::new(cut), dir()).unwrap();
            let written = cut_store.write(9, &payload(9));
            assert_eq!(
                written.is_ok(),
                cut_after == write_ops,
                "cut after {cut_after}"
            );

            let restarted = store(&disk.crash(crash));
            let found = summary(&restarted);
            let valid: Vec<&(i64, Option<Vec<u8>>)> = found
                .iter()
                .filter(|(_, payload)| payload.is_some())
                .collect();
            // Whatever reads as valid is exactly what was written, and the old one survives.
            for (zxid, bytes) in &valid {
                assert_eq!(bytes.as_ref(), Some(&payload(*zxid)), "cut {cut_after}");
            }
            assert!(valid.iter().any(|(zxid, _)| *zxid == 5), "cut {cut_after}");
            let newest = valid[0].0;
            assert!(newest == 5 || newest == 9);
            if cut_after == write_ops {
                assert_eq!(newest, 9, "a completed write is durable");
            }
            outcomes.push(newest);
        }
    }
    assert!(outcomes.contains(&5) && outcomes.contains(&9));
}

#[test]
fn leftover_tmp_files_are_ignored_and_removed_at_the_next_write() {
    let disk = disk_with_an_old_snapshot();
    let store = store(&disk);
    assert_eq!(summary(&store), vec![(5, Some(payload(5)))]);
    store.write(7, &payload(7)).unwrap();
    assert_eq!(
        disk.list(&dir()).unwrap(),
        ["snapshot.0000000000000005", "snapshot.0000000000000007"]
    );
}

#[test]
fn a_flipped_bit_makes_that_file_invalid_and_the_older_one_still_loads() {
    // Header fields and the payload: each flip must be caught, naming the file.
    for offset in [0, 9, 14, 22, 29, 32, 500, 1_031] {
        let disk = FakeDisk::new();
        let store = store(&disk);
        store.write(1, &payload(1)).unwrap();
        store.write(2, &payload(2)).unwrap();
        let damaged = store.path_of(2);
        disk.flip_bit(&damaged, offset);
        let files = store.load().unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].zxid, 2);
        let error = files[0].payload.as_ref().expect_err("damaged");
        // The header has no checksum of its own: a flipped version bit reads as a newer
        // format, which stops recovery rather than falling back (the safe side).
        let named = match error {
            StorageError::Corrupt { file, .. } => offset != 9 && *file == damaged,
            StorageError::NewerFormat { file, .. } => offset == 9 && *file == damaged,
            _ => false,
        };
        assert!(named, "offset {offset}: {error:?}");
        assert!(error.to_string().contains("snapshot.0000000000000002"));
        assert_eq!(files[1].payload.as_ref().ok(), Some(&payload(1)));
    }
}

#[test]
fn truncated_and_foreign_files_and_newer_formats_are_reported() {
    let disk = FakeDisk::new();
    let store = store(&disk);
    store.write(3, &payload(3)).unwrap();
    let mut short = disk.open(&store.path_of(4)).unwrap();
    short.write_at(0, b"ZKRSSNAP").unwrap();
    let mut newer = disk.open(&store.path_of(5)).unwrap();
    let mut bytes = header(5, b"future").to_vec();
    bytes[8..12].copy_from_slice(&(SNAPSHOT_FORMAT_VERSION + 1).to_be_bytes());
    bytes.extend_from_slice(b"future");
    newer.write_at(0, &bytes).unwrap();
    let files = store.load().unwrap();
    let zxids: Vec<i64> = files.iter().map(|file| file.zxid).collect();
    assert_eq!(zxids, [5, 4, 3]);
    assert!(matches!(
        files[0].payload,
        Err(StorageError::NewerFormat { version, .. }) if version == SNAPSHOT_FORMAT_VERSION + 1
    ));
    assert!(matches!(
        files[1].payload,
        Err(StorageError::Corrupt { offset: 8, .. })
    ));
    assert!(files[2].payload.is_ok());

    // Unrelated names are not the store's; a snapshot.* name that is no zxid is refused.
    disk.open(&dir().join("log.0000000000000001")).unwrap();
    assert_eq!(store.load().unwrap().len(), 3);
    for name in [
        "snapshot.xyz",
        "snapshot.000000000000000A",
        "snapshot.00000000000000001",
        "snapshot.ffffffffffffffff",
    ] {
        let path = dir().join(name);
        disk.open(&path).unwrap();
        assert!(
            matches!(store.load(), Err(StorageError::Foreign { ref file }) if *file == path),
            "{name}"
        );
        disk.remove(&path).unwrap();
    }
}

#[test]
fn purge_keeps_the_newest_valid_snapshots() {
    let disk = FakeDisk::new();
    let store = store(&disk);
    assert_eq!(store.purge(2).unwrap(), None);
    for zxid in 1..=5 {
        store.write(zxid, &payload(zxid)).unwrap();
    }
    // The newest is damaged: it does not count among the kept, and is left for inspection.
    disk.flip_bit(&store.path_of(5), 100);
    assert_eq!(store.purge(2).unwrap(), Some(3));
    let zxids: Vec<i64> = store.load().unwrap().iter().map(|file| file.zxid).collect();
    assert_eq!(zxids, [5, 4, 3]);
    // The removals are durable.
    let restarted = super::SnapshotStore::open(Arc::new(disk.crash(Crash::Clean)), dir()).unwrap();
    assert_eq!(restarted.load().unwrap().len(), 3);
    assert_eq!(store.purge(1).unwrap(), Some(4));
    assert_eq!(store.purge(10).unwrap(), Some(4));
    assert!(store.purge(0).is_err());
    assert!(store.write(-1, b"").is_err());
}

#[test]
fn a_tree_snapshot_round_trips_through_the_real_disk() {
    use crate::tree::DataTree;
    let dir = std::env::temp_dir().join(format!("zkrs-snapshot-{}", std::process::id()));
    let store = SnapshotStore::open(Arc::new(RealDisk), &dir).unwrap();
    let tree = DataTree::new();
    store.write(0x1_0000_0001, &tree.to_snapshot()).unwrap();
    let files = store.load().unwrap();
    assert_eq!(files[0].path, dir.join("snapshot.0000000100000001"));
    let restored = DataTree::from_snapshot(files[0].payload.as_ref().unwrap()).unwrap();
    assert!(restored == tree);
    std::fs::remove_dir_all(&dir).unwrap();
}
