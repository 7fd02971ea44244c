//! Guards against data-model bugs a client sees in Stats and error codes: a wrong zxid, time or
//! version in a Stat, a parent's cversion/pzxid not moved by a child's create or delete, reserved
//! znodes that differ from ZooKeeper's or can be deleted, bad paths or oversize data accepted,
//! and a failed write that changes anything.
//!
//! Mirrors Apache ZooKeeper's ClientTest, StatTest, GetAllChildrenNumberTest and
//! GetEphemeralsTest. Every expected Stat was observed on ZooKeeper 3.8.0 (Java client), where
//! a fresh server's first session is zxid 1 and the first write zxid 2. One difference is by
//! design (docs/design.md): a failed write here is answered without a Txn, so it uses no zxid,
//! where ZooKeeper logs an error Txn; zxids after a failure are asserted against the server's
//! last zxid, never as ZooKeeper's numbers.

use zookeeper_core::*;

mod common;
use common::{open, server as start, snapshot, T0};

/// A Stat built field by field, so a failing assert shows which field differs.
#[allow(clippy::too_many_arguments)]
fn stat(
    czxid: i64,
    mzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    ephemeral_owner: i64,
    data_length: i32,
    num_children: i32,
    pzxid: i64,
) -> Stat {
    Stat {
        czxid,
        mzxid,
        ctime,
        mtime,
        version,
        cversion,
        aversion,
        ephemeral_owner,
        data_length,
        num_children,
        pzxid,
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorCode {
    result.expect_err("the call should fail").code()
}

#[test]
fn fresh_server_has_zookeepers_reserved_znodes() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();

    // ZooKeeper 3.8.0 on an empty dataDir: zxids and times 0; the client's cversion is
    // 2 * creates - children, and the reserved children were added without a create, hence -1/-2.
    let (data, root) = zk.get_data("/", None).unwrap();
    assert_eq!(data, Some(b"".to_vec()));
    assert_eq!(root, stat(0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0));
    assert_eq!(
        zk.get_children2("/", None).unwrap(),
        (vec!["zookeeper".to_string()], root)
    );
    assert_eq!(zk.get_acl("/").unwrap(), (open(), root));

    let (data, zookeeper) = zk.get_data("/zookeeper", None).unwrap();
    assert_eq!(data, Some(b"".to_vec()));
    assert_eq!(zookeeper, stat(0, 0, 0, 0, 0, -2, 0, 0, 0, 2, 0));
    assert_eq!(
        zk.get_children2("/zookeeper", None).unwrap(),
        (vec!["config".to_string(), "quota".to_string()], zookeeper)
    );
    assert_eq!(zk.get_acl("/zookeeper").unwrap(), (open(), zookeeper));

    let (data, quota) = zk.get_data("/zookeeper/quota", None).unwrap();
    assert_eq!(data, Some(b"".to_vec()));
    assert_eq!(quota, stat(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    assert_eq!(
        zk.get_children("/zookeeper/quota", None).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(zk.get_acl("/zookeeper/quota").unwrap(), (open(), quota));

    // The config znode is read-only for everyone; its ACL was set with version -1.
    let (data, config) = zk.get_data("/zookeeper/config", None).unwrap();
    assert_eq!(data, Some(b"".to_vec()));
    assert_eq!(config, stat(0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0));
    assert_eq!(
        zk.get_children("/zookeeper/config", None).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        zk.get_acl("/zookeeper/config").unwrap(),
        (Acl::read_unsafe(), config)
    );

    assert_eq!(zk.get_all_children_number("/").unwrap(), 3);
    assert_eq!(zk.get_all_children_number("/zookeeper").unwrap(), 2);
    assert_eq!(zk.get_all_children_number("/zookeeper/quota").unwrap(), 0);
}

#[test]
fn reserved_znodes_cannot_be_deleted_or_recreated() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    let paths = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];
    let before = snapshot(&server, &zk, &paths);
    for path in paths {
        assert_eq!(
            code(zk.delete(path, -1)),
            ErrorCode::BadArguments,
            "delete {path}"
        );
    }
    assert_eq!(
        code(zk.create("/", b"", &open(), CreateMode::Persistent)),
        ErrorCode::NodeExists
    );
    assert_eq!(
        code(zk.create("/zookeeper", b"", &open(), CreateMode::Persistent)),
        ErrorCode::NodeExists
    );
    assert_eq!(
        code(zk.set_data("/zookeeper/config", b"x", -1)),
        ErrorCode::NoAuth
    );
    assert_eq!(before, snapshot(&server, &zk, &paths));

    // Only deletion is refused: ZooKeeper lets /zookeeper's data change and children be added.
    let changed = zk.set_data("/zookeeper", b"z", -1).unwrap();
    assert_eq!(changed, stat(0, 3, 0, T0, 1, -2, 0, 0, 1, 2, 0));
    assert_eq!(
        zk.create("/zookeeper/x", b"", &open(), CreateMode::Persistent)
            .unwrap(),
        "/zookeeper/x"
    );
    assert_eq!(
        zk.exists("/zookeeper", None).unwrap(),
        Some(stat(0, 3, 0, T0, 1, -1, 0, 0, 1, 3, 4))
    );
}

#[test]
fn create_gives_an_exact_stat_and_moves_the_parent() {
    let (server, clock) = start();
    let zk = server.connect().unwrap();
    clock.advance(1_000);

    let (path, created) = zk
        .create2("/a", b"hello", &open(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(path, "/a");
    let expected = stat(3, 3, T0 + 1_000, T0 + 1_000, 0, 0, 0, 0, 5, 0, 3);
    assert_eq!(created, expected);
    assert_eq!(zk.exists("/a", None).unwrap(), Some(expected));
    assert_eq!(
        zk.get_data("/a", None).unwrap(),
        (Some(b"hello".to_vec()), expected)
    );
    assert_eq!(zk.get_children2("/a", None).unwrap(), (vec![], expected));
    assert_eq!(server.engine().last_zxid(), 3);

    // The root gained a created child: creates 1, children 2, so the client's cversion is 0.
    assert_eq!(
        zk.exists("/", None).unwrap(),
        Some(stat(0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3))
    );
    assert_eq!(zk.get_children("/", None).unwrap(), vec!["a", "zookeeper"]);
    assert_eq!(
        zk.create("/plain", b"", &open(), CreateMode::Persistent)
            .unwrap(),
        "/plain"
    );
    assert_eq!(zk.get_all_children_number("/").unwrap(), 5);
}

#[test]
fn child_create_and_delete_move_parent_cversion_and_pzxid() {
    let (server, clock) = start();
    let zk = server.connect().unwrap();
    zk.create("/a", b"abc", &open(), CreateMode::Persistent)
        .unwrap(); // zxid 3
    let parent = |cversion, num_children, pzxid| {
        stat(3, 3, T0, T0, 0, cversion, 0, 0, 3, num_children, pzxid)
    };

    clock.advance(10);
    let (_, child) = zk
        .create2("/a/b", b"", &open(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(child, stat(4, 4, T0 + 10, T0 + 10, 0, 0, 0, 0, 0, 0, 4));
    assert_eq!(child.czxid, zk.exists("/a", None).unwrap().unwrap().pzxid);
    assert_eq!(zk.exists("/a", None).unwrap(), Some(parent(1, 1, 4)));

    // ZooKeeper 3.8 reports cversion as 2 * creates - children: a delete moves it too, and
    // the parent's pzxid becomes the delete's zxid; its mzxid and mtime stay.
    zk.delete("/a/b", 0).unwrap();
    assert_eq!(server.engine().last_zxid(), 5);
    assert_eq!(zk.exists("/a", None).unwrap(), Some(parent(2, 0, 5)));

    zk.create("/a/c", b"", &open(), CreateMode::Persistent)
        .unwrap(); // zxid 6
    assert_eq!(zk.exists("/a", None).unwrap(), Some(parent(3, 1, 6)));
    zk.create("/a/d", b"", &open(), CreateMode::Persistent)
        .unwrap(); // zxid 7
    assert_eq!(
        zk.get_children2("/a", None).unwrap(),
        (vec!["c".to_string(), "d".to_string()], parent(4, 2, 7))
    );
    assert_eq!(zk.get_all_children_number("/a").unwrap(), 2);
    zk.delete("/a/c", -1).unwrap(); // zxid 8
    zk.delete("/a/d", -1).unwrap(); // zxid 9
    assert_eq!(zk.exists("/a", None).unwrap(), Some(parent(6, 0, 9)));

    // The sequence suffix counts creates (3 so far), not the client's cversion (6).
    assert_eq!(
        zk.create("/a/s-", b"", &open(), CreateMode::PersistentSequential)
            .unwrap(),
        "/a/s-0000000003"
    );
    assert_eq!(zk.exists("/a", None).unwrap(), Some(parent(7, 1, 10)));
}

#[test]
fn set_data_versions_and_bad_version() {
    let (server, clock) = start();
    let zk = server.connect().unwrap();
    zk.create("/a", b"hello", &open(), CreateMode::Persistent)
        .unwrap(); // zxid 3
    zk.create("/a/b", b"", &open(), CreateMode::Persistent)
        .unwrap(); // zxid 4

    clock.advance(50);
    let changed = zk.set_data("/a", b"world!", 0).unwrap();
    assert_eq!(changed, stat(3, 5, T0, T0 + 50, 1, 1, 0, 0, 6, 1, 4));
    assert_eq!(
        zk.get_data("/a", None).unwrap(),
        (Some(b"world!".to_vec()), changed)
    );

    let before = snapshot(&server, &zk, &["/", "/a", "/a/b"]);
    clock.advance(50);
    assert_eq!(code(zk.set_data("/a", b"x", 0)), ErrorCode::BadVersion);
    assert_eq!(code(zk.set_data("/a", b"x", 2)), ErrorCode::BadVersion);
    assert_eq!(code(zk.set_data("/missing", b"x", -1)), ErrorCode::NoNode);
    assert_eq!(before, snapshot(&server, &zk, &["/", "/a", "/a/b"]));

    let any = zk.set_data("/a", b"xyz", -1).unwrap();
    assert_eq!(any.mzxid, server.engine().last_zxid());
    assert!(any.mzxid > changed.mzxid);
    assert_eq!(any, stat(3, any.mzxid, T0, T0 + 100, 2, 1, 0, 0, 3, 1, 4));
    let empty = zk.set_data("/a", b"", 2).unwrap();
    assert_eq!((empty.version, empty.data_length), (3, 0));
    assert_eq!(zk.get_data("/a", None).unwrap(), (Some(Vec::new()), empty));

    // check: the version test without a change.
    assert_eq!(zk.check("/a", 3).unwrap(), empty);
    assert_eq!(zk.check("/a", -1).unwrap(), empty);
    assert_eq!(code(zk.check("/a", 2)), ErrorCode::BadVersion);
    assert_eq!(code(zk.check("/missing", -1)), ErrorCode::NoNode);
    assert_eq!(zk.get_data("/a", None).unwrap(), (Some(Vec::new()), empty));
}

#[test]
fn delete_errors_change_nothing() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    zk.create("/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    zk.create("/a/b", b"", &open(), CreateMode::Persistent)
        .unwrap();
    zk.set_data("/a/b", b"1", -1).unwrap();
    let paths = ["/", "/a", "/a/b"];
    let before = snapshot(&server, &zk, &paths);

    assert_eq!(code(zk.delete("/a", -1)), ErrorCode::NotEmpty);
    assert_eq!(code(zk.delete("/a/b", 0)), ErrorCode::BadVersion);
    assert_eq!(code(zk.delete("/a/b", 5)), ErrorCode::BadVersion);
    assert_eq!(code(zk.delete("/missing", -1)), ErrorCode::NoNode);
    assert_eq!(code(zk.delete("/missing/child", -1)), ErrorCode::NoNode);
    assert_eq!(before, snapshot(&server, &zk, &paths));

    zk.delete("/a/b", 1).unwrap();
    assert_eq!(zk.exists("/a/b", None).unwrap(), None);
    assert_eq!(code(zk.get_data("/a/b", None)), ErrorCode::NoNode);
    assert_eq!(code(zk.delete("/a/b", -1)), ErrorCode::NoNode);
    zk.delete("/a", 0).unwrap();
    assert_eq!(zk.get_children("/", None).unwrap(), vec!["zookeeper"]);
}

#[test]
fn create_errors_change_nothing() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    zk.create("/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let paths = ["/", "/a"];
    let before = snapshot(&server, &zk, &paths);

    assert_eq!(
        code(zk.create("/x/y", b"", &open(), CreateMode::Persistent)),
        ErrorCode::NoNode
    );
    assert_eq!(
        code(zk.create("/a", b"", &open(), CreateMode::Persistent)),
        ErrorCode::NodeExists
    );
    assert_eq!(
        code(zk.create("/a", b"", &open(), CreateMode::Ephemeral)),
        ErrorCode::NodeExists
    );
    assert_eq!(
        code(zk.create("/", b"", &open(), CreateMode::Persistent)),
        ErrorCode::NodeExists
    );
    assert_eq!(before, snapshot(&server, &zk, &paths));
}

#[test]
fn reads_of_missing_znodes() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    assert_eq!(zk.exists("/missing", None).unwrap(), None);
    assert_eq!(code(zk.get_data("/missing", None)), ErrorCode::NoNode);
    assert_eq!(code(zk.get_children("/missing", None)), ErrorCode::NoNode);
    assert_eq!(code(zk.get_children2("/missing", None)), ErrorCode::NoNode);
    assert_eq!(code(zk.get_acl("/missing")), ErrorCode::NoNode);
    assert_eq!(
        code(zk.get_all_children_number("/missing")),
        ErrorCode::NoNode
    );
}

#[test]
fn invalid_paths_are_bad_arguments_and_change_nothing() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    zk.create("/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let before = snapshot(&server, &zk, &["/", "/a"]);
    // Every rule of ZooKeeper's PathUtils.validatePath: absolute, no empty, "." or ".."
    // component, no trailing slash, no NUL, control, DEL..0x9f, surrogate or specials chars
    // (an emoji is a surrogate pair in Java's UTF-16).
    let invalid = [
        "",
        "a",
        "a/b",
        "/a/",
        "//a",
        "/a//b",
        "/.",
        "/..",
        "/a/.",
        "/a/./b",
        "/a/../b",
        "/a\u{0}b",
        "/\u{1}",
        "/\u{1f}",
        "/\u{7f}",
        "/\u{9f}",
        "/\u{d7ff}x\u{e000}",
        "/\u{f8ff}",
        "/\u{fff0}",
        "/\u{ffff}",
        "/😀",
    ];
    for path in invalid {
        assert_eq!(
            code(zk.create(path, b"", &open(), CreateMode::Persistent)),
            ErrorCode::BadArguments,
            "create {path:?}"
        );
        assert_eq!(
            code(zk.create2(path, b"", &open(), CreateMode::Ephemeral)),
            ErrorCode::BadArguments,
            "create2 {path:?}"
        );
        assert_eq!(
            code(zk.delete(path, -1)),
            ErrorCode::BadArguments,
            "delete {path:?}"
        );
        assert_eq!(
            code(zk.set_data(path, b"", -1)),
            ErrorCode::BadArguments,
            "setData {path:?}"
        );
        assert_eq!(
            code(zk.get_data(path, None)),
            ErrorCode::BadArguments,
            "getData {path:?}"
        );
        assert_eq!(
            code(zk.exists(path, None)),
            ErrorCode::BadArguments,
            "exists {path:?}"
        );
        assert_eq!(
            code(zk.get_children(path, None)),
            ErrorCode::BadArguments,
            "getChildren {path:?}"
        );
        assert_eq!(
            code(zk.check(path, -1)),
            ErrorCode::BadArguments,
            "check {path:?}"
        );
    }
    assert_eq!(before, snapshot(&server, &zk, &["/", "/a"]));

    // Near misses that are valid names.
    for path in [
        "/a/.b",
        "/a/..b",
        "/a/...",
        "/a/b.",
        "/a/\u{a0}",
        "/a/\u{d7ff}",
        "/a/\u{f900}",
    ] {
        assert_eq!(
            zk.create(path, b"", &open(), CreateMode::Persistent)
                .unwrap(),
            path
        );
    }
}

#[test]
fn oversize_data_is_bad_arguments() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    let limit = 1_048_575;
    zk.create("/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let before = snapshot(&server, &zk, &["/", "/a"]);
    let too_big = vec![7u8; limit + 1];
    assert_eq!(
        code(zk.create("/big", &too_big, &open(), CreateMode::Persistent)),
        ErrorCode::BadArguments
    );
    assert_eq!(
        code(zk.set_data("/a", &too_big, -1)),
        ErrorCode::BadArguments
    );
    assert_eq!(before, snapshot(&server, &zk, &["/", "/a"]));

    let (_, created) = zk
        .create2("/big", &too_big[..limit], &open(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(created.data_length, limit as i32);
    assert_eq!(
        zk.set_data("/a", &too_big[..limit], -1)
            .unwrap()
            .data_length,
        limit as i32
    );
    assert_eq!(
        zk.get_data("/a", None).unwrap().0.map(|data| data.len()),
        Some(limit)
    );
}

#[test]
fn data_bytes_max_is_configurable() {
    let (config, _clock) = ServerConfig::with_manual_clock();
    let server = Server::start(ServerConfig {
        data_bytes_max: 10,
        ..config
    })
    .unwrap();
    let zk = server.connect().unwrap();
    assert_eq!(
        code(zk.create("/a", &[1; 11], &open(), CreateMode::Persistent)),
        ErrorCode::BadArguments
    );
    assert_eq!(zk.exists("/a", None).unwrap(), None);
    assert_eq!(
        zk.create2("/a", &[1; 10], &open(), CreateMode::Persistent)
            .unwrap()
            .1
            .data_length,
        10
    );
    assert_eq!(
        code(zk.set_data("/a", &[2; 11], -1)),
        ErrorCode::BadArguments
    );
    assert_eq!(zk.get_data("/a", None).unwrap().0, Some(vec![1; 10]));
    assert_eq!(
        code(zk.multi(vec![Op::set_data("/a", &[2; 11], -1)])),
        ErrorCode::BadArguments
    );
    assert_eq!(zk.set_data("/a", &[], -1).unwrap().data_length, 0);
}

#[test]
fn get_ephemerals_filters_by_string_prefix() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    zk.create("/e1", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    zk.create("/eph", b"", &open(), CreateMode::Persistent)
        .unwrap();
    zk.create("/eph/b", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    zk.create("/eph/a", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    zk.create("/other", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    other
        .create("/eph/theirs", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    let all = vec!["/e1", "/eph/a", "/eph/b", "/other"];

    // ZooKeeper returns them in hash order; this client promises sorted paths.
    assert_eq!(zk.get_ephemerals("/").unwrap(), all);
    // A prefix is a plain string prefix, not a path: "/e" matches "/e1" and "/eph/...".
    assert_eq!(
        zk.get_ephemerals("/e").unwrap(),
        vec!["/e1", "/eph/a", "/eph/b"]
    );
    assert_eq!(zk.get_ephemerals("/eph").unwrap(), vec!["/eph/a", "/eph/b"]);
    assert_eq!(zk.get_ephemerals("/nothing").unwrap(), Vec::<String>::new());
    assert_eq!(other.get_ephemerals("/").unwrap(), vec!["/eph/theirs"]);

    zk.delete("/eph/a", -1).unwrap();
    assert_eq!(zk.get_ephemerals("/eph").unwrap(), vec!["/eph/b"]);
    let fresh = server.connect().unwrap();
    assert_eq!(fresh.get_ephemerals("/").unwrap(), Vec::<String>::new());
}

#[test]
fn sync_echoes_the_path_and_changes_nothing() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    zk.create("/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let before = snapshot(&server, &zk, &["/", "/a"]);
    assert_eq!(zk.sync("/a").unwrap(), "/a");
    assert_eq!(zk.sync("/").unwrap(), "/");
    assert_eq!(before, snapshot(&server, &zk, &["/", "/a"]));
    assert_eq!(code(zk.sync("a")), ErrorCode::BadArguments);
}

#[test]
fn a_second_session_sees_every_write_at_once() {
    let (server, clock) = start();
    let writer = server.connect().unwrap(); // zxid 2
    let reader = server.connect().unwrap(); // zxid 3
    clock.advance(7);
    let (_, created) = writer
        .create2("/shared", b"v", &open(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(created, stat(4, 4, T0 + 7, T0 + 7, 0, 0, 0, 0, 1, 0, 4));
    assert_eq!(
        reader.get_data("/shared", None).unwrap(),
        (Some(b"v".to_vec()), created)
    );
    let changed = reader.set_data("/shared", b"w", 0).unwrap();
    assert_eq!(writer.exists("/shared", None).unwrap(), Some(changed));
    assert_eq!(changed, stat(4, 5, T0 + 7, T0 + 7, 1, 0, 0, 0, 1, 0, 4));
}
