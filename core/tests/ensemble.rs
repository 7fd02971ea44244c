//! Guards against an ensemble that loses acknowledged writes or sessions when members fail:
//! writes through any member, reads everywhere, fail-over after the leader dies, a restarted
//! member catching up, sessions that move between members keeping their ephemerals.

use std::time::Duration;

use zookeeper_core::{Acl, ConnectOptions, CreateMode, Ensemble, ErrorCode, SessionCredentials};

const WAIT: Duration = Duration::from_secs(20);

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

#[test]
fn writes_through_a_follower_survive_the_leader() {
    let mut ensemble = Ensemble::start(3).unwrap();
    let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let zk = ensemble.connect(follower).unwrap();
    zk.create("/a", b"1", &open(), CreateMode::Persistent)
        .unwrap();
    let (_, stat) = zk
        .create2("/a/b", b"2", &open(), CreateMode::Persistent)
        .unwrap();
    // The session reads its own writes on the member it is connected to.
    assert_eq!(
        zk.get_data("/a/b", None).unwrap(),
        (Some(b"2".to_vec()), stat)
    );

    // Another member sees them after a sync.
    let reader = ensemble.connect(other).unwrap();
    reader.sync("/a").unwrap();
    assert_eq!(reader.get_children("/a", None).unwrap(), vec!["b"]);

    ensemble.kill(leader);
    let new_leader = ensemble.wait_for_leader(WAIT).expect("a new leader");
    assert_ne!(new_leader, leader);
    let survivor = ensemble.connect(new_leader).unwrap();
    assert_eq!(
        survivor.get_data("/a/b", None).unwrap(),
        (Some(b"2".to_vec()), stat)
    );
    survivor.set_data("/a/b", b"3", 0).unwrap();

    // The old leader comes back as a follower and catches up.
    ensemble.restart(leader).unwrap();
    let returned = ensemble.connect(leader).unwrap();
    returned.sync("/").unwrap();
    assert_eq!(
        returned.get_data("/a/b", None).unwrap().0,
        Some(b"3".to_vec())
    );
}

#[test]
fn a_session_moves_to_another_member_with_its_ephemerals() {
    let mut ensemble = Ensemble::start(3).unwrap();
    let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    let first = (leader + 1) % 3;
    let second = (leader + 2) % 3;
    let zk = ensemble.connect(first).unwrap();
    zk.create("/owner", b"me", &open(), CreateMode::Ephemeral)
        .unwrap();
    let credentials = SessionCredentials {
        session_id: zk.session_id(),
        password: zk.session_password(),
    };
    assert_eq!(
        (zk.session_id() as u64) >> 56,
        first as u64,
        "ids carry the member"
    );

    ensemble.kill(first);
    let moved = ensemble
        .connect_with(
            second,
            ConnectOptions {
                resume: Some(credentials),
                ..ConnectOptions::default()
            },
        )
        .unwrap();
    assert_eq!(moved.session_id(), credentials.session_id);
    let stat = moved
        .exists("/owner", None)
        .unwrap()
        .expect("the ephemeral lives on");
    assert_eq!(stat.ephemeral_owner, credentials.session_id);
    moved.close().unwrap();

    let observer = ensemble.connect(leader).unwrap();
    observer.sync("/").unwrap();
    assert_eq!(observer.exists("/owner", None).unwrap(), None);
    assert_eq!(
        ensemble
            .connect_with(
                second,
                ConnectOptions {
                    resume: Some(credentials),
                    ..ConnectOptions::default()
                }
            )
            .unwrap_err()
            .code(),
        ErrorCode::SessionExpired
    );
}
