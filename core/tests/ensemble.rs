//! Guards against an ensemble that loses acknowledged writes or sessions when members fail:
//! writes through any member, reads everywhere, fail-over after the leader dies, a restarted
//! member catching up, sessions that move between members keeping their ephemerals.

use std::time::Duration;

use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, Ensemble, ErrorCode, SessionCredentials,
};

const WAIT: Duration = Duration::from_secs(20);

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

fn credentials_of(client: &Client) -> SessionCredentials {
    SessionCredentials {
        session_id: client.session_id(),
        password: client.session_password(),
    }
}

/// `client`'s session, resumed on `member`.
fn resume_on(ensemble: &Ensemble, member: usize, client: &Client) -> Client {
    ensemble
        .connect_with(
            member,
            ConnectOptions {
                resume: Some(credentials_of(client)),
                ..ConnectOptions::default()
            },
        )
        .unwrap()
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
    let credentials = credentials_of(&zk);
    assert_eq!(
        (zk.session_id() as u64) >> 56,
        first as u64,
        "ids carry the member"
    );

    ensemble.kill(first);
    let moved = resume_on(&ensemble, second, &zk);
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

/// Guards against a linearizable read answered from a member cut off from its leader: a
/// plain read there may be stale (as in ZooKeeper), a linearizable one must not be.
#[test]
fn a_linearizable_read_never_answers_stale_data() {
    let ensemble = Ensemble::start(3).unwrap();
    let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    let cut_off = (leader + 1) % 3;
    let writer = ensemble.connect(leader).unwrap();
    writer
        .create("/v", b"1", &open(), CreateMode::Persistent)
        .unwrap();
    let reader = ensemble.connect(cut_off).unwrap();
    assert_eq!(
        reader.get_data_linearizable("/v", None).unwrap().0,
        Some(b"1".to_vec())
    );

    ensemble.isolate(cut_off);
    writer.set_data("/v", b"2", 0).unwrap();
    match reader.get_data_linearizable("/v", None) {
        Ok((data, _)) => panic!("a cut-off member answered a linearizable read: {data:?}"),
        Err(error) => assert_eq!(error.code(), ErrorCode::ConnectionLoss),
    }

    ensemble.heal();
    let reader = ensemble.connect(cut_off).unwrap();
    assert_eq!(
        reader.get_data_linearizable("/v", None).unwrap().0,
        Some(b"2".to_vec())
    );
}

/// Guards against a leader cut off from its quorum acknowledging writes, and against the
/// ensemble losing what the majority wrote meanwhile.
#[test]
fn a_leader_in_the_minority_acknowledges_nothing() {
    let ensemble = Ensemble::start(5).unwrap();
    let old_leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    let stranded = ensemble.connect(old_leader).unwrap();
    stranded
        .create("/before", b"", &open(), CreateMode::Persistent)
        .unwrap();

    let minority = [old_leader, (old_leader + 1) % 5];
    let majority: Vec<usize> = (0..5).filter(|member| !minority.contains(member)).collect();
    ensemble.partition(&[&minority, &majority]);
    let result = stranded.create("/lost", b"", &open(), CreateMode::Persistent);
    assert_eq!(result.unwrap_err().code(), ErrorCode::ConnectionLoss);

    let new_leader = ensemble
        .wait_for_leader(WAIT)
        .expect("the majority elects a leader");
    assert!(
        majority.contains(&new_leader),
        "{new_leader} leads from the minority"
    );
    let zk = ensemble.connect(new_leader).unwrap();
    zk.create("/during", b"", &open(), CreateMode::Persistent)
        .unwrap();

    ensemble.heal();
    let back = ensemble.connect(old_leader).unwrap();
    back.sync("/").unwrap();
    let mut children = back.get_children("/", None).unwrap();
    children.sort();
    assert_eq!(children, vec!["before", "during", "zookeeper"]);
}

/// Guards against sessions that outlive their clients on an ensemble: the leader expires a
/// session whose member died, on every member, and watchers elsewhere hear of its ephemeral.
#[test]
fn a_session_whose_member_dies_expires_everywhere() {
    let mut ensemble = Ensemble::start(3).unwrap();
    let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    let doomed = (leader + 1) % 3;
    let watcher_member = (leader + 2) % 3;
    let owner = ensemble
        .connect_with(
            doomed,
            ConnectOptions {
                session_timeout_ms: 1_000,
                ..ConnectOptions::default()
            },
        )
        .unwrap();
    owner
        .create("/lock", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    let observer = ensemble.connect(watcher_member).unwrap();
    observer.sync("/").unwrap();
    let (watcher, events) = zookeeper_core::Watcher::channel();
    assert!(observer.exists("/lock", Some(watcher)).unwrap().is_some());

    ensemble.kill(doomed);
    let event = events.recv_timeout(WAIT).expect("the ephemeral's deletion");
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (zookeeper_core::EventType::NodeDeleted, "/lock")
    );
    assert_eq!(observer.exists("/lock", None).unwrap(), None);
}

/// Guards against a paused leader (a stopped process) blocking the ensemble, or acting on
/// stale leadership once it continues.
#[test]
fn a_paused_leader_is_replaced_and_follows_when_it_continues() {
    let ensemble = Ensemble::start(3).unwrap();
    let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    ensemble.pause(leader);
    let deadline = std::time::Instant::now() + WAIT;
    let new_leader = loop {
        match ensemble.leader() {
            Some(member) if member != leader => break member,
            _ if std::time::Instant::now() > deadline => panic!("no new leader"),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let zk = ensemble.connect(new_leader).unwrap();
    zk.create("/while-paused", b"", &open(), CreateMode::Persistent)
        .unwrap();

    ensemble.resume(leader);
    let resumed = ensemble.connect(leader).unwrap();
    resumed.sync("/").unwrap();
    assert!(resumed.exists("/while-paused", None).unwrap().is_some());
    assert_ne!(ensemble.leader(), None);
}

#[test]
fn tcp_clients_fail_over_between_members_and_find_a_restarted_member_on_its_port() {
    let mut ensemble = Ensemble::start_with(zookeeper_core::EnsembleConfig {
        client_ports: true,
        ..zookeeper_core::EnsembleConfig::default()
    })
    .unwrap();
    let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    let hosts = ensemble.connect_string();
    assert_eq!(hosts.split(',').count(), 3, "{hosts}");
    let zk = zookeeper_core::Client::connect(&hosts, ConnectOptions::default()).unwrap();
    let session = zk.session_id();
    zk.create("/lock", b"held", &open(), CreateMode::Ephemeral)
        .unwrap();
    // Every member goes down in turn: the client follows the survivors, keeping its session.
    for member in [leader, (leader + 1) % 3, (leader + 2) % 3] {
        let address = ensemble.client_address(member).unwrap();
        ensemble.kill(member);
        ensemble.wait_for_leader(WAIT).expect("a leader of two");
        zk.set_data("/lock", format!("{member}").as_bytes(), -1)
            .unwrap();
        ensemble.restart(member).unwrap();
        assert_eq!(ensemble.client_address(member), Some(address));
    }
    assert_eq!(zk.session_id(), session);
    let (data, stat) = zk.get_data("/lock", None).unwrap();
    assert_eq!(
        data.as_deref(),
        Some(format!("{}", (leader + 2) % 3).as_bytes())
    );
    assert_eq!(stat.ephemeral_owner, session);
    // A client of the last member restarted alone finds it on its old port.
    let last = ensemble
        .client_address((leader + 2) % 3)
        .unwrap()
        .to_string();
    let reader = zookeeper_core::Client::connect(&last, ConnectOptions::default()).unwrap();
    reader.sync("/lock").unwrap();
    assert_eq!(reader.get_data("/lock", None).unwrap(), (data, stat));
}

#[test]
fn a_connection_left_behind_by_its_session_cannot_write() {
    for old_member_leads in [false, true] {
        let ensemble = Ensemble::start(3).unwrap();
        let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
        let (first, second) = if old_member_leads {
            (leader, (leader + 1) % 3)
        } else {
            ((leader + 1) % 3, (leader + 2) % 3)
        };
        let left_behind = ensemble.connect(first).unwrap();
        left_behind
            .create("/value", b"0", &open(), CreateMode::Persistent)
            .unwrap();
        // The client reconnects to another member while its old connection lingers (a slow
        // network, a client that took its session elsewhere).
        let moved = resume_on(&ensemble, second, &left_behind);
        moved.set_data("/value", b"moved", -1).unwrap();
        let error = left_behind
            .set_data("/value", b"stale", -1)
            .expect_err("the old connection's write");
        assert_eq!(
            error.code(),
            ErrorCode::SessionMoved,
            "leader old: {old_member_leads}"
        );
        moved.sync("/value").unwrap();
        assert_eq!(
            moved.get_data("/value", None).unwrap().0.as_deref(),
            Some(&b"moved"[..])
        );
        // The session itself lives on where it moved.
        moved.set_data("/value", b"again", -1).unwrap();
    }
}

/// Guards against a member killed while paused staying paused on the network after its
/// restart: a stopped process that is killed comes back running, and must hear its peers.
#[test]
fn a_member_killed_while_paused_comes_back_running() {
    let mut ensemble = Ensemble::start(3).unwrap();
    let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    let follower = (leader + 1) % 3;
    ensemble.pause(follower);
    ensemble.kill(follower);
    let writer = ensemble.connect(leader).unwrap();
    writer
        .create("/while-down", b"", &open(), CreateMode::Persistent)
        .unwrap();
    ensemble.restart(follower).unwrap();
    let back = ensemble.connect(follower).unwrap();
    back.sync("/").unwrap();
    assert!(back.exists("/while-down", None).unwrap().is_some());
}

/// Guards against an ensemble of no member, or of more members than member ids can name
/// (ids are one byte: member 256 wrapped round to member 0).
#[test]
fn an_ensemble_has_one_to_the_most_members() {
    for members in [0, zookeeper_core::ensemble::MEMBERS_MAX + 1] {
        let error = Ensemble::start(members).err().expect("refused");
        assert_eq!(
            error.to_string(),
            format!(
                "invalid server configuration: an ensemble has 1 to {} members",
                zookeeper_core::ensemble::MEMBERS_MAX
            )
        );
    }
    let single = Ensemble::start(1).unwrap();
    assert_eq!(single.wait_for_leader(WAIT), Some(0));
}

/// Guards against a connect to a paused member that never returns: a paused member opens no
/// session, and the connect gives up after its connect timeout, as with a stopped process.
#[test]
fn a_connect_to_a_paused_member_gives_up_after_its_timeout() {
    let mut ensemble = Ensemble::start(3).unwrap();
    let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    let paused = (leader + 1) % 3;
    ensemble.pause(paused);
    let started = std::time::Instant::now();
    let refused = ensemble.connect_with(
        paused,
        ConnectOptions {
            connect_timeout_ms: Some(200),
            ..ConnectOptions::default()
        },
    );
    assert_eq!(refused.unwrap_err().code(), ErrorCode::ConnectionLoss);
    assert!(started.elapsed() < WAIT);
    assert!(ensemble
        .try_connect(paused, ConnectOptions::default())
        .is_none());

    ensemble.resume(paused);
    ensemble.connect(paused).unwrap().sync("/").unwrap();
    ensemble.kill(paused);
    let down = ensemble
        .try_connect(paused, ConnectOptions::default())
        .expect("a member that is down answers at once");
    assert_eq!(down.unwrap_err().code(), ErrorCode::ConnectionLoss);
}

/// Guards against `leader()` naming a paused leader: its flags still say it leads and
/// serves, but a stopped process does neither, and as the lowest index it hid the member
/// elected in its place from every caller waiting for a new leader.
#[test]
fn a_paused_member_is_never_the_leader() {
    let ensemble = Ensemble::start(3).unwrap();
    let leader = ensemble.wait_for_leader(WAIT).expect("a leader");
    ensemble.pause(leader);
    assert_ne!(ensemble.leader(), Some(leader));
    let elected = ensemble.wait_for_leader(WAIT).expect("a new leader");
    assert_ne!(elected, leader);
    ensemble.resume(leader);

    let single = Ensemble::start(1).unwrap();
    assert_eq!(single.wait_for_leader(WAIT), Some(0));
    single.pause(0);
    assert_eq!(single.leader(), None);
    single.resume(0);
    assert_eq!(single.wait_for_leader(WAIT), Some(0));
}
