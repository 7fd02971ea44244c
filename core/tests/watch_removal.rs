//! Guards watch removal against the lock cycles and the cache race a review found: a removal
//! that held the client's watch tables while waiting for the server blocked the reader thread
//! (an event arriving first) or the engine (delivering an event) or a reconnect, forever; and a
//! read-cache fill that slipped in between the cache's invalidation and the server's removal
//! kept a stale entry for good.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use zookeeper_core::{
    Acl, AddWatchMode, Client, ClientState, ConnectOptions, CreateMode, ReadCacheConfig, Server,
    Watcher, WatcherType,
};

/// Longest a removal may take before the test calls it a deadlock.
const STUCK_S: u64 = 10;

fn options(cache: bool) -> ConnectOptions {
    ConnectOptions {
        session_timeout_ms: 6_000,
        read_cache: cache.then(ReadCacheConfig::default),
        ..ConnectOptions::default()
    }
}

/// Runs `work` on a thread; panics if it has not finished within STUCK_S (the thread is left
/// behind, stuck).
fn finishes(what: &str, work: impl FnOnce() + Send + 'static) {
    let (done, finished) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        work();
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(STUCK_S)).is_ok(),
        "{what} never returned"
    );
}

/// A server that is never dropped: a test that finds a deadlock must fail, not hang in the
/// server's drop behind the stuck lock.
fn leaked_server() -> &'static Server {
    Box::leak(Box::new(common::server().0))
}

fn clients(server: &Server, over_tcp: bool, cache: bool) -> (Arc<Client>, Client) {
    let net = common::serve_tcp(server);
    let address = net.local_address().to_string();
    // The port lives as long as the test process: the clients keep talking to it.
    std::mem::forget(net);
    let connect = || {
        if over_tcp {
            Client::connect(&address, options(cache)).unwrap()
        } else {
            server.connect_with(options(cache)).unwrap()
        }
    };
    (Arc::new(connect()), server.connect().unwrap())
}

fn removal_while_events_arrive(over_tcp: bool) {
    let server = leaked_server();
    let (client, other) = clients(server, over_tcp, false);
    client
        .create("/a", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    client
        .create("/b", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    let (persistent, _events) = Watcher::channel();
    client
        .add_watch("/b", persistent, AddWatchMode::Persistent)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = other.set_data("/b", b"x", -1);
            }
        })
    };
    for round in 0..300 {
        let client = client.clone();
        finishes(&format!("round {round}: remove_watches"), move || {
            let (watcher, _events) = Watcher::channel();
            client.exists("/a", Some(watcher)).unwrap();
            client.remove_watches("/a", WatcherType::Data).unwrap();
        });
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn a_removal_while_events_arrive_returns_over_tcp() {
    removal_while_events_arrive(true);
}

#[test]
fn a_removal_while_events_arrive_returns_in_process() {
    removal_while_events_arrive(false);
}

#[test]
fn a_removal_during_a_reconnect_returns_once_connected() {
    let server = leaked_server();
    let net = common::serve_tcp(server);
    let proxy = Proxy::start(net.local_address());
    let client = Arc::new(Client::connect(&proxy.address.to_string(), options(false)).unwrap());
    client
        .create("/a", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    let (watcher, _events) = Watcher::channel();
    client.get_data("/a", Some(watcher)).unwrap();
    proxy.cut(true);
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.state() != ClientState::Connecting {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let removing = client.clone();
    let healer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        proxy.heal();
        proxy
    });
    finishes("remove_watches across a reconnect", move || {
        removing.remove_watches("/a", WatcherType::Data).unwrap();
    });
    let _proxy = healer.join().unwrap();
    assert_eq!(client.state(), ClientState::Connected);
}

fn cache_fill_during_removal(over_tcp: bool) {
    let server = leaked_server();
    let (client, other) = clients(server, over_tcp, true);
    client
        .create("/c", b"v0", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    for round in 1..200 {
        let (watcher, _events) = Watcher::channel();
        client.get_data("/c", Some(watcher.clone())).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (client, stop) = (client.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = client.get_data("/c", None);
                }
            })
        };
        client
            .remove_watcher("/c", &watcher, WatcherType::Data)
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        let wanted = format!("v{round}");
        other.set_data("/c", wanted.as_bytes(), -1).unwrap();
        // The change's event, if the cache's watch stands, precedes the sync's answer.
        client.sync("/c").unwrap();
        assert_eq!(
            client.get_data("/c", None).unwrap().0.as_deref(),
            Some(wanted.as_bytes()),
            "round {round}"
        );
    }
}

#[test]
fn no_cache_fill_outlives_a_removal_over_tcp() {
    cache_fill_during_removal(true);
}

#[test]
fn no_cache_fill_outlives_a_removal_in_process() {
    cache_fill_during_removal(false);
}
