//! Guards against create-mode bugs: an ephemeral that outlives its session or accepts
//! children, a sequence suffix taken from the wrong counter or formatted wrongly, a container
//! reaped too early (never had children) or never, and a TTL znode reaped while young, while it
//! has children, or not at all, or TTLs ZooKeeper refuses being accepted.
//!
//! Mirrors Apache ZooKeeper's CreateModeTest, SequenceTest (ClientTest's sequential parts),
//! CreateContainerTest and CreateTTLTest. Expected answers were observed on ZooKeeper 3.8.0
//! (Java client, `-Dzookeeper.extendedTypesEnabled=true`), including that ZooKeeper shows
//! ephemeralOwner 0 for containers and TTL znodes (DataNode.getClientEphemeralOwner).
//!
//! Not covered: the suffix after the parent's cversion passes i32::MAX ("-2147483648" with
//! `%010d`); reaching it takes 2^31 creates, far beyond a fast test.

use std::time::Duration;

use zookeeper_core::proto::TTL_MS_MAX;
use zookeeper_core::*;

mod common;
use common::{open, server as start, T0};

/// A server whose reaper runs on every tick that follows a clock move.
fn start_reaping_every_ms() -> (Server, ManualClock) {
    let (config, clock) = ServerConfig::with_manual_clock();
    (
        Server::start(ServerConfig {
            container_check_interval_ms: 1,
            ..config
        })
        .unwrap(),
        clock,
    )
}

fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorCode {
    result.expect_err("the call should fail").code()
}

/// A Stat of a childless znode created by zxid at time, never modified.
fn new_stat(zxid: i64, time: i64, ephemeral_owner: i64, data_length: i32) -> Stat {
    Stat {
        czxid: zxid,
        mzxid: zxid,
        ctime: time,
        mtime: time,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner,
        data_length,
        num_children: 0,
        pzxid: zxid,
    }
}

fn expect_event(
    events: &crossbeam_channel::Receiver<WatchedEvent>,
    event_type: EventType,
    path: &str,
) {
    let event = events
        .recv_timeout(Duration::from_secs(5))
        .expect("a watch event");
    assert_eq!(
        (event.event_type, event.state, event.path.as_str()),
        (event_type, KeeperState::SyncConnected, path)
    );
}

#[test]
fn ephemeral_is_owned_by_its_session_and_dies_with_it() {
    let (server, clock) = start();
    let owner = server.connect().unwrap(); // zxid 2
    let observer = server.connect().unwrap(); // zxid 3
    clock.advance(5);
    let (path, created) = owner
        .create2("/eph", b"d", &open(), CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(path, "/eph");
    assert_eq!(created, new_stat(4, T0 + 5, owner.session_id(), 1));
    assert_ne!(owner.session_id(), observer.session_id());
    assert_eq!(observer.exists("/eph", None).unwrap(), Some(created));
    assert_eq!(owner.get_ephemerals("/").unwrap(), vec!["/eph"]);
    assert_eq!(observer.get_ephemerals("/").unwrap(), Vec::<String>::new());

    // Ephemerals cannot have children, in any mode; nothing changes.
    for mode in [
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::PersistentSequential,
        CreateMode::Container,
    ] {
        assert_eq!(
            code(owner.create("/eph/c", b"", &open(), mode)),
            ErrorCode::NoChildrenForEphemerals,
            "{mode:?}"
        );
        assert_eq!(
            code(observer.create("/eph/c", b"", &open(), mode)),
            ErrorCode::NoChildrenForEphemerals,
            "{mode:?}"
        );
    }
    assert_eq!(observer.exists("/eph", None).unwrap(), Some(created));
    assert_eq!(server.engine().last_zxid(), 4);

    let (watcher, events) = Watcher::channel();
    assert_eq!(
        observer.exists("/eph", Some(watcher)).unwrap(),
        Some(created)
    );
    owner.close().unwrap();
    expect_event(&events, EventType::NodeDeleted, "/eph");
    assert_eq!(observer.exists("/eph", None).unwrap(), None);
    assert_eq!(observer.get_children("/", None).unwrap(), vec!["zookeeper"]);
}

#[test]
fn sequential_suffix_counts_the_parents_creates() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    // The root's reserved child was not created, so the first root sequence number is 0.
    assert_eq!(
        zk.create("/s-", b"", &open(), CreateMode::PersistentSequential)
            .unwrap(),
        "/s-0000000000"
    );

    zk.create("/q", b"", &open(), CreateMode::Persistent)
        .unwrap();
    // A sequential path may end in "/": the suffix is the whole name.
    assert_eq!(
        zk.create("/q/", b"", &open(), CreateMode::PersistentSequential)
            .unwrap(),
        "/q/0000000000"
    );
    assert_eq!(
        zk.create("/q/n-", b"", &open(), CreateMode::PersistentSequential)
            .unwrap(),
        "/q/n-0000000001"
    );
    // A plain create still counts.
    assert_eq!(
        zk.create("/q/plain", b"", &open(), CreateMode::Persistent)
            .unwrap(),
        "/q/plain"
    );
    let (path, stat) = zk
        .create2("/q/e-", b"", &open(), CreateMode::EphemeralSequential)
        .unwrap();
    assert_eq!(path, "/q/e-0000000003");
    assert_eq!(stat.ephemeral_owner, zk.session_id());
    assert_eq!(zk.get_ephemerals("/q").unwrap(), vec!["/q/e-0000000003"]);

    // Deletes do not give numbers back.
    zk.delete("/q/n-0000000001", -1).unwrap();
    assert_eq!(
        zk.create("/q/n-", b"", &open(), CreateMode::PersistentSequential)
            .unwrap(),
        "/q/n-0000000004"
    );
    assert_eq!(
        zk.get_children("/q", None).unwrap(),
        vec!["0000000000", "e-0000000003", "n-0000000004", "plain"]
    );
    // 5 creates and 4 children: the client's cversion is 6, yet the next suffix is 5.
    let parent = zk.exists("/q", None).unwrap().unwrap();
    assert_eq!((parent.cversion, parent.num_children), (6, 4));
    assert_eq!(
        zk.create("/q/n-", b"", &open(), CreateMode::PersistentSequential)
            .unwrap(),
        "/q/n-0000000005"
    );

    // Each parent counts for itself; the same prefix under another parent starts at 0.
    zk.create("/r", b"", &open(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(
        zk.create("/r/n-", b"", &open(), CreateMode::EphemeralSequential)
            .unwrap(),
        "/r/n-0000000000"
    );
    // A sequential create whose parent is missing fails; "/q/x/" names the missing "/q/x".
    assert_eq!(
        code(zk.create("/q/x/", b"", &open(), CreateMode::PersistentSequential)),
        ErrorCode::NoNode
    );
    assert_eq!(
        code(zk.create("/q//", b"", &open(), CreateMode::PersistentSequential)),
        ErrorCode::BadArguments
    );
}

#[test]
fn many_sequential_creates_keep_ten_digits() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    zk.create("/q", b"", &open(), CreateMode::Persistent)
        .unwrap();
    for expected in 0..120 {
        let path = zk
            .create("/q/n-", b"", &open(), CreateMode::PersistentSequential)
            .unwrap();
        assert_eq!(path, format!("/q/n-{expected:010}"));
        if expected % 3 == 0 {
            zk.delete(&path, -1).unwrap();
        }
    }
    assert_eq!(zk.get_children("/q", None).unwrap().len(), 80);
    assert_eq!(zk.get_children("/q", None).unwrap()[0], "n-0000000001");
}

#[test]
fn container_is_reaped_after_its_last_child_goes() {
    let (server, clock) = start();
    let zk = server.connect().unwrap(); // zxid 2
    let interval = server.engine().config().container_check_interval_ms;
    let (path, created) = zk.create_container("/c", b"", &open()).unwrap();
    assert_eq!(path, "/c");
    // ZooKeeper hides the container marker: clients see ephemeralOwner 0.
    assert_eq!(created, new_stat(3, T0, 0, 0));
    zk.create("/c/x", b"", &open(), CreateMode::Persistent)
        .unwrap();
    zk.create("/c/y", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(zk.get_ephemerals("/").unwrap(), vec!["/c/y"]);

    // Not reaped while it has children.
    clock.advance(interval);
    server.tick();
    assert_eq!(zk.get_children("/c", None).unwrap(), vec!["x", "y"]);

    zk.delete("/c/x", -1).unwrap();
    zk.delete("/c/y", -1).unwrap();
    let (watcher, events) = Watcher::channel();
    let stat = zk.exists("/c", Some(watcher)).unwrap().unwrap();
    assert_eq!((stat.cversion, stat.num_children), (4, 0));
    // Not before the check interval has passed.
    server.tick();
    assert!(events.try_recv().is_err());
    assert!(zk.exists("/c", None).unwrap().is_some());

    clock.advance(interval);
    server.tick();
    expect_event(&events, EventType::NodeDeleted, "/c");
    assert_eq!(zk.exists("/c", None).unwrap(), None);
    assert_eq!(zk.get_children("/", None).unwrap(), vec!["zookeeper"]);
}

#[test]
fn container_that_never_had_children_is_kept() {
    let (server, clock) = start_reaping_every_ms();
    let zk = server.connect().unwrap();
    let (_, created) = zk.create_container("/c2", b"data", &open()).unwrap();
    assert_eq!(created, new_stat(3, T0, 0, 4));
    for _ in 0..3 {
        clock.advance(120_000);
        server.tick();
    }
    assert_eq!(zk.exists("/c2", None).unwrap(), Some(created));

    // A container's data can change; only its children decide its life.
    zk.set_data("/c2", b"", -1).unwrap();
    zk.create("/c2/k", b"", &open(), CreateMode::Persistent)
        .unwrap();
    clock.advance(1);
    server.tick();
    assert!(zk.exists("/c2", None).unwrap().is_some());
    zk.delete("/c2/k", -1).unwrap();
    clock.advance(1);
    server.tick();
    assert_eq!(zk.exists("/c2", None).unwrap(), None);
}

#[test]
fn ttl_znode_is_reaped_once_unmodified_for_longer_than_its_ttl() {
    let (server, clock) = start_reaping_every_ms();
    let zk = server.connect().unwrap(); // zxid 2
    let (path, created) = zk
        .create_ttl("/t", b"v", &open(), CreateMode::PersistentWithTtl, 500)
        .unwrap();
    assert_eq!(path, "/t");
    // ZooKeeper hides the TTL encoding: clients see ephemeralOwner 0.
    assert_eq!(created, new_stat(3, T0, 0, 1));
    let (watcher, events) = Watcher::channel();
    zk.get_data("/t", Some(watcher)).unwrap();

    // Reaped only once now - mtime > ttl.
    clock.advance(500);
    server.tick();
    assert_eq!(zk.exists("/t", None).unwrap(), Some(created));

    // setData moves mtime and so pushes the expiry back.
    let changed = zk.set_data("/t", b"w", -1).unwrap();
    assert_eq!((changed.mtime, changed.ephemeral_owner), (T0 + 500, 0));
    expect_event(&events, EventType::NodeDataChanged, "/t");
    let (watcher, events) = Watcher::channel();
    zk.exists("/t", Some(watcher)).unwrap();
    clock.advance(500);
    server.tick();
    assert_eq!(zk.exists("/t", None).unwrap(), Some(changed));
    assert!(events.try_recv().is_err());

    clock.advance(1);
    server.tick();
    expect_event(&events, EventType::NodeDeleted, "/t");
    assert_eq!(zk.exists("/t", None).unwrap(), None);
}

#[test]
fn ttl_znode_with_children_is_kept_until_they_go() {
    let (server, clock) = start_reaping_every_ms();
    let zk = server.connect().unwrap();
    zk.create_ttl("/tc", b"", &open(), CreateMode::PersistentWithTtl, 100)
        .unwrap();
    zk.create("/tc/k", b"", &open(), CreateMode::Persistent)
        .unwrap();
    clock.advance(1_000);
    server.tick();
    assert_eq!(zk.get_children("/tc", None).unwrap(), vec!["k"]);

    // A child's delete does not touch the parent's mtime: it is due at the next check.
    zk.delete("/tc/k", -1).unwrap();
    clock.advance(1);
    server.tick();
    assert_eq!(zk.exists("/tc", None).unwrap(), None);
}

#[test]
fn sequential_ttl_znode_gets_a_suffix() {
    let (server, clock) = start_reaping_every_ms();
    let zk = server.connect().unwrap();
    zk.create("/q", b"", &open(), CreateMode::Persistent)
        .unwrap(); // zxid 3
    let (path, created) = zk
        .create_ttl(
            "/q/ts-",
            b"",
            &open(),
            CreateMode::PersistentSequentialWithTtl,
            50,
        )
        .unwrap();
    assert_eq!(path, "/q/ts-0000000000");
    assert_eq!(created, new_stat(4, T0, 0, 0));
    let max = zk
        .create_ttl(
            "/q/max",
            b"",
            &open(),
            CreateMode::PersistentWithTtl,
            TTL_MS_MAX,
        )
        .unwrap();
    assert_eq!(max.1, new_stat(5, T0, 0, 0));
    clock.advance(51);
    server.tick();
    assert_eq!(zk.get_children("/q", None).unwrap(), vec!["max"]);
}

#[test]
fn invalid_ttls_are_bad_arguments() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    let before = (server.engine().last_zxid(), server.engine().znode_count());
    for ttl in [0, -1, -500, i64::MIN, TTL_MS_MAX + 1, i64::MAX] {
        for mode in [
            CreateMode::PersistentWithTtl,
            CreateMode::PersistentSequentialWithTtl,
        ] {
            assert_eq!(
                code(zk.create_ttl("/t", b"", &open(), mode, ttl)),
                ErrorCode::BadArguments,
                "{mode:?} {ttl}"
            );
        }
    }
    // A TTL with a mode that has none is refused too (the Java client: "ttl not valid for mode").
    for mode in [
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::Container,
    ] {
        assert_eq!(
            code(zk.create_ttl("/t", b"", &open(), mode, 100)),
            ErrorCode::BadArguments,
            "{mode:?}"
        );
    }
    assert_eq!(
        before,
        (server.engine().last_zxid(), server.engine().znode_count())
    );
    assert_eq!(zk.exists("/t", None).unwrap(), None);
}

#[test]
fn ttl_disabled_is_unimplemented() {
    let (config, _clock) = ServerConfig::with_manual_clock();
    let server = Server::start(ServerConfig {
        ttl_enabled: false,
        ..config
    })
    .unwrap();
    let zk = server.connect().unwrap();
    for mode in [
        CreateMode::PersistentWithTtl,
        CreateMode::PersistentSequentialWithTtl,
    ] {
        assert_eq!(
            code(zk.create_ttl("/t", b"", &open(), mode, 100)),
            ErrorCode::Unimplemented,
            "{mode:?}"
        );
    }
    assert_eq!(zk.get_children("/", None).unwrap(), vec!["zookeeper"]);
    // Containers do not depend on the setting.
    assert_eq!(zk.create_container("/c", b"", &open()).unwrap().0, "/c");
}

#[test]
fn ephemeral_sequential_dies_with_its_session() {
    let (server, _clock) = start();
    let owner = server.connect().unwrap();
    let observer = server.connect().unwrap();
    observer
        .create("/q", b"", &open(), CreateMode::Persistent)
        .unwrap();
    for expected in ["/q/m-0000000000", "/q/m-0000000001"] {
        assert_eq!(
            owner
                .create("/q/m-", b"", &open(), CreateMode::EphemeralSequential)
                .unwrap(),
            expected
        );
    }
    let (watcher, events) = Watcher::channel();
    observer.get_children("/q", Some(watcher)).unwrap();
    drop(owner);
    expect_event(&events, EventType::NodeChildrenChanged, "/q");
    assert_eq!(
        observer.get_children("/q", None).unwrap(),
        Vec::<String>::new()
    );
    let parent = observer.exists("/q", None).unwrap().unwrap();
    // Both deletes in the one closeSession Txn: 2 creates, 0 children.
    assert_eq!(
        (parent.cversion, parent.num_children, parent.pzxid),
        (4, 0, server.engine().last_zxid())
    );
    assert_eq!(
        observer
            .create("/q/m-", b"", &open(), CreateMode::PersistentSequential)
            .unwrap(),
        "/q/m-0000000002"
    );
}
