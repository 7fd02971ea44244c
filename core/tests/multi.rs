//! Guards against multi bugs: a failed multi that leaves part of its ops applied, per-op results
//! that differ from ZooKeeper's (0 before the failing op, its code, RuntimeInconsistency after),
//! ops that do not see the effects of earlier ops in the same multi, ops of one multi spread over
//! several zxids, and multiRead failing as a whole when one read fails.
//!
//! Mirrors Apache ZooKeeper's MultiOperationTest and MultiResponseTest. Expected results were
//! observed on ZooKeeper 3.8.0 (Java client). Where the Java client stores no Stat (a plain
//! create inside a multi) the Stat asserted is what ZooKeeper's create2 result carries: the new
//! znode's Stat at the moment of its create. By design (docs/design.md) a failed multi uses no
//! zxid here, where ZooKeeper logs an error Txn.

use zookeeper_core::*;

mod common;
use common::{open, server as start, snapshot, T0};

#[allow(clippy::too_many_arguments)]
fn stat(
    czxid: i64,
    mzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    cversion: i32,
    data_length: i32,
    num_children: i32,
    pzxid: i64,
) -> Stat {
    Stat {
        czxid,
        mzxid,
        ctime,
        mtime,
        version,
        cversion,
        aversion: 0,
        ephemeral_owner: 0,
        data_length,
        num_children,
        pzxid,
    }
}

/// Runs a multi that must fail; returns its code and per-op results.
fn failed(zk: &Client, ops: Vec<Op>) -> (ErrorCode, Vec<OpResult>) {
    let error = zk.multi(ops).expect_err("the multi should fail");
    let results = error
        .multi_results()
        .expect("a failed multi carries its results")
        .to_vec();
    (error.code(), results)
}

fn persistent(path: &str, data: &[u8]) -> Op {
    Op::create(path, data, &open(), CreateMode::Persistent)
}

#[test]
fn successful_multi_results_share_one_zxid_and_see_earlier_ops() {
    let (server, clock) = start();
    let zk = server.connect().unwrap(); // zxid 2
    clock.advance(3);
    let t = T0 + 3;
    let results = zk
        .multi(vec![
            persistent("/m", b"a"),
            persistent("/m/c", b""),
            Op::set_data("/m", b"b", 0),
            Op::set_data("/m", b"cc", 1),
            Op::check("/m", 2),
            Op::create("/m/s-", b"", &open(), CreateMode::PersistentSequential),
            Op::create("/m/s-", b"", &open(), CreateMode::PersistentSequential),
            persistent("/tmp", b""),
            Op::delete("/tmp", 0),
        ])
        .unwrap();
    // Each result shows the znode as that op left it, all under zxid 2.
    assert_eq!(
        results,
        vec![
            OpResult::Create {
                path: "/m".into(),
                stat: stat(3, 3, t, t, 0, 0, 1, 0, 3)
            },
            OpResult::Create {
                path: "/m/c".into(),
                stat: stat(3, 3, t, t, 0, 0, 0, 0, 3)
            },
            OpResult::SetData(stat(3, 3, t, t, 1, 1, 1, 1, 3)),
            OpResult::SetData(stat(3, 3, t, t, 2, 1, 2, 1, 3)),
            OpResult::Check,
            OpResult::Create {
                path: "/m/s-0000000001".into(),
                stat: stat(3, 3, t, t, 0, 0, 0, 0, 3)
            },
            OpResult::Create {
                path: "/m/s-0000000002".into(),
                stat: stat(3, 3, t, t, 0, 0, 0, 0, 3)
            },
            OpResult::Create {
                path: "/tmp".into(),
                stat: stat(3, 3, t, t, 0, 0, 0, 0, 3)
            },
            OpResult::Delete,
        ]
    );
    assert_eq!(server.engine().last_zxid(), 3);
    assert_eq!(
        zk.get_data("/m", None).unwrap(),
        (Some(b"cc".to_vec()), stat(3, 3, t, t, 2, 3, 2, 3, 3))
    );
    assert_eq!(
        zk.get_children("/m", None).unwrap(),
        vec!["c", "s-0000000001", "s-0000000002"]
    );
    assert_eq!(zk.exists("/tmp", None).unwrap(), None);
    // The root: 2 creates (/m, /tmp), 2 children (/m, /zookeeper).
    assert_eq!(
        zk.exists("/", None).unwrap(),
        Some(stat(0, 0, 0, 0, 0, 2, 0, 2, 3))
    );
}

#[test]
fn failed_multi_reports_each_op_and_changes_nothing() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    zk.multi(vec![persistent("/m", b"a"), persistent("/m/c", b"")])
        .unwrap();
    let paths = ["/", "/m", "/m/c"];
    let before = snapshot(&server, &zk, &paths);

    // Failing in the middle: 0 before, the failure, RuntimeInconsistency after.
    let (code, results) = failed(
        &zk,
        vec![
            persistent("/n", b""),
            Op::set_data("/m", b"x", 7),
            Op::delete("/m/c", -1),
        ],
    );
    assert_eq!(code, ErrorCode::BadVersion);
    assert_eq!(
        results,
        vec![
            OpResult::Error(None),
            OpResult::Error(Some(ErrorCode::BadVersion)),
            OpResult::Error(Some(ErrorCode::RuntimeInconsistency)),
        ]
    );
    assert_eq!(before, snapshot(&server, &zk, &paths));
    assert_eq!(zk.exists("/n", None).unwrap(), None);

    // Failing first.
    let (code, results) = failed(&zk, vec![Op::check("/missing", -1), persistent("/z", b"")]);
    assert_eq!(code, ErrorCode::NoNode);
    assert_eq!(
        results,
        vec![
            OpResult::Error(Some(ErrorCode::NoNode)),
            OpResult::Error(Some(ErrorCode::RuntimeInconsistency))
        ]
    );

    // Failing last, on a path an earlier op of the same multi created.
    let (code, results) = failed(&zk, vec![persistent("/z", b""), persistent("/z", b"")]);
    assert_eq!(code, ErrorCode::NodeExists);
    assert_eq!(
        results,
        vec![
            OpResult::Error(None),
            OpResult::Error(Some(ErrorCode::NodeExists))
        ]
    );

    // Each kind of failure, alone.
    let cases = [
        (Op::delete("/m", -1), ErrorCode::NotEmpty),
        (Op::delete("/m/c", 3), ErrorCode::BadVersion),
        (Op::delete("/nope", -1), ErrorCode::NoNode),
        (Op::set_data("/nope", b"", -1), ErrorCode::NoNode),
        (Op::check("/m", 5), ErrorCode::BadVersion),
        (persistent("/nope/child", b""), ErrorCode::NoNode),
        (persistent("/m", b""), ErrorCode::NodeExists),
        (Op::delete("/zookeeper", -1), ErrorCode::BadArguments),
    ];
    for (op, expected) in cases {
        let (code, results) = failed(&zk, vec![op.clone()]);
        assert_eq!(
            (code, results),
            (expected, vec![OpResult::Error(Some(expected))]),
            "{op:?}"
        );
    }
    assert_eq!(before, snapshot(&server, &zk, &paths));

    // The next write follows on directly: the failures used no zxid.
    let (_, created) = zk
        .create2("/after", b"", &open(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(created.czxid, 4);
}

#[test]
fn a_later_op_can_undo_an_earlier_one() {
    let (server, clock) = start();
    let zk = server.connect().unwrap(); // zxid 2
    zk.create("/p", b"old", &open(), CreateMode::Persistent)
        .unwrap(); // zxid 3
    clock.advance(9);

    // Create then delete the same path: nothing remains but the parent's child bookkeeping.
    let results = zk
        .multi(vec![persistent("/p/gone", b""), Op::delete("/p/gone", -1)])
        .unwrap();
    assert_eq!(
        results,
        vec![
            OpResult::Create {
                path: "/p/gone".into(),
                stat: stat(4, 4, T0 + 9, T0 + 9, 0, 0, 0, 0, 4)
            },
            OpResult::Delete,
        ]
    );
    assert_eq!(zk.exists("/p/gone", None).unwrap(), None);
    assert_eq!(
        zk.exists("/p", None).unwrap(),
        Some(stat(3, 3, T0, T0, 0, 2, 3, 0, 4))
    );

    // Delete then recreate: a new znode with the new data, created at this zxid.
    let results = zk
        .multi(vec![Op::delete("/p", 0), persistent("/p", b"new")])
        .unwrap();
    let recreated = stat(5, 5, T0 + 9, T0 + 9, 0, 0, 3, 0, 5);
    assert_eq!(
        results,
        vec![
            OpResult::Delete,
            OpResult::Create {
                path: "/p".into(),
                stat: recreated
            }
        ]
    );
    assert_eq!(
        zk.get_data("/p", None).unwrap(),
        (Some(b"new".to_vec()), recreated)
    );

    // A delete sees a child deleted earlier in the same multi, and a version bumped earlier.
    zk.create("/p/c", b"", &open(), CreateMode::Persistent)
        .unwrap(); // zxid 6
    let results = zk
        .multi(vec![
            Op::set_data("/p/c", b"1", 0),
            Op::delete("/p/c", 1),
            Op::delete("/p", -1),
        ])
        .unwrap();
    assert_eq!(results[1..], [OpResult::Delete, OpResult::Delete]);
    assert_eq!(zk.get_children("/", None).unwrap(), vec!["zookeeper"]);

    // A check sees a setData earlier in the multi.
    zk.create("/v", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let results = zk
        .multi(vec![
            Op::set_data("/v", b"1", 0),
            Op::check("/v", 1),
            Op::check("/v", -1),
        ])
        .unwrap();
    assert_eq!(results[1..], [OpResult::Check, OpResult::Check]);
    let (code, results) = failed(&zk, vec![Op::set_data("/v", b"2", 1), Op::check("/v", 1)]);
    assert_eq!(code, ErrorCode::BadVersion);
    assert_eq!(
        results,
        vec![
            OpResult::Error(None),
            OpResult::Error(Some(ErrorCode::BadVersion))
        ]
    );
    assert_eq!(zk.get_data("/v", None).unwrap().1.version, 1);
}

#[test]
fn ephemeral_rules_hold_inside_a_multi() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    let (code, results) = failed(
        &zk,
        vec![
            Op::create("/e", b"", &open(), CreateMode::Ephemeral),
            persistent("/e/c", b""),
        ],
    );
    assert_eq!(code, ErrorCode::NoChildrenForEphemerals);
    assert_eq!(
        results,
        vec![
            OpResult::Error(None),
            OpResult::Error(Some(ErrorCode::NoChildrenForEphemerals))
        ]
    );
    assert_eq!(zk.exists("/e", None).unwrap(), None);
    assert_eq!(zk.get_ephemerals("/").unwrap(), Vec::<String>::new());

    let results = zk
        .multi(vec![
            Op::create("/e", b"", &open(), CreateMode::Ephemeral),
            Op::create("/q", b"", &open(), CreateMode::Persistent),
            Op::create("/q/e-", b"", &open(), CreateMode::EphemeralSequential),
        ])
        .unwrap();
    let OpResult::Create { path, stat } = &results[2] else {
        panic!("{results:?}")
    };
    assert_eq!(
        (path.as_str(), stat.ephemeral_owner),
        ("/q/e-0000000000", zk.session_id())
    );
    assert_eq!(
        zk.get_ephemerals("/").unwrap(),
        vec!["/e", "/q/e-0000000000"]
    );
    let observer = server.connect().unwrap();
    zk.close().unwrap();
    assert_eq!(
        observer.get_children("/", None).unwrap(),
        vec!["q", "zookeeper"]
    );
    assert_eq!(
        observer.get_children("/q", None).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn empty_multi_succeeds_and_changes_nothing() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap(); // zxid 2
    let before = snapshot(&server, &zk, &["/", "/zookeeper"])[1..].to_vec();
    assert_eq!(zk.multi(vec![]).unwrap(), vec![]);
    assert_eq!(
        before,
        snapshot(&server, &zk, &["/", "/zookeeper"])[1..].to_vec()
    );
    // ZooKeeper 3.8's server commits an empty multi as a Txn of its own (kazoo: the next
    // create's czxid is 2 higher); its Java client never sends one (ZooKeeper.multiInternal
    // returns early). This client sends it, so the server's numbering applies.
    assert_eq!(server.engine().last_zxid(), 3);
    assert_eq!(
        zk.create2("/a", b"", &open(), CreateMode::Persistent)
            .unwrap()
            .1
            .czxid,
        4
    );
}

#[test]
fn a_read_inside_a_multi_is_refused() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    zk.create("/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let before = snapshot(&server, &zk, &["/", "/a"]);
    // ZooKeeper's server cannot decode a multi that mixes reads and writes and answers
    // MarshallingError (its Java client refuses it before sending).
    for ops in [
        vec![
            Op::GetData {
                path: "/a".into(),
                watch: false,
            },
            persistent("/mixed", b""),
        ],
        vec![
            persistent("/mixed", b""),
            Op::GetChildren {
                path: "/a".into(),
                watch: false,
            },
        ],
    ] {
        let error = zk.multi(ops).expect_err("a read inside a multi");
        assert_eq!(error.code(), ErrorCode::MarshallingError);
    }
    assert_eq!(before, snapshot(&server, &zk, &["/", "/a"]));
}

#[test]
fn multi_read_answers_each_read_on_its_own() {
    let (server, clock) = start();
    let zk = server.connect().unwrap(); // zxid 2
    clock.advance(4);
    zk.create("/m", b"cc", &open(), CreateMode::Persistent)
        .unwrap(); // zxid 3
    for child in ["s-2", "c", "s-1"] {
        zk.create(&format!("/m/{child}"), b"", &open(), CreateMode::Persistent)
            .unwrap();
    }
    let results = zk
        .multi_read(vec![
            ReadOp::GetData { path: "/m".into() },
            ReadOp::GetChildren { path: "/m".into() },
            ReadOp::GetData {
                path: "/missing".into(),
            },
            ReadOp::GetChildren {
                path: "/missing".into(),
            },
            ReadOp::GetData {
                path: "/m/c".into(),
            },
        ])
        .unwrap();
    assert_eq!(
        results,
        vec![
            ReadResult::Data {
                data: Some(b"cc".to_vec()),
                stat: stat(3, 3, T0 + 4, T0 + 4, 0, 3, 2, 3, 6)
            },
            // ZooKeeper lists children in hash order; this client sorts them.
            ReadResult::Children(vec!["c".into(), "s-1".into(), "s-2".into()]),
            ReadResult::Error(ErrorCode::NoNode),
            ReadResult::Error(ErrorCode::NoNode),
            ReadResult::Data {
                data: Some(vec![]),
                stat: stat(5, 5, T0 + 4, T0 + 4, 0, 0, 0, 0, 5)
            },
        ]
    );
    assert_eq!(zk.multi_read(vec![]).unwrap(), vec![]);
    assert_eq!(server.engine().last_zxid(), 6);
}

#[test]
fn many_ops_in_one_multi() {
    let (server, _clock) = start();
    let zk = server.connect().unwrap();
    let mut ops = vec![persistent("/bulk", b"")];
    ops.extend(
        (0..200).map(|_| Op::create("/bulk/n-", b"x", &open(), CreateMode::PersistentSequential)),
    );
    let results = zk.multi(ops).unwrap();
    assert_eq!(results.len(), 201);
    for (index, result) in results[1..].iter().enumerate() {
        let OpResult::Create { path, stat } = result else {
            panic!("{result:?}")
        };
        assert_eq!(path, &format!("/bulk/n-{index:010}"));
        assert_eq!((stat.czxid, stat.mzxid, stat.pzxid), (3, 3, 3));
    }
    let parent = zk.exists("/bulk", None).unwrap().unwrap();
    assert_eq!(
        (parent.cversion, parent.num_children, parent.pzxid),
        (200, 200, 3)
    );
    assert_eq!(zk.get_all_children_number("/bulk").unwrap(), 200);
}
