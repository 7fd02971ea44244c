//! Guards against null znode data collapsing into empty data anywhere on its way: the client,
//! the wire, a multi, multiRead, the read cache, the log and snapshots. ZooKeeper answers
//! getData with null (length -1) for a znode created or set with null data, and with an empty
//! buffer for one created with empty data; `dataLength` is 0 for both.

mod common;

use std::sync::Arc;

use zookeeper_core::storage::{Disk, FakeDisk};
use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, Op, OpResult, ReadCacheConfig, ReadOp, ReadResult,
    Server, ServerConfig,
};

use common::{open, serve_tcp};

/// Writes null, empty and non-empty data every way a client can, and reads each back.
fn null_and_empty_stay_apart(zk: &Client) {
    let acl = open();
    zk.create("/null", None, &acl, CreateMode::Persistent)
        .unwrap();
    zk.create("/empty", b"", &acl, CreateMode::Persistent)
        .unwrap();
    let (data, stat) = zk.get_data("/null", None).unwrap();
    assert_eq!((data, stat.data_length), (None, 0));
    let (data, stat) = zk.get_data("/empty", None).unwrap();
    assert_eq!((data, stat.data_length), (Some(vec![]), 0));

    // setData to null and back, as ZooKeeper's SetDataRequest allows.
    let stat = zk.set_data("/empty", None, 0).unwrap();
    assert_eq!((stat.version, stat.data_length), (1, 0));
    assert_eq!(zk.get_data("/empty", None).unwrap().0, None);
    zk.set_data("/null", b"x", -1).unwrap();
    assert_eq!(zk.get_data("/null", None).unwrap().0, Some(b"x".to_vec()));
    zk.set_data("/null", None, -1).unwrap();

    // A multi creates and sets null too; multiRead answers null.
    let results = zk
        .multi(vec![
            Op::create("/m", None, &acl, CreateMode::Persistent),
            Op::create("/m/e", b"", &acl, CreateMode::Persistent),
            Op::set_data("/m/e", None, 0),
        ])
        .unwrap();
    assert!(matches!(results[2], OpResult::SetData(_)), "{results:?}");
    let reads = zk
        .multi_read(vec![
            ReadOp::GetData { path: "/m".into() },
            ReadOp::GetData {
                path: "/m/e".into(),
            },
            ReadOp::GetData {
                path: "/null".into(),
            },
        ])
        .unwrap();
    let data: Vec<Option<Vec<u8>>> = reads
        .into_iter()
        .map(|read| match read {
            ReadResult::Data { data, .. } => data,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(data, [None, None, None]);
}

#[test]
fn null_data_reads_back_null_in_process() {
    let (server, _clock) = common::server();
    null_and_empty_stay_apart(&server.connect().unwrap());
}

#[test]
fn null_data_reads_back_null_over_tcp() {
    let (server, _clock) = common::server();
    let net = serve_tcp(&server);
    let zk = Client::connect(&net.local_address().to_string(), ConnectOptions::default()).unwrap();
    null_and_empty_stay_apart(&zk);
}

#[test]
fn the_read_cache_keeps_null_apart_from_empty() {
    let (server, _clock) = common::server();
    let writer = server.connect().unwrap();
    writer
        .create("/n", None, &open(), CreateMode::Persistent)
        .unwrap();
    writer
        .create("/e", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let cached = server
        .connect_with(ConnectOptions {
            read_cache: Some(ReadCacheConfig::default()),
            ..ConnectOptions::default()
        })
        .unwrap();
    for _ in 0..2 {
        assert_eq!(cached.get_data("/n", None).unwrap().0, None);
        assert_eq!(cached.get_data("/e", None).unwrap().0, Some(vec![]));
    }
    assert_eq!(cached.read_cache_stats().unwrap().hits, 2);
}

/// Null data is written to the log, then into a snapshot, and survives both replays.
#[test]
fn null_data_survives_the_log_and_snapshots() {
    let disk = Arc::new(FakeDisk::new());
    let config = || {
        let (config, _clock) = ServerConfig::with_manual_clock();
        ServerConfig {
            data_dir: Some("/data".into()),
            disk: disk.clone(),
            snap_count: 3,
            ..config
        }
    };
    let acl: Vec<Acl> = open();
    {
        let server = Server::start(config()).unwrap();
        let zk = server.connect().unwrap();
        zk.create("/logged", None, &acl, CreateMode::Persistent)
            .unwrap();
        zk.create("/empty", b"", &acl, CreateMode::Persistent)
            .unwrap();
    }
    {
        // Replayed from the log; then enough writes for a snapshot at the next tick.
        let server = Server::start(config()).unwrap();
        let zk = server.connect().unwrap();
        assert_eq!(zk.get_data("/logged", None).unwrap().0, None);
        for index in 0..4 {
            zk.create(&format!("/s{index}"), None, &acl, CreateMode::Persistent)
                .unwrap();
        }
        server.tick();
    }
    let snapshots = disk
        .list(std::path::Path::new("/data"))
        .unwrap()
        .into_iter()
        .filter(|name| name.starts_with("snapshot."))
        .count();
    assert!(snapshots > 0, "a snapshot was written");
    let server = Server::start(config()).unwrap();
    let zk = server.connect().unwrap();
    for path in ["/logged", "/s0", "/s3"] {
        assert_eq!(zk.get_data(path, None).unwrap().0, None, "{path}");
    }
    assert_eq!(zk.get_data("/empty", None).unwrap().0, Some(vec![]));
}
