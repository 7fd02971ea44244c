//! A `Disk` that hands a crash image of its fake disk to a hook after every operation that
//! changes it, so a test can check recovery at every moment a machine could lose power.

use std::io;
use std::path::Path;
use std::sync::Arc;

use zookeeper_core::storage::{Crash, Disk, DiskFile, FakeDisk};

/// Called after every changing operation with the operation's name and the disk as it stands;
/// the hook takes its crash images from it.
pub type Hook = Arc<dyn Fn(&'static str, &FakeDisk) + Send + Sync>;

/// Wraps a `FakeDisk`; clones share the disk and the hook.
#[derive(Clone)]
pub struct CaptureDisk {
    inner: FakeDisk,
    hook: Hook,
}

impl CaptureDisk {
    pub fn new(inner: FakeDisk, hook: Hook) -> CaptureDisk {
        CaptureDisk { inner, hook }
    }

    fn after<T>(&self, operation: &'static str, result: io::Result<T>) -> io::Result<T> {
        (self.hook)(operation, &self.inner);
        result
    }
}

struct CaptureFile {
    file: Box<dyn DiskFile>,
    disk: CaptureDisk,
}

impl DiskFile for CaptureFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let result = self.file.write_at(offset, bytes);
        self.disk.after("write_at", result)
    }

    fn sync(&mut self) -> io::Result<()> {
        let result = self.file.sync();
        self.disk.after("sync", result)
    }

    fn set_len(&mut self, length: u64) -> io::Result<()> {
        let result = self.file.set_len(length);
        self.disk.after("set_len", result)
    }
}

impl Disk for CaptureDisk {
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
        let result = self.inner.open(path).map(|file| {
            Box::new(CaptureFile {
                file,
                disk: self.clone(),
            }) as Box<dyn DiskFile>
        });
        self.after("open", result)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let result = self.inner.rename(from, to);
        self.after("rename", result)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let result = self.inner.remove(path);
        self.after("remove", result)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let result = self.inner.sync_dir(dir);
        self.after("sync_dir", result)
    }
}

/// Both images a crash right now could leave.
pub fn images(disk: &FakeDisk) -> [(Crash, FakeDisk); 2] {
    [
        (Crash::Clean, disk.crash(Crash::Clean)),
        (Crash::TearLastWrite, disk.crash(Crash::TearLastWrite)),
    ]
}
