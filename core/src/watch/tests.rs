//! Guards against watch events that differ from ZooKeeper 3.9's: a missing or duplicate event, a
//! one-shot watch that survives firing, or a persistent watch that does not.

use super::table::parent;
use super::*;
use crate::proto::KeeperState;

const ZXID: i64 = 0x1_0000_0005;

fn registry() -> WatchRegistry {
    WatchRegistry::new(1_000)
}

/// Fires `kind` at `path` and returns the (session, event type) pairs, after checking that
/// every event carries the change's path, the zxid and SyncConnected.
fn fire(watches: &mut WatchRegistry, path: &str, kind: ChangeKind) -> Vec<(i64, EventType)> {
    let mut out = Vec::new();
    watches.fire(&Change::open(path, kind), ZXID, &mut out);
    watches.check_invariants();
    for (_, event) in &out {
        assert_eq!(event.path, path);
        assert_eq!(event.zxid, ZXID);
        assert_eq!(event.state, KeeperState::SyncConnected);
    }
    out.into_iter()
        .map(|(session, event)| (session, event.event_type))
        .collect()
}

fn add(watches: &mut WatchRegistry, session: i64, path: &str, kind: WatchKind) {
    watches.add(session, path, kind).expect("under the cap");
    watches.check_invariants();
}

#[test]
fn created_fires_exists_watch_once() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Data);
    add(&mut watches, 2, "/a", WatchKind::Child);
    assert_eq!(
        fire(&mut watches, "/a", ChangeKind::Created),
        [(1, EventType::NodeCreated)]
    );
    assert!(
        !watches.contains(1, "/a", WatcherType::Data),
        "one-shot watch must be used up"
    );
    assert!(fire(&mut watches, "/a", ChangeKind::Created).is_empty());
    assert!(
        watches.contains(2, "/a", WatcherType::Children),
        "child watch untouched"
    );
}

#[test]
fn data_changed_fires_data_table_only() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Data);
    add(&mut watches, 2, "/a", WatchKind::Child);
    add(&mut watches, 3, "/a/b", WatchKind::Data);
    assert_eq!(
        fire(&mut watches, "/a", ChangeKind::DataChanged),
        [(1, EventType::NodeDataChanged)]
    );
    assert_eq!(watches.watch_count(), 2);
}

#[test]
fn children_changed_fires_child_table_only() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Data);
    add(&mut watches, 2, "/a", WatchKind::Child);
    assert_eq!(
        fire(&mut watches, "/a", ChangeKind::ChildrenChanged),
        [(2, EventType::NodeChildrenChanged)]
    );
    assert!(!watches.contains(2, "/a", WatcherType::Children));
    assert!(watches.contains(1, "/a", WatcherType::Data));
}

#[test]
fn children_changed_is_not_suppressed_by_earlier_events_in_out() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Child);
    let mut out = vec![(1, WatchedEvent::node(EventType::NodeCreated, "/a/x", ZXID))];
    let change = Change::open("/a", ChangeKind::ChildrenChanged);
    watches.fire(&change, ZXID, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].1.event_type, EventType::NodeChildrenChanged);
}

#[test]
fn deleted_fires_data_and_child_watches_once_per_session() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Data);
    add(&mut watches, 1, "/a", WatchKind::Child);
    add(&mut watches, 2, "/a", WatchKind::Child);
    add(&mut watches, 3, "/a", WatchKind::Data);
    assert_eq!(
        fire(&mut watches, "/a", ChangeKind::Deleted),
        [
            (1, EventType::NodeDeleted),
            (3, EventType::NodeDeleted),
            (2, EventType::NodeDeleted)
        ],
        "data pass in session order, then the child pass without session 1"
    );
    // Session 1's child watch was suppressed, not kept: DataTree.deleteNode still triggers it.
    assert!(!watches.contains(1, "/a", WatcherType::Children));
    assert_eq!(watches.watch_count(), 0);
}

#[test]
fn data_and_exists_watch_on_same_path_fire_once() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Data); // getData
    add(&mut watches, 1, "/a", WatchKind::Data); // exists
    assert_eq!(watches.session_watch_count(1), 1);
    assert_eq!(
        fire(&mut watches, "/a", ChangeKind::DataChanged),
        [(1, EventType::NodeDataChanged)]
    );
    assert!(fire(&mut watches, "/a", ChangeKind::DataChanged).is_empty());
}

#[test]
fn persistent_watch_stays_and_fires_for_data_and_children() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Persistent);
    assert_eq!(watches.session_watch_count(1), 2, "one entry in each table");
    for _ in 0..2 {
        assert_eq!(
            fire(&mut watches, "/a", ChangeKind::DataChanged),
            [(1, EventType::NodeDataChanged)]
        );
        assert_eq!(
            fire(&mut watches, "/a", ChangeKind::ChildrenChanged),
            [(1, EventType::NodeChildrenChanged)]
        );
    }
    assert_eq!(
        fire(&mut watches, "/a", ChangeKind::Deleted),
        [(1, EventType::NodeDeleted)]
    );
    assert_eq!(
        fire(&mut watches, "/a", ChangeKind::Created),
        [(1, EventType::NodeCreated)]
    );
    assert!(
        fire(&mut watches, "/a/b", ChangeKind::Created).is_empty(),
        "not recursive"
    );
    assert!(watches.contains(1, "/a", WatcherType::Persistent));
}

#[test]
fn standard_and_persistent_on_same_path_fire_once_and_standard_is_used_up() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Data);
    add(&mut watches, 1, "/a", WatchKind::Persistent);
    assert_eq!(
        fire(&mut watches, "/a", ChangeKind::DataChanged),
        [(1, EventType::NodeDataChanged)]
    );
    assert!(!watches.contains(1, "/a", WatcherType::Data));
    assert!(watches.contains(1, "/a", WatcherType::Persistent));
}

#[test]
fn recursive_watch_fires_for_descendants_but_not_children_changed() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::PersistentRecursive);
    assert_eq!(
        fire(&mut watches, "/a/b/c", ChangeKind::Created),
        [(1, EventType::NodeCreated)]
    );
    assert_eq!(
        fire(&mut watches, "/a/b", ChangeKind::DataChanged),
        [(1, EventType::NodeDataChanged)]
    );
    assert_eq!(
        fire(&mut watches, "/a/b/c", ChangeKind::Deleted),
        [(1, EventType::NodeDeleted)]
    );
    assert_eq!(
        fire(&mut watches, "/a", ChangeKind::DataChanged),
        [(1, EventType::NodeDataChanged)]
    );
    // Recursive watches live only in the data table, so children changes never reach them.
    assert!(fire(&mut watches, "/a", ChangeKind::ChildrenChanged).is_empty());
    assert!(fire(&mut watches, "/a/b", ChangeKind::ChildrenChanged).is_empty());
    // A sibling with the same prefix is not a descendant.
    assert!(fire(&mut watches, "/ab", ChangeKind::Created).is_empty());
    assert!(fire(&mut watches, "/", ChangeKind::DataChanged).is_empty());
    assert_eq!(watches.watch_count(), 1);
}

#[test]
fn ancestors_fire_only_their_recursive_watches() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::PersistentRecursive);
    add(&mut watches, 2, "/a", WatchKind::Data);
    add(&mut watches, 3, "/a", WatchKind::Persistent);
    assert_eq!(
        fire(&mut watches, "/a/b", ChangeKind::Created),
        [(1, EventType::NodeCreated)]
    );
    assert!(
        watches.contains(2, "/a", WatcherType::Data),
        "a parent's one-shot watch stays"
    );
}

#[test]
fn recursive_at_root_and_several_levels_give_one_event_per_session_in_order() {
    let mut watches = registry();
    add(&mut watches, 9, "/", WatchKind::PersistentRecursive);
    add(&mut watches, 5, "/a", WatchKind::PersistentRecursive);
    add(&mut watches, 5, "/a/b", WatchKind::PersistentRecursive);
    add(&mut watches, 5, "/a/b", WatchKind::Data);
    add(&mut watches, 7, "/a/b", WatchKind::Data);
    assert_eq!(
        fire(&mut watches, "/a/b", ChangeKind::DataChanged),
        [
            (5, EventType::NodeDataChanged),
            (7, EventType::NodeDataChanged),
            (9, EventType::NodeDataChanged)
        ]
    );
    assert_eq!(
        fire(&mut watches, "/", ChangeKind::DataChanged),
        [(9, EventType::NodeDataChanged)]
    );
    assert!(!watches.contains(5, "/a/b", WatcherType::Data));
    assert!(watches.contains(5, "/a/b", WatcherType::PersistentRecursive));
}

#[test]
fn deleted_with_recursive_ancestor_and_child_watch_dedups() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::PersistentRecursive);
    add(&mut watches, 1, "/a/b", WatchKind::Child);
    add(&mut watches, 2, "/a/b", WatchKind::Persistent);
    assert_eq!(
        fire(&mut watches, "/a/b", ChangeKind::Deleted),
        [(1, EventType::NodeDeleted), (2, EventType::NodeDeleted)]
    );
    assert!(!watches.contains(1, "/a/b", WatcherType::Children));
    assert!(watches.contains(2, "/a/b", WatcherType::Persistent));
}

#[test]
fn firing_where_nothing_watches_allocates_nothing() {
    let mut watches = registry();
    add(&mut watches, 1, "/other", WatchKind::Data);
    let mut out = Vec::new();
    for kind in [
        ChangeKind::Created,
        ChangeKind::Deleted,
        ChangeKind::DataChanged,
        ChangeKind::ChildrenChanged,
    ] {
        watches.fire(&Change::open("/a/b", kind), ZXID, &mut out);
    }
    assert!(out.is_empty());
    assert_eq!(out.capacity(), 0);
    assert_eq!(
        watches.notified.capacity(),
        0,
        "no scratch buffer was needed"
    );
}

#[test]
fn remove_and_contains_by_watcher_type() {
    let mut watches = registry();
    let all = |watches: &mut WatchRegistry| {
        add(watches, 1, "/a", WatchKind::Data);
        add(watches, 1, "/a", WatchKind::Child);
        add(watches, 1, "/a", WatchKind::Persistent);
        add(watches, 1, "/a", WatchKind::PersistentRecursive);
    };
    all(&mut watches);
    for watcher_type in [
        WatcherType::Children,
        WatcherType::Data,
        WatcherType::Persistent,
        WatcherType::PersistentRecursive,
        WatcherType::Any,
    ] {
        assert!(watches.contains(1, "/a", watcher_type), "{watcher_type:?}");
        assert!(!watches.contains(2, "/a", watcher_type), "{watcher_type:?}");
        assert!(!watches.contains(1, "/b", watcher_type), "{watcher_type:?}");
    }

    assert!(watches.remove(1, "/a", WatcherType::Children));
    assert!(!watches.contains(1, "/a", WatcherType::Children));
    assert!(
        !watches.remove(1, "/a", WatcherType::Children),
        "already gone"
    );
    assert!(watches.contains(1, "/a", WatcherType::Data));

    assert!(watches.remove(1, "/a", WatcherType::Data));
    assert!(!watches.contains(1, "/a", WatcherType::Data));
    assert!(watches.contains(1, "/a", WatcherType::Persistent));

    assert!(watches.remove(1, "/a", WatcherType::Persistent));
    assert!(!watches.contains(1, "/a", WatcherType::Persistent));
    assert!(!watches.remove(1, "/a", WatcherType::Persistent));
    assert!(watches.contains(1, "/a", WatcherType::PersistentRecursive));
    assert_eq!(
        watches.session_watch_count(1),
        1,
        "only the data table's recursive entry left"
    );

    assert!(watches.remove(1, "/a", WatcherType::PersistentRecursive));
    assert!(!watches.contains(1, "/a", WatcherType::Any));
    assert!(!watches.remove(1, "/a", WatcherType::Any));
    assert_eq!(watches.watch_count(), 0);
    watches.check_invariants();

    all(&mut watches);
    assert!(watches.remove(1, "/a", WatcherType::Any));
    assert!(!watches.contains(1, "/a", WatcherType::Any));
    assert_eq!(watches.watch_count(), 0);
    watches.check_invariants();
}

#[test]
fn removing_recursive_watch_stops_ancestor_firing() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::PersistentRecursive);
    assert!(watches.remove(1, "/a", WatcherType::PersistentRecursive));
    assert!(fire(&mut watches, "/a/b", ChangeKind::Created).is_empty());
    assert_eq!(watches.data.recursive_watch_count(), 0);
}

#[test]
fn any_matches_child_only_watch() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Child);
    assert!(watches.contains(1, "/a", WatcherType::Any));
    assert!(!watches.contains(1, "/a", WatcherType::Data));
    assert!(watches.remove(1, "/a", WatcherType::Any));
    assert!(!watches.contains(1, "/a", WatcherType::Any));
}

#[test]
fn cap_rejects_new_entries_and_adds_nothing() {
    let mut watches = WatchRegistry::new(3);
    add(&mut watches, 1, "/a", WatchKind::Data);
    add(&mut watches, 1, "/b", WatchKind::Data);
    // Persistent needs an entry in each table; only one is left, so neither is added.
    assert_eq!(
        watches.add(1, "/c", WatchKind::Persistent),
        Err(ErrorCode::QuotaExceeded)
    );
    assert!(!watches.contains(1, "/c", WatcherType::Any));
    assert_eq!(watches.session_watch_count(1), 2);
    watches.check_invariants();

    add(&mut watches, 1, "/c", WatchKind::Child);
    assert_eq!(
        watches.add(1, "/d", WatchKind::Data),
        Err(ErrorCode::QuotaExceeded)
    );
    // Re-adding a held watch, or adding a mode to an existing entry, is not a new entry.
    add(&mut watches, 1, "/a", WatchKind::Data);
    add(&mut watches, 1, "/a", WatchKind::PersistentRecursive);
    assert_eq!(watches.session_watch_count(1), 3);
    // The cap is per session.
    add(&mut watches, 2, "/d", WatchKind::Data);
    // A fired one-shot watch frees its slot.
    fire(&mut watches, "/b", ChangeKind::DataChanged);
    add(&mut watches, 1, "/d", WatchKind::Data);
}

#[test]
fn remove_session_drops_everything() {
    let mut watches = registry();
    add(&mut watches, 1, "/a", WatchKind::Data);
    add(&mut watches, 1, "/a", WatchKind::Persistent);
    add(&mut watches, 1, "/", WatchKind::PersistentRecursive);
    add(&mut watches, 2, "/a", WatchKind::Child);
    watches.remove_session(1);
    watches.check_invariants();
    assert_eq!(watches.session_watch_count(1), 0);
    assert_eq!(watches.watch_count(), 1);
    assert_eq!(watches.data.recursive_watch_count(), 0);
    assert!(fire(&mut watches, "/a", ChangeKind::DataChanged).is_empty());
    watches.remove_session(1); // unknown session: nothing to do
    watches.remove_session(2);
    assert_eq!(watches.watch_count(), 0);
}

#[test]
fn reports_follow_zookeeper() {
    let mut watches = registry();
    add(&mut watches, 2, "/a", WatchKind::Data);
    add(&mut watches, 1, "/a", WatchKind::Data);
    add(&mut watches, 1, "/b", WatchKind::Persistent);
    add(&mut watches, 3, "/c", WatchKind::Child);
    assert_eq!(
        watches.watch_count(),
        5,
        "both tables, like mntr's zk_watch_count"
    );
    assert_eq!(watches.session_watch_count(1), 3);
    assert_eq!(watches.session_watch_count(3), 1);
    let by_session = watches.paths_by_session();
    assert_eq!(by_session.len(), 2, "wchc lists the data table only");
    assert_eq!(
        by_session[&1],
        BTreeSet::from(["/a".to_owned(), "/b".to_owned()])
    );
    assert_eq!(by_session[&2], BTreeSet::from(["/a".to_owned()]));
    let by_path = watches.sessions_by_path();
    assert_eq!(by_path.len(), 2, "wchp lists the data table only");
    assert_eq!(by_path["/a"], BTreeSet::from([1, 2]));
    assert_eq!(by_path["/b"], BTreeSet::from([1]));
}

#[test]
fn path_is_stored_once_for_both_tables_and_all_sessions() {
    let mut watches = registry();
    add(&mut watches, 1, "/shared", WatchKind::Data);
    add(&mut watches, 2, "/shared", WatchKind::Persistent);
    add(&mut watches, 3, "/shared", WatchKind::Child);
    let data_key = watches.data.shared_key("/shared").unwrap();
    let child_key = watches.child.shared_key("/shared").unwrap();
    assert!(Arc::ptr_eq(&data_key, &child_key));
}

#[test]
fn add_watch_mode_maps_to_kind() {
    assert_eq!(
        WatchKind::from(AddWatchMode::Persistent),
        WatchKind::Persistent
    );
    assert_eq!(
        WatchKind::from(AddWatchMode::PersistentRecursive),
        WatchKind::PersistentRecursive
    );
}

#[test]
fn parent_walks_like_path_parent_iterator() {
    assert_eq!(parent("/a/b/c"), Some("/a/b"));
    assert_eq!(parent("/a"), Some("/"));
    assert_eq!(parent("/"), None);
}
