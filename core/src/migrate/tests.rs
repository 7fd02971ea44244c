//! Guards the converter against bad input: truncated or corrupt ZooKeeper files must give an
//! error naming the offset, never a panic, and a whole round trip must keep every field.

use super::jute::{adler32, JuteWriter};
use super::zk_log::{read_log, ZkTxn, LOG_MAGIC};
use super::zk_snapshot::{read_snapshot, write_snapshot, ZkSnapshot};
use super::*;
use crate::proto::Acl;
use crate::tree::{DataTree, ZnodeImage};

fn image(path: &str, data: Option<&[u8]>, acl: u32, owner: i64) -> ZnodeImage {
    ZnodeImage {
        path: path.into(),
        data: data.map(<[u8]>::to_vec),
        acl,
        czxid: 0x1_0000_0002,
        mzxid: 0x1_0000_0003,
        pzxid: 0x1_0000_0004,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        ephemeral_owner: owner,
        version: 3,
        cversion: 0,
        aversion: 1,
    }
}

fn sample_snapshot() -> ZkSnapshot {
    let digest = vec![Acl::new(
        crate::proto::Perms(31),
        crate::proto::Id::new("digest", "user:hash="),
    )];
    ZkSnapshot {
        sessions: vec![(0x100_0000_0001, 30_000)],
        acls: vec![Acl::open_unsafe(), digest],
        znodes: vec![
            image("/", Some(b""), 0, 0),
            image("/zookeeper", Some(b""), 0, 0),
            image("/zookeeper/quota", Some(b""), 0, 0),
            image("/a", None, 1, 0),
            image("/a/e", Some(b"x"), 0, 0x100_0000_0001),
            image("/c", Some(b"container"), 0, i64::MIN),
            image("/t", Some(b"ttl"), 0, crate::tree::ttl_owner(5000)),
        ],
        digest_zxid: None,
    }
}

#[test]
fn a_written_snapshot_reads_back_the_same() {
    let snapshot = sample_snapshot();
    let bytes = write_snapshot(&snapshot);
    let read = read_snapshot(&bytes, &mut |_| {}).unwrap();
    assert_eq!(read.sessions, snapshot.sessions);
    assert_eq!(read.acls, snapshot.acls);
    assert_eq!(read.znodes, snapshot.znodes);
    let tree = DataTree::from_images(0x1_0000_0004, &read.acls, &[], &read.znodes);
    // The session of /a/e is not listed: the tree still indexes the ephemeral.
    assert!(tree.is_ok(), "{tree:?}");
}

#[test]
fn every_truncation_and_bit_flip_of_a_snapshot_is_an_error_not_a_panic() {
    let bytes = write_snapshot(&sample_snapshot());
    for length in 0..bytes.len() {
        assert!(
            read_snapshot(&bytes[..length], &mut |_| {}).is_err(),
            "{length}"
        );
    }
    for position in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x10;
        // The checksum catches what the structure does not.
        assert!(read_snapshot(&damaged, &mut |_| {}).is_err(), "{position}");
    }
}

fn log_bytes(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut writer = JuteWriter::default();
    writer.write_i32(LOG_MAGIC);
    writer.write_i32(2);
    writer.write_i64(0);
    for entry in entries {
        writer.write_i64(i64::from(adler32(entry)));
        writer.write_buffer(Some(entry));
        writer.bytes.push(b'B');
    }
    writer.bytes.extend_from_slice(&[0; 64]);
    writer.bytes
}

fn create_entry(zxid: i64, path: &str) -> Vec<u8> {
    let mut writer = JuteWriter::default();
    writer.write_i64(7);
    writer.write_i32(1);
    writer.write_i64(zxid);
    writer.write_i64(1_700_000_000_000);
    writer.write_i32(1);
    writer.write_string(path);
    writer.write_buffer(None);
    writer.write_acl(&Acl::open_unsafe());
    writer.bytes.push(0);
    writer.write_i32(1);
    writer.bytes
}

#[test]
fn a_log_reads_to_its_zeros_and_reports_a_torn_record() {
    let bytes = log_bytes(&[
        create_entry(0x1_0000_0001, "/a"),
        create_entry(0x1_0000_0002, "/b"),
    ]);
    let file = read_log(&bytes).unwrap();
    assert_eq!(file.records.len(), 2);
    assert!(file.damage.is_none());
    assert!(matches!(&file.records[1].txn, ZkTxn::Create { path, .. } if path == "/b"));
    let second = file.records[1].offset as usize;
    for length in 16..bytes.len() - 64 {
        let file = read_log(&bytes[..length]).unwrap();
        if length < second + 12 {
            assert!(file.records.len() <= 1, "{length}");
        }
        if length > 16 && length != second && length != bytes.len() - 64 {
            let torn = file.records.len() < 2 || file.damage.is_some();
            assert!(torn || length >= second + 12, "{length}");
        }
    }
    for position in 16..bytes.len() - 64 {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x01;
        let file = read_log(&damaged).unwrap();
        assert!(
            file.damage.is_some() || file.records.len() < 2,
            "{position}"
        );
    }
}

#[test]
fn import_refuses_a_non_empty_target_and_export_round_trips() {
    let scratch = std::env::temp_dir().join(format!("zkrs-migrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let zookeeper = scratch.join("zk/version-2");
    std::fs::create_dir_all(&zookeeper).unwrap();
    let mut snapshot = sample_snapshot();
    snapshot.znodes.retain(|znode| znode.path != "/a/e");
    snapshot.sessions.clear();
    std::fs::write(
        zookeeper.join("snapshot.100000004"),
        write_snapshot(&snapshot),
    )
    .unwrap();
    std::fs::write(
        zookeeper.join("log.100000005"),
        log_bytes(&[create_entry(0x1_0000_0005, "/d")]),
    )
    .unwrap();
    let ours = scratch.join("ours");
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::write(ours.join("keep"), b"x").unwrap();
    let options = ImportOptions::default();
    assert!(matches!(
        import(&scratch.join("zk"), &ours, &options, &mut |_| {}),
        Err(MigrateError::TargetNotEmpty { .. })
    ));
    std::fs::remove_file(ours.join("keep")).unwrap();
    let summary = import(&scratch.join("zk"), &ours, &options, &mut |_| {}).unwrap();
    assert_eq!(summary.last_zxid, 0x1_0000_0005);
    assert_eq!(summary.transactions, 1);

    let back = scratch.join("back");
    let exported = export(&ours, &back, &mut |_| {}).unwrap();
    assert_eq!(exported.last_zxid, 0x1_0000_0005);
    let bytes = std::fs::read(back.join("version-2/snapshot.100000005")).unwrap();
    let read = read_snapshot(&bytes, &mut |_| {}).unwrap();
    let paths: Vec<_> = read
        .znodes
        .iter()
        .map(|znode| znode.path.as_str())
        .collect();
    assert!(paths.contains(&"/d") && paths.contains(&"/t") && paths.contains(&"/a"));
    let a = read.znodes.iter().find(|znode| znode.path == "/a").unwrap();
    assert_eq!(a.data, None);
    assert_eq!(read.acls[a.acl as usize], snapshot.acls[1]);
    // The sample, like a 3.4 snapshot, has no /zookeeper/config: the import adds ours.
    let config = read
        .znodes
        .iter()
        .find(|znode| znode.path == "/zookeeper/config");
    assert!(config.is_some_and(|znode| znode.aversion == -1));
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn zookeeper_passwords_are_what_apache_gives() {
    // Session 0x100000a5b2e0000's password as Apache ZooKeeper 3.8 handed it to kazoo is
    // checked end to end in tests/python/test_migrate.py; here, that it is deterministic
    // and differs per session.
    assert_eq!(zookeeper_password(1), zookeeper_password(1));
    assert_ne!(zookeeper_password(1), zookeeper_password(2));
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one_or_is_named() {
    let scratch =
        std::env::temp_dir().join(format!("zkrs-migrate-fallback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let zookeeper = scratch.join("zk/version-2");
    std::fs::create_dir_all(&zookeeper).unwrap();
    let mut snapshot = sample_snapshot();
    snapshot.znodes.retain(|znode| znode.path != "/a/e");
    snapshot.sessions.clear();
    let mut damaged = write_snapshot(&snapshot);
    damaged[40] ^= 0xFF;
    std::fs::write(zookeeper.join("snapshot.100000006"), &damaged).unwrap();
    let options = ImportOptions::default();

    // Alone, the damaged snapshot is named with its offset: nothing else holds the data.
    let error = import(
        &scratch.join("zk"),
        &scratch.join("a"),
        &options,
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("snapshot.100000006") && error.contains("at byte"),
        "{error}"
    );

    // With an older snapshot and the log since, the import passes it over and says so.
    std::fs::write(
        zookeeper.join("snapshot.100000004"),
        write_snapshot(&snapshot),
    )
    .unwrap();
    std::fs::write(
        zookeeper.join("log.100000005"),
        log_bytes(&[
            create_entry(0x1_0000_0005, "/d"),
            create_entry(0x1_0000_0006, "/e"),
        ]),
    )
    .unwrap();
    let summary = import(
        &scratch.join("zk"),
        &scratch.join("b"),
        &options,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(summary.last_zxid, 0x1_0000_0006);
    assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);

    // A log that skips a zxid is a gap, named with the file.
    std::fs::write(
        zookeeper.join("log.100000005"),
        log_bytes(&[create_entry(0x1_0000_0007, "/d")]),
    )
    .unwrap();
    let error = import(
        &scratch.join("zk"),
        &scratch.join("c"),
        &options,
        &mut |_| {},
    );
    assert!(matches!(error, Err(MigrateError::Gap { .. })), "{error:?}");
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn every_truncation_of_a_log_imports_or_names_the_file() {
    let scratch = std::env::temp_dir().join(format!("zkrs-migrate-torn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let zookeeper = scratch.join("zk/version-2");
    std::fs::create_dir_all(&zookeeper).unwrap();
    let bytes = log_bytes(&[
        create_entry(0x1_0000_0001, "/a"),
        create_entry(0x1_0000_0002, "/b"),
    ]);
    let written = bytes.len() - 64;
    for (round, length) in (16..=written).enumerate() {
        std::fs::write(zookeeper.join("log.100000001"), &bytes[..length]).unwrap();
        let target = scratch.join(format!("out-{round}"));
        match import(
            &scratch.join("zk"),
            &target,
            &ImportOptions::default(),
            &mut |_| {},
        ) {
            Ok(summary) => assert!(summary.last_zxid <= 0x1_0000_0002),
            Err(MigrateError::Corrupt { file, .. }) => {
                assert!(file.ends_with("log.100000001"));
                let cut = ImportOptions {
                    stop_at_last_valid: true,
                    ..ImportOptions::default()
                };
                let again = scratch.join(format!("cut-{round}"));
                import(&scratch.join("zk"), &again, &cut, &mut |_| {}).unwrap();
            }
            Err(other) => panic!("{length}: {other}"),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn the_digest_trailer_and_compressed_streams_are_read() {
    use super::zk_snapshot::{decompress, Compression};
    use std::io::Write;

    // 3.6+: a digest (zxid, version 2, digest) and a second seal follow the first.
    let mut writer = JuteWriter {
        bytes: write_snapshot(&sample_snapshot()),
    };
    writer.write_i64(0x1_0000_0004);
    writer.write_i32(2);
    writer.write_i64(0x1234);
    let checksum = adler32(&writer.bytes);
    writer.write_i64(i64::from(checksum));
    writer.write_string("/");
    let plain = writer.bytes;
    let read = read_snapshot(&plain, &mut |_| {}).unwrap();
    assert_eq!(read.digest_zxid, Some(0x1_0000_0004));

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&plain).unwrap();
    let gzip = gzip.finish().unwrap();
    assert_eq!(decompress(&gzip, Compression::Gzip).unwrap(), plain);
    assert!(decompress(&gzip[..gzip.len() / 2], Compression::Gzip).is_err());

    // snappy-java's stream: magic, version 1, compatible version 1, then sized raw blocks.
    let mut snappy = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for block in plain.chunks(100) {
        let compressed = snap::raw::Encoder::new().compress_vec(block).unwrap();
        snappy.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
        snappy.extend_from_slice(&compressed);
    }
    assert_eq!(decompress(&snappy, Compression::Snappy).unwrap(), plain);
    for length in 0..snappy.len() {
        let _ = decompress(&snappy[..length], Compression::Snappy);
    }
    assert!(decompress(&snappy[..snappy.len() - 1], Compression::Snappy).is_err());
}
