//! Guards against start-up guessing past damage a crash cannot explain (a flipped bit in an
//! older log segment or in the only snapshot the log needs), and against refusing a damaged
//! newest snapshot when an older one plus the log still hold everything.

use std::path::Path;

use zookeeper_core::storage::{Disk, FileLog, LogOptions, SnapshotStore};

use super::*;

/// A data directory as a long-running server leaves it: the log in many small segments and
/// snapshots at several zxids (a zxid is a log index). Returns the disk, the open log (for
/// purging), the snapshot zxids (oldest first) and the tree every layout of it must recover.
fn long_running_layout() -> (FakeDisk, FileLog, Vec<i64>, State) {
    let (fake, server, work) = plain_workload(7, 30);
    let expected = read_state(&work.owner);
    let image = fake.crash(Crash::Clean);
    drop(work);
    drop(server);

    let dir = Path::new("/data");
    let (_, contents) = FileLog::open(Arc::new(image.clone()), dir, LogOptions::default()).unwrap();
    let laid = FakeDisk::new();
    let small = LogOptions {
        segment_bytes_max: 200,
        preallocate_bytes: 0,
    };
    let (mut log, _) = FileLog::open(Arc::new(laid.clone()), dir, small).unwrap();
    // The hard state first, so that every segment opens with it as a server's segments do.
    let hard_state = contents.hard_state.expect("a server writes its hard state");
    log.set_hard_state(hard_state).unwrap();
    for entry in &contents.entries {
        log.append(entry).unwrap();
    }
    log.sync().unwrap();
    let snapshots = SnapshotStore::open(Arc::new(laid.clone()), dir).unwrap();
    let mut zxids = Vec::new();
    for file in SnapshotStore::open(Arc::new(image), dir)
        .unwrap()
        .load()
        .unwrap()
    {
        snapshots.write(file.zxid, &file.payload.unwrap()).unwrap();
        zxids.push(file.zxid);
    }
    zxids.sort_unstable();
    assert!(zxids.len() >= 2, "snapshots {zxids:?}");
    let segments = segments(&laid);
    assert!(segments.len() >= 4, "segments {segments:?}");
    (laid, log, zxids, expected)
}

fn segments(disk: &FakeDisk) -> Vec<String> {
    let names = disk.list(Path::new("/data")).unwrap();
    names
        .into_iter()
        .filter(|name| name.starts_with("log."))
        .collect()
}

/// Restarts on a clean crash image of `disk` and checks the tree.
fn recovers(disk: &FakeDisk, expected: &State, label: &str) {
    let (started, _clock) = restart(&disk.crash(Crash::Clean));
    let server = started.unwrap_or_else(|error| panic!("{label}: start-up failed: {error}"));
    let found = read_state(&server.connect().unwrap());
    if let Some(why) = model::mismatch(&found, expected) {
        panic!("{label}: {why}");
    }
}

fn start_error(disk: &FakeDisk) -> String {
    match restart(&disk.crash(Crash::Clean)).0 {
        Ok(_) => panic!("started on damage a crash cannot explain"),
        Err(error) => error,
    }
}

#[test]
fn a_flipped_bit_in_an_older_log_segment_stops_start_up_naming_file_and_offset() {
    let (disk, _log, _, expected) = long_running_layout();
    recovers(&disk, &expected, "the undamaged layout");
    let segments = segments(&disk);
    let victim = Path::new("/data").join(&segments[segments.len() / 2]);
    let length = disk.read(&victim).unwrap().len();
    disk.flip_bit(&victim, length / 2);
    let error = start_error(&disk);
    assert!(
        error.contains(&victim.display().to_string()) && error.contains("offset"),
        "{error}"
    );
}

#[test]
fn a_flipped_bit_in_the_only_snapshot_the_log_needs_stops_start_up_naming_it() {
    let (disk, mut log, zxids, expected) = long_running_layout();
    let newest = *zxids.last().unwrap();
    let snapshots = SnapshotStore::open(Arc::new(disk.clone()), "/data").unwrap();
    assert_eq!(snapshots.purge(1).unwrap(), Some(newest));
    log.purge_through(newest as u64).unwrap();
    assert!(
        !segments(&disk).contains(&"log.0000000000000001".to_string()),
        "the log still starts at zxid 1: {:?}",
        segments(&disk)
    );
    recovers(&disk, &expected, "the purged layout");
    let victim = snapshots.path_of(newest);
    let length = disk.read(&victim).unwrap().len();
    disk.flip_bit(&victim, length / 2);
    let error = start_error(&disk);
    assert!(error.contains(&victim.display().to_string()), "{error}");
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one_the_log_still_continues() {
    let (disk, mut log, zxids, expected) = long_running_layout();
    let (older, newest) = (zxids[zxids.len() - 2], zxids[zxids.len() - 1]);
    log.purge_through(older as u64).unwrap();
    assert!(
        !segments(&disk).contains(&"log.0000000000000001".to_string()),
        "the log still starts at zxid 1: {:?}",
        segments(&disk)
    );
    let victim = SnapshotStore::open(Arc::new(disk.clone()), "/data")
        .unwrap()
        .path_of(newest);
    let length = disk.read(&victim).unwrap().len();
    disk.flip_bit(&victim, length / 2);
    recovers(&disk, &expected, "a damaged newest snapshot");
}
