//! Guards against persistent watches that vanish after firing or report the wrong scope (a
//! grandchild to a PERSISTENT watch, a child list to a RECURSIVE one), and against one-shot and
//! persistent watches on one path spoiling each other (ZooKeeper's PersistentWatcherTest and
//! PersistentRecursiveWatcherTest; removal is in remove_watches.rs).
//!
//! Expected behaviour was checked against Apache ZooKeeper 3.8.0 with its Java client, and for
//! what 3.9 changed (different watch modes on one path, event zxids) against ZooKeeper 3.9's own tests.

mod common;

use common::{assert_quiet, create, expect, next, node, server, Recorder};
use zookeeper_core::EventType::{NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted};
use zookeeper_core::{Acl, AddWatchMode, CreateMode, Op, Watcher};

fn pzxid(zk: &zookeeper_core::Client, path: &str) -> i64 {
    zk.exists(path, None).unwrap().unwrap().pzxid
}

#[test]
fn persistent_watch_fires_for_the_znode_and_its_children_and_stays() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/a/b", watcher, AddWatchMode::Persistent)
        .unwrap();

    create(&zk, "/a");
    let b = create(&zk, "/a/b");
    expect(&events, NodeCreated, "/a/b", b.czxid);
    let c = create(&zk, "/a/b/c");
    expect(&events, NodeChildrenChanged, "/a/b", c.czxid);
    // Grandchildren, a child's data, ACLs, siblings and the parent are out of scope.
    create(&zk, "/a/b/c/d");
    zk.set_data("/a/b/c", b"1", -1).unwrap();
    zk.set_acl("/a/b", &Acl::open_unsafe(), -1).unwrap();
    create(&zk, "/a/bb");
    zk.set_data("/a", b"1", -1).unwrap();
    zk.delete("/a/b/c/d", -1).unwrap();
    assert_quiet(&events);

    let changed = zk.set_data("/a/b", b"1", -1).unwrap();
    expect(&events, NodeDataChanged, "/a/b", changed.mzxid);
    zk.delete("/a/b/c", -1).unwrap();
    expect(&events, NodeChildrenChanged, "/a/b", pzxid(&zk, "/a/b"));
    zk.delete("/a/b", -1).unwrap();
    expect(&events, NodeDeleted, "/a/b", pzxid(&zk, "/a"));
    // Deletion does not remove a persistent watch.
    let again = create(&zk, "/a/b");
    expect(&events, NodeCreated, "/a/b", again.czxid);
    assert_quiet(&events);
}

#[test]
fn persistent_watch_on_root_sees_top_level_children_only() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/", watcher, AddWatchMode::Persistent)
        .unwrap();

    let a = create(&zk, "/a");
    zk.set_data("/a", b"", -1).unwrap();
    create(&zk, "/a/x");
    let b = create(&zk, "/b");

    expect(&events, NodeChildrenChanged, "/", a.czxid);
    expect(&events, NodeChildrenChanged, "/", b.czxid);
    assert_quiet(&events);
}

#[test]
fn persistent_watch_sees_every_change_from_other_sessions() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    create(&zk, "/a");
    create(&zk, "/a/b");
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/a/b", watcher, AddWatchMode::Persistent)
        .unwrap();

    let mut zxids = vec![zk.set_data("/a/b", b"one", -1).unwrap().mzxid];
    for data in [&b"two"[..], b"three", b"four"] {
        zxids.push(other.set_data("/a/b", data, -1).unwrap().mzxid);
    }

    for zxid in zxids {
        expect(&events, NodeDataChanged, "/a/b", zxid);
    }
    assert_quiet(&events);
}

#[test]
fn recursive_watch_fires_created_changed_deleted_for_the_whole_subtree() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/a/b", watcher, AddWatchMode::PersistentRecursive)
        .unwrap();

    create(&zk, "/a");
    let mut expected = Vec::new();
    for path in ["/a/b", "/a/b/c", "/a/b/c/d", "/a/b/c/d/e"] {
        expected.push(node(NodeCreated, path, create(&zk, path).czxid));
    }
    let stat = zk.set_data("/a/b/c/d/e", b"", -1).unwrap();
    expected.push(node(NodeDataChanged, "/a/b/c/d/e", stat.mzxid));
    // Out of scope: the parent, a sibling whose name extends the watched one, ACLs.
    create(&zk, "/a/bx");
    zk.set_data("/a", b"1", -1).unwrap();
    zk.set_acl("/a/b/c", &Acl::open_unsafe(), -1).unwrap();
    zk.delete("/a/b/c/d/e", -1).unwrap();
    expected.push(node(NodeDeleted, "/a/b/c/d/e", pzxid(&zk, "/a/b/c/d")));
    let stat = create(&zk, "/a/b/c/d/e");
    expected.push(node(NodeCreated, "/a/b/c/d/e", stat.czxid));
    for path in ["/a/b/c/d/e", "/a/b/c/d", "/a/b/c", "/a/b"] {
        zk.delete(path, -1).unwrap();
        let parent = &path[..path.rfind('/').unwrap()];
        expected.push(node(NodeDeleted, path, pzxid(&zk, parent)));
    }

    // Never NodeChildrenChanged, though children came and went under every watched znode.
    for event in expected {
        assert_eq!(next(&events), event);
    }
    assert_quiet(&events);
}

#[test]
fn recursive_watch_on_root_sees_every_znode() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/", watcher, AddWatchMode::PersistentRecursive)
        .unwrap();

    for path in ["/a", "/a/b", "/b", "/b/c"] {
        let stat = create(&zk, path);
        expect(&events, NodeCreated, path, stat.czxid);
    }
    assert_quiet(&events);
}

#[test]
fn recursive_watch_leaves_child_events_to_child_watches() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/a");
    let (recursive, recursive_events) = Watcher::channel();
    zk.add_watch("/", recursive, AddWatchMode::PersistentRecursive)
        .unwrap();
    let (child, child_events) = Watcher::channel();
    zk.get_children("/a", Some(child)).unwrap();

    let ab = create(&zk, "/a/b");
    let abc = create(&zk, "/a/b/c");

    expect(&child_events, NodeChildrenChanged, "/a", ab.czxid);
    expect(&recursive_events, NodeCreated, "/a/b", ab.czxid);
    expect(&recursive_events, NodeCreated, "/a/b/c", abc.czxid);
    assert_quiet(&recursive_events);
    assert_quiet(&child_events);
}

/// ZooKeeper 3.9's testSamePathWithDifferentWatchModes (ZOOKEEPER-4466: in 3.8 a one-shot watch
/// set on a path replaced the session's persistent watch there).
#[test]
fn one_shot_persistent_and_recursive_watches_on_one_path_each_fire() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (data, data_events) = Watcher::channel();
    let (child, child_events) = Watcher::channel();
    let (persistent, persistent_events) = Watcher::channel();
    let (recursive, recursive_events) = Watcher::channel();
    zk.add_watch("/a", persistent, AddWatchMode::Persistent)
        .unwrap();
    zk.add_watch("/a", recursive, AddWatchMode::PersistentRecursive)
        .unwrap();
    zk.exists("/a", Some(data.clone())).unwrap();

    let stat = create(&zk, "/a");
    for events in [&data_events, &persistent_events, &recursive_events] {
        expect(events, NodeCreated, "/a", stat.czxid);
    }

    zk.get_data("/a", Some(data.clone())).unwrap();
    let stat = zk.set_data("/a", b"", -1).unwrap();
    for events in [&data_events, &persistent_events, &recursive_events] {
        expect(events, NodeDataChanged, "/a", stat.mzxid);
    }

    zk.get_children("/a", Some(child.clone())).unwrap();
    let stat = create(&zk, "/a/b");
    expect(&child_events, NodeChildrenChanged, "/a", stat.czxid);
    expect(&persistent_events, NodeChildrenChanged, "/a", stat.czxid);
    expect(&recursive_events, NodeCreated, "/a/b", stat.czxid);

    zk.get_children("/a", Some(child.clone())).unwrap();
    zk.delete("/a/b", -1).unwrap();
    let zxid = pzxid(&zk, "/a");
    expect(&child_events, NodeChildrenChanged, "/a", zxid);
    expect(&persistent_events, NodeChildrenChanged, "/a", zxid);
    expect(&recursive_events, NodeDeleted, "/a/b", zxid);

    zk.get_children("/a", Some(child)).unwrap();
    zk.get_data("/a", Some(data.clone())).unwrap();
    zk.exists("/a", Some(data)).unwrap();
    zk.delete("/a", -1).unwrap();
    let zxid = pzxid(&zk, "/");
    for events in [
        &child_events,
        &data_events,
        &persistent_events,
        &recursive_events,
    ] {
        expect(events, NodeDeleted, "/a", zxid);
    }
    for events in [
        &child_events,
        &data_events,
        &persistent_events,
        &recursive_events,
    ] {
        assert_quiet(events);
    }
}

#[test]
fn one_watcher_both_recursive_and_one_shot_hears_each_change_once() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/a");
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/a", watcher.clone(), AddWatchMode::PersistentRecursive)
        .unwrap();
    zk.get_data("/a", Some(watcher)).unwrap();

    let first = zk.set_data("/a", b"1", -1).unwrap();
    let second = zk.set_data("/a", b"2", -1).unwrap();
    let child = create(&zk, "/a/k");

    expect(&events, NodeDataChanged, "/a", first.mzxid);
    expect(&events, NodeDataChanged, "/a", second.mzxid);
    expect(&events, NodeCreated, "/a/k", child.czxid);
    assert_quiet(&events);
}

#[test]
fn multi_fires_a_persistent_watch_once_per_op() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let recorder = Recorder::new();
    zk.exists("/t", Some(recorder.watcher("exists"))).unwrap();
    zk.add_watch(
        "/t",
        recorder.watcher("persistent"),
        AddWatchMode::Persistent,
    )
    .unwrap();

    let open = Acl::open_unsafe();
    zk.multi(vec![
        Op::create("/t", b"", &open, CreateMode::Persistent),
        Op::set_data("/t", b"1", -1),
        Op::delete("/t", -1),
    ])
    .unwrap();

    let zxid = pzxid(&zk, "/");
    recorder.expect_each(&["exists", "persistent"], node(NodeCreated, "/t", zxid));
    recorder.expect("persistent", node(NodeDataChanged, "/t", zxid));
    recorder.expect("persistent", node(NodeDeleted, "/t", zxid));
    recorder.assert_quiet();
}
