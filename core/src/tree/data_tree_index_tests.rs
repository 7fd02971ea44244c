//! Guards against the session table and the ephemeral, container and TTL indexes drifting from
//! the znodes, and against close-session and the reaper disagreeing with ZooKeeper.

use super::tests::{change, create, delete, observable, txn, SESSION_A, SESSION_B};
use super::*;
use crate::proto::CONTAINER_EPHEMERAL_OWNER;
use crate::tree::{ttl_owner, ChangeKind};

#[test]
fn sessions_are_recorded_once_and_listed_in_id_order() {
    let mut tree = DataTree::new();
    let open = |session_id, timeout_ms, byte| TxnOp::CreateSession {
        session_id,
        timeout_ms,
        password: [byte; 16],
    };
    assert_eq!(
        tree.apply(1, &txn(0, open(SESSION_B, 10_000, 2))).result,
        Ok(TxnResult::SessionCreated)
    );
    assert_eq!(
        tree.apply(2, &txn(0, open(SESSION_A, 30_000, 1))).result,
        Ok(TxnResult::SessionCreated)
    );
    let replayed = tree.apply(3, &txn(0, open(SESSION_A, 5_000, 9)));
    assert_eq!(
        (replayed.result, replayed.changes),
        (Ok(TxnResult::SessionCreated), vec![])
    );
    let record_a = SessionRecord {
        timeout_ms: 30_000,
        password: [1; 16],
    };
    let record_b = SessionRecord {
        timeout_ms: 10_000,
        password: [2; 16],
    };
    assert_eq!(tree.session(SESSION_A), Some(&record_a));
    assert_eq!(
        tree.sessions().collect::<Vec<_>>(),
        [(SESSION_A, &record_a), (SESSION_B, &record_b)]
    );
    assert_eq!(tree.session(42), None);
}

#[test]
fn ephemerals_are_indexed_by_session_and_shown_with_their_owner() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/p", 0);
    create(&mut tree, 2, "/p/z", SESSION_A);
    create(&mut tree, 3, "/e", SESSION_A);
    create(&mut tree, 4, "/p/b", SESSION_B);
    assert_eq!(tree.ephemerals(SESSION_A), ["/e", "/p/z"]);
    assert_eq!(tree.ephemerals(SESSION_B), ["/p/b"]);
    assert!(tree.ephemerals(42).is_empty());
    assert_eq!(
        tree.stat("/e").map(|stat| stat.ephemeral_owner),
        Some(SESSION_A)
    );
    delete(&mut tree, 5, "/e");
    assert_eq!(tree.ephemerals(SESSION_A), ["/p/z"]);
    delete(&mut tree, 6, "/p/z");
    assert!(tree.ephemerals(SESSION_A).is_empty());
    assert!(
        !tree.ephemerals.contains_key(&SESSION_A),
        "no empty index entries linger"
    );
}

#[test]
fn close_session_deletes_its_ephemerals_in_path_order() {
    let mut tree = DataTree::new();
    let open = TxnOp::CreateSession {
        session_id: SESSION_A,
        timeout_ms: 1000,
        password: [0; 16],
    };
    tree.apply(1, &txn(0, open));
    create(&mut tree, 2, "/p", 0);
    create(&mut tree, 3, "/p/z", SESSION_A);
    create(&mut tree, 4, "/b", SESSION_A);
    create(&mut tree, 5, "/keep", SESSION_B);
    let applied = tree.apply(
        6,
        &txn(
            600,
            TxnOp::CloseSession {
                session_id: SESSION_A,
            },
        ),
    );
    let deleted = vec!["/b".to_owned(), "/p/z".to_owned()];
    assert_eq!(applied.result, Ok(TxnResult::SessionClosed { deleted }));
    assert_eq!(
        applied.changes,
        [
            change("/b", ChangeKind::Deleted),
            change("/", ChangeKind::ChildrenChanged),
            change("/p/z", ChangeKind::Deleted),
            change("/p", ChangeKind::ChildrenChanged),
        ]
    );
    assert_eq!(tree.session(SESSION_A), None);
    assert!(tree.ephemerals(SESSION_A).is_empty());
    assert_eq!(tree.get("/b"), None);
    assert_eq!(
        tree.stat("/p").map(|stat| (stat.pzxid, stat.num_children)),
        Some((6, 0))
    );
    assert_eq!(tree.ephemerals(SESSION_B), ["/keep"]);

    let before = observable(&tree);
    let again = tree.apply(
        7,
        &txn(
            700,
            TxnOp::CloseSession {
                session_id: SESSION_A,
            },
        ),
    );
    assert_eq!(
        (again.result, again.changes),
        (Err(ErrorCode::UnknownSession), vec![])
    );
    assert_eq!(observable(&tree), before);
}

#[test]
fn close_session_without_ephemerals_just_forgets_it() {
    let mut tree = DataTree::new();
    let open = TxnOp::CreateSession {
        session_id: SESSION_A,
        timeout_ms: 1000,
        password: [0; 16],
    };
    tree.apply(1, &txn(0, open));
    let applied = tree.apply(
        2,
        &txn(
            0,
            TxnOp::CloseSession {
                session_id: SESSION_A,
            },
        ),
    );
    assert_eq!(
        applied.result,
        Ok(TxnResult::SessionClosed { deleted: vec![] })
    );
    assert!(applied.changes.is_empty());
    assert_eq!(tree.sessions().count(), 0);
}

#[test]
fn containers_are_reaped_once_they_had_children_and_have_none() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/c", CONTAINER_EPHEMERAL_OWNER);
    create(&mut tree, 2, "/d", CONTAINER_EPHEMERAL_OWNER);
    assert_eq!(
        tree.stat("/c").map(|stat| stat.ephemeral_owner),
        Some(0),
        "clients see 0"
    );
    assert!(
        tree.reap_candidates(i64::MAX).is_empty(),
        "never used: kept"
    );
    create(&mut tree, 3, "/c/x", 0);
    create(&mut tree, 4, "/d/x", 0);
    assert!(tree.reap_candidates(0).is_empty(), "has a child: kept");
    delete(&mut tree, 5, "/d/x");
    delete(&mut tree, 6, "/c/x");
    // Matches the real server: container /c after one create and one delete reads cversion 2.
    assert_eq!(tree.stat("/c").map(|stat| stat.cversion), Some(2));
    assert_eq!(tree.reap_candidates(0), ["/c", "/d"]);
    delete(&mut tree, 7, "/c");
    assert_eq!(tree.reap_candidates(0), ["/d"]);
    assert!(!tree.containers.contains("/c"));
}

#[test]
fn ttl_znodes_are_reaped_when_childless_and_unmodified_past_their_ttl() {
    let mut tree = DataTree::new();
    // Created at time 100 (zxid * 100) with a 1000 ms TTL.
    create(&mut tree, 1, "/t", ttl_owner(1000));
    assert_eq!(
        tree.stat("/t").map(|stat| stat.ephemeral_owner),
        Some(0),
        "clients see 0"
    );
    assert!(
        tree.reap_candidates(1100).is_empty(),
        "exactly the TTL: kept"
    );
    assert_eq!(tree.reap_candidates(1101), ["/t"]);
    let op = TxnOp::SetData {
        path: "/t".to_owned(),
        data: Some(vec![]),
        version: 1,
    };
    tree.apply(2, &txn(5000, op));
    assert!(
        tree.reap_candidates(6000).is_empty(),
        "setData refreshed mtime"
    );
    assert_eq!(tree.reap_candidates(6001), ["/t"]);
    create(&mut tree, 3, "/t/child", 0);
    assert!(
        tree.reap_candidates(i64::MAX).is_empty(),
        "has a child: kept"
    );
    delete(&mut tree, 4, "/t/child");
    delete(&mut tree, 5, "/t");
    assert!(tree.ttls.is_empty());
    assert!(tree.reap_candidates(i64::MAX).is_empty());
}

#[test]
fn all_children_number_counts_every_descendant() {
    let mut tree = DataTree::new();
    for (zxid, path) in ["/a", "/a/b", "/a/b/c", "/a/d", "/ab"].iter().enumerate() {
        create(&mut tree, zxid as i64 + 1, path, 0);
    }
    assert_eq!(
        tree.all_children_number("/a"),
        Some(3),
        "/ab is not under /a"
    );
    assert_eq!(tree.all_children_number("/a/b"), Some(1));
    assert_eq!(tree.all_children_number("/a/b/c"), Some(0));
    assert_eq!(tree.all_children_number("/"), Some(8));
}

#[test]
fn last_zxid_is_the_highest_applied() {
    let mut tree = DataTree::new();
    create(&mut tree, 9, "/a", 0);
    create(&mut tree, 4, "/b", 0);
    assert_eq!(tree.last_zxid(), 9);
}
