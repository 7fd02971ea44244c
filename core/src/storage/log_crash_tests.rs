//! Guards against a crash at any disk operation losing an acknowledged entry or the newest
//! hard state, or leaving a stale entry behind a newer one: after every operation of a
//! scripted run (appends, syncs, hard states, purges, cuts, resets) both images a crash could
//! leave are opened, checked against what the log had promised, and continued.

use std::io;

use parking_lot::Mutex;

use super::*;

/// What a crash at one moment may leave behind.
#[derive(Clone, Debug, Default)]
struct Expect {
    /// The versions of the log the disk may hold (one, or the log before and after a cut):
    /// the recovered entries are a run of one of them.
    versions: Vec<Vec<LogEntry>>,
    /// Entries through this index were acknowledged (synced) and not cut off since.
    acknowledged: u64,
    /// Entries through this index may be gone (purged, or reset after a snapshot).
    purged_through: u64,
    /// The hard state acknowledged, then each one written since: a crash leaves one of them.
    hard_states: Vec<Option<HardState>>,
}

/// A crash image and what recovering from it must find.
struct Moment {
    disk: FakeDisk,
    crash: Crash,
    expect: Expect,
}

/// Records, after every disk operation, both images a crash at that moment could leave, with
/// what the log had promised by then.
#[derive(Clone)]
struct RecordingDisk {
    inner: FakeDisk,
    moments: Arc<Mutex<Vec<Moment>>>,
    expect: Arc<Mutex<Expect>>,
}

impl RecordingDisk {
    fn record(&self) {
        let expect = self.expect.lock().clone();
        let mut moments = self.moments.lock();
        for crash in [Crash::Clean, Crash::TearLastWrite] {
            moments.push(Moment {
                disk: self.inner.crash(crash),
                crash,
                expect: expect.clone(),
            });
        }
    }

    fn after<T>(&self, result: io::Result<T>) -> io::Result<T> {
        self.record();
        result
    }
}

struct RecordingFile {
    inner: Box<dyn DiskFile>,
    disk: RecordingDisk,
}

impl DiskFile for RecordingFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let result = self.inner.write_at(offset, bytes);
        self.disk.after(result)
    }

    fn sync(&mut self) -> io::Result<()> {
        let result = self.inner.sync();
        self.disk.after(result)
    }

    fn set_len(&mut self, length: u64) -> io::Result<()> {
        let result = self.inner.set_len(length);
        self.disk.after(result)
    }
}

impl Disk for RecordingDisk {
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
        let inner = self.after(self.inner.open(path))?;
        Ok(Box::new(RecordingFile {
            inner,
            disk: self.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.after(self.inner.rename(from, to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.after(self.inner.remove(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.after(self.inner.sync_dir(dir))
    }
}

/// Drives a log on a `RecordingDisk`, publishing before each call what a crash during it may
/// leave, and afterwards what the call promised.
struct Driver {
    log: FileLog,
    disk: RecordingDisk,
    /// The entries written and not cut off, oldest first.
    written: Vec<LogEntry>,
    expect: Expect,
}

impl Driver {
    fn new() -> Driver {
        let disk = RecordingDisk {
            inner: FakeDisk::new(),
            moments: Arc::default(),
            expect: Arc::default(),
        };
        let expect = Expect {
            versions: vec![Vec::new()],
            hard_states: vec![None],
            ..Expect::default()
        };
        *disk.expect.lock() = expect.clone();
        disk.record();
        let (log, _) = FileLog::open(Arc::new(disk.clone()), dir(), small()).unwrap();
        Driver {
            log,
            disk,
            written: Vec::new(),
            expect,
        }
    }

    fn publish(&self) {
        *self.disk.expect.lock() = self.expect.clone();
    }

    fn append(&mut self, entry: LogEntry) {
        self.written.push(entry.clone());
        self.expect.versions = vec![self.written.clone()];
        self.publish();
        self.log.append(&entry).unwrap();
        self.disk.record();
    }

    fn sync(&mut self) {
        self.log.sync().unwrap();
        self.expect.acknowledged = self.written.last().map_or(0, |entry| entry.index);
        let newest = *self.expect.hard_states.last().unwrap();
        self.expect.hard_states = vec![newest];
        self.publish();
        self.disk.record();
    }

    fn set_hard_state(&mut self, state: HardState) {
        self.expect.hard_states.push(Some(state));
        self.publish();
        self.log.set_hard_state(state).unwrap();
        self.disk.record();
    }

    fn purge_through(&mut self, index: u64) {
        self.expect.purged_through = index;
        self.publish();
        self.log.purge_through(index).unwrap();
        self.disk.record();
    }

    fn truncate_after(&mut self, index: u64) {
        // Until the cut is durable a crash may leave the log as it was, or any prefix of it
        // that keeps every acknowledged entry not cut off; afterwards only the cut log.
        self.expect.acknowledged = self.expect.acknowledged.min(index);
        self.publish();
        self.log.truncate_after(index).unwrap();
        self.written.retain(|entry| entry.index <= index);
        self.expect.versions = vec![self.written.clone()];
        self.publish();
        self.disk.record();
    }

    fn reset_after(&mut self, index: u64) {
        // Every entry may go: the caller holds a snapshot through `index`.
        self.expect.acknowledged = 0;
        self.expect.purged_through = u64::MAX - 1;
        self.publish();
        self.log.reset_after(index).unwrap();
        self.written.clear();
        self.expect.versions = vec![Vec::new()];
        self.expect.purged_through = index;
        self.publish();
        self.disk.record();
    }

    /// Every moment recorded, for `check`.
    fn finish(self) -> Vec<Moment> {
        drop(self.log);
        std::mem::take(&mut *self.disk.moments.lock())
    }
}

/// Opens the log on a moment's image: it must hold a run of one version of the log that keeps
/// every acknowledged entry, and a hard state the log had promised or written since; and it
/// must take new entries after what it recovered and keep them.
fn check(number: usize, moment: &Moment) {
    let expect = &moment.expect;
    let context = format!(
        "moment {number} ({:?}, acknowledged {}, purged through {})",
        moment.crash, expect.acknowledged, expect.purged_through
    );
    let (mut log, contents) =
        open(&moment.disk).unwrap_or_else(|error| panic!("{context}: open failed: {error}"));
    let entries = contents.entries;
    let last = entries.last().map_or(0, |entry| entry.index);
    assert!(
        last >= expect.acknowledged,
        "{context}: lost entries after {last}"
    );
    if let Some(first) = entries.first() {
        assert!(
            first.index <= expect.purged_through + 1,
            "{context}: starts at {}",
            first.index
        );
        assert_eq!(log.last_index(), last, "{context}");
    }
    assert!(
        expect.versions.iter().any(|version| entries.is_empty()
            || version.windows(entries.len()).any(|run| run == entries)),
        "{context}: {entries:?} is no run of {:?}",
        expect.versions
    );
    assert!(
        expect.hard_states.contains(&contents.hard_state),
        "{context}: hard state {:?} is none of {:?}",
        contents.hard_state,
        expect.hard_states
    );

    let next = log.last_index() + 1;
    let added: Vec<LogEntry> = (next..next + 3)
        .map(|index| entry_in(index, 1000))
        .collect();
    for entry in &added {
        log.append(entry).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let (_, contents_after) = open(&moment.disk.crash(Crash::Clean))
        .unwrap_or_else(|error| panic!("{context}: reopen failed: {error}"));
    assert_eq!(
        contents_after.entries,
        [entries, added].concat(),
        "{context}"
    );
    assert_eq!(contents_after.hard_state, contents.hard_state, "{context}");
}

#[test]
fn a_crash_at_any_disk_operation_loses_no_acknowledged_entry() {
    let mut driver = Driver::new();
    // Hard states only early on: the purges remove the segments that hold them.
    driver.set_hard_state(hard_state(1, 1, 0));
    let mut purged = Vec::new();
    for index in 1..=60 {
        let segments = segment_names(&driver.disk.inner).len();
        driver.append(entry(index));
        let rolled = segment_names(&driver.disk.inner).len() > segments;
        if index == 30 {
            driver.purge_through(20);
            purged.push(index);
        }
        if rolled && index >= 45 && purged.len() == 1 {
            // Everything but the segment just started, before it is synced.
            driver.purge_through(index - 1);
            assert_eq!(segment_names(&driver.disk.inner).len(), 1);
            purged.push(index);
        }
        if index % 3 == 0 || index % 7 == 0 {
            driver.sync();
        }
        if index == 10 {
            driver.set_hard_state(hard_state(2, 1, 9));
        }
    }
    assert_eq!(purged.len(), 2, "{purged:?}");
    let moments = driver.finish();
    assert!(moments.len() > 200, "{} moments", moments.len());
    for (number, moment) in moments.iter().enumerate() {
        check(number, moment);
    }
}

#[test]
fn a_crash_at_any_disk_operation_while_cutting_leaves_no_stale_entry_and_loses_nothing_acknowledged(
) {
    let mut driver = Driver::new();
    driver.set_hard_state(hard_state(1, 1, 0));
    driver.sync();
    for index in 1..=30 {
        driver.append(entry_in(index, 1));
        if index % 10 == 0 {
            driver.set_hard_state(hard_state(1, 1, 8));
            driver.sync();
        }
    }
    // A new leader's term, recorded after the entries it will cut off.
    driver.set_hard_state(hard_state(2, 2, 8));
    driver.sync();
    let segments_before = segment_names(&driver.disk.inner).len();

    // Across whole segments and into one.
    driver.truncate_after(12);
    let segments_after = segment_names(&driver.disk.inner).len();
    assert!(segments_after + 2 <= segments_before, "{segments_after}");
    for index in 13..=24 {
        driver.append(entry_in(index, 2));
        if index == 16 {
            driver.sync();
            driver.set_hard_state(hard_state(2, 2, 14));
        }
    }
    // Inside a segment, among entries not yet synced (17 and 18 stay).
    driver.truncate_after(18);
    driver.set_hard_state(hard_state(3, 4, 16));
    for index in 19..=30 {
        driver.append(entry_in(index, 3));
    }
    driver.sync();

    // At a segment boundary: the last segment's entries go, its name stays.
    let names = segment_names(&driver.disk.inner);
    let first_of_last = first_index_of(names.last().unwrap());
    assert!(first_of_last > 19, "{names:?}");
    driver.truncate_after(first_of_last - 1);
    assert_eq!(segment_names(&driver.disk.inner), names);
    for index in first_of_last..=first_of_last + 3 {
        driver.append(entry_in(index, 4));
    }
    driver.set_hard_state(hard_state(4, 4, 20));
    driver.sync();

    let written = driver.written.clone();
    let disk = driver.disk.inner.clone();
    let moments = driver.finish();
    let contents = reopened(&disk);
    let mut expected_end: Vec<LogEntry> = (1..=12).map(|index| entry_in(index, 1)).collect();
    expected_end.extend((13..=18).map(|index| entry_in(index, 2)));
    expected_end.extend((19..first_of_last).map(|index| entry_in(index, 3)));
    expected_end.extend((first_of_last..=first_of_last + 3).map(|index| entry_in(index, 4)));
    assert_eq!(written, expected_end);
    assert_eq!(contents.entries, expected_end);
    assert_eq!(contents.hard_state, Some(hard_state(4, 4, 20)));

    assert!(moments.len() > 300, "{} moments", moments.len());
    for (number, moment) in moments.iter().enumerate() {
        check(number, moment);
    }
}

#[test]
fn a_crash_at_any_disk_operation_while_resetting_keeps_the_hard_state() {
    let mut driver = Driver::new();
    driver.set_hard_state(hard_state(1, 1, 0));
    for index in 1..=25 {
        driver.append(entry(index));
        if index % 6 == 0 {
            driver.sync();
        }
    }
    driver.set_hard_state(hard_state(2, 3, 20));
    driver.sync();
    driver.reset_after(40);
    for index in 41..=44 {
        driver.append(entry(index));
        driver.sync();
    }
    driver.set_hard_state(hard_state(3, 3, 42));
    driver.sync();

    let disk = driver.disk.inner.clone();
    let moments = driver.finish();
    let contents = reopened(&disk);
    assert_eq!(contents.entries, expected(41..=44));
    assert_eq!(contents.hard_state, Some(hard_state(3, 3, 42)));
    for (number, moment) in moments.iter().enumerate() {
        check(number, moment);
    }
}
