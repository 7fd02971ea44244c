//! Guards the TCP client against the failures of ZooKeeper's ClientCnxn: replies matched to the
//! wrong call, watches lost across a reconnect, a chroot leaking into paths, callers left
//! waiting on a dead connection, an expired session reported as anything but expired.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{next, EVENT_WAIT};
use parking_lot::Mutex;
use zookeeper_core::op::Op;
use zookeeper_core::server::net::NetServer;
use zookeeper_core::{
    Acl, Client, ClientState, ConnectOptions, CreateMode, ErrorCode, EventType, KeeperState,
    ManualClock, Server, WatchedEvent, Watcher,
};

struct Served {
    server: Server,
    clock: ManualClock,
    _net: NetServer,
    address: SocketAddr,
}

fn served() -> Served {
    let (server, clock) = common::server();
    let net = common::serve_tcp(&server);
    let address = net.local_address();
    Served {
        server,
        clock,
        _net: net,
        address,
    }
}

fn connect(hosts: &str) -> (Client, crossbeam_channel::Receiver<WatchedEvent>) {
    let (watcher, events) = Watcher::channel();
    let client = Client::connect(
        hosts,
        ConnectOptions {
            session_timeout_ms: 6_000,
            watcher: Some(watcher),
            ..ConnectOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        next(&events),
        WatchedEvent::state(KeeperState::SyncConnected)
    );
    (client, events)
}

fn wait_for_state(client: &Client, state: ClientState) {
    let deadline = Instant::now() + EVENT_WAIT;
    while client.state() != state {
        assert!(Instant::now() < deadline, "state {:?}", client.state());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn calls_over_tcp_answer_as_in_process() {
    let served = served();
    let (client, _events) = connect(&served.address.to_string());
    let local = served.server.connect().unwrap();
    let (path, stat) = client
        .create2("/a", b"one", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(path, "/a");
    assert_eq!(local.exists("/a", None).unwrap(), Some(stat));
    let sequential = client
        .create(
            "/a/s-",
            b"",
            &Acl::open_unsafe(),
            CreateMode::PersistentSequential,
        )
        .unwrap();
    assert_eq!(sequential, "/a/s-0000000000");
    assert_eq!(
        client.get_data("/a", None).unwrap(),
        local.get_data("/a", None).unwrap()
    );
    assert_eq!(
        client.get_children2("/a", None).unwrap(),
        local.get_children2("/a", None).unwrap()
    );
    let set = client.set_data("/a", b"two", 0).unwrap();
    assert_eq!(set.version, 1);
    assert_eq!(client.check("/a", 1).unwrap(), set);
    assert_eq!(
        client.check("/a", 0).unwrap_err().code(),
        ErrorCode::BadVersion
    );
    assert_eq!(
        client.check("/none", -1).unwrap_err().code(),
        ErrorCode::NoNode
    );
    assert_eq!(client.exists("/none", None).unwrap(), None);
    let error = client.delete("/a", -1).unwrap_err();
    assert_eq!(
        (error.code(), error.path()),
        (ErrorCode::NotEmpty, Some("/a"))
    );
    let failed = client
        .multi(vec![Op::delete("/a/s-0000000000", -1), Op::delete("/a", 5)])
        .unwrap_err();
    assert_eq!(failed.code(), ErrorCode::BadVersion);
    assert_eq!(failed.multi_results().unwrap().len(), 2);
    assert_eq!(
        client.get_all_children_number("/").unwrap(),
        local.get_all_children_number("/").unwrap()
    );
    let whoami = client.whoami().unwrap();
    assert_eq!(
        (whoami[0].auth_scheme.as_str(), whoami[0].user.as_str()),
        ("ip", "127.0.0.1")
    );
    assert_eq!(client.sync("/a").unwrap(), "/a");
    client
        .create("/e", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(client.get_ephemerals("/").unwrap(), vec!["/e".to_string()]);
    client.close().unwrap();
    assert_eq!(
        local.exists("/e", None).unwrap(),
        None,
        "close ends the session at once"
    );
    assert_eq!(client.state(), ClientState::Closed);
    assert_eq!(
        client.exists("/a", None).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
}

#[test]
fn a_chroot_is_invisible_to_the_client() {
    let served = served();
    let local = served.server.connect().unwrap();
    local
        .create("/app", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    let (client, _events) = connect(&format!("{}/app", served.address));
    assert_eq!(
        client
            .create("/x", b"", &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap(),
        "/x"
    );
    assert!(local.exists("/app/x", None).unwrap().is_some());
    assert_eq!(
        client.get_children("/", None).unwrap(),
        vec!["x".to_string()]
    );
    let (watcher, events) = Watcher::channel();
    client.get_data("/x", Some(watcher)).unwrap();
    let changed = local.set_data("/app/x", b"v", -1).unwrap();
    assert_eq!(
        next(&events),
        WatchedEvent::node(EventType::NodeDataChanged, "/x", changed.mzxid)
    );
    let results = client
        .multi(vec![Op::create(
            "/y",
            b"",
            &Acl::open_unsafe(),
            CreateMode::PersistentSequential,
        )])
        .unwrap();
    assert!(
        matches!(&results[0], zookeeper_core::op::OpResult::Create { path, .. } if path == "/y0000000001")
    );
    assert_eq!(client.sync("/").unwrap(), "/");
}

#[test]
fn async_completions_run_in_order_after_the_events_a_write_caused() {
    let served = served();
    let (client, _events) = connect(&served.address.to_string());
    client
        .create("/w", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = |name: &'static str| {
        let seen = seen.clone();
        Watcher::new(move |event| seen.lock().push(format!("{name} {:?}", event.event_type)))
    };
    client.get_data("/w", Some(record("watch"))).unwrap();
    let (done_sender, done) = crossbeam_channel::unbounded();
    for (index, op) in [
        Op::set_data("/w", b"1", -1),
        Op::GetData {
            path: "/w".into(),
            watch: false,
        },
        Op::delete("/w", -1),
    ]
    .into_iter()
    .enumerate()
    {
        let (seen, done_sender) = (seen.clone(), done_sender.clone());
        client.submit_async(
            op,
            None,
            Box::new(move |reply| {
                seen.lock().push(format!("done {index} {}", reply.is_ok()));
                let _ = done_sender.send(());
            }),
        );
    }
    for _ in 0..3 {
        done.recv_timeout(EVENT_WAIT).unwrap();
    }
    assert_eq!(
        *seen.lock(),
        vec![
            "watch NodeDataChanged",
            "done 0 true",
            "done 1 true",
            "done 2 true"
        ]
    );
}

#[test]
fn many_threads_share_one_connection() {
    let served = served();
    let (client, _events) = connect(&served.address.to_string());
    let client = Arc::new(client);
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let client = client.clone();
            std::thread::spawn(move || {
                for index in 0..200 {
                    let path = format!("/t{thread}-{index}");
                    let data = path.as_bytes();
                    client
                        .create(&path, data, &Acl::open_unsafe(), CreateMode::Persistent)
                        .unwrap();
                    assert_eq!(client.get_data(&path, None).unwrap().0, Some(data.to_vec()));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(client.get_all_children_number("/").unwrap(), 1_600 + 3);
}

#[test]
fn a_reconnect_keeps_the_session_and_fires_what_the_watches_missed() {
    let served = served();
    let proxy = Proxy::start(served.address);
    let (client, events) = connect(&proxy.address.to_string());
    let session = client.session_id();
    let local = served.server.connect().unwrap();
    local
        .create("/r", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    client
        .create("/mine", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .unwrap();
    let (watcher, watched) = Watcher::channel();
    client.get_data("/r", Some(watcher)).unwrap();

    proxy.cut(true);
    assert_eq!(
        next(&events),
        WatchedEvent::state(KeeperState::Disconnected)
    );
    assert_eq!(
        next(&watched),
        WatchedEvent::state(KeeperState::Disconnected)
    );
    wait_for_state(&client, ClientState::Connecting);
    let changed = local.set_data("/r", b"while away", -1).unwrap();
    proxy.heal();

    // A call made while the client is away waits for the reconnect.
    assert_eq!(
        client.get_data("/r", None).unwrap().0,
        Some(b"while away".to_vec())
    );
    assert_eq!(
        next(&events),
        WatchedEvent::state(KeeperState::SyncConnected)
    );
    assert_eq!(client.session_id(), session);
    assert_eq!(
        next(&watched),
        WatchedEvent::state(KeeperState::SyncConnected)
    );
    // As ZooKeeper's setWatches, the missed change fires without a zxid.
    assert!(changed.mzxid > 0);
    assert_eq!(
        next(&watched),
        WatchedEvent::node(EventType::NodeDataChanged, "/r", -1)
    );
    assert!(
        local.exists("/mine", None).unwrap().is_some(),
        "the ephemeral outlived the break"
    );
}

#[test]
fn an_expired_session_is_reported_as_expired() {
    let served = served();
    let proxy = Proxy::start(served.address);
    let (client, events) = connect(&proxy.address.to_string());
    client
        .create("/gone", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .unwrap();
    proxy.cut(true);
    assert_eq!(
        next(&events),
        WatchedEvent::state(KeeperState::Disconnected)
    );
    served.clock.advance(60_000);
    served.server.tick();
    let local = served.server.connect().unwrap();
    assert_eq!(local.exists("/gone", None).unwrap(), None);
    proxy.heal();
    assert_eq!(next(&events), WatchedEvent::state(KeeperState::Expired));
    assert_eq!(client.state(), ClientState::Expired);
    assert_eq!(
        client.exists("/", None).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
}

#[test]
fn calls_pending_when_the_connection_breaks_fail_with_connection_loss() {
    let served = served();
    let proxy = Proxy::start(served.address);
    let (client, _events) = connect(&proxy.address.to_string());
    // Nothing answers a sync while the server's members are... here, while the relay is cut:
    // send, then cut before the answer can come back.
    proxy.cut(true);
    let started = Instant::now();
    let error = client.exists("/", None).unwrap_err();
    assert_eq!(error.code(), ErrorCode::ConnectionLoss);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_client_moves_past_servers_that_do_not_answer() {
    let served = served();
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hosts = format!("{dead},{}", served.address);
    for _ in 0..3 {
        let (client, _events) = connect(&hosts);
        assert!(client.exists("/", None).unwrap().is_some());
    }
    let refused = Client::connect(
        &dead.to_string(),
        ConnectOptions {
            session_timeout_ms: 1_000,
            ..ConnectOptions::default()
        },
    );
    assert_eq!(refused.unwrap_err().code(), ErrorCode::ConnectionLoss);
    for bad in ["", "host:notaport", "h/bad/"] {
        assert_eq!(
            Client::connect(bad, ConnectOptions::default())
                .unwrap_err()
                .code(),
            ErrorCode::BadArguments,
            "{bad}"
        );
    }
}

#[test]
fn identities_survive_a_reconnect_and_a_bad_scheme_fails_the_client() {
    let served = served();
    let proxy = Proxy::start(served.address);
    let (client, events) = connect(&proxy.address.to_string());
    client.add_auth("digest", b"alice:secret").unwrap();
    let acl = Acl::creator_all();
    client
        .create("/private", b"s", &acl, CreateMode::Persistent)
        .unwrap();
    proxy.cut(false);
    assert_eq!(
        next(&events),
        WatchedEvent::state(KeeperState::Disconnected)
    );
    assert_eq!(
        next(&events),
        WatchedEvent::state(KeeperState::SyncConnected)
    );
    assert_eq!(
        client.get_data("/private", None).unwrap().0,
        Some(b"s".to_vec())
    );

    let (other, other_events) = connect(&served.address.to_string());
    assert_eq!(
        other.add_auth("nosuch", b"x").unwrap_err().code(),
        ErrorCode::AuthFailed
    );
    assert_eq!(
        next(&other_events),
        WatchedEvent::state(KeeperState::AuthFailed)
    );
    assert_eq!(other.state(), ClientState::AuthFailed);
    assert_eq!(
        other.exists("/", None).unwrap_err().code(),
        ErrorCode::AuthFailed
    );
}

#[test]
fn a_read_pipelined_before_a_write_does_not_see_it() {
    let served = served();
    let (client, _events) = connect(&served.address.to_string());
    client
        .create("/p", b"before", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    for round in 0..50 {
        let (sender, answers) = crossbeam_channel::unbounded();
        let read = sender.clone();
        client.submit_async(
            Op::GetData {
                path: "/p".into(),
                watch: false,
            },
            None,
            Box::new(move |reply| drop(read.send(reply))),
        );
        let data = format!("after {round}").into_bytes();
        client.submit_async(
            Op::set_data("/p", &data, -1),
            None,
            Box::new(move |reply| drop(sender.send(reply))),
        );
        let Ok(zookeeper_core::op::Reply::Data { data: seen, .. }) =
            answers.recv_timeout(EVENT_WAIT).unwrap()
        else {
            panic!("getData failed");
        };
        let expected = if round == 0 {
            b"before".to_vec()
        } else {
            format!("after {}", round - 1).into_bytes()
        };
        assert_eq!(seen, Some(expected), "round {round}");
        answers.recv_timeout(EVENT_WAIT).unwrap().unwrap();
    }
}
