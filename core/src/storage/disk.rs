//! The `Disk` seam: the file operations storage needs, so tests can swap the real file system
//! for a fake disk that knows which bytes were really made durable.
//!
//! Durability follows POSIX: bytes written to a file are durable after that file's `sync`; a
//! file's creation, rename or removal is durable after its directory's `sync_dir`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A file opened for writing.
pub trait DiskFile: Send {
    /// Writes `bytes` at `offset`, growing the file when needed.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes every byte written so far durable (fdatasync). An error means nothing written
    /// since the last successful sync can be trusted: the caller must stop (fail-stop).
    fn sync(&mut self) -> io::Result<()>;
    /// Sets the file's length: preallocates when growing, cuts when shrinking.
    fn set_len(&mut self, length: u64) -> io::Result<()>;
}

/// The file operations storage uses. Paths are absolute or relative to the process's directory.
pub trait Disk: Send + Sync {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the files in `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens a file for writing, creating it empty if missing (its creation is durable only
    /// after `sync_dir`).
    fn open(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Renames a file, replacing any file at `to` (durable after `sync_dir`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file (durable after `sync_dir`).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// A file's length in bytes.
    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(self.read(path)?.len() as u64)
    }
    /// Makes the directory's entries durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The machine's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealDisk;

struct RealFile {
    file: File,
}

impl DiskFile for RealFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&mut self, length: u64) -> io::Result<()> {
        self.file.set_len(length)
    }
}

impl Disk for RealDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(Box::new(RealFile { file }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// `dir/name`.
pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// What a file being removed is renamed to first (this, then its name): recovery ignores
/// such files and removes the ones a crash left.
pub const REMOVING_PREFIX: &str = "removing.";

/// Bytes a paced removal frees at a time: ext4 frees a file's extents in one journal
/// transaction, and the log's next fdatasync waits for it (unlinking a 64 MiB segment at once
/// held a 3-member ensemble's writes for 60-100 ms).
const PACED_STEP_BYTES: u64 = 4 << 20;

/// The pause between two steps of a paced removal, for the log's fsyncs to pass.
const PACED_PAUSE: Duration = Duration::from_millis(3);

/// Files to remove from one directory: work a caller may hand to another thread, since
/// removing large files is slow and slows the directory's other fsyncs.
#[must_use = "the files are removed only when the removal runs"]
pub struct FileRemoval {
    pub(crate) disk: Arc<dyn Disk>,
    pub(crate) dir: PathBuf,
    pub(crate) paths: Vec<PathBuf>,
}

impl FileRemoval {
    /// True when there is nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Removes the files at once, then syncs the directory so the removals are durable.
    ///
    /// # Errors
    /// The first failed remove or directory sync (files after a failed one stay).
    pub fn run(self) -> io::Result<()> {
        self.remove(false)
    }

    /// Removes the files a step at a time (for a thread of its own): each is first renamed
    /// out of the way (durably, so a crash mid-way never shows a file cut short), then cut
    /// down `PACED_STEP_BYTES` at a time with a pause between steps, then removed.
    ///
    /// # Errors
    /// As `run`, and a failed rename or cut.
    pub fn run_paced(self) -> io::Result<()> {
        self.remove(true)
    }

    fn remove(self, paced: bool) -> io::Result<()> {
        if self.paths.is_empty() {
            return Ok(());
        }
        let mut paths = self.paths.clone();
        if paced {
            for path in &mut paths {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let removing = self.dir.join(format!("{REMOVING_PREFIX}{name}"));
                self.disk.rename(path, &removing)?;
                *path = removing;
            }
            self.disk.sync_dir(&self.dir)?;
            for path in &paths {
                let mut length = self.disk.len(path)?;
                let mut file = self.disk.open(path)?;
                while length > PACED_STEP_BYTES {
                    length -= PACED_STEP_BYTES;
                    file.set_len(length)?;
                    std::thread::sleep(PACED_PAUSE);
                }
            }
        }
        for path in &paths {
            self.disk.remove(path)?;
        }
        self.disk.sync_dir(&self.dir)
    }
}
