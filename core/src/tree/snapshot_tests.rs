//! Guards against a snapshot that restores a different tree (a lost Stat field, index, ACL count
//! or session), and against damaged snapshot bytes panicking or decoding into an impossible tree.

use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::proto::{Id, Perms, CONTAINER_EPHEMERAL_OWNER};
use crate::tree::ttl_owner;
use crate::txn::{Txn, TxnOp};

const SESSION_A: i64 = 0x0100_0000_0000_0001;
const SESSION_B: i64 = 0x0100_0000_0000_0002;
const SESSION_IDLE: i64 = 0x0100_0000_0000_0003;

fn apply(tree: &mut DataTree, zxid: i64, op: TxnOp) {
    let applied = tree.apply(
        zxid,
        &Txn {
            time_ms: 1_000 + zxid,
            op,
        },
    );
    assert!(applied.result.is_ok(), "zxid {zxid}: {:?}", applied.result);
}

fn create_op(tree: &DataTree, path: &str, data: &[u8], acl: Vec<Acl>, owner: i64) -> TxnOp {
    let parent = tree.get(path::parent(path)).expect("parent exists");
    TxnOp::Create {
        path: path.into(),
        data: Some(data.to_vec()),
        acl,
        ephemeral_owner: owner,
        parent_cversion: parent.child_creates() + 1,
    }
}

fn digest_acl() -> Vec<Acl> {
    vec![
        Acl::new(Perms::READ | Perms::WRITE, Id::new("digest", "alice:hash")),
        Acl::new(Perms::ALL, Id::new("ip", "10.0.0.0/8")),
    ]
}

/// A tree with every create mode, sessions with and without ephemerals, a reapable container and
/// TTL znode, custom ACLs, and data, ACL and children changes after creation.
fn rich_tree() -> DataTree {
    let mut tree = DataTree::new();
    let mut zxid = 0;
    let mut next = || {
        zxid += 1;
        zxid
    };
    for (session_id, timeout_ms) in [
        (SESSION_A, 30_000),
        (SESSION_B, 10_000),
        (SESSION_IDLE, 4_000),
    ] {
        let op = TxnOp::CreateSession {
            session_id,
            timeout_ms,
            password: [session_id as u8; 16],
        };
        apply(&mut tree, next(), op);
    }
    let creates: [(&str, &[u8], Vec<Acl>, i64); 11] = [
        ("/app", b"config", digest_acl(), 0),
        ("/app/seq0000000000", b"", Acl::open_unsafe(), 0),
        ("/app/seq0000000001", b"x", Acl::open_unsafe(), 0),
        ("/app/lock", b"", Acl::creator_all(), SESSION_A),
        ("/app/eseq0000000003", b"e", digest_acl(), SESSION_B),
        ("/e", b"top", Acl::read_unsafe(), SESSION_A),
        ("/c", b"", Acl::open_unsafe(), CONTAINER_EPHEMERAL_OWNER),
        ("/c/x", b"", Acl::open_unsafe(), 0),
        ("/c2", b"", Acl::open_unsafe(), CONTAINER_EPHEMERAL_OWNER),
        ("/t", b"ttl", Acl::open_unsafe(), ttl_owner(5_000)),
        ("/t2", b"ttl", digest_acl(), ttl_owner(1)),
    ];
    for (path, data, acl, owner) in creates {
        let op = create_op(&tree, path, data, acl, owner);
        apply(&mut tree, next(), op);
    }
    let op = create_op(&tree, "/t2/kid", b"", Acl::open_unsafe(), 0);
    apply(&mut tree, next(), op);
    apply(
        &mut tree,
        next(),
        TxnOp::Delete {
            path: "/c/x".into(),
        },
    );
    let op = TxnOp::SetData {
        path: "/app".into(),
        data: Some(b"config v2".to_vec()),
        version: 1,
    };
    apply(&mut tree, next(), op);
    let op = TxnOp::SetAcl {
        path: "/app/seq0000000001".into(),
        acl: Acl::read_unsafe(),
        version: 1,
    };
    apply(&mut tree, next(), op);
    // The root's ACL changes while /zookeeper keeps the one they shared: the ACL cache must
    // still count /zookeeper's (DataTree::new once interned it once for three znodes).
    let op = TxnOp::SetAcl {
        path: "/".into(),
        acl: digest_acl(),
        version: 1,
    };
    apply(&mut tree, next(), op);
    tree
}

/// Every observable, znode by znode, so a failure names what differs.
fn assert_same(restored: &DataTree, original: &DataTree) {
    assert_eq!(restored.node_count(), original.node_count());
    for node in original.nodes.iter() {
        let path = node.path();
        let copy = restored.get(path).unwrap_or_else(|| panic!("{path} lost"));
        assert_eq!(copy.stat(), node.stat(), "{path} Stat");
        assert_eq!(copy.data(), node.data(), "{path} data");
        assert_eq!(copy.acl(), node.acl(), "{path} ACL");
        assert_eq!(
            copy.child_creates(),
            node.child_creates(),
            "{path} cversion"
        );
        assert_eq!(
            copy.ephemeral_owner(),
            node.ephemeral_owner(),
            "{path} owner"
        );
        assert_eq!(restored.children(path), original.children(path), "{path}");
    }
    for session_id in [SESSION_A, SESSION_B, SESSION_IDLE, 42] {
        assert_eq!(
            restored.ephemerals(session_id),
            original.ephemerals(session_id)
        );
        assert_eq!(restored.session(session_id), original.session(session_id));
    }
    assert_eq!(
        restored.sessions().collect::<Vec<_>>(),
        original.sessions().collect::<Vec<_>>()
    );
    for now_ms in [0, 1_100, 10_000, i64::MAX] {
        assert_eq!(
            restored.reap_candidates(now_ms),
            original.reap_candidates(now_ms)
        );
    }
    assert_eq!(restored.last_zxid(), original.last_zxid());
    assert_eq!(
        restored.approximate_data_size(),
        original.approximate_data_size()
    );
    assert_eq!(restored.distinct_acl_count(), original.distinct_acl_count());
    assert_eq!(restored.acls, original.acls, "ACL cache and its counts");
    assert_eq!(restored.ephemerals, original.ephemerals);
    assert_eq!(restored.containers, original.containers);
    assert_eq!(restored.ttls, original.ttls);
    assert_eq!(restored.sessions, original.sessions);
    assert!(restored.nodes == original.nodes);
    // And every field at once, indexes included.
    assert!(restored == original);
}

#[test]
fn a_tree_with_every_kind_of_znode_round_trips() {
    let tree = rich_tree();
    assert_eq!(tree.reap_candidates(i64::MAX), ["/c", "/t"]);
    let bytes = tree.to_snapshot();
    let restored = DataTree::from_snapshot(&bytes).unwrap();
    assert_same(&restored, &tree);
    assert_eq!(
        restored.to_snapshot(),
        bytes,
        "equal trees give equal bytes"
    );
}

/// A snapshot is encoded from a frozen tree on another thread while the tree goes on
/// applying: what it encodes must be the tree at the moment it froze, whatever was written
/// since (data, ACLs, children, znodes deleted and created in reused and new slots, sessions),
/// and the live tree must not see the frozen copy either.
#[test]
fn a_frozen_tree_encodes_the_moment_it_froze_while_writes_go_on() {
    let mut tree = rich_tree();
    let mut zxid = tree.last_zxid();
    let mut next = || {
        zxid += 1;
        zxid
    };
    // More than two slab chunks, so writes touch some chunks and leave others shared.
    for index in 0..9_000 {
        let op = create_op(&tree, &format!("/n{index}"), b"v", Acl::open_unsafe(), 0);
        apply(&mut tree, next(), op);
    }
    let before = tree.to_snapshot();
    let frozen = tree.frozen();

    for index in (0..9_000).step_by(7) {
        let op = TxnOp::SetData {
            path: format!("/n{index}"),
            data: Some(b"changed".to_vec()),
            version: -1,
        };
        apply(&mut tree, next(), op);
    }
    for index in (1..9_000).step_by(5) {
        apply(
            &mut tree,
            next(),
            TxnOp::Delete {
                path: format!("/n{index}"),
            },
        );
    }
    for index in 0..3_000 {
        let op = create_op(&tree, &format!("/m{index}"), b"new", digest_acl(), 0);
        apply(&mut tree, next(), op);
    }
    let op = TxnOp::SetAcl {
        path: "/app".into(),
        acl: Acl::open_unsafe(),
        version: -1,
    };
    apply(&mut tree, next(), op);
    let op = TxnOp::CloseSession {
        session_id: SESSION_A,
    };
    apply(&mut tree, next(), op);

    // The frozen copy is the tree as it was, byte for byte, and decodes to it.
    let encoded = std::thread::spawn(move || frozen.encode())
        .join()
        .expect("the encoding thread");
    assert_eq!(encoded, before);
    // The live tree kept every write and round-trips on its own.
    let now = tree.to_snapshot();
    assert_ne!(now, before);
    assert_same(&DataTree::from_snapshot(&now).unwrap(), &tree);
    assert_eq!(tree.get("/n7").unwrap().data(), Some(&b"changed"[..]));
    assert!(tree.get("/n1").is_none());
    assert_eq!(
        tree.node_count(),
        DataTree::from_snapshot(&before).unwrap().node_count() - 1_800 + 3_000 - 2
    );
}

#[test]
fn a_fresh_tree_round_trips() {
    let tree = DataTree::new();
    let restored = DataTree::from_snapshot(&tree.to_snapshot()).unwrap();
    assert_same(&restored, &tree);
}

#[test]
fn a_restored_tree_keeps_applying_like_the_original() {
    let mut tree = rich_tree();
    let mut restored = DataTree::from_snapshot(&tree.to_snapshot()).unwrap();
    let close = TxnOp::CloseSession {
        session_id: SESSION_A,
    };
    let op = create_op(&tree, "/app/new", b"n", digest_acl(), 0);
    for (zxid, op) in [(100, close), (101, op)] {
        let txn = Txn { time_ms: 9, op };
        assert_eq!(restored.apply(zxid, &txn), tree.apply(zxid, &txn));
    }
    let op = TxnOp::SetAcl {
        path: "/t2".into(),
        acl: Acl::open_unsafe(),
        version: 1,
    };
    let txn = Txn { time_ms: 9, op };
    assert_eq!(restored.apply(102, &txn), tree.apply(102, &txn));
    assert_same(&restored, &tree);
}

/// Hand-built snapshots: a head and records, for the invariant checks.
fn encode<D: serde::Serialize>(
    acls: Vec<Vec<Acl>>,
    records: &[ZnodeRecord<'_, D>],
    count: u64,
) -> Vec<u8> {
    let head = Head {
        last_zxid: 7,
        acls,
        sessions: vec![(SESSION_A, 1_000, [1; 16])],
        znode_count: count,
    };
    let mut bytes = postcard::to_allocvec(&head).unwrap();
    for record in records {
        bytes = postcard::to_extend(record, bytes).unwrap();
    }
    bytes
}

/// A record as snapshot format 2 writes it.
type Record<'a> = ZnodeRecord<'a, Option<Bytes<'a>>>;

fn record<'a>(path: &'a str, owner: i64, num_children: u32) -> Record<'a> {
    ZnodeRecord {
        path,
        data: Some(Bytes(b"")),
        acl: 0,
        czxid: 1,
        mzxid: 1,
        pzxid: 1,
        ctime: 1,
        mtime: 1,
        ephemeral_owner: owner,
        version: 0,
        cversion: 0,
        aversion: 0,
        num_children,
    }
}

fn decode_error(records: &[Record<'_>]) -> String {
    let bytes = encode(vec![Acl::open_unsafe()], records, records.len() as u64);
    match DataTree::from_snapshot(&bytes) {
        Ok(_) => panic!("decoded"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_hand_built_snapshot_decodes_when_consistent() {
    let records = [record("/", 0, 1), record("/a", 0, 1), record("/a/b", 0, 0)];
    let bytes = encode(vec![Acl::open_unsafe()], &records, 3);
    let tree = DataTree::from_snapshot(&bytes).unwrap();
    assert_eq!(tree.children("/a"), Some(vec!["b".to_owned()]));
    assert_eq!(tree.last_zxid(), 7);
    assert_eq!(tree.approximate_data_size(), 2 + 4);
}

/// Guards against losing the data directories of older builds: format 1 stored data without
/// a null marker; it reads as present (what that build had kept), and null survives format 2.
#[test]
fn format_1_snapshots_still_decode_and_format_2_keeps_null_data() {
    let v1 = |path, data: &'static [u8], num_children| {
        let now = record(path, 0, num_children);
        ZnodeRecord {
            path: now.path,
            data: Bytes(data),
            acl: now.acl,
            czxid: now.czxid,
            mzxid: now.mzxid,
            pzxid: now.pzxid,
            ctime: now.ctime,
            mtime: now.mtime,
            ephemeral_owner: now.ephemeral_owner,
            version: now.version,
            cversion: now.cversion,
            aversion: now.aversion,
            num_children: now.num_children,
        }
    };
    let bytes = encode(
        vec![Acl::open_unsafe()],
        &[v1("/", b"", 1), v1("/a", b"x", 0)],
        2,
    );
    let tree = DataTree::from_snapshot_of_version(&bytes, 1).unwrap();
    assert_eq!(tree.get("/a").unwrap().data(), Some(&b"x"[..]));
    assert_eq!(tree.get("/").unwrap().data(), Some(&b""[..]));
    assert!(
        DataTree::from_snapshot(&bytes).is_err(),
        "format 1 bytes are not format 2"
    );

    let null = ZnodeRecord {
        data: None,
        ..record("/n", 0, 0)
    };
    let bytes = encode(vec![Acl::open_unsafe()], &[record("/", 0, 1), null], 2);
    let tree = DataTree::from_snapshot(&bytes).unwrap();
    assert_eq!(tree.get("/n").unwrap().data(), None);
    assert_eq!(tree.get("/n").unwrap().stat().data_length, 0);
    assert_eq!(DataTree::from_snapshot(&tree.to_snapshot()).unwrap(), tree);
}

#[test]
fn decoding_refuses_trees_that_cannot_be() {
    let cases: [(&[Record<'_>], &str); 8] = [
        (&[record("/a", 0, 0)], "the first znode is not the root"),
        (
            &[record("/", 0, 1), record("/a/b", 0, 0), record("/a", 0, 1)],
            "/a/b: parent missing",
        ),
        (
            &[
                record("/", 0, 1),
                record("/e", SESSION_A, 1),
                record("/e/x", 0, 0),
            ],
            "/e/x: child of an ephemeral",
        ),
        (
            &[record("/", 0, 2), record("/a", 0, 0)],
            "/: children count does not match",
        ),
        (
            &[record("/", 0, 0), record("/a", 0, 0)],
            "/: children count does not match",
        ),
        (
            &[record("/", 0, 2), record("/a", 0, 0), record("/a", 0, 0)],
            "/a: duplicate znode",
        ),
        (
            &[record("/", 0, 1), record("/a/", 0, 0)],
            "/a/: not a valid znode path",
        ),
        (
            &[record("/", 0, 0), record("/", 0, 0)],
            "/: not a valid znode path",
        ),
    ];
    for (records, expected) in cases {
        let error = decode_error(records);
        assert!(error.contains(expected), "{error} lacks {expected}");
    }
    let mut bad_acl = record("/", 0, 0);
    bad_acl.acl = 1;
    assert!(decode_error(&[bad_acl]).contains("ACL index outside"));
}

#[test]
fn decoding_refuses_framing_errors() {
    let records = [record("/", 0, 0)];
    let mut bytes = encode(vec![Acl::open_unsafe()], &records, 1);
    bytes.push(0);
    assert!(matches!(
        DataTree::from_snapshot(&bytes),
        Err(SnapshotDecodeError::Encoding { .. })
    ));
    let short = encode(vec![Acl::open_unsafe()], &records, 2);
    assert!(matches!(
        DataTree::from_snapshot(&short),
        Err(SnapshotDecodeError::Encoding { .. })
    ));
    // A count no byte string could hold must not reserve memory for it.
    let huge = encode(vec![Acl::open_unsafe()], &records, u64::MAX);
    assert!(DataTree::from_snapshot(&huge).is_err());
    assert!(DataTree::from_snapshot(&[]).is_err());
}

#[test]
fn a_repeated_acl_in_the_table_is_merged_into_one_cache_entry() {
    let mut second = record("/a", 0, 0);
    second.acl = 1;
    let records = [record("/", 0, 1), second];
    let table = vec![Acl::open_unsafe(), Acl::open_unsafe()];
    let tree = DataTree::from_snapshot(&encode(table, &records, 2)).unwrap();
    assert_eq!(tree.distinct_acl_count(), 1);
    let acl = |path| &tree.nodes.get(path).expect("znode").acl;
    assert!(SharedAcl::ptr_eq(acl("/"), acl("/a")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn damaged_snapshots_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = rich_tree().to_snapshot();
        for (at, mask) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        // Either a tree that passed every check, or an error: never a panic.
        if let Ok(tree) = DataTree::from_snapshot(&bytes) {
            prop_assert!(tree.get("/").is_some());
        }
    }
}

/// `cargo test --release -p zookeeper-core --lib -- --ignored --nocapture million`
#[test]
#[ignore = "a timing, run in release"]
fn a_million_znodes_encode_and_decode_quickly() {
    let mut tree = DataTree::new();
    let mut zxid = 0;
    for group in 0..1_000 {
        zxid += 1;
        let op = create_op(&tree, &format!("/g{group:04}"), b"", Acl::open_unsafe(), 0);
        apply(&mut tree, zxid, op);
        for member in 0..1_000 {
            zxid += 1;
            let path = format!("/g{group:04}/member{member:06}");
            let op = create_op(&tree, &path, b"0123456789", Acl::open_unsafe(), 0);
            apply(&mut tree, zxid, op);
        }
    }
    let set_every_group = |tree: &mut DataTree, zxid: &mut i64| {
        let started = Instant::now();
        for group in 0..1_000 {
            *zxid += 1;
            let op = TxnOp::SetData {
                path: format!("/g{group:04}/member000500"),
                data: Some(b"changed".to_vec()),
                version: -1,
            };
            apply(tree, *zxid, op);
        }
        started.elapsed()
    };
    let plain_writes = set_every_group(&mut tree, &mut zxid);
    let started = Instant::now();
    let frozen = tree.frozen();
    let froze = started.elapsed();
    // What a write pays while a snapshot holds the tree: the first write to a chunk copies
    // it. One setData per group lands in (nearly) every chunk once.
    let copying_writes = set_every_group(&mut tree, &mut zxid);
    let started = Instant::now();
    let bytes = frozen.encode();
    let encoded = started.elapsed();
    drop(frozen);
    let started = Instant::now();
    let restored = DataTree::from_snapshot(&bytes).unwrap();
    let decoded = started.elapsed();
    println!(
        "{} znodes, {} bytes: 1,000 setData {plain_writes:?}, freeze {froze:?}, \
         the same 1,000 setData after it {copying_writes:?}, \
         encode {encoded:?}, decode {decoded:?}",
        tree.node_count(),
        bytes.len()
    );
    assert_eq!(restored.last_zxid(), zxid - 1_000);
    assert_eq!(restored.node_count(), tree.node_count());
    assert!(encoded + decoded < std::time::Duration::from_secs(2));
}
