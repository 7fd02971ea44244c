//! Guards against watchers that are not told of their client's connection state: the default
//! watcher's SyncConnected on connect, and the None/Closed or None/Expired that reaches the
//! default watcher and every watcher still waiting when the client closes or its session expires
//! (ZooKeeper's WatcherTest.testWatcherDisconnectOnClose and the ZKWatchManager.materialize rules).
//!
//! Expected behaviour was checked against Apache ZooKeeper 3.8.0 with its Java client.

mod common;

use common::{assert_quiet, connect_with_default, create, expect, next, node, server, Recorder};
use zookeeper_core::{ClientState, ErrorCode, EventType, KeeperState, WatchedEvent, Watcher};

use EventType::NodeCreated;

#[test]
fn default_watcher_gets_sync_connected_on_connect_and_no_znode_events() {
    let (server, _clock) = server();
    let (zk, default_events) = connect_with_default(&server);

    let event = next(&default_events);
    assert_eq!(event, WatchedEvent::state(KeeperState::SyncConnected));
    assert_eq!(
        (event.event_type, event.path.as_str(), event.zxid),
        (EventType::None, "", -1)
    );

    // Watches left with an explicit watcher go to that watcher only.
    let (watcher, events) = Watcher::channel();
    zk.exists("/a", Some(watcher)).unwrap();
    let stat = create(&zk, "/a");
    expect(&events, NodeCreated, "/a", stat.czxid);
    assert_quiet(&default_events);
}

/// ZooKeeper's testWatcherDisconnectOnClose: a client that closes tells its default watcher and
/// every watcher still waiting (`None`, `Closed`); a watcher whose watch already fired hears nothing.
#[test]
fn close_tells_the_default_watcher_and_every_waiting_watcher_closed() {
    let (server, _clock) = server();
    let (zk, default_events) = connect_with_default(&server);
    assert_eq!(
        next(&default_events),
        WatchedEvent::state(KeeperState::SyncConnected)
    );
    create(&zk, "/a");
    let recorder = Recorder::new();
    zk.exists("/missing", Some(recorder.watcher("exists")))
        .unwrap();
    zk.get_data("/a", Some(recorder.watcher("data"))).unwrap();
    zk.get_children("/a", Some(recorder.watcher("child")))
        .unwrap();
    let fired = recorder.watcher("fired");
    zk.exists("/b", Some(fired)).unwrap();
    let created = create(&zk, "/b");
    recorder.expect("fired", node(NodeCreated, "/b", created.czxid));

    zk.close().unwrap();

    let closed = WatchedEvent::state(KeeperState::Closed);
    assert_eq!(next(&default_events), closed);
    recorder.expect_each(&["child", "data", "exists"], closed);
    recorder.assert_quiet();
    assert_quiet(&default_events);
}

#[test]
fn expiry_tells_the_default_watcher_and_every_waiting_watcher_expired() {
    let (server, clock) = server();
    let (zk, default_events) = connect_with_default(&server);
    assert_eq!(
        next(&default_events),
        WatchedEvent::state(KeeperState::SyncConnected)
    );
    create(&zk, "/a");
    let (watcher, events) = Watcher::channel();
    zk.get_data("/a", Some(watcher)).unwrap();

    zk.set_attached(false);
    clock.advance(u64::from(zk.session_timeout_ms()) + 2 * 2000);
    server.tick();

    // A real client may first see Disconnected; what matters here is that Expired reaches both.
    let not_disconnected = |events: &crossbeam_channel::Receiver<WatchedEvent>| loop {
        let event = next(events);
        if event.state != KeeperState::Disconnected {
            return event;
        }
    };
    let expired = WatchedEvent::state(KeeperState::Expired);
    assert_eq!(not_disconnected(&default_events), expired);
    assert_eq!(not_disconnected(&events), expired);
    assert_quiet(&events);
}

/// Guards against in-process clients that still report Connected after their server stopped:
/// every call fails, so they must say they are expired and tell their watchers.
#[test]
fn stopping_the_server_expires_its_in_process_clients() {
    let (server, _clock) = common::server();
    let (client, events) = common::connect_with_default(&server);
    assert_eq!(
        common::next(&events),
        WatchedEvent::state(KeeperState::SyncConnected)
    );
    drop(server);
    assert_eq!(
        common::next(&events),
        WatchedEvent::state(KeeperState::Expired)
    );
    assert_eq!(client.state(), ClientState::Expired);
    assert_eq!(
        client.exists("/", None).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
}
