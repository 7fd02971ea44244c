//! Guards against one-shot watches that fire the wrong event, fire twice, fire for changes they
//! do not cover, fire out of order, or stay silent (ZooKeeper's WatcherTest and friends).
//!
//! Expected behaviour was checked against Apache ZooKeeper 3.8.0 with its Java client; event
//! zxids follow ZooKeeper 3.9 (the zxid of the change that fired the watch).

mod common;

use common::{assert_quiet, create, expect, next, node, seen, server, sorted, Recorder};
use zookeeper_core::{
    Acl, CreateMode, ErrorCode, EventType, KeeperState, Op, WatchedEvent, Watcher,
};

use EventType::{NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted};

#[test]
fn data_watch_fires_node_data_changed_with_the_change_zxid() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/a");
    let (watcher, events) = Watcher::channel();
    zk.get_data("/a", Some(watcher)).unwrap();

    let stat = zk.set_data("/a", b"1", -1).unwrap();

    let event = next(&events);
    assert_eq!(event, node(NodeDataChanged, "/a", stat.mzxid));
    assert_eq!(event.state, KeeperState::SyncConnected);
    assert_quiet(&events);
}

#[test]
fn exists_watch_on_a_missing_znode_fires_node_created() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    assert_eq!(zk.exists("/a", Some(watcher)).unwrap(), None);

    let stat = create(&zk, "/a");

    expect(&events, NodeCreated, "/a", stat.czxid);
    assert_quiet(&events);
}

#[test]
fn exists_watch_on_an_existing_znode_fires_data_changed_then_deleted() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/a");
    let (watcher, events) = Watcher::channel();

    assert!(zk.exists("/a", Some(watcher.clone())).unwrap().is_some());
    let stat = zk.set_data("/a", b"1", -1).unwrap();
    expect(&events, NodeDataChanged, "/a", stat.mzxid);

    zk.exists("/a", Some(watcher)).unwrap();
    zk.delete("/a", -1).unwrap();
    let root = zk.exists("/", None).unwrap().unwrap();
    expect(&events, NodeDeleted, "/a", root.pzxid);
    assert_quiet(&events);
}

#[test]
fn child_watch_fires_only_for_its_own_children() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/p");
    let (watcher, events) = Watcher::channel();
    zk.get_children("/p", Some(watcher.clone())).unwrap();

    // The parent's data is not its children.
    zk.set_data("/p", b"1", -1).unwrap();
    assert_quiet(&events);
    let child = create(&zk, "/p/c");
    expect(&events, NodeChildrenChanged, "/p", child.czxid);

    zk.get_children("/p", Some(watcher)).unwrap();
    // A child's data and grandchildren are not the parent's children.
    zk.set_data("/p/c", b"1", -1).unwrap();
    create(&zk, "/p/c/g");
    zk.delete("/p/c/g", -1).unwrap();
    assert_quiet(&events);
    zk.delete("/p/c", -1).unwrap();
    let parent = zk.exists("/p", None).unwrap().unwrap();
    expect(&events, NodeChildrenChanged, "/p", parent.pzxid);
    assert_quiet(&events);
}

#[test]
fn data_watch_ignores_child_changes() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/p");
    let (watcher, events) = Watcher::channel();
    zk.get_data("/p", Some(watcher)).unwrap();

    create(&zk, "/p/c");
    zk.delete("/p/c", -1).unwrap();
    assert_quiet(&events);

    let stat = zk.set_data("/p", b"1", -1).unwrap();
    expect(&events, NodeDataChanged, "/p", stat.mzxid);
}

#[test]
fn sequential_create_fires_the_parents_child_watch() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/q");
    let (watcher, events) = Watcher::channel();
    zk.get_children("/q", Some(watcher.clone())).unwrap();

    let (path, stat) = zk
        .create2(
            "/q/item-",
            b"",
            &Acl::open_unsafe(),
            CreateMode::PersistentSequential,
        )
        .unwrap();
    assert_eq!(path, "/q/item-0000000000");
    expect(&events, NodeChildrenChanged, "/q", stat.czxid);

    zk.exists(&path, Some(watcher)).unwrap();
    zk.delete(&path, -1).unwrap();
    let parent = zk.exists("/q", None).unwrap().unwrap();
    expect(&events, NodeDeleted, &path, parent.pzxid);
}

#[test]
fn a_one_shot_watch_fires_once_then_is_gone() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/a");
    let (data_watcher, data_events) = Watcher::channel();
    let (child_watcher, child_events) = Watcher::channel();
    let (exists_watcher, exists_events) = Watcher::channel();
    zk.get_data("/a", Some(data_watcher)).unwrap();
    zk.get_children("/a", Some(child_watcher)).unwrap();
    zk.exists("/b", Some(exists_watcher)).unwrap();

    let first = zk.set_data("/a", b"1", -1).unwrap();
    zk.set_data("/a", b"2", -1).unwrap();
    let child = create(&zk, "/a/c1");
    create(&zk, "/a/c2");
    let created = create(&zk, "/b");
    zk.delete("/b", -1).unwrap();
    create(&zk, "/b");

    expect(&data_events, NodeDataChanged, "/a", first.mzxid);
    expect(&child_events, NodeChildrenChanged, "/a", child.czxid);
    expect(&exists_events, NodeCreated, "/b", created.czxid);
    assert_quiet(&data_events);
    assert_quiet(&child_events);
    assert_quiet(&exists_events);
}

#[test]
fn one_watcher_set_by_get_data_and_exists_fires_once() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/a");
    let (watcher, events) = Watcher::channel();
    zk.get_data("/a", Some(watcher.clone())).unwrap();
    zk.exists("/a", Some(watcher.clone())).unwrap();
    zk.get_data("/a", Some(watcher)).unwrap();

    let stat = zk.set_data("/a", b"1", -1).unwrap();
    zk.set_data("/a", b"2", -1).unwrap();

    expect(&events, NodeDataChanged, "/a", stat.mzxid);
    assert_quiet(&events);
}

#[test]
fn two_watchers_on_one_path_both_fire_once() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    create(&zk, "/a");
    let recorder = Recorder::new();
    zk.get_data("/a", Some(recorder.watcher("get_data")))
        .unwrap();
    zk.exists("/a", Some(recorder.watcher("exists"))).unwrap();

    let stat = other.set_data("/a", b"1", -1).unwrap();
    other.set_data("/a", b"2", -1).unwrap();

    let expected = node(NodeDataChanged, "/a", stat.mzxid);
    recorder.expect_each(&["exists", "get_data"], expected);
    recorder.assert_quiet();
}

#[test]
fn failed_reads_leave_no_watch() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();

    let error = zk.get_data("/a", Some(watcher.clone())).unwrap_err();
    assert_eq!(error.code(), ErrorCode::NoNode);
    let error = zk.get_children("/a", Some(watcher)).unwrap_err();
    assert_eq!(error.code(), ErrorCode::NoNode);

    create(&zk, "/a");
    create(&zk, "/a/c");
    zk.set_data("/a", b"1", -1).unwrap();
    assert_quiet(&events);
}

#[test]
fn delete_fires_node_deleted_once_per_watcher_then_the_parents_child_watch() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    create(&zk, "/p");
    create(&zk, "/p/n");
    let recorder = Recorder::new();
    zk.get_data("/p/n", Some(recorder.watcher("data"))).unwrap();
    zk.get_children("/p/n", Some(recorder.watcher("child")))
        .unwrap();
    zk.exists("/p/n", Some(recorder.watcher("exists"))).unwrap();
    let both = recorder.watcher("both");
    zk.get_data("/p/n", Some(both.clone())).unwrap();
    zk.get_children("/p/n", Some(both)).unwrap();
    zk.get_children("/p", Some(recorder.watcher("parent")))
        .unwrap();

    other.delete("/p/n", -1).unwrap();

    let zxid = zk.exists("/p", None).unwrap().unwrap().pzxid;
    let deleted = node(NodeDeleted, "/p/n", zxid);
    // The znode's own watchers, in any order (ZooKeeper's client keeps them in a set), each once...
    recorder.expect_each(&["both", "child", "data", "exists"], deleted);
    // ...and only then the parent's child watch.
    recorder.expect("parent", node(NodeChildrenChanged, "/p", zxid));
    recorder.assert_quiet();
}

#[test]
fn set_acl_fires_nothing() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    create(&zk, "/a");
    let (watcher, events) = Watcher::channel();
    zk.get_data("/a", Some(watcher.clone())).unwrap();
    zk.get_children("/a", Some(watcher.clone())).unwrap();
    zk.exists("/a", Some(watcher)).unwrap();

    let stat = other.set_acl("/a", &Acl::open_unsafe(), -1).unwrap();
    assert_eq!(stat.aversion, 1);
    assert_quiet(&events);

    // The watches are still there.
    let stat = other.set_data("/a", b"1", -1).unwrap();
    expect(&events, NodeDataChanged, "/a", stat.mzxid);
}

fn code<T: std::fmt::Debug>(result: Result<T, zookeeper_core::Error>) -> ErrorCode {
    result.unwrap_err().code()
}

#[test]
fn failed_writes_fire_nothing() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    create(&zk, "/a");
    create(&zk, "/a/c");
    let recorder = Recorder::new();
    zk.get_data("/a", Some(recorder.watcher("data"))).unwrap();
    zk.get_children("/a", Some(recorder.watcher("child")))
        .unwrap();
    zk.exists("/a/missing", Some(recorder.watcher("exists")))
        .unwrap();

    let open = Acl::open_unsafe();
    assert_eq!(code(other.set_data("/a", b"x", 7)), ErrorCode::BadVersion);
    assert_eq!(
        code(other.create("/a/c", b"", &open, CreateMode::Persistent)),
        ErrorCode::NodeExists
    );
    assert_eq!(code(other.delete("/a", -1)), ErrorCode::NotEmpty);
    assert_eq!(code(other.delete("/a/c", 5)), ErrorCode::BadVersion);
    assert_eq!(code(other.delete("/a/missing", -1)), ErrorCode::NoNode);
    assert_eq!(
        code(other.create("/a/missing/x", b"", &open, CreateMode::Persistent)),
        ErrorCode::NoNode
    );
    // A multi whose last op fails applies none of the ops before it, so fires nothing.
    let error = other
        .multi(vec![
            Op::create("/a/missing", b"", &open, CreateMode::Persistent),
            Op::set_data("/a", b"x", -1),
            Op::delete("/a/c", -1),
            Op::check("/a", 9),
        ])
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::BadVersion);
    recorder.assert_quiet();

    // Every watch survived.
    let stat = other.set_data("/a", b"1", -1).unwrap();
    let created = other
        .create2("/a/missing", b"", &open, CreateMode::Persistent)
        .unwrap()
        .1;
    recorder.expect("data", node(NodeDataChanged, "/a", stat.mzxid));
    assert_eq!(
        sorted(recorder.take(2)),
        vec![
            seen("child", node(NodeChildrenChanged, "/a", created.czxid)),
            seen("exists", node(NodeCreated, "/a/missing", created.czxid)),
        ]
    );
}

/// ZooKeeper's testWatcherCorrectness (ZOOKEEPER-137: events dropped under load).
#[test]
fn events_of_many_changes_arrive_in_change_order() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    let open = Acl::open_unsafe();
    let mut expected = Vec::new();
    for _ in 0..10 {
        let name = zk
            .create(
                "/tc-",
                b"initialvalue",
                &open,
                CreateMode::PersistentSequential,
            )
            .unwrap();
        let (_, stat) = zk.get_data(&name, Some(watcher.clone())).unwrap();
        let changed = zk.set_data(&name, b"new", stat.version).unwrap();
        let stat = zk.exists(&name, Some(watcher.clone())).unwrap().unwrap();
        zk.delete(&name, stat.version).unwrap();
        let deleted = zk.exists("/", None).unwrap().unwrap().pzxid;
        expected.push(node(NodeDataChanged, &name, changed.mzxid));
        expected.push(node(NodeDeleted, &name, deleted));
    }
    let received: Vec<WatchedEvent> = expected.iter().map(|_| next(&events)).collect();
    assert_eq!(received, expected);
    assert_quiet(&events);
}

/// The events of a change are queued for the watching client before any later reply that shows
/// the change; the dispatcher runs callbacks asynchronously, so the test waits for them, but
/// their order must be the order of the changes.
#[test]
fn events_reach_the_watching_client_in_the_order_of_the_changes_it_then_reads() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let writer = server.connect().unwrap();
    create(&zk, "/a");
    create(&zk, "/c");
    let (watcher, events) = Watcher::channel();
    zk.get_data("/a", Some(watcher.clone())).unwrap();
    zk.exists("/b", Some(watcher.clone())).unwrap();
    zk.get_children("/c", Some(watcher)).unwrap();

    let changed = writer.set_data("/a", b"new", -1).unwrap();
    let created = create(&writer, "/b");
    let child = create(&writer, "/c/x");

    // The watching client reads every change...
    assert_eq!(zk.get_data("/a", None).unwrap().0, Some(b"new".to_vec()));
    assert!(zk.exists("/b", None).unwrap().is_some());
    assert_eq!(zk.get_children("/c", None).unwrap(), vec!["x".to_string()]);
    // ...and its watcher hears of them in the order they happened.
    expect(&events, NodeDataChanged, "/a", changed.mzxid);
    expect(&events, NodeCreated, "/b", created.czxid);
    expect(&events, NodeChildrenChanged, "/c", child.czxid);
    assert_quiet(&events);
}

#[test]
fn watches_of_several_sessions_each_fire_once() {
    let (server, _clock) = server();
    let writer = server.connect().unwrap();
    create(&writer, "/a");
    let sessions: Vec<_> = (0..3).map(|_| server.connect().unwrap()).collect();
    let channels: Vec<_> = sessions
        .iter()
        .map(|zk| {
            let (watcher, events) = Watcher::channel();
            zk.get_data("/a", Some(watcher.clone())).unwrap();
            zk.get_children("/a", Some(watcher)).unwrap();
            events
        })
        .collect();

    let stat = writer.set_data("/a", b"1", -1).unwrap();
    writer.set_data("/a", b"2", -1).unwrap();
    let child = create(&writer, "/a/c");
    create(&writer, "/a/d");

    for events in &channels {
        expect(events, NodeDataChanged, "/a", stat.mzxid);
        expect(events, NodeChildrenChanged, "/a", child.czxid);
        assert_quiet(events);
    }
}

#[test]
fn a_sessions_own_write_fires_its_own_watch() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    zk.exists("/a", Some(watcher)).unwrap();
    let stat = create(&zk, "/a");
    expect(&events, NodeCreated, "/a", stat.czxid);
}

#[test]
fn multi_fires_the_events_of_each_op_in_op_order() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let writer = server.connect().unwrap();
    for path in ["/m", "/m/b", "/m/c", "/m/d"] {
        create(&zk, path);
    }
    let (watcher, events) = Watcher::channel();
    zk.exists("/m/a", Some(watcher.clone())).unwrap();
    zk.get_data("/m/b", Some(watcher.clone())).unwrap();
    zk.get_children("/m/c", Some(watcher.clone())).unwrap();
    zk.exists("/m/d", Some(watcher)).unwrap();

    let open = Acl::open_unsafe();
    writer
        .multi(vec![
            Op::delete("/m/d", -1),
            Op::create("/m/c/x", b"", &open, CreateMode::Persistent),
            Op::set_data("/m/b", b"1", -1),
            Op::create("/m/a", b"", &open, CreateMode::Persistent),
        ])
        .unwrap();

    // One Txn: every event carries the multi's zxid.
    let zxid = zk.exists("/m/a", None).unwrap().unwrap().czxid;
    assert_eq!(zk.exists("/m/b", None).unwrap().unwrap().mzxid, zxid);
    expect(&events, NodeDeleted, "/m/d", zxid);
    expect(&events, NodeChildrenChanged, "/m/c", zxid);
    expect(&events, NodeDataChanged, "/m/b", zxid);
    expect(&events, NodeCreated, "/m/a", zxid);
    assert_quiet(&events);
}

#[test]
fn closing_a_session_fires_node_deleted_for_its_ephemerals_to_other_sessions() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let owner = server.connect().unwrap();
    create(&zk, "/e");
    owner
        .create("/e/eph", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .unwrap();
    let recorder = Recorder::new();
    zk.exists("/e/eph", Some(recorder.watcher("ephemeral")))
        .unwrap();
    zk.get_data("/e/eph", Some(recorder.watcher("data")))
        .unwrap();
    zk.get_children("/e", Some(recorder.watcher("parent")))
        .unwrap();

    owner.close().unwrap();

    let parent = zk.exists("/e", None).unwrap().unwrap();
    assert_eq!(parent.num_children, 0);
    let deleted = node(NodeDeleted, "/e/eph", parent.pzxid);
    recorder.expect_each(&["data", "ephemeral"], deleted);
    recorder.expect("parent", node(NodeChildrenChanged, "/e", parent.pzxid));
    recorder.assert_quiet();
}

/// ZooKeeper 3.9 / 3.8.4 (CVE-2024-23944): a session without READ on the znode does not hear of
/// its change (for NodeChildrenChanged the parent's ACL decides), and its one-shot watch is used
/// up. ZooKeeper 3.8.0 still delivers the NodeCreated.
#[test]
fn watch_events_are_filtered_by_the_znodes_read_acl() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let owner = server.connect().unwrap();
    owner.add_auth("digest", b"owner:pw").unwrap();
    create(&zk, "/open");
    let recorder = Recorder::new();
    zk.get_children("/open", Some(recorder.watcher("parent")))
        .unwrap();
    zk.exists("/open/secret", Some(recorder.watcher("secret")))
        .unwrap();

    let secret = owner
        .create2(
            "/open/secret",
            b"",
            &Acl::creator_all(),
            CreateMode::Persistent,
        )
        .unwrap()
        .1;

    recorder.expect("parent", node(NodeChildrenChanged, "/open", secret.czxid));
    recorder.assert_quiet();
    // The filtered watch was used up: once readable, later changes are not reported either.
    owner
        .set_acl("/open/secret", &Acl::open_unsafe(), -1)
        .unwrap();
    owner.set_data("/open/secret", b"1", -1).unwrap();
    recorder.assert_quiet();
}
