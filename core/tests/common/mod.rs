//! Helpers shared by the behavioural suites: a fresh server on a manual clock, sessions with
//! identities, and watchers that record events so a test can assert exactly which watcher saw
//! what, and in which order.
#![allow(dead_code)]

pub mod certificates;
pub mod proxy;

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, EventType, ManualClock, Server, ServerConfig, Stat,
    WatchedEvent, Watcher,
};

/// How long a test waits for an event that must come.
pub const EVENT_WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure an event does not come.
pub const QUIET_WAIT: Duration = Duration::from_millis(100);

/// A fresh server on a manual clock (no ticker thread, nothing expires unless the test says so).
pub fn server() -> (Server, ManualClock) {
    let (config, clock) = ServerConfig::with_manual_clock();
    (
        Server::start(ServerConfig {
            tick_ms: 2000,
            ..config
        })
        .unwrap(),
        clock,
    )
}

/// A session with a default watcher that records connection events.
pub fn connect_with_default(server: &Server) -> (Client, Receiver<WatchedEvent>) {
    let (watcher, events) = Watcher::channel();
    let client = server
        .connect_with(ConnectOptions {
            watcher: Some(watcher),
            ..ConnectOptions::default()
        })
        .unwrap();
    (client, events)
}

/// Creates a persistent znode with empty data; returns its Stat.
pub fn create(client: &Client, path: &str) -> Stat {
    client
        .create2(path, b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap()
        .1
}

/// The next event on a channel watcher; fails the test after `EVENT_WAIT`.
pub fn next(events: &Receiver<WatchedEvent>) -> WatchedEvent {
    events
        .recv_timeout(EVENT_WAIT)
        .expect("a watch event within 5 s")
}

/// Asserts that no event arrives within `QUIET_WAIT`.
pub fn assert_quiet(events: &Receiver<WatchedEvent>) {
    if let Ok(event) = events.recv_timeout(QUIET_WAIT) {
        panic!("unexpected watch event {event:?}");
    }
}

/// The event a znode change delivers to a connected client.
pub fn node(event_type: EventType, path: &str, zxid: i64) -> WatchedEvent {
    WatchedEvent::node(event_type, path, zxid)
}

/// Asserts that the next event on a channel watcher is `event_type` on `path` with `zxid`.
pub fn expect(events: &Receiver<WatchedEvent>, event_type: EventType, path: &str, zxid: i64) {
    assert_eq!(next(events), node(event_type, path, zxid));
}

/// A client-side removal event (`DataWatchRemoved` and friends carry no zxid).
pub fn removed(event_type: EventType, path: &str) -> WatchedEvent {
    WatchedEvent::node(event_type, path, -1)
}

/// Named watchers that all report into one channel, so a test sees the global order in which
/// the dispatcher called them.
pub struct Recorder {
    sender: Sender<(String, WatchedEvent)>,
    /// Every (watcher name, event) in dispatch order.
    pub events: Receiver<(String, WatchedEvent)>,
}

impl Recorder {
    pub fn new() -> Recorder {
        let (sender, events) = crossbeam_channel::unbounded();
        Recorder { sender, events }
    }

    /// A new, distinct watcher that records under `name`.
    pub fn watcher(&self, name: &str) -> Watcher {
        let sender = self.sender.clone();
        let name = name.to_string();
        Watcher::new(move |event| drop(sender.send((name.clone(), event))))
    }

    /// The next (name, event); fails the test after `EVENT_WAIT`.
    pub fn next(&self) -> (String, WatchedEvent) {
        self.events
            .recv_timeout(EVENT_WAIT)
            .expect("a watch event within 5 s")
    }

    /// The next `count` (name, event) pairs in dispatch order.
    pub fn take(&self, count: usize) -> Vec<(String, WatchedEvent)> {
        (0..count).map(|_| self.next()).collect()
    }

    /// Asserts that the next event is `event`, seen by the watcher `name`.
    pub fn expect(&self, name: &str, event: WatchedEvent) {
        assert_eq!(self.next(), seen(name, event));
    }

    /// Asserts that the next events are `event` seen once by each watcher in `names`, in any
    /// order (the Java client keeps the watchers an event reaches in a HashSet).
    pub fn expect_each(&self, names: &[&str], event: WatchedEvent) {
        let expected = names.iter().map(|name| seen(name, event.clone())).collect();
        assert_eq!(sorted(self.take(names.len())), sorted(expected));
    }

    /// Asserts that no event arrives within `QUIET_WAIT`.
    pub fn assert_quiet(&self) {
        if let Ok(event) = self.events.recv_timeout(QUIET_WAIT) {
            panic!("unexpected watch event {event:?}");
        }
    }
}

/// Shorthand for an expected (watcher name, event) pair.
pub fn seen(name: &str, event: WatchedEvent) -> (String, WatchedEvent) {
    (name.to_string(), event)
}

/// Sorts (name, event) pairs so a test can compare sets where ZooKeeper does not define an
/// order (the Java client keeps the watchers an event reaches in a HashSet).
pub fn sorted(mut pairs: Vec<(String, WatchedEvent)>) -> Vec<(String, WatchedEvent)> {
    pairs.sort_by(|a, b| {
        (&a.0, a.1.event_type.code(), &a.1.path).cmp(&(&b.0, b.1.event_type.code(), &b.1.path))
    });
    pairs
}

/// The error code of a call that must fail.
pub fn code<T: std::fmt::Debug>(
    result: Result<T, zookeeper_core::Error>,
) -> zookeeper_core::ErrorCode {
    result.unwrap_err().code()
}

/// A session authenticated with `digest` `user:password`.
pub fn connect_as(server: &Server, user_password: &str) -> Client {
    let zk = server.connect().unwrap();
    zk.add_auth("digest", user_password.as_bytes()).unwrap();
    zk
}

/// A session whose connection comes from `ip` (for ip ACLs and whoAmI).
pub fn connect_from(server: &Server, ip: &str) -> Client {
    server
        .connect_with(ConnectOptions {
            ip: ip.to_string(),
            ..ConnectOptions::default()
        })
        .unwrap()
}

/// The ManualClock's wall time at start (2026-01-01T00:00:00Z).
pub const T0: i64 = 1_767_225_600_000;

/// World-readable, world-writable: ZooKeeper's OPEN_ACL_UNSAFE.
pub fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// Everything a client can observe of a few znodes, plus the server's last zxid and size:
/// equal snapshots mean a failed request changed nothing.
pub fn snapshot(server: &Server, zk: &Client, paths: &[&str]) -> Vec<String> {
    let mut seen = vec![format!(
        "zxid={} znodes={}",
        server.engine().last_zxid(),
        server.engine().znode_count()
    )];
    for path in paths {
        seen.push(format!(
            "{path}: {:?} {:?}",
            zk.get_data(path, None),
            zk.get_children(path, None)
        ));
    }
    seen
}

/// Serves `server`'s engine on a free loopback port; `local_address()` tells which.
pub fn serve_tcp(server: &Server) -> zookeeper_core::server::net::NetServer {
    use zookeeper_core::server::net::{NetConfig, NetServer};
    NetServer::start(
        std::sync::Arc::clone(server.engine()),
        NetConfig {
            address: "127.0.0.1:0".parse().unwrap(),
            ..NetConfig::default()
        },
    )
    .unwrap()
}

/// Polls `done` every 5 ms; fails the test when it is not true within 10 s.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
