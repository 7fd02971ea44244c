//! Guards against prepare's checks drifting from ZooKeeper's order and limits.

use super::*;

#[test]
fn versions_match_any_and_skip_minus_one() {
    assert_eq!(next_version(3, -1), Ok(4));
    assert_eq!(next_version(3, 3), Ok(4));
    assert_eq!(next_version(3, 2), Err(ErrorCode::BadVersion));
    assert_eq!(next_version(i32::MAX, -1), Ok(i32::MIN));
    assert_eq!(next_version(-2, -2), Ok(0));
}

fn limits() -> WriteLimits {
    WriteLimits {
        data_bytes_max: 1024,
        ephemerals_per_session_max: 10,
        ttl_enabled: true,
        enforce_quota: true,
        x509_enabled: false,
    }
}

fn sequential(tree: &DataTree) -> Result<TxnOp, ErrorCode> {
    let mut pending = PendingChanges::default();
    let who = Requester {
        session_id: 1,
        identities: &[],
        role: Role::Client,
    };
    let request = CreateRequest {
        path: "/p/s".into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        mode: crate::proto::CreateMode::PersistentSequential,
        ttl_ms: -1,
    };
    Prepare::new(tree, &mut pending, &limits(), 1).write(who, &Op::Create(request))
}

/// ZooKeeper's sequence counter is the parent's signed 32-bit create count. Its apply only
/// moves the count forward, so once it reaches i32::MAX the wrapped next value is ignored:
/// the suffix stays 2147483647 and the next sequential create finds its name taken.
#[test]
fn sequence_suffix_sticks_at_the_signed_32_bit_limit() {
    let mut tree = DataTree::new();
    let create = |path: &str, parent_cversion: i32| crate::txn::Txn {
        time_ms: 0,
        op: TxnOp::Create {
            path: path.into(),
            data: Some(vec![]),
            acl: Acl::open_unsafe(),
            ephemeral_owner: 0,
            parent_cversion,
        },
    };
    tree.apply(1, &create("/p", 1)).result.unwrap();
    tree.apply(2, &create("/p/x", i32::MAX - 1)).result.unwrap();
    // Prepares and applies the next sequential create; answers its name and the parent's
    // new create count as its Txn carries them.
    let next = |tree: &mut DataTree, zxid: i64| {
        let txn = sequential(tree).unwrap();
        let TxnOp::Create {
            path,
            parent_cversion,
            ..
        } = &txn
        else {
            panic!("{txn:?}")
        };
        let created = (path.clone(), *parent_cversion);
        let txn = crate::txn::Txn {
            time_ms: 0,
            op: txn,
        };
        tree.apply(zxid, &txn).result.unwrap();
        created
    };
    assert_eq!(next(&mut tree, 3), ("/p/s2147483646".to_string(), i32::MAX));
    assert_eq!(next(&mut tree, 4), ("/p/s2147483647".to_string(), i32::MIN));
    assert_eq!(tree.get("/p").unwrap().child_creates(), i32::MAX);

    assert_eq!(sequential(&tree), Err(ErrorCode::NodeExists));
}

#[test]
fn reserved_znodes_cannot_be_deleted() {
    assert_eq!(deletable_parent("/"), Err(ErrorCode::BadArguments));
    assert_eq!(deletable_parent("/zookeeper"), Err(ErrorCode::BadArguments));
    assert_eq!(
        deletable_parent("/zookeeper/quota"),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(deletable_parent("relative"), Err(ErrorCode::BadArguments));
    assert_eq!(deletable_parent("/a"), Ok("/"));
    assert_eq!(deletable_parent("/a/b"), Ok("/a"));
}

/// Applies a plain create to `tree` (what a committed Txn would do).
fn apply_create(tree: &mut DataTree, path: &str, data: &[u8]) {
    let zxid = tree.last_zxid() + 1;
    let parent_creates = tree
        .get(path::parent(path))
        .map_or(0, crate::tree::Znode::child_creates);
    let op = TxnOp::Create {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        ephemeral_owner: 0,
        parent_cversion: parent_creates + 1,
    };
    let applied = tree.apply(zxid, &crate::txn::Txn { time_ms: 0, op });
    assert!(applied.result.is_ok());
}

/// ZooKeeper's checkQuota: a create or setData past a hard limit answers QuotaExceeded when
/// quotas are enforced (the setData before its version is looked at), and passes otherwise.
#[test]
fn writes_past_a_hard_quota_are_refused_when_enforced() {
    let mut tree = DataTree::new();
    apply_create(&mut tree, "/q", b"");
    apply_create(&mut tree, "/zookeeper/quota/q", b"");
    apply_create(
        &mut tree,
        "/zookeeper/quota/q/zookeeper_limits",
        b"count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=2",
    );
    apply_create(
        &mut tree,
        "/zookeeper/quota/q/zookeeper_stats",
        b"count=0,bytes=0",
    );
    let who = Requester {
        session_id: 1,
        identities: &[],
        role: Role::Client,
    };
    let create = |path: &str, data: &[u8]| {
        Op::Create(CreateRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            acl: Acl::open_unsafe(),
            mode: crate::proto::CreateMode::Persistent,
            ttl_ms: -1,
        })
    };
    let set_data = |data: &[u8], version: i32| Op::SetData {
        path: "/q".into(),
        data: Some(data.to_vec()),
        version,
    };
    let mut enforced = limits();
    let mut pending = PendingChanges::default();
    let mut prepare = Prepare::new(&tree, &mut pending, &enforced, 10);
    assert!(prepare.write(who, &create("/q/a", b"1234")).is_ok());
    assert_eq!(
        prepare.write(who, &create("/q/b", b"12345")),
        Err(ErrorCode::QuotaExceeded)
    );
    assert_eq!(
        prepare.write(who, &set_data(b"12345", 99)),
        Err(ErrorCode::QuotaExceeded)
    );
    assert_eq!(
        prepare.write(who, &set_data(b"1", 99)),
        Err(ErrorCode::BadVersion)
    );
    // The count counts /q itself: a second child would make 3.
    apply_create(&mut tree, "/q/a", b"");
    let mut pending = PendingChanges::default();
    let mut prepare = Prepare::new(&tree, &mut pending, &enforced, 11);
    assert_eq!(
        prepare.write(who, &create("/q/b", b"")),
        Err(ErrorCode::QuotaExceeded)
    );
    enforced.enforce_quota = false;
    let mut pending = PendingChanges::default();
    let mut prepare = Prepare::new(&tree, &mut pending, &enforced, 11);
    assert!(prepare.write(who, &create("/q/b", b"")).is_ok());
}

/// ZooKeeper's multi loop catches KeeperExceptions only: a null ACL id's NullPointerException
/// escapes it, and the whole multi answers MarshallingError without per-op results, where an
/// invalid ACL fails its op alone.
#[test]
fn a_null_acl_id_in_a_multi_fails_the_whole_request() {
    let tree = DataTree::new();
    let create = |path: &str, acl: Vec<Acl>| {
        Op::Create(CreateRequest {
            path: path.into(),
            data: Some(vec![]),
            acl,
            mode: crate::proto::CreateMode::Persistent,
            ttl_ms: -1,
        })
    };
    let mut null_id = Id::new("digest", "");
    null_id.id_is_null = true;
    let who = Requester {
        session_id: 1,
        identities: &[],
        role: Role::Client,
    };
    let mut pending = PendingChanges::default();
    let ops = vec![
        create("/a", Acl::open_unsafe()),
        create("/b", vec![Acl::new(Perms::ALL, null_id)]),
    ];
    let answer = Prepare::new(&tree, &mut pending, &limits(), 1).request(who, &Op::Multi(ops));
    assert_eq!(answer, Err(Refusal::Code(ErrorCode::MarshallingError)));
    let invalid = vec![Acl::new(Perms::ALL, Id::new("digest", "bad"))];
    let ops = vec![create("/a", Acl::open_unsafe()), create("/b", invalid)];
    let answer = Prepare::new(&tree, &mut pending, &limits(), 1).request(who, &Op::Multi(ops));
    assert_eq!(
        answer,
        Err(Refusal::Multi(vec![
            OpResult::Error(None),
            OpResult::Error(Some(ErrorCode::InvalidAcl))
        ]))
    );
    // Nothing of either stays pending: /a may be created afresh.
    let answer = Prepare::new(&tree, &mut pending, &limits(), 1)
        .write(who, &create("/a", Acl::open_unsafe()));
    assert!(answer.is_ok(), "{answer:?}");
}
