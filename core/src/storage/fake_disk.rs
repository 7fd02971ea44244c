//! A fake disk for crash tests: it keeps what was written apart from what was made durable,
//! and can crash at any moment (keeping only durable state, tearing the last write, flipping a
//! byte) or fail a sync.
//!
//! Durability follows `Disk`'s rules: file bytes by `sync`, directory entries by `sync_dir`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::disk::{Disk, DiskFile};

#[derive(Clone, Debug, Default)]
struct FakeFile {
    written: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    /// Files by path as the running process sees them (each entry is a file id).
    entries: BTreeMap<PathBuf, u64>,
    /// Files by path as they would be found after a crash.
    durable_entries: BTreeMap<PathBuf, u64>,
    files: BTreeMap<u64, FakeFile>,
    next_file: u64,
    directories: Vec<PathBuf>,
    /// The most recent write, for tearing: (file id, offset, length).
    last_write: Option<(u64, u64, usize)>,
    /// Syncs to fail, counted down; the sync that hits 0 fails.
    failing_sync_in: Option<u64>,
    /// Operations so far, so a test can crash after the Nth.
    operations: u64,
    /// Bytes all files together may hold (a full disk past it); `None`: unlimited.
    space_bytes_max: Option<usize>,
}

/// How a crash treats the most recent write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// Only durable bytes survive.
    Clean,
    /// As Clean, and the last write's first half survives too, even if it was not synced (a
    /// torn write: some sectors reached the platter).
    TearLastWrite,
}

/// An in-memory disk; clones share the same state.
#[derive(Clone, Debug, Default)]
pub struct FakeDisk {
    state: Arc<Mutex<State>>,
}

struct FakeHandle {
    state: Arc<Mutex<State>>,
    file: u64,
}

impl FakeDisk {
    /// An empty disk.
    pub fn new() -> FakeDisk {
        FakeDisk::default()
    }

    /// Makes the `nth` sync from now fail (1 = the next one), and every sync after it.
    pub fn fail_sync_after(&self, nth: u64) {
        self.state.lock().failing_sync_in = Some(nth);
    }

    /// Limits the bytes all files together may hold: a write or preallocation past it fails
    /// with "no space left on device", as on a full disk.
    pub fn set_space(&self, bytes: usize) {
        self.state.lock().space_bytes_max = Some(bytes);
    }

    /// Bytes all files hold now (preallocated zeros included).
    pub fn used_bytes(&self) -> usize {
        self.state
            .lock()
            .files
            .values()
            .map(|file| file.written.len())
            .sum()
    }

    /// How many disk operations ran so far (writes, syncs, renames, removes, ...).
    pub fn operations(&self) -> u64 {
        self.state.lock().operations
    }

    /// The disk as a restarted machine would find it.
    pub fn crash(&self, crash: Crash) -> FakeDisk {
        let state = self.state.lock();
        let mut files: BTreeMap<u64, FakeFile> = BTreeMap::new();
        for (id, file) in &state.files {
            let mut survivor = file.durable.clone();
            if crash == Crash::TearLastWrite {
                if let Some((torn, offset, length)) = state.last_write {
                    if torn == *id {
                        let end = (offset as usize + length / 2).min(file.written.len());
                        if end > survivor.len() {
                            survivor.resize(end, 0);
                        }
                        let start = (offset as usize).min(end);
                        survivor[start..end].copy_from_slice(&file.written[start..end]);
                    }
                }
            }
            files.insert(
                *id,
                FakeFile {
                    written: survivor.clone(),
                    durable: survivor,
                },
            );
        }
        let entries = state.durable_entries.clone();
        FakeDisk {
            state: Arc::new(Mutex::new(State {
                durable_entries: entries.clone(),
                entries,
                files,
                next_file: state.next_file,
                directories: state.directories.clone(),
                ..State::default()
            })),
        }
    }

    /// Flips one bit of a file's durable and written bytes (a corrupt sector).
    pub fn flip_bit(&self, path: &Path, offset: usize) {
        let mut state = self.state.lock();
        if let Some(id) = state.entries.get(path).copied() {
            let file = state.files.get_mut(&id).expect("entry names a file");
            for bytes in [&mut file.written, &mut file.durable] {
                if let Some(byte) = bytes.get_mut(offset) {
                    *byte ^= 0x10;
                }
            }
        }
    }

    fn count(state: &mut State) {
        state.operations += 1;
    }
}

/// Fails when growing `file` to `length` bytes would pass the disk's space.
fn full_past(state: &State, file: u64, length: usize) -> io::Result<()> {
    let Some(space) = state.space_bytes_max else {
        return Ok(());
    };
    let others: usize = state
        .files
        .iter()
        .filter(|(id, _)| **id != file)
        .map(|(_, f)| f.written.len())
        .sum();
    let current = state.files.get(&file).map_or(0, |f| f.written.len());
    if others + length.max(current) > space {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "no space left on device",
        ));
    }
    Ok(())
}

fn missing(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl DiskFile for FakeHandle {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        FakeDisk::count(&mut state);
        let end = offset as usize + bytes.len();
        full_past(&state, self.file, end)?;
        let file = state
            .files
            .get_mut(&self.file)
            .expect("an open file exists");
        if file.written.len() < end {
            file.written.resize(end, 0);
        }
        file.written[offset as usize..end].copy_from_slice(bytes);
        state.last_write = Some((self.file, offset, bytes.len()));
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.state.lock();
        FakeDisk::count(&mut state);
        if let Some(left) = state.failing_sync_in {
            if left <= 1 {
                state.failing_sync_in = Some(0);
                return Err(io::Error::other("injected fsync failure"));
            }
            state.failing_sync_in = Some(left - 1);
        }
        let file = state
            .files
            .get_mut(&self.file)
            .expect("an open file exists");
        file.durable = file.written.clone();
        Ok(())
    }

    fn set_len(&mut self, length: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        FakeDisk::count(&mut state);
        full_past(&state, self.file, length as usize)?;
        let file = state
            .files
            .get_mut(&self.file)
            .expect("an open file exists");
        file.written.resize(length as usize, 0);
        Ok(())
    }
}

impl Disk for FakeDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if !state.directories.iter().any(|known| known == dir) {
            state.directories.push(dir.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        if !state.directories.iter().any(|known| known == dir) {
            return Err(missing(dir));
        }
        Ok(state
            .entries
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| {
                path.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state.lock();
        let id = state.entries.get(path).ok_or_else(|| missing(path))?;
        Ok(state.files[id].written.clone())
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let mut state = self.state.lock();
        FakeDisk::count(&mut state);
        let id = match state.entries.get(path) {
            Some(id) => *id,
            None => {
                let id = state.next_file;
                state.next_file += 1;
                state.files.insert(id, FakeFile::default());
                state.entries.insert(path.to_path_buf(), id);
                id
            }
        };
        Ok(Box::new(FakeHandle {
            state: self.state.clone(),
            file: id,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        FakeDisk::count(&mut state);
        let id = state.entries.remove(from).ok_or_else(|| missing(from))?;
        state.entries.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        FakeDisk::count(&mut state);
        state.entries.remove(path).ok_or_else(|| missing(path))?;
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        FakeDisk::count(&mut state);
        let State {
            entries,
            durable_entries,
            ..
        } = &mut *state;
        durable_entries.retain(|path, _| path.parent() != Some(dir));
        for (path, id) in entries.iter() {
            if path.parent() == Some(dir) {
                durable_entries.insert(path.clone(), *id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Crash;

    #[test]
    fn only_synced_bytes_and_entries_survive_a_crash() {
        let disk = FakeDisk::new();
        let dir = Path::new("/data");
        disk.create_dir_all(dir).unwrap();
        let mut file = disk.open(&dir.join("a")).unwrap();
        file.write_at(0, b"hello").unwrap();
        // The file exists but its entry is not durable yet.
        assert!(disk.crash(Crash::Clean).list(dir).unwrap().is_empty());
        disk.sync_dir(dir).unwrap();
        assert_eq!(disk.crash(Crash::Clean).read(&dir.join("a")).unwrap(), b"");
        file.sync().unwrap();
        file.write_at(5, b" world").unwrap();
        assert_eq!(
            disk.crash(Crash::Clean).read(&dir.join("a")).unwrap(),
            b"hello"
        );
        assert_eq!(
            disk.crash(Crash::TearLastWrite)
                .read(&dir.join("a"))
                .unwrap(),
            b"hello wo"
        );
        assert_eq!(disk.read(&dir.join("a")).unwrap(), b"hello world");
    }

    #[test]
    fn renames_need_a_directory_sync_and_syncs_can_fail() {
        let disk = FakeDisk::new();
        let dir = Path::new("/data");
        disk.create_dir_all(dir).unwrap();
        let mut file = disk.open(&dir.join("tmp")).unwrap();
        file.write_at(0, b"x").unwrap();
        file.sync().unwrap();
        disk.sync_dir(dir).unwrap();
        disk.rename(&dir.join("tmp"), &dir.join("final")).unwrap();
        assert_eq!(disk.crash(Crash::Clean).list(dir).unwrap(), vec!["tmp"]);
        disk.sync_dir(dir).unwrap();
        assert_eq!(disk.crash(Crash::Clean).list(dir).unwrap(), vec!["final"]);
        disk.fail_sync_after(1);
        assert!(file.sync().is_err());
        assert!(file.sync().is_err(), "a failed sync stays failed");
    }
}
