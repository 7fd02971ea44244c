//! Guards against the log forgetting what raft needs kept (a hard state lost to a reopen or a
//! purge, so a member could vote twice in one term), a follower's cut that keeps a conflicting
//! entry or misplaces the leader's, a reset after a snapshot that does not continue at the
//! snapshot's index, and an older data directory not coming back as entries of term 1.

use super::*;
use crate::txn::Proposal;

fn hard_state_bytes(state: HardState) -> u64 {
    encode_record(&LogRecord::HardState(state), 0)
        .unwrap()
        .len() as u64
}

#[test]
fn hard_states_survive_reopening_and_the_newest_wins() {
    let disk = FakeDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    // A member can vote before it holds any entry.
    log.set_hard_state(hard_state(1, 3, 0)).unwrap();
    log.sync().unwrap();
    let (reopened_log, contents) = open(&disk.crash(Crash::Clean)).unwrap();
    assert_eq!(contents.hard_state, Some(hard_state(1, 3, 0)));
    assert!(contents.entries.is_empty());
    assert_eq!(reopened_log.last_index(), 0);

    for index in 1..=20 {
        log.append(&entry(index)).unwrap();
        if index % 5 == 0 {
            log.set_hard_state(hard_state(1 + index / 10, 3, index - 2))
                .unwrap();
        }
    }
    log.sync().unwrap();
    assert!(
        segment_names(&disk).len() >= 3,
        "{:?}",
        segment_names(&disk)
    );
    let contents = reopened(&disk);
    assert_eq!(contents.entries, expected(1..=20));
    assert_eq!(contents.hard_state, Some(hard_state(3, 3, 18)));

    // Durable with the next sync, not before.
    log.set_hard_state(hard_state(4, 1, 18)).unwrap();
    assert_eq!(reopened(&disk).hard_state, Some(hard_state(3, 3, 18)));
    log.sync().unwrap();
    assert_eq!(reopened(&disk).hard_state, Some(hard_state(4, 1, 18)));

    // It stays the newest across segments rolled after it.
    for index in 21..=40 {
        log.append(&entry(index)).unwrap();
    }
    log.sync().unwrap();
    let contents = reopened(&disk);
    assert_eq!(contents.entries, expected(1..=40));
    assert_eq!(contents.hard_state, Some(hard_state(4, 1, 18)));
}

#[test]
fn a_hard_state_survives_purging_the_segments_it_was_written_in() {
    let disk = FakeDisk::new();
    let (mut log, _) = open(&disk).unwrap();
    log.set_hard_state(hard_state(2, 1, 0)).unwrap();
    for index in 1..=60 {
        log.append(&entry(index)).unwrap();
    }
    log.sync().unwrap();
    log.purge_through(50).unwrap();
    let names = segment_names(&disk);
    assert!(first_index_of(&names[0]) > 40, "{names:?}");
    let contents = reopened(&disk);
    assert_eq!(contents.entries, expected(first_index_of(&names[0])..=60));
    assert_eq!(contents.hard_state, Some(hard_state(2, 1, 0)));
}

#[test]
fn truncate_after_cuts_a_conflicting_suffix_inside_a_segment_and_across_segments() {
    const COUNT: u64 = 40;
    let disk = synced_log(COUNT);
    let segments = layout(&disk, COUNT);
    let names = segment_names(&disk);
    assert!(
        segments.len() >= 4 && segments[1].1.len() >= 3,
        "{segments:?}"
    );
    let (mut log, _) = open(&disk).unwrap();
    log.set_hard_state(hard_state(3, 2, 10)).unwrap();
    log.sync().unwrap();

    // Inside the second segment: the segments after it go, the newest replaced by one holding
    // only the hard state, which continues the log.
    let cut = segments[1].1[1].0;
    log.truncate_after(cut).unwrap();
    assert_eq!(log.last_index(), cut);
    assert_eq!(
        segment_names(&disk),
        [&names[..2], &[segment_name(cut + 1)]].concat()
    );
    assert_eq!(
        disk.read(&dir().join(segment_name(cut + 1))).unwrap().len() as u64,
        HEADER_BYTES + hard_state_bytes(hard_state(3, 2, 10))
    );
    let contents = reopened(&disk);
    assert_eq!(contents.entries, expected(1..=cut));
    assert_eq!(contents.hard_state, Some(hard_state(3, 2, 10)));

    // The leader's entries follow the cut, in a new term.
    let leaders: Vec<LogEntry> = (cut + 1..=cut + 12)
        .map(|index| entry_in(index, 7))
        .collect();
    for entry in &leaders {
        log.append(entry).unwrap();
    }
    log.sync().unwrap();
    let mut written = [expected(1..=cut), leaders].concat();
    let contents = reopened(&disk);
    assert_eq!(contents.entries, written);
    assert_eq!(contents.hard_state, Some(hard_state(3, 2, 10)));

    // At a segment boundary: the last segment's entries go, its name stays.
    let names = segment_names(&disk);
    let boundary = first_index_of(names.last().unwrap()) - 1;
    assert!(boundary > cut, "{names:?}");
    log.truncate_after(boundary).unwrap();
    assert_eq!(segment_names(&disk), names);
    written.truncate(boundary as usize);
    assert_eq!(reopened(&disk).entries, written);

    // At or past the end: nothing changes.
    log.truncate_after(boundary + 3).unwrap();
    assert_eq!(log.last_index(), boundary);
    log.append(&entry_in(boundary + 1, 8)).unwrap();
    log.sync().unwrap();
    written.push(entry_in(boundary + 1, 8));
    let contents = reopened(&disk);
    assert_eq!(contents.entries, written);
    assert_eq!(contents.hard_state, Some(hard_state(3, 2, 10)));
}

#[test]
fn reset_after_continues_after_the_snapshot_index_and_reopens() {
    let disk = synced_log(30);
    let (mut log, _) = open(&disk).unwrap();
    log.set_hard_state(hard_state(2, 1, 30)).unwrap();
    log.sync().unwrap();

    log.reset_after(40).unwrap();
    assert_eq!(log.last_index(), 40);
    assert_eq!(segment_names(&disk), ["log.0000000000000029"]);
    // Reopened before any entry follows: nothing held, the hard state kept, still at 40.
    let (reopened_log, contents) = open(&disk.crash(Crash::Clean)).unwrap();
    assert!(contents.entries.is_empty());
    assert_eq!(contents.hard_state, Some(hard_state(2, 1, 30)));
    assert_eq!(reopened_log.last_index(), 40);

    for index in 41..=45 {
        log.append(&entry(index)).unwrap();
    }
    log.set_hard_state(hard_state(3, 1, 44)).unwrap();
    log.sync().unwrap();
    let (reopened_log, contents) = open(&disk.crash(Crash::Clean)).unwrap();
    assert_eq!(contents.entries, expected(41..=45));
    assert_eq!(contents.hard_state, Some(hard_state(3, 1, 44)));
    assert_eq!(reopened_log.last_index(), 45);
    assert_eq!(segment_names(&disk)[0], "log.0000000000000029");

    // Without a hard state nothing is kept; the next entry names the next segment.
    let disk = synced_log(10);
    let (mut log, _) = open(&disk).unwrap();
    log.reset_after(20).unwrap();
    assert_eq!(log.last_index(), 20);
    assert!(segment_names(&disk).is_empty());
    log.append(&entry(21)).unwrap();
    log.sync().unwrap();
    assert_eq!(reopened(&disk).entries, expected([21]));
    assert_eq!(segment_names(&disk), ["log.0000000000000015"]);
}

/// Guards against a binary upgrade losing a format-2 data directory (null data kept apart from
/// empty): its pairs come back as normal entries of term 1 carrying the same Txns, and the log
/// never writes today's records under its header, even when a cut reaches into it.
#[test]
fn a_format_2_segment_comes_back_as_term_1_entries() {
    let set_data = |path: &str, data: Option<Vec<u8>>| Txn {
        time_ms: 1_700_000_000_000,
        op: TxnOp::SetData {
            path: path.into(),
            data,
            version: 3,
        },
    };
    let txns = [
        set_data("/null", None),
        set_data("/empty", Some(Vec::new())),
        set_data("/bytes", Some(vec![1, 2, 3])),
        Txn {
            time_ms: 9,
            op: TxnOp::Delete { path: "/a".into() },
        },
    ];
    let records: Vec<Vec<u8>> = txns
        .iter()
        .zip(1i64..)
        .map(|(txn, zxid)| raw_record(&postcard::to_allocvec(&(zxid, txn)).unwrap()))
        .collect();
    let disk = FakeDisk::new();
    write_segment(&disk, "log.0000000000000001", 2, &records);

    let legacy: Vec<LogEntry> = txns
        .iter()
        .zip(1i64..)
        .map(|(txn, zxid)| LogEntry::legacy(zxid, txn.clone()))
        .collect();
    let (mut log, contents) = open(&disk).unwrap();
    assert_eq!(contents.entries, legacy);
    assert_eq!(contents.hard_state, None);
    for (entry, txn) in contents.entries.iter().zip(&txns) {
        assert_eq!((entry.term, entry.kind), (1, EntryKind::Normal));
        let proposal = Proposal::decode(&entry.data).unwrap();
        assert_eq!((proposal.origin, &proposal.txn), (None, txn));
    }
    assert_eq!(log.last_index(), 4);

    log.truncate_after(2).unwrap();
    log.append(&entry_in(3, 2)).unwrap();
    log.sync().unwrap();
    drop(log);
    let contents = reopened(&disk);
    assert_eq!(
        contents.entries,
        [legacy[..2].to_vec(), vec![entry_in(3, 2)]].concat()
    );
    assert_eq!(
        segment_names(&disk),
        ["log.0000000000000001", "log.0000000000000003"]
    );
}
