//! Guards against quota figures that drift from ZooKeeper's: the StatsTrack text, usage kept
//! by apply through creates, deletes, data changes and session close, checks against soft and
//! hard limits, and the quota set surviving a snapshot.

use super::*;
use crate::proto::Acl;
use crate::tree::Znode;
use crate::txn::{Txn, TxnOp};

fn apply(tree: &mut DataTree, op: TxnOp) {
    let zxid = tree.last_zxid() + 1;
    let applied = tree.apply(zxid, &Txn { time_ms: 0, op });
    assert!(applied.result.is_ok(), "{:?}", applied.result);
}

fn create(tree: &mut DataTree, path: &str, data: &[u8], owner: i64) {
    let parent_creates = tree.get(path::parent(path)).map_or(0, Znode::child_creates);
    apply(
        tree,
        TxnOp::Create {
            path: path.into(),
            data: Some(data.to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral_owner: owner,
            parent_cversion: parent_creates + 1,
        },
    );
}

fn stats(tree: &DataTree, quota_path: &str) -> String {
    let data = tree.get(&stats_path(quota_path)).unwrap().data().unwrap();
    String::from_utf8(data.to_vec()).unwrap()
}

/// What zkCli.sh's setquota writes: the path under the quota root, the limits, then
/// "count=0,bytes=0" stats that the server replaces with the real usage.
fn set_quota(tree: &mut DataTree, path: &str, limits: &str) {
    let mut quota_parent = QUOTA_ROOT.to_string();
    for part in path.split('/').skip(1) {
        quota_parent = format!("{quota_parent}/{part}");
        if tree.get(&quota_parent).is_none() {
            create(tree, &quota_parent, b"", 0);
        }
    }
    create(tree, &limits_path(path), limits.as_bytes(), 0);
    create(tree, &stats_path(path), b"count=0,bytes=0", 0);
}

#[test]
fn stats_track_reads_and_writes_zookeepers_text() {
    let limits = StatsTrack::parse(b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2");
    assert_eq!(
        (
            limits.count(),
            limits.bytes(),
            limits.count_hard_limit(),
            limits.byte_hard_limit()
        ),
        (-1, -1, 2, -1)
    );
    assert_eq!(
        limits.to_text(),
        "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2"
    );
    assert_eq!(StatsTrack::parse(b"count=3,bytes=").bytes(), -1);
    assert_eq!(StatsTrack::parse(b"count=x,bytes=5").count(), -1);
    assert_eq!(StatsTrack::parse(b"").to_text(), "count=-1,bytes=-1");
}

#[test]
fn apply_keeps_the_usage_of_a_quota_subtree() {
    let mut tree = DataTree::new();
    create(&mut tree, "/a", b"12345", 0);
    create(&mut tree, "/a/b", b"xy", 0);
    create(&mut tree, "/ab", b"not under /a", 0);
    let size_before = tree.approximate_data_size();
    set_quota(&mut tree, "/a", "count=10,bytes=-1");
    // The subtree at the moment the stats znode is created: /a and /a/b.
    assert_eq!(stats(&tree, "/a"), "count=2,bytes=7");
    assert_eq!(tree.quota_prefix("/a/b/c"), Some("/a"));
    assert_eq!(tree.quota_prefix("/ab"), None);

    create(&mut tree, "/a/b/c", b"123", 0);
    assert_eq!(stats(&tree, "/a"), "count=3,bytes=10");
    create(&mut tree, "/a/e", b"", 0x55);
    apply(
        &mut tree,
        TxnOp::SetData {
            path: "/a".into(),
            data: Some(b"1".to_vec()),
            version: 1,
        },
    );
    assert_eq!(stats(&tree, "/a"), "count=4,bytes=6");
    apply(
        &mut tree,
        TxnOp::Delete {
            path: "/a/b/c".into(),
        },
    );
    assert_eq!(stats(&tree, "/a"), "count=3,bytes=3");
    // Ephemerals deleted by their session's close count too.
    apply(&mut tree, TxnOp::CloseSession { session_id: 0x55 });
    assert_eq!(stats(&tree, "/a"), "count=2,bytes=3");
    // The data size the four-letter words report follows the stats znode's new text.
    let expected: u64 = tree
        .nodes
        .iter()
        .map(|node| crate::tree::data_tree::node_size_bytes(node.path(), node.data()))
        .sum();
    assert_eq!(tree.approximate_data_size(), expected);
    assert!(tree.approximate_data_size() > size_before);

    // delquota: the limits znode goes, and with it the quota.
    apply(
        &mut tree,
        TxnOp::Delete {
            path: limits_path("/a"),
        },
    );
    assert_eq!(tree.quota_prefix("/a/b"), None);
    create(&mut tree, "/a/f", b"", 0);
    assert_eq!(stats(&tree, "/a"), "count=2,bytes=3");
}

#[test]
fn the_deepest_quota_counts_a_write() {
    let mut tree = DataTree::new();
    create(&mut tree, "/a", b"", 0);
    create(&mut tree, "/a/b", b"", 0);
    set_quota(&mut tree, "/a", "count=10,bytes=-1");
    set_quota(&mut tree, "/a/b", "count=10,bytes=-1");
    create(&mut tree, "/a/b/c", b"", 0);
    assert_eq!(stats(&tree, "/a/b"), "count=2,bytes=0");
    assert_eq!(stats(&tree, "/a"), "count=2,bytes=0");
}

#[test]
fn writes_are_checked_against_hard_then_soft_limits() {
    let mut tree = DataTree::new();
    create(&mut tree, "/q", b"", 0);
    assert_eq!(tree.quota_check("/q/x", 5, 1), Ok(()));
    set_quota(
        &mut tree,
        "/q",
        "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3",
    );
    create(&mut tree, "/q/x", b"12345", 0);
    assert_eq!(tree.quota_check("/q/y", 5, 1), Ok(()));
    let refused = tree.quota_check("/q/y", 6, 1).unwrap_err();
    assert_eq!(
        refused,
        QuotaExceeded {
            quota_path: "/q".into(),
            message: "Quota exceeded: /q [current bytes=11, hardByteLimit=10]".into(),
            hard: true,
        }
    );
    create(&mut tree, "/q/y", b"", 0);
    let refused = tree.quota_check("/q/z", 0, 1).unwrap_err();
    assert_eq!(
        refused.message,
        "Quota exceeded: /q [current count=4, hardCountLimit=3]"
    );
    // An empty create adds no bytes, so the byte limit is not consulted.
    assert!(refused.hard);

    create(&mut tree, "/s", b"", 0);
    set_quota(&mut tree, "/s", "count=1,bytes=2");
    let soft = tree.quota_check("/s/x", 1, 1).unwrap_err();
    assert_eq!(
        soft,
        QuotaExceeded {
            quota_path: "/s".into(),
            message: "Quota exceeded: /s [current count=2, softCountLimit=1]".into(),
            hard: false,
        }
    );
    // A setData that shrinks the data is never over.
    assert_eq!(tree.quota_check("/s", -1, 0), Ok(()));
}

#[test]
fn the_quota_set_survives_a_snapshot() {
    let mut tree = DataTree::new();
    create(&mut tree, "/a", b"", 0);
    set_quota(&mut tree, "/a", "count=1,bytes=-1");
    let restored = DataTree::from_snapshot(&tree.to_snapshot()).unwrap();
    assert_eq!(restored, tree);
    assert_eq!(restored.quota_prefix("/a/x"), Some("/a"));
}
