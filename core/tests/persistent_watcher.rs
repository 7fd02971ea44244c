//! Guards against persistent watches that vanish after firing, report the wrong scope (a
//! grandchild to a PERSISTENT watch, a child list to a RECURSIVE one), and against removeWatches
//! that removes too much or too little or tells watchers the wrong removal event
//! (ZooKeeper's PersistentWatcherTest, PersistentRecursiveWatcherTest and RemoveWatchesTest).
//!
//! Expected behaviour was checked against Apache ZooKeeper 3.8.0 with its Java client, and for
//! what 3.9 changed (WatcherType Persistent/PersistentRecursive, different watch modes on one
//! path, event zxids) against ZooKeeper 3.9's own tests.

mod common;

use common::{assert_quiet, create, next, node, removed, seen, server, sorted, Recorder};
use zookeeper_core::{AddWatchMode, Acl, CreateMode, ErrorCode, Op, WatcherType, Watcher};
use zookeeper_core::EventType::{
    ChildWatchRemoved, DataWatchRemoved, NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted,
    PersistentWatchRemoved,
};

fn pzxid(zk: &zookeeper_core::Client, path: &str) -> i64 {
    zk.exists(path, None).unwrap().unwrap().pzxid
}

#[test]
fn persistent_watch_fires_for_the_znode_and_its_children_and_stays() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/a/b", watcher, AddWatchMode::Persistent).unwrap();

    create(&zk, "/a");
    let b = create(&zk, "/a/b");
    assert_eq!(next(&events), node(NodeCreated, "/a/b", b.czxid));
    let c = create(&zk, "/a/b/c");
    assert_eq!(next(&events), node(NodeChildrenChanged, "/a/b", c.czxid));
    // Grandchildren, a child's data, ACLs, siblings and the parent are out of scope.
    create(&zk, "/a/b/c/d");
    zk.set_data("/a/b/c", b"1", -1).unwrap();
    zk.set_acl("/a/b", &Acl::open_unsafe(), -1).unwrap();
    create(&zk, "/a/bb");
    zk.set_data("/a", b"1", -1).unwrap();
    zk.delete("/a/b/c/d", -1).unwrap();
    assert_quiet(&events);

    let changed = zk.set_data("/a/b", b"1", -1).unwrap();
    assert_eq!(next(&events), node(NodeDataChanged, "/a/b", changed.mzxid));
    zk.delete("/a/b/c", -1).unwrap();
    assert_eq!(next(&events), node(NodeChildrenChanged, "/a/b", pzxid(&zk, "/a/b")));
    zk.delete("/a/b", -1).unwrap();
    assert_eq!(next(&events), node(NodeDeleted, "/a/b", pzxid(&zk, "/a")));
    // Deletion does not remove a persistent watch.
    let again = create(&zk, "/a/b");
    assert_eq!(next(&events), node(NodeCreated, "/a/b", again.czxid));
    assert_quiet(&events);
}

#[test]
fn persistent_watch_on_root_sees_top_level_children_only() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/", watcher, AddWatchMode::Persistent).unwrap();

    let a = create(&zk, "/a");
    zk.set_data("/a", b"", -1).unwrap();
    create(&zk, "/a/x");
    let b = create(&zk, "/b");

    assert_eq!(next(&events), node(NodeChildrenChanged, "/", a.czxid));
    assert_eq!(next(&events), node(NodeChildrenChanged, "/", b.czxid));
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
    zk.add_watch("/a/b", watcher, AddWatchMode::Persistent).unwrap();

    let mut zxids = vec![zk.set_data("/a/b", b"one", -1).unwrap().mzxid];
    for data in [&b"two"[..], b"three", b"four"] {
        zxids.push(other.set_data("/a/b", data, -1).unwrap().mzxid);
    }

    for zxid in zxids {
        assert_eq!(next(&events), node(NodeDataChanged, "/a/b", zxid));
    }
    assert_quiet(&events);
}

#[test]
fn recursive_watch_fires_created_changed_deleted_for_the_whole_subtree() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/a/b", watcher, AddWatchMode::PersistentRecursive).unwrap();

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
    zk.add_watch("/", watcher, AddWatchMode::PersistentRecursive).unwrap();

    for path in ["/a", "/a/b", "/b", "/b/c"] {
        let stat = create(&zk, path);
        assert_eq!(next(&events), node(NodeCreated, path, stat.czxid));
    }
    assert_quiet(&events);
}

#[test]
fn recursive_watch_leaves_child_events_to_child_watches() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/a");
    let (recursive, recursive_events) = Watcher::channel();
    zk.add_watch("/", recursive, AddWatchMode::PersistentRecursive).unwrap();
    let (child, child_events) = Watcher::channel();
    zk.get_children("/a", Some(child)).unwrap();

    let ab = create(&zk, "/a/b");
    let abc = create(&zk, "/a/b/c");

    assert_eq!(next(&child_events), node(NodeChildrenChanged, "/a", ab.czxid));
    assert_eq!(next(&recursive_events), node(NodeCreated, "/a/b", ab.czxid));
    assert_eq!(next(&recursive_events), node(NodeCreated, "/a/b/c", abc.czxid));
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
    zk.add_watch("/a", persistent, AddWatchMode::Persistent).unwrap();
    zk.add_watch("/a", recursive, AddWatchMode::PersistentRecursive).unwrap();
    zk.exists("/a", Some(data.clone())).unwrap();

    let stat = create(&zk, "/a");
    for events in [&data_events, &persistent_events, &recursive_events] {
        assert_eq!(next(events), node(NodeCreated, "/a", stat.czxid));
    }

    zk.get_data("/a", Some(data.clone())).unwrap();
    let stat = zk.set_data("/a", b"", -1).unwrap();
    for events in [&data_events, &persistent_events, &recursive_events] {
        assert_eq!(next(events), node(NodeDataChanged, "/a", stat.mzxid));
    }

    zk.get_children("/a", Some(child.clone())).unwrap();
    let stat = create(&zk, "/a/b");
    assert_eq!(next(&child_events), node(NodeChildrenChanged, "/a", stat.czxid));
    assert_eq!(next(&persistent_events), node(NodeChildrenChanged, "/a", stat.czxid));
    assert_eq!(next(&recursive_events), node(NodeCreated, "/a/b", stat.czxid));

    zk.get_children("/a", Some(child.clone())).unwrap();
    zk.delete("/a/b", -1).unwrap();
    let zxid = pzxid(&zk, "/a");
    assert_eq!(next(&child_events), node(NodeChildrenChanged, "/a", zxid));
    assert_eq!(next(&persistent_events), node(NodeChildrenChanged, "/a", zxid));
    assert_eq!(next(&recursive_events), node(NodeDeleted, "/a/b", zxid));

    zk.get_children("/a", Some(child)).unwrap();
    zk.get_data("/a", Some(data.clone())).unwrap();
    zk.exists("/a", Some(data)).unwrap();
    zk.delete("/a", -1).unwrap();
    let zxid = pzxid(&zk, "/");
    for events in [&child_events, &data_events, &persistent_events, &recursive_events] {
        assert_eq!(next(events), node(NodeDeleted, "/a", zxid));
    }
    for events in [&child_events, &data_events, &persistent_events, &recursive_events] {
        assert_quiet(events);
    }
}

#[test]
fn one_watcher_both_recursive_and_one_shot_hears_each_change_once() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/a");
    let (watcher, events) = Watcher::channel();
    zk.add_watch("/a", watcher.clone(), AddWatchMode::PersistentRecursive).unwrap();
    zk.get_data("/a", Some(watcher)).unwrap();

    let first = zk.set_data("/a", b"1", -1).unwrap();
    let second = zk.set_data("/a", b"2", -1).unwrap();
    let child = create(&zk, "/a/k");

    assert_eq!(next(&events), node(NodeDataChanged, "/a", first.mzxid));
    assert_eq!(next(&events), node(NodeDataChanged, "/a", second.mzxid));
    assert_eq!(next(&events), node(NodeCreated, "/a/k", child.czxid));
    assert_quiet(&events);
}

#[test]
fn multi_fires_a_persistent_watch_once_per_op() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let recorder = Recorder::new();
    zk.exists("/t", Some(recorder.watcher("exists"))).unwrap();
    zk.add_watch("/t", recorder.watcher("persistent"), AddWatchMode::Persistent).unwrap();

    let open = Acl::open_unsafe();
    zk.multi(vec![
        Op::create("/t", b"", &open, CreateMode::Persistent),
        Op::set_data("/t", b"1", -1),
        Op::delete("/t", -1),
    ])
    .unwrap();

    let zxid = pzxid(&zk, "/");
    assert_eq!(
        sorted(recorder.take(2)),
        vec![seen("exists", node(NodeCreated, "/t", zxid)), seen("persistent", node(NodeCreated, "/t", zxid))]
    );
    assert_eq!(recorder.next(), seen("persistent", node(NodeDataChanged, "/t", zxid)));
    assert_eq!(recorder.next(), seen("persistent", node(NodeDeleted, "/t", zxid)));
    recorder.assert_quiet();
}

#[test]
fn remove_watches_any_tells_a_watcher_once_per_kind_removed() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    create(&zk, "/r");
    let (watcher, events) = Watcher::channel();
    zk.get_data("/r", Some(watcher.clone())).unwrap();
    zk.exists("/r", Some(watcher.clone())).unwrap();
    zk.get_children("/r", Some(watcher)).unwrap();

    zk.remove_watches("/r", WatcherType::Any).unwrap();

    let mut told = vec![next(&events), next(&events)];
    told.sort_by_key(|event| event.event_type.code());
    assert_eq!(told, vec![removed(DataWatchRemoved, "/r"), removed(ChildWatchRemoved, "/r")]);
    other.set_data("/r", b"1", -1).unwrap();
    create(&other, "/r/c");
    other.delete("/r/c", -1).unwrap();
    other.delete("/r", -1).unwrap();
    assert_quiet(&events);
}

#[test]
fn remove_watches_data_leaves_child_watches() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    create(&zk, "/node1");
    let recorder = Recorder::new();
    for name in ["w1", "w2"] {
        let watcher = recorder.watcher(name);
        zk.exists("/node1", Some(watcher.clone())).unwrap();
        zk.get_children("/node1", Some(watcher)).unwrap();
    }

    zk.remove_watches("/node1", WatcherType::Data).unwrap();
    let gone = removed(DataWatchRemoved, "/node1");
    assert_eq!(sorted(recorder.take(2)), vec![seen("w1", gone.clone()), seen("w2", gone)]);

    other.set_data("/node1", b"1", -1).unwrap();
    let child = other.create2("/node1/child", b"", &Acl::open_unsafe(), CreateMode::Ephemeral).unwrap().1;
    let changed = node(NodeChildrenChanged, "/node1", child.czxid);
    assert_eq!(sorted(recorder.take(2)), vec![seen("w1", changed.clone()), seen("w2", changed)]);
    recorder.assert_quiet();
}

#[test]
fn remove_watches_children_leaves_data_watches() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    create(&zk, "/node1");
    let recorder = Recorder::new();
    for name in ["w1", "w2"] {
        let watcher = recorder.watcher(name);
        zk.exists("/node1", Some(watcher.clone())).unwrap();
        zk.get_children("/node1", Some(watcher)).unwrap();
    }

    zk.remove_watches("/node1", WatcherType::Children).unwrap();
    let gone = removed(ChildWatchRemoved, "/node1");
    assert_eq!(sorted(recorder.take(2)), vec![seen("w1", gone.clone()), seen("w2", gone)]);

    create(&other, "/node1/child");
    let stat = other.set_data("/node1", b"test", -1).unwrap();
    let changed = node(NodeDataChanged, "/node1", stat.mzxid);
    assert_eq!(sorted(recorder.take(2)), vec![seen("w1", changed.clone()), seen("w2", changed)]);
    recorder.assert_quiet();
}

#[test]
fn remove_watches_data_removes_an_exists_watch_on_a_missing_znode() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let (watcher, events) = Watcher::channel();
    zk.exists("/missing", Some(watcher)).unwrap();

    zk.remove_watches("/missing", WatcherType::Data).unwrap();
    assert_eq!(next(&events), removed(DataWatchRemoved, "/missing"));

    create(&zk, "/missing");
    assert_quiet(&events);
}

#[test]
fn remove_watcher_removes_only_that_watcher() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let other = server.connect().unwrap();
    create(&zk, "/node1");
    let recorder = Recorder::new();
    let (w1, w2, w3, w4) =
        (recorder.watcher("w1"), recorder.watcher("w2"), recorder.watcher("w3"), recorder.watcher("w4"));
    zk.exists("/node1", Some(w1.clone())).unwrap();
    zk.exists("/node1", Some(w2)).unwrap();
    zk.get_children("/node1", Some(w3.clone())).unwrap();
    zk.get_children("/node1", Some(w4)).unwrap();

    zk.remove_watcher("/node1", &w1, WatcherType::Data).unwrap();
    assert_eq!(recorder.next(), seen("w1", removed(DataWatchRemoved, "/node1")));
    zk.remove_watcher("/node1", &w3, WatcherType::Children).unwrap();
    assert_eq!(recorder.next(), seen("w3", removed(ChildWatchRemoved, "/node1")));

    let stat = other.set_data("/node1", b"test", -1).unwrap();
    assert_eq!(recorder.next(), seen("w2", node(NodeDataChanged, "/node1", stat.mzxid)));
    let child = create(&other, "/node1/node2");
    assert_eq!(recorder.next(), seen("w4", node(NodeChildrenChanged, "/node1", child.czxid)));
    recorder.assert_quiet();
}

#[test]
fn remove_watcher_any_tells_the_watcher_of_each_kind_it_held() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/node1");
    let recorder = Recorder::new();
    let (w1, w2) = (recorder.watcher("w1"), recorder.watcher("w2"));
    zk.exists("/node1", Some(w1.clone())).unwrap();
    zk.get_children("/node1", Some(w2.clone())).unwrap();
    zk.get_children("/node1", Some(w1.clone())).unwrap();

    zk.remove_watcher("/node1", &w2, WatcherType::Any).unwrap();
    assert_eq!(recorder.next(), seen("w2", removed(ChildWatchRemoved, "/node1")));
    zk.check_watches("/node1", WatcherType::Children).unwrap();
    zk.remove_watcher("/node1", &w1, WatcherType::Any).unwrap();
    assert_eq!(
        sorted(recorder.take(2)),
        vec![seen("w1", removed(DataWatchRemoved, "/node1")), seen("w1", removed(ChildWatchRemoved, "/node1"))]
    );
    recorder.assert_quiet();
}

#[test]
fn removing_what_is_not_there_answers_no_watcher_and_keeps_the_rest() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/node1");
    let no_watcher = |result: Result<(), zookeeper_core::Error>| assert_eq!(result.unwrap_err().code(), ErrorCode::NoWatcher);

    for watcher_type in [
        WatcherType::Any,
        WatcherType::Data,
        WatcherType::Children,
        WatcherType::Persistent,
        WatcherType::PersistentRecursive,
    ] {
        no_watcher(zk.remove_watches("/node1", watcher_type));
        no_watcher(zk.remove_watches("/nonexists", watcher_type));
    }

    let (watcher, events) = Watcher::channel();
    zk.get_data("/node1", Some(watcher.clone())).unwrap();
    let stranger = Watcher::new(|_| {});
    no_watcher(zk.remove_watcher("/node1", &stranger, WatcherType::Any));
    no_watcher(zk.remove_watcher("/node1", &stranger, WatcherType::Data));
    no_watcher(zk.remove_watcher("/node1", &watcher, WatcherType::Children));
    no_watcher(zk.remove_watches("/node1", WatcherType::Children));
    no_watcher(zk.remove_watches("/node1", WatcherType::Persistent));
    assert_quiet(&events);

    // The data watch is untouched; once it fired there is nothing left to remove.
    let stat = zk.set_data("/node1", b"1", -1).unwrap();
    assert_eq!(next(&events), node(NodeDataChanged, "/node1", stat.mzxid));
    no_watcher(zk.remove_watches("/node1", WatcherType::Data));

    // Persistent watches are not Data or Children watches.
    zk.add_watch("/node1", watcher, AddWatchMode::Persistent).unwrap();
    no_watcher(zk.remove_watches("/node1", WatcherType::Data));
    no_watcher(zk.remove_watches("/node1", WatcherType::Children));
    no_watcher(zk.remove_watches("/node1", WatcherType::PersistentRecursive));
    assert_quiet(&events);
}

#[test]
fn remove_watches_persistent_and_recursive_each_remove_their_own_kind() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/r");
    let recorder = Recorder::new();
    zk.add_watch("/r", recorder.watcher("persistent"), AddWatchMode::Persistent).unwrap();
    zk.add_watch("/r", recorder.watcher("recursive"), AddWatchMode::PersistentRecursive).unwrap();

    zk.remove_watches("/r", WatcherType::Persistent).unwrap();
    assert_eq!(recorder.next(), seen("persistent", removed(PersistentWatchRemoved, "/r")));
    zk.check_watches("/r", WatcherType::PersistentRecursive).unwrap();
    let stat = zk.set_data("/r", b"1", -1).unwrap();
    assert_eq!(recorder.next(), seen("recursive", node(NodeDataChanged, "/r", stat.mzxid)));

    zk.remove_watches("/r", WatcherType::PersistentRecursive).unwrap();
    assert_eq!(recorder.next(), seen("recursive", removed(PersistentWatchRemoved, "/r")));
    zk.set_data("/r", b"2", -1).unwrap();
    create(&zk, "/r/c");
    recorder.assert_quiet();
}

/// ZooKeeper's PersistentWatcherTest.testRemoval and PersistentRecursiveWatcherTest.testRemoval.
#[test]
fn remove_watches_any_removes_persistent_and_recursive_watches() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    let recorder = Recorder::new();
    let persistent = recorder.watcher("persistent");
    zk.add_watch("/a/b", persistent.clone(), AddWatchMode::Persistent).unwrap();
    zk.add_watch("/a/b", recorder.watcher("recursive"), AddWatchMode::PersistentRecursive).unwrap();
    create(&zk, "/a");
    let b = create(&zk, "/a/b");
    let created = node(NodeCreated, "/a/b", b.czxid);
    assert_eq!(sorted(recorder.take(2)), vec![seen("persistent", created.clone()), seen("recursive", created)]);

    zk.remove_watcher("/a/b", &persistent, WatcherType::Any).unwrap();
    assert_eq!(recorder.next(), seen("persistent", removed(PersistentWatchRemoved, "/a/b")));
    let c = create(&zk, "/a/b/c");
    assert_eq!(recorder.next(), seen("recursive", node(NodeCreated, "/a/b/c", c.czxid)));

    zk.remove_watches("/a/b", WatcherType::Any).unwrap();
    assert_eq!(recorder.next(), seen("recursive", removed(PersistentWatchRemoved, "/a/b")));
    create(&zk, "/a/b/c/d");
    zk.set_data("/a/b", b"1", -1).unwrap();
    recorder.assert_quiet();
}

#[test]
fn check_watches_reports_what_is_there() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/c");
    let no_watcher = |result: Result<(), zookeeper_core::Error>| assert_eq!(result.unwrap_err().code(), ErrorCode::NoWatcher);
    no_watcher(zk.check_watches("/c", WatcherType::Any));

    let (watcher, events) = Watcher::channel();
    zk.get_data("/c", Some(watcher.clone())).unwrap();
    zk.check_watches("/c", WatcherType::Data).unwrap();
    zk.check_watches("/c", WatcherType::Any).unwrap();
    no_watcher(zk.check_watches("/c", WatcherType::Children));
    no_watcher(zk.check_watches("/c", WatcherType::Persistent));
    assert_quiet(&events);

    // A fired one-shot watch is gone.
    zk.set_data("/c", b"1", -1).unwrap();
    next(&events);
    no_watcher(zk.check_watches("/c", WatcherType::Data));

    zk.add_watch("/c", watcher, AddWatchMode::Persistent).unwrap();
    zk.check_watches("/c", WatcherType::Persistent).unwrap();
    zk.check_watches("/c", WatcherType::Any).unwrap();
    no_watcher(zk.check_watches("/c", WatcherType::Data));
    no_watcher(zk.check_watches("/c", WatcherType::PersistentRecursive));
    // Checking removes nothing.
    zk.set_data("/c", b"2", -1).unwrap();
    assert_eq!(next(&events).event_type, NodeDataChanged);
}
