//! Guards against session lifecycle bugs: timeouts granted outside ZooKeeper's [2, 20] x tick
//! range, sessions that expire early or never (tick-bucket rounding, touches by requests,
//! attached clients), ephemerals that outlive their session or vanish one by one, clients that
//! keep working after close or expiry, missing per-session caps, and watch callbacks that
//! deadlock when they call back into their own client.
//!
//! Mirrors Apache ZooKeeper's SessionTest and SessionTimeoutTest. Timeout negotiation and
//! consecutive session ids were checked against ZooKeeper 3.8.0 (tick 2000: 1000 -> 4000,
//! 100000 -> 40000, 10000 -> 10000; ids 0x...07, 0x...08, 0x...09).

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use zookeeper_core::*;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(100);

fn manual_server(change: impl FnOnce(ServerConfig) -> ServerConfig) -> (Server, ManualClock) {
    let (config, clock) = ServerConfig::with_manual_clock();
    (
        Server::start(change(ServerConfig {
            tick_ms: 2000,
            ..config
        }))
        .unwrap(),
        clock,
    )
}

fn connect(server: &Server, session_timeout_ms: i64, watcher: Option<Watcher>) -> Client {
    let options = ConnectOptions {
        session_timeout_ms,
        watcher,
        ..ConnectOptions::default()
    };
    server.connect_with(options).unwrap()
}

/// A client with a channel default watcher; its SyncConnected event is already consumed.
fn connect_watched(server: &Server, session_timeout_ms: i64) -> (Client, Receiver<WatchedEvent>) {
    let (watcher, events) = Watcher::channel();
    let zk = connect(server, session_timeout_ms, Some(watcher));
    assert_eq!(
        events.recv_timeout(WAIT).unwrap(),
        WatchedEvent::state(KeeperState::SyncConnected)
    );
    (zk, events)
}

fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorCode {
    result.unwrap_err().code()
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

#[test]
fn timeout_is_clamped_into_two_to_twenty_ticks() {
    let (server, _clock) = manual_server(|config| config);
    for (requested, granted) in [
        (1000, 4000),
        (3999, 4000),
        (4000, 4000),
        (10_000, 10_000),
        (40_000, 40_000),
        (100_000, 40_000),
    ] {
        assert_eq!(
            connect(&server, requested, None).session_timeout_ms(),
            granted,
            "requested {requested}"
        );
    }
}

#[test]
fn configured_min_and_max_replace_the_tick_multiples() {
    let (server, _clock) = manual_server(|config| ServerConfig {
        session_timeout_ms_min: Some(5000),
        session_timeout_ms_max: Some(8000),
        ..config
    });
    for (requested, granted) in [(1000, 5000), (6000, 6000), (9000, 8000)] {
        assert_eq!(
            connect(&server, requested, None).session_timeout_ms(),
            granted,
            "requested {requested}"
        );
    }
}

#[test]
fn session_ids_are_distinct_consecutive_and_carry_the_member_id() {
    let (server, _clock) = manual_server(|config| ServerConfig {
        member_id: 3,
        ..config
    });
    let first = server.connect().unwrap();
    let second = server.connect().unwrap();
    let third = server.connect().unwrap();
    assert_eq!(second.session_id(), first.session_id() + 1);
    assert_eq!(third.session_id(), second.session_id() + 1);
    assert_eq!(first.session_id() >> 56, 3);
    assert_ne!(first.session_password(), second.session_password());
    let (_, stat) = second
        .create2("/e", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(stat.ephemeral_owner, second.session_id());
}

#[test]
fn close_deletes_the_sessions_ephemerals_in_one_change() {
    let (server, _clock) = manual_server(|config| config);
    let owner = server.connect().unwrap();
    let observer = server.connect().unwrap();
    observer
        .create("/p", b"", &open(), CreateMode::Persistent)
        .unwrap();
    owner
        .create("/e1", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    let (e2, _) = owner
        .create2("/p/e", b"", &open(), CreateMode::EphemeralSequential)
        .unwrap();
    assert_eq!(e2, "/p/e0000000000");
    observer
        .create("/p/keep", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(
        owner.get_ephemerals("/").unwrap(),
        vec!["/e1".to_string(), e2.clone()]
    );

    let (watcher, events) = Watcher::channel();
    observer.exists("/e1", Some(watcher.clone())).unwrap();
    observer.exists(&e2, Some(watcher.clone())).unwrap();
    observer.get_children("/p", Some(watcher.clone())).unwrap();
    let before = observer.exists("/p", None).unwrap().unwrap();

    owner.close().unwrap();
    assert_eq!(owner.state(), ClientState::Closed);

    let received: Vec<WatchedEvent> = (0..3).map(|_| events.recv_timeout(WAIT).unwrap()).collect();
    assert!(
        events.recv_timeout(QUIET).is_err(),
        "one child event for both deletes under /p"
    );
    let zxid = received[0].zxid;
    assert!(
        received.iter().all(|event| event.zxid == zxid),
        "one Txn deletes every ephemeral: {received:?}"
    );
    assert!(zxid > before.pzxid);
    let kinds: BTreeSet<(i32, String)> = received
        .iter()
        .map(|event| (event.event_type.code(), event.path.clone()))
        .collect();
    let expected: BTreeSet<(i32, String)> = [
        (EventType::NodeDeleted.code(), "/e1".to_string()),
        (EventType::NodeDeleted.code(), e2.clone()),
        (EventType::NodeChildrenChanged.code(), "/p".to_string()),
    ]
    .into();
    assert_eq!(kinds, expected);
    // A delete's NodeDeleted comes before its parent's NodeChildrenChanged.
    let position = |event_type, path: &str| {
        received
            .iter()
            .position(|e| e.event_type == event_type && e.path == path)
    };
    assert!(position(EventType::NodeDeleted, &e2) < position(EventType::NodeChildrenChanged, "/p"));

    let (children, parent) = observer.get_children2("/p", None).unwrap();
    assert_eq!(children, vec!["keep"]);
    assert_eq!((parent.pzxid, parent.num_children), (zxid, 1));
    assert_eq!(observer.exists("/e1", None).unwrap(), None);
    assert_eq!(
        observer.get_ephemerals("/").unwrap(),
        vec!["/p/keep".to_string()]
    );
}

#[test]
fn after_close_every_call_answers_session_expired() {
    let (server, _clock) = manual_server(|config| config);
    let zk = server.connect().unwrap();
    zk.create("/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    zk.close().unwrap();
    assert_eq!(zk.state(), ClientState::Closed);
    assert_eq!(code(zk.get_data("/a", None)), ErrorCode::SessionExpired);
    assert_eq!(code(zk.exists("/a", None)), ErrorCode::SessionExpired);
    assert_eq!(
        code(zk.create("/b", b"", &open(), CreateMode::Persistent)),
        ErrorCode::SessionExpired
    );
    assert_eq!(code(zk.set_data("/a", b"", -1)), ErrorCode::SessionExpired);
    assert_eq!(code(zk.delete("/a", -1)), ErrorCode::SessionExpired);
    assert_eq!(code(zk.whoami()), ErrorCode::SessionExpired);
    zk.close().unwrap();
    assert_eq!(server.engine().session_count(), 0);
    let other = server.connect().unwrap();
    assert!(other.exists("/a", None).unwrap().is_some());
}

#[test]
fn detached_session_expires_at_the_tick_after_its_timeout() {
    let (server, clock) = manual_server(|config| config);
    clock.advance(1000);
    let observer = server.connect().unwrap();
    let (zk, default_events) = connect_watched(&server, 4000);
    assert_eq!(zk.session_timeout_ms(), 4000);
    zk.create("/eph", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    let (watcher, events) = Watcher::channel();
    observer.exists("/eph", Some(watcher)).unwrap();
    zk.set_attached(false);

    // Touched at 1000 with 4000 ms: due at 5000, rounded up to the 6000 bucket.
    clock.advance(4000);
    server.tick();
    clock.advance(999);
    server.tick();
    assert_eq!(zk.state(), ClientState::Connected);
    assert!(default_events.recv_timeout(QUIET).is_err());
    assert!(observer.exists("/eph", None).unwrap().is_some());

    clock.advance(1);
    server.tick();
    assert_eq!(
        default_events.recv_timeout(WAIT).unwrap(),
        WatchedEvent::state(KeeperState::Expired)
    );
    assert_eq!(zk.state(), ClientState::Expired);
    let deleted = events.recv_timeout(WAIT).unwrap();
    assert_eq!(
        (deleted.event_type, deleted.path.as_str()),
        (EventType::NodeDeleted, "/eph")
    );
    assert_eq!(observer.exists("/eph", None).unwrap(), None);
    assert_eq!(code(zk.get_data("/", None)), ErrorCode::SessionExpired);
    assert_eq!(
        code(zk.create("/x", b"", &open(), CreateMode::Persistent)),
        ErrorCode::SessionExpired
    );
    assert_eq!(server.engine().session_count(), 1);
}

#[test]
fn attached_session_never_expires() {
    let (server, clock) = manual_server(|config| config);
    let (zk, default_events) = connect_watched(&server, 4000);
    zk.create("/eph", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    for _ in 0..50 {
        clock.advance(2000);
        server.tick();
    }
    assert_eq!(zk.state(), ClientState::Connected);
    assert!(default_events.try_recv().is_err());
    assert!(zk.exists("/eph", None).unwrap().is_some());
}

#[test]
fn requests_touch_a_detached_session() {
    let (server, clock) = manual_server(|config| config);
    let (zk, default_events) = connect_watched(&server, 4000);
    zk.set_attached(false);
    clock.advance(3000);
    zk.get_data("/", None).unwrap();
    // Without the touch it would have expired at 6000; touched at 3000 it is due at 8000.
    clock.advance(3000);
    server.tick();
    clock.advance(1999);
    server.tick();
    assert_eq!(zk.state(), ClientState::Connected);
    assert!(default_events.try_recv().is_err());
    clock.advance(1);
    server.tick();
    assert_eq!(
        default_events.recv_timeout(WAIT).unwrap(),
        WatchedEvent::state(KeeperState::Expired)
    );
    assert_eq!(code(zk.exists("/", None)), ErrorCode::SessionExpired);
}

#[test]
fn reattached_session_lives_on() {
    let (server, clock) = manual_server(|config| config);
    let zk = connect(&server, 4000, None);
    zk.set_attached(false);
    clock.advance(4000);
    server.tick();
    zk.set_attached(true);
    for _ in 0..10 {
        clock.advance(2000);
        server.tick();
    }
    assert_eq!(zk.state(), ClientState::Connected);
    zk.exists("/", None).unwrap();
}

#[test]
fn ephemerals_per_session_are_capped() {
    let (server, _clock) = manual_server(|config| ServerConfig {
        ephemerals_per_session_max: 2,
        ..config
    });
    let zk = server.connect().unwrap();
    zk.create("/e1", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    let sequential = zk
        .create("/s", b"", &open(), CreateMode::EphemeralSequential)
        .unwrap();
    assert_eq!(
        code(zk.create("/e3", b"", &open(), CreateMode::Ephemeral)),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(
        code(zk.create("/s", b"", &open(), CreateMode::EphemeralSequential)),
        ErrorCode::QuotaExceeded
    );
    // Persistent znodes are not counted.
    zk.create("/p", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let error = zk
        .multi(vec![
            Op::delete("/e1", -1),
            Op::create("/e4", b"", &open(), CreateMode::Ephemeral),
            Op::create("/e5", b"", &open(), CreateMode::Ephemeral),
        ])
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::QuotaExceeded);
    assert_eq!(
        error.multi_results().unwrap(),
        &[
            OpResult::Error(None),
            OpResult::Error(None),
            OpResult::Error(Some(ErrorCode::QuotaExceeded))
        ]
    );
    // The cap is per session, and a deleted ephemeral frees its slot.
    server
        .connect()
        .unwrap()
        .create("/other", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    zk.delete("/e1", -1).unwrap();
    zk.create("/e3", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(
        zk.get_ephemerals("/").unwrap(),
        vec!["/e3".to_string(), sequential]
    );
}

#[test]
fn watches_per_session_are_capped() {
    let (server, _clock) = manual_server(|config| ServerConfig {
        watches_per_session_max: 2,
        ..config
    });
    let zk = server.connect().unwrap();
    zk.create("/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let (watcher, events) = Watcher::channel();
    zk.get_data("/a", Some(watcher.clone())).unwrap();
    zk.get_children("/a", Some(watcher.clone())).unwrap();
    assert_eq!(
        code(zk.exists("/b", Some(watcher.clone()))),
        ErrorCode::QuotaExceeded
    );
    // The same watch again is no new watch.
    zk.exists("/a", Some(watcher.clone())).unwrap();
    // Reads without a watch are not limited.
    assert_eq!(zk.exists("/b", None).unwrap(), None);
    // Another session has its own allowance.
    // (Its own watcher: closing that session tells its watchers Closed.)
    server
        .connect()
        .unwrap()
        .exists("/b", Some(Watcher::new(|_| {})))
        .unwrap();
    // A fired one-shot watch frees its slot.
    zk.set_data("/a", b"x", -1).unwrap();
    assert_eq!(
        events.recv_timeout(WAIT).unwrap().event_type,
        EventType::NodeDataChanged
    );
    zk.exists("/b", Some(watcher)).unwrap();
}

#[test]
fn dropping_a_client_closes_its_session() {
    let (server, _clock) = manual_server(|config| config);
    let observer = server.connect().unwrap();
    let zk = server.connect().unwrap();
    zk.create("/eph", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    let (watcher, events) = Watcher::channel();
    observer.exists("/eph", Some(watcher)).unwrap();
    assert_eq!(server.engine().session_count(), 2);
    drop(zk);
    assert_eq!(server.engine().session_count(), 1);
    assert_eq!(
        events.recv_timeout(WAIT).unwrap().event_type,
        EventType::NodeDeleted
    );
    assert_eq!(observer.exists("/eph", None).unwrap(), None);
}

/// Stopping a server is not expiry: it writes no close (a durable server's sessions live on
/// for their clients to resume, see tests/restart.rs). An in-memory server's sessions cannot
/// outlive it, so its in-process clients hear Expired.
#[test]
fn dropping_an_in_memory_server_expires_its_clients_without_closing_sessions() {
    let (server, _clock) = manual_server(|config| config);
    let (first, first_events) = connect_watched(&server, 30_000);
    let second = server.connect().unwrap();
    let engine = server.engine().clone();
    first
        .create("/eph", b"", &open(), CreateMode::Ephemeral)
        .unwrap();
    let znodes = engine.znode_count();
    let zxid = engine.last_zxid();
    drop(server);
    assert!(engine.is_stopped());
    let expired = first_events.recv_timeout(WAIT).unwrap();
    assert_eq!(
        (expired.event_type, expired.state),
        (EventType::None, KeeperState::Expired)
    );
    assert_eq!(code(first.exists("/eph", None)), ErrorCode::SessionExpired);
    assert_eq!(code(second.get_data("/", None)), ErrorCode::SessionExpired);
    assert_eq!(
        (
            engine.session_count(),
            engine.znode_count(),
            engine.last_zxid()
        ),
        (2, znodes, zxid),
        "no session was closed, nothing was written"
    );
}

/// A watcher that, on each event, re-reads the znode and leaves itself again, from inside the
/// callback: the pattern every ZooKeeper cache recipe uses.
fn rewatching(client: Weak<Client>, seen: Sender<Vec<u8>>) -> Watcher {
    Watcher::new(move |event: WatchedEvent| {
        let Some(zk) = client.upgrade() else { return };
        if event.event_type == EventType::NodeDataChanged {
            let (data, _) = zk
                .get_data(&event.path, Some(rewatching(client.clone(), seen.clone())))
                .unwrap();
            seen.send(data.unwrap_or_default()).unwrap();
        }
    })
}

#[test]
fn watcher_may_call_back_into_its_own_client() {
    let (server, _clock) = manual_server(|config| config);
    let zk = Arc::new(server.connect().unwrap());
    let writer = server.connect().unwrap();
    writer
        .create("/cfg", b"v0", &open(), CreateMode::Persistent)
        .unwrap();
    let (sender, seen) = crossbeam_channel::unbounded();
    zk.get_data("/cfg", Some(rewatching(Arc::downgrade(&zk), sender)))
        .unwrap();
    for version in 1..=3 {
        let data = format!("v{version}");
        writer.set_data("/cfg", data.as_bytes(), -1).unwrap();
        assert_eq!(seen.recv_timeout(WAIT).unwrap(), data.as_bytes());
    }
    // The callback's own writes work too.
    let (watcher, events) = Watcher::channel();
    let inner = Arc::downgrade(&zk);
    zk.exists("/made_by_callback", Some(watcher)).unwrap();
    let maker = Watcher::new(move |_| {
        if let Some(zk) = inner.upgrade() {
            zk.create(
                "/made_by_callback",
                b"",
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .unwrap();
        }
    });
    zk.exists("/go", Some(maker)).unwrap();
    writer
        .create("/go", b"", &open(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(
        events.recv_timeout(WAIT).unwrap().event_type,
        EventType::NodeCreated
    );
}

#[test]
fn clients_work_concurrently_from_threads() {
    let (server, _clock) = manual_server(|config| config);
    let setup = server.connect().unwrap();
    setup
        .create("/q", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let shared = Arc::new(server.connect().unwrap());
    let per_thread = 25;
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let own = server.connect().unwrap();
            let shared = shared.clone();
            scope.spawn(move || {
                let mut previous = String::new();
                for index in 0..per_thread {
                    let client = if index % 2 == 0 { &own } else { &*shared };
                    let path = client
                        .create(
                            &format!("/q/t{thread}-"),
                            b"",
                            &open(),
                            CreateMode::PersistentSequential,
                        )
                        .unwrap();
                    let suffix = path[path.len() - 10..].to_string();
                    assert!(suffix > previous, "sequence numbers grow within a thread");
                    previous = suffix;
                    client.get_children("/q", None).unwrap();
                }
            });
        }
    });
    let (children, stat) = setup.get_children2("/q", None).unwrap();
    assert_eq!(children.len(), 4 * per_thread);
    assert_eq!((stat.num_children, stat.cversion), (100, 100));
    let suffixes: BTreeSet<&str> = children
        .iter()
        .map(|name| &name[name.len() - 10..])
        .collect();
    assert_eq!(suffixes.len(), 100, "every sequence number is used once");
    assert_eq!(suffixes.iter().next_back().copied(), Some("0000000099"));
}
