//! Guards against apply drifting from ZooKeeper's Stats, indexes and change order, and against
//! an invalid Txn leaving the tree half changed.

use super::*;
use crate::proto::{Id, Perms};
use crate::tree::{Change, ChangeKind};

pub(super) const SESSION_A: i64 = 0x0100_0000_0000_0001;
pub(super) const SESSION_B: i64 = 0x0100_0000_0000_0002;

pub(super) fn txn(time_ms: i64, op: TxnOp) -> Txn {
    Txn { time_ms, op }
}

/// A create as prepare would make it: the parent's next cversion comes from the tree.
pub(super) fn create_op(tree: &DataTree, path: &str, data: &[u8], ephemeral_owner: i64) -> TxnOp {
    let parent_creates = tree.get(path::parent(path)).map_or(0, Znode::child_creates);
    TxnOp::Create {
        path: path.to_owned(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        ephemeral_owner,
        parent_cversion: parent_creates + 1,
    }
}

pub(super) fn create(tree: &mut DataTree, zxid: i64, path: &str, ephemeral_owner: i64) -> Applied {
    let op = create_op(tree, path, b"", ephemeral_owner);
    tree.apply(zxid, &txn(zxid * 100, op))
}

pub(super) fn delete(tree: &mut DataTree, zxid: i64, path: &str) -> Applied {
    tree.apply(
        zxid,
        &txn(
            zxid * 100,
            TxnOp::Delete {
                path: path.to_owned(),
            },
        ),
    )
}

pub(super) fn change(path: &str, kind: ChangeKind) -> Change {
    Change::open(path, kind)
}

/// Everything a client or the reaper could observe, to prove a failed op changed nothing.
pub(super) fn observable(tree: &DataTree) -> Vec<String> {
    let mut lines: Vec<String> = tree
        .nodes
        .iter()
        .map(|node| {
            let children = tree.child_names(node);
            format!(
                "{} {:?} {:?} {:?} {children:?} {}",
                node.path(),
                node.stat(),
                node.data(),
                node.acl(),
                node.cversion
            )
        })
        .collect();
    lines.sort();
    let mut sessions: Vec<i64> = tree.ephemerals.keys().copied().collect();
    sessions.sort_unstable();
    for session_id in sessions {
        lines.push(format!(
            "ephemerals {session_id} {:?}",
            tree.ephemerals(session_id)
        ));
    }
    lines.push(format!(
        "containers {:?} ttls {:?}",
        tree.containers, tree.ttls
    ));
    lines.push(format!(
        "sessions {:?}",
        tree.sessions().collect::<Vec<_>>()
    ));
    lines.push(format!("acls {}", tree.distinct_acl_count()));
    lines
}

fn system_stat(cversion: i32, aversion: i32, num_children: i32) -> Stat {
    Stat {
        cversion,
        aversion,
        num_children,
        ..Stat::default()
    }
}

#[test]
fn a_new_tree_is_what_a_fresh_zookeeper_shows() {
    let tree = DataTree::new();
    assert_eq!(tree.stat("/"), Some(system_stat(-1, 0, 1)));
    assert_eq!(tree.stat("/zookeeper"), Some(system_stat(-2, 0, 2)));
    assert_eq!(tree.stat("/zookeeper/quota"), Some(system_stat(0, 0, 0)));
    assert_eq!(tree.stat("/zookeeper/config"), Some(system_stat(0, -1, 0)));
    assert_eq!(tree.children("/"), Some(vec!["zookeeper".to_owned()]));
    assert_eq!(
        tree.children("/zookeeper"),
        Some(vec!["config".to_owned(), "quota".to_owned()])
    );
    for path in ["/", "/zookeeper", "/zookeeper/quota"] {
        assert_eq!(
            tree.get(path).map(Znode::acl),
            Some(&Acl::open_unsafe()[..]),
            "{path}"
        );
    }
    assert_eq!(
        tree.get("/zookeeper/config").map(Znode::acl),
        Some(&Acl::read_unsafe()[..])
    );
    assert!(tree
        .get("/zookeeper/config")
        .is_some_and(|node| node.data() == Some(&[][..])));
    assert_eq!(tree.node_count(), 4);
    assert_eq!(tree.all_children_number("/"), Some(3));
    assert_eq!(tree.all_children_number("/zookeeper"), Some(2));
    assert_eq!(tree.all_children_number("/zookeeper/quota"), Some(0));
    assert_eq!(tree.all_children_number("/missing"), None);
    assert_eq!(tree.last_zxid(), 0);
    assert_eq!(tree.sessions().count(), 0);
    assert_eq!(tree.distinct_acl_count(), 2);
    assert!(tree.reap_candidates(i64::MAX).is_empty());
}

#[test]
fn create_sets_every_stat_field_and_moves_the_parent() {
    let mut tree = DataTree::new();
    let op = create_op(&tree, "/a", b"hello", 0);
    let applied = tree.apply(5, &txn(1000, op));
    let stat = Stat {
        czxid: 5,
        mzxid: 5,
        ctime: 1000,
        mtime: 1000,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 5,
        num_children: 0,
        pzxid: 5,
    };
    assert_eq!(
        applied.result,
        Ok(TxnResult::Created {
            path: "/a".to_owned(),
            stat
        })
    );
    assert_eq!(
        applied.changes,
        [
            change("/a", ChangeKind::Created),
            change("/", ChangeKind::ChildrenChanged)
        ]
    );
    assert_eq!(tree.stat("/a"), Some(stat));
    assert_eq!(tree.get("/a").map(Znode::data), Some(Some(&b"hello"[..])));
    // Root: one create stored, two children: 2 * 1 - 2 = 0 for clients.
    let root = tree.stat("/").unwrap_or_default();
    assert_eq!(
        (root.cversion, root.pzxid, root.num_children, root.mzxid),
        (0, 5, 2, 0)
    );
    assert_eq!(tree.get("/").map(Znode::child_creates), Some(1));
    assert_eq!(
        tree.children("/"),
        Some(vec!["a".to_owned(), "zookeeper".to_owned()])
    );
    assert_eq!(tree.last_zxid(), 5);
    assert_eq!(tree.node_count(), 5);
}

#[test]
fn a_replayed_older_parent_cversion_does_not_rewind_the_parent() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/p", 0);
    create(&mut tree, 2, "/p/a", 0);
    create(&mut tree, 3, "/p/b", 0);
    let op = TxnOp::Create {
        path: "/p/c".to_owned(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        ephemeral_owner: 0,
        parent_cversion: 1,
    };
    assert!(tree.apply(4, &txn(400, op)).result.is_ok());
    let parent = tree
        .get("/p")
        .map(|node| (node.child_creates(), node.stat().pzxid));
    assert_eq!(parent, Some((2, 3)));
    assert_eq!(tree.stat("/p/c").map(|stat| stat.czxid), Some(4));
}

#[test]
fn failed_creates_change_nothing() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/a", 0);
    create(&mut tree, 2, "/e", SESSION_A);
    let before = observable(&tree);
    for (path, error) in [
        ("/missing/child", ErrorCode::NoNode),
        ("/a", ErrorCode::NodeExists),
        ("/", ErrorCode::NodeExists),
        ("/zookeeper", ErrorCode::NodeExists),
        ("/e/child", ErrorCode::NoChildrenForEphemerals),
        ("/a/", ErrorCode::BadArguments),
        ("a", ErrorCode::BadArguments),
        ("", ErrorCode::BadArguments),
    ] {
        let op = TxnOp::Create {
            path: path.to_owned(),
            data: Some(b"x".to_vec()),
            acl: Acl::read_unsafe(),
            ephemeral_owner: 0,
            parent_cversion: 100,
        };
        let applied = tree.apply(10, &txn(1000, op));
        assert_eq!(applied.result, Err(error), "{path:?}");
        assert!(applied.changes.is_empty());
        assert_eq!(observable(&tree), before, "{path:?}");
    }
    assert_eq!(tree.last_zxid(), 10, "a failed Txn still consumed its zxid");
}

#[test]
fn delete_moves_pzxid_but_not_the_stored_cversion() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/p", 0);
    create(&mut tree, 2, "/p/a", 0);
    create(&mut tree, 3, "/p/b", 0);
    let applied = delete(&mut tree, 4, "/p/a");
    assert_eq!(applied.result, Ok(TxnResult::Deleted));
    assert_eq!(
        applied.changes,
        [
            change("/p/a", ChangeKind::Deleted),
            change("/p", ChangeKind::ChildrenChanged)
        ]
    );
    assert_eq!(tree.get("/p/a"), None);
    let parent = tree.stat("/p").unwrap_or_default();
    // As the real server showed: two creates and one delete read as cversion 3.
    assert_eq!(
        (
            parent.cversion,
            parent.num_children,
            parent.pzxid,
            parent.mzxid
        ),
        (3, 1, 4, 1)
    );
    assert_eq!(tree.get("/p").map(Znode::child_creates), Some(2));
    assert_eq!(tree.children("/p"), Some(vec!["b".to_owned()]));
    assert_eq!(tree.node_count(), 6);
}

#[test]
fn delete_never_moves_pzxid_backwards() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/p", 0);
    create(&mut tree, 2, "/p/a", 0);
    create(&mut tree, 9, "/p/b", 0);
    assert!(delete(&mut tree, 5, "/p/a").result.is_ok());
    assert_eq!(tree.stat("/p").map(|stat| stat.pzxid), Some(9));
}

#[test]
fn failed_deletes_change_nothing() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/p", 0);
    create(&mut tree, 2, "/p/a", 0);
    let before = observable(&tree);
    for (path, error) in [
        ("/missing", ErrorCode::NoNode),
        ("/p", ErrorCode::NotEmpty),
        ("/zookeeper", ErrorCode::NotEmpty),
        ("/", ErrorCode::BadArguments),
        ("", ErrorCode::NoNode),
    ] {
        let applied = delete(&mut tree, 3, path);
        assert_eq!(applied.result, Err(error), "{path:?}");
        assert!(applied.changes.is_empty());
        assert_eq!(observable(&tree), before, "{path:?}");
    }
}

#[test]
fn set_data_sets_data_mtime_mzxid_and_version_only() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/a", 0);
    let op = TxnOp::SetData {
        path: "/a".to_owned(),
        data: Some(b"new".to_vec()),
        version: 7,
    };
    let applied = tree.apply(2, &txn(5000, op));
    let stat = Stat {
        czxid: 1,
        mzxid: 2,
        ctime: 100,
        mtime: 5000,
        version: 7,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 3,
        num_children: 0,
        pzxid: 1,
    };
    assert_eq!(applied.result, Ok(TxnResult::Stat(stat)));
    assert_eq!(applied.changes, [change("/a", ChangeKind::DataChanged)]);
    assert_eq!(tree.get("/a").map(Znode::data), Some(Some(&b"new"[..])));
    assert_eq!(tree.stat("/a"), Some(stat));

    let before = observable(&tree);
    let op = TxnOp::SetData {
        path: "/b".to_owned(),
        data: Some(vec![]),
        version: 1,
    };
    let applied = tree.apply(3, &txn(6000, op));
    assert_eq!(
        (applied.result, applied.changes),
        (Err(ErrorCode::NoNode), vec![])
    );
    assert_eq!(observable(&tree), before);
}

#[test]
fn set_acl_sets_acl_and_aversion_and_fires_nothing() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/a", 0);
    let acl = vec![Acl::new(Perms::READ, Id::new("digest", "u:h"))];
    let op = TxnOp::SetAcl {
        path: "/a".to_owned(),
        acl: acl.clone(),
        version: 1,
    };
    let applied = tree.apply(2, &txn(5000, op));
    let expected = Stat {
        czxid: 1,
        mzxid: 1,
        ctime: 100,
        mtime: 100,
        aversion: 1,
        pzxid: 1,
        ..Stat::default()
    };
    assert_eq!(applied.result, Ok(TxnResult::Stat(expected)));
    assert!(applied.changes.is_empty());
    assert_eq!(tree.get("/a").map(Znode::acl), Some(&acl[..]));
    assert_eq!(tree.last_zxid(), 2);

    let before = observable(&tree);
    let op = TxnOp::SetAcl {
        path: "/b".to_owned(),
        acl,
        version: 1,
    };
    assert_eq!(tree.apply(3, &txn(0, op)).result, Err(ErrorCode::NoNode));
    assert_eq!(observable(&tree), before);
}

#[test]
fn equal_acls_are_stored_once() {
    let mut tree = DataTree::new();
    for zxid in 1..=100 {
        create(&mut tree, zxid, &format!("/n{zxid}"), 0);
    }
    assert_eq!(tree.distinct_acl_count(), 2);
    let first = tree.get("/n1").map(|node| node.acl().as_ptr());
    assert_eq!(first, tree.get("/n100").map(|node| node.acl().as_ptr()));
    assert_eq!(first, tree.get("/").map(|node| node.acl().as_ptr()));

    let custom = vec![Acl::new(Perms::ALL, Id::new("ip", "10.0.0.0/8"))];
    let op = TxnOp::SetAcl {
        path: "/n1".to_owned(),
        acl: custom.clone(),
        version: 1,
    };
    tree.apply(101, &txn(0, op));
    assert_eq!(tree.distinct_acl_count(), 3);
    let op = TxnOp::SetAcl {
        path: "/n1".to_owned(),
        acl: Acl::open_unsafe(),
        version: 2,
    };
    tree.apply(102, &txn(0, op));
    assert_eq!(
        tree.distinct_acl_count(),
        2,
        "an ACL no znode uses is forgotten"
    );
    let op = TxnOp::SetAcl {
        path: "/n2".to_owned(),
        acl: custom,
        version: 1,
    };
    tree.apply(103, &txn(0, op));
    delete(&mut tree, 104, "/n2");
    assert_eq!(tree.distinct_acl_count(), 2);
}

#[test]
fn check_changes_nothing() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/a", 0);
    let before = observable(&tree);
    let applied = tree.apply(
        2,
        &txn(
            0,
            TxnOp::Check {
                path: "/a".to_owned(),
            },
        ),
    );
    assert_eq!(
        (applied.result, applied.changes),
        (Ok(TxnResult::Checked), vec![])
    );
    let applied = tree.apply(
        3,
        &txn(
            0,
            TxnOp::Check {
                path: "/b".to_owned(),
            },
        ),
    );
    assert_eq!(applied.result, Err(ErrorCode::NoNode));
    assert_eq!(observable(&tree), before);
    assert_eq!(tree.last_zxid(), 3);
}

#[test]
fn multi_applies_in_order_under_one_zxid_and_concatenates_changes() {
    let mut tree = DataTree::new();
    let ops = vec![
        create_op(&tree, "/m", b"", 0),
        TxnOp::Create {
            path: "/m/c".to_owned(),
            data: Some(vec![]),
            acl: Acl::open_unsafe(),
            ephemeral_owner: 0,
            parent_cversion: 1,
        },
        TxnOp::Check {
            path: "/m".to_owned(),
        },
        TxnOp::SetData {
            path: "/m".to_owned(),
            data: Some(b"d".to_vec()),
            version: 1,
        },
        TxnOp::Delete {
            path: "/m/c".to_owned(),
        },
    ];
    let applied = tree.apply(7, &txn(700, TxnOp::Multi(ops)));
    let Ok(TxnResult::Multi(results)) = applied.result else {
        panic!("multi failed: {:?}", applied.result);
    };
    assert_eq!(results.len(), 5);
    assert!(
        matches!(&results[0], Ok(TxnResult::Created { path, stat }) if path == "/m" && stat.czxid == 7)
    );
    assert!(matches!(&results[1], Ok(TxnResult::Created { path, .. }) if path == "/m/c"));
    assert_eq!(results[2], Ok(TxnResult::Checked));
    assert!(
        matches!(&results[3], Ok(TxnResult::Stat(stat)) if stat.version == 1 && stat.mzxid == 7)
    );
    assert_eq!(results[4], Ok(TxnResult::Deleted));
    assert_eq!(
        applied.changes,
        [
            change("/m", ChangeKind::Created),
            change("/", ChangeKind::ChildrenChanged),
            change("/m/c", ChangeKind::Created),
            change("/m", ChangeKind::ChildrenChanged),
            change("/m", ChangeKind::DataChanged),
            change("/m/c", ChangeKind::Deleted),
            change("/m", ChangeKind::ChildrenChanged),
        ]
    );
    let stat = tree.stat("/m").unwrap_or_default();
    assert_eq!(
        (
            stat.czxid,
            stat.mzxid,
            stat.pzxid,
            stat.mtime,
            stat.cversion
        ),
        (7, 7, 7, 700, 2)
    );
}

#[test]
fn a_failing_multi_slot_reports_its_error_and_the_rest_still_apply() {
    let mut tree = DataTree::new();
    let ops = vec![
        create_op(&tree, "/x", b"", 0),
        TxnOp::Delete {
            path: "/missing".to_owned(),
        },
        TxnOp::SetData {
            path: "/x".to_owned(),
            data: Some(b"d".to_vec()),
            version: 1,
        },
    ];
    let applied = tree.apply(3, &txn(0, TxnOp::Multi(ops)));
    let Ok(TxnResult::Multi(results)) = applied.result else {
        panic!("multi failed: {:?}", applied.result);
    };
    assert!(results[0].is_ok());
    assert_eq!(results[1], Err(ErrorCode::NoNode));
    assert!(results[2].is_ok());
    assert_eq!(applied.changes.len(), 3);
    assert_eq!(tree.stat("/x").map(|stat| stat.version), Some(1));
}
