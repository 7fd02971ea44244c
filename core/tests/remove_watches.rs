//! Guards against removeWatches that removes too much or too little, tells watchers the wrong
//! removal event, or answers the wrong error (ZooKeeper's RemoveWatchesTest, and the removal
//! tests of PersistentWatcherTest and PersistentRecursiveWatcherTest).
//!
//! Expected behaviour was checked against Apache ZooKeeper 3.8.0 with its Java client; the
//! Persistent and PersistentRecursive watcher types are ZooKeeper 3.9's (ZOOKEEPER-4472).

mod common;

use common::{assert_quiet, create, expect, next, node, removed, seen, server, sorted, Recorder};
use zookeeper_core::EventType::{
    ChildWatchRemoved, DataWatchRemoved, NodeChildrenChanged, NodeCreated, NodeDataChanged,
    PersistentWatchRemoved,
};
use zookeeper_core::{Acl, AddWatchMode, CreateMode, ErrorCode, Watcher, WatcherType};

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
    assert_eq!(
        told,
        vec![
            removed(DataWatchRemoved, "/r"),
            removed(ChildWatchRemoved, "/r")
        ]
    );
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
    recorder.expect_each(&["w1", "w2"], gone);

    other.set_data("/node1", b"1", -1).unwrap();
    let child = other
        .create2(
            "/node1/child",
            b"",
            &Acl::open_unsafe(),
            CreateMode::Ephemeral,
        )
        .unwrap()
        .1;
    let changed = node(NodeChildrenChanged, "/node1", child.czxid);
    recorder.expect_each(&["w1", "w2"], changed);
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
    recorder.expect_each(&["w1", "w2"], gone);

    create(&other, "/node1/child");
    let stat = other.set_data("/node1", b"test", -1).unwrap();
    let changed = node(NodeDataChanged, "/node1", stat.mzxid);
    recorder.expect_each(&["w1", "w2"], changed);
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
    let (w1, w2, w3, w4) = (
        recorder.watcher("w1"),
        recorder.watcher("w2"),
        recorder.watcher("w3"),
        recorder.watcher("w4"),
    );
    zk.exists("/node1", Some(w1.clone())).unwrap();
    zk.exists("/node1", Some(w2)).unwrap();
    zk.get_children("/node1", Some(w3.clone())).unwrap();
    zk.get_children("/node1", Some(w4)).unwrap();

    zk.remove_watcher("/node1", &w1, WatcherType::Data).unwrap();
    recorder.expect("w1", removed(DataWatchRemoved, "/node1"));
    zk.remove_watcher("/node1", &w3, WatcherType::Children)
        .unwrap();
    recorder.expect("w3", removed(ChildWatchRemoved, "/node1"));

    let stat = other.set_data("/node1", b"test", -1).unwrap();
    recorder.expect("w2", node(NodeDataChanged, "/node1", stat.mzxid));
    let child = create(&other, "/node1/node2");
    recorder.expect("w4", node(NodeChildrenChanged, "/node1", child.czxid));
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
    recorder.expect("w2", removed(ChildWatchRemoved, "/node1"));
    zk.check_watches("/node1", WatcherType::Children).unwrap();
    zk.remove_watcher("/node1", &w1, WatcherType::Any).unwrap();
    assert_eq!(
        sorted(recorder.take(2)),
        vec![
            seen("w1", removed(DataWatchRemoved, "/node1")),
            seen("w1", removed(ChildWatchRemoved, "/node1"))
        ]
    );
    recorder.assert_quiet();
}

#[test]
fn removing_what_is_not_there_answers_no_watcher_and_keeps_the_rest() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/node1");
    let no_watcher = |result: Result<(), zookeeper_core::Error>| {
        assert_eq!(result.unwrap_err().code(), ErrorCode::NoWatcher)
    };

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
    expect(&events, NodeDataChanged, "/node1", stat.mzxid);
    no_watcher(zk.remove_watches("/node1", WatcherType::Data));

    // Persistent watches are not Data or Children watches.
    zk.add_watch("/node1", watcher, AddWatchMode::Persistent)
        .unwrap();
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
    zk.add_watch(
        "/r",
        recorder.watcher("persistent"),
        AddWatchMode::Persistent,
    )
    .unwrap();
    zk.add_watch(
        "/r",
        recorder.watcher("recursive"),
        AddWatchMode::PersistentRecursive,
    )
    .unwrap();

    zk.remove_watches("/r", WatcherType::Persistent).unwrap();
    recorder.expect("persistent", removed(PersistentWatchRemoved, "/r"));
    zk.check_watches("/r", WatcherType::PersistentRecursive)
        .unwrap();
    let stat = zk.set_data("/r", b"1", -1).unwrap();
    recorder.expect("recursive", node(NodeDataChanged, "/r", stat.mzxid));

    zk.remove_watches("/r", WatcherType::PersistentRecursive)
        .unwrap();
    recorder.expect("recursive", removed(PersistentWatchRemoved, "/r"));
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
    zk.add_watch("/a/b", persistent.clone(), AddWatchMode::Persistent)
        .unwrap();
    zk.add_watch(
        "/a/b",
        recorder.watcher("recursive"),
        AddWatchMode::PersistentRecursive,
    )
    .unwrap();
    create(&zk, "/a");
    let b = create(&zk, "/a/b");
    let created = node(NodeCreated, "/a/b", b.czxid);
    recorder.expect_each(&["persistent", "recursive"], created);

    zk.remove_watcher("/a/b", &persistent, WatcherType::Any)
        .unwrap();
    recorder.expect("persistent", removed(PersistentWatchRemoved, "/a/b"));
    let c = create(&zk, "/a/b/c");
    recorder.expect("recursive", node(NodeCreated, "/a/b/c", c.czxid));

    zk.remove_watches("/a/b", WatcherType::Any).unwrap();
    recorder.expect("recursive", removed(PersistentWatchRemoved, "/a/b"));
    create(&zk, "/a/b/c/d");
    zk.set_data("/a/b", b"1", -1).unwrap();
    recorder.assert_quiet();
}

#[test]
fn check_watches_reports_what_is_there() {
    let (server, _clock) = server();
    let zk = server.connect().unwrap();
    create(&zk, "/c");
    let no_watcher = |result: Result<(), zookeeper_core::Error>| {
        assert_eq!(result.unwrap_err().code(), ErrorCode::NoWatcher)
    };
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

    zk.add_watch("/c", watcher, AddWatchMode::Persistent)
        .unwrap();
    zk.check_watches("/c", WatcherType::Persistent).unwrap();
    zk.check_watches("/c", WatcherType::Any).unwrap();
    no_watcher(zk.check_watches("/c", WatcherType::Data));
    no_watcher(zk.check_watches("/c", WatcherType::PersistentRecursive));
    // Checking removes nothing.
    zk.set_data("/c", b"2", -1).unwrap();
    assert_eq!(next(&events).event_type, NodeDataChanged);
}
