//! Guards the read cache against serving data older than what the client has been told: a
//! write's own reply, another session's change announced before a later reply, a deletion, a
//! removed watch; and against leaking its watches into the user's view.

mod common;

use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, ErrorCode, ReadCacheConfig, Server, Watcher,
    WatcherType,
};

fn cached_options() -> ConnectOptions {
    ConnectOptions {
        read_cache: Some(ReadCacheConfig {
            entries_max: 100,
            bytes_max: 1 << 20,
        }),
        ..ConnectOptions::default()
    }
}

/// Runs `check` with a cached client in process, then with one over TCP.
fn both(check: impl Fn(&Server, &Client)) {
    let (server, _clock) = common::server();
    let client = server.connect_with(cached_options()).unwrap();
    check(&server, &client);
    drop(client);

    let (server, _clock) = common::server();
    let net = common::serve_tcp(&server);
    let client = Client::connect(&net.local_address().to_string(), cached_options()).unwrap();
    check(&server, &client);
}

#[test]
fn repeated_reads_are_served_from_the_cache() {
    both(|server, client| {
        let other = server.connect().unwrap();
        other
            .create("/c", b"v1", &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap();
        let first = client.get_data("/c", None).unwrap();
        for _ in 0..10 {
            assert_eq!(client.get_data("/c", None).unwrap(), first);
        }
        let stats = client.read_cache_stats().unwrap();
        assert_eq!((stats.hits, stats.misses, stats.entries), (10, 1, 1));
    });
}

#[test]
fn a_change_is_seen_once_a_later_reply_arrived() {
    both(|server, client| {
        let other = server.connect().unwrap();
        other
            .create("/c", b"v1", &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap();
        assert_eq!(client.get_data("/c", None).unwrap().0, Some(b"v1".to_vec()));
        let changed = other.set_data("/c", b"v2", -1).unwrap();
        // The change's event precedes the sync's reply, so the cache cannot be older.
        client.sync("/c").unwrap();
        assert_eq!(
            client.get_data("/c", None).unwrap(),
            (Some(b"v2".to_vec()), changed)
        );
        other.delete("/c", -1).unwrap();
        client.sync("/").unwrap();
        assert_eq!(
            client.get_data("/c", None).unwrap_err().code(),
            ErrorCode::NoNode
        );
    });
}

#[test]
fn the_clients_own_write_is_read_back_at_once() {
    both(|_server, client| {
        client
            .create("/own", b"a", &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap();
        for round in 0..20u32 {
            client.get_data("/own", None).unwrap();
            let data = round.to_be_bytes();
            let stat = client.set_data("/own", &data, -1).unwrap();
            assert_eq!(
                client.get_data("/own", None).unwrap(),
                (Some(data.to_vec()), stat)
            );
        }
    });
}

#[test]
fn the_caches_watches_stay_out_of_the_users_view() {
    both(|_server, client| {
        client
            .create("/w", b"a", &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap();
        client.get_data("/w", None).unwrap();
        assert_eq!(
            client
                .remove_watches("/w", WatcherType::Data)
                .unwrap_err()
                .code(),
            ErrorCode::NoWatcher
        );
        // A user's watch and its removal: the cache lets go of the znode with it.
        let (watcher, _events) = Watcher::channel();
        client.get_data("/w", Some(watcher)).unwrap();
        client.remove_watches("/w", WatcherType::Data).unwrap();
        let misses = client.read_cache_stats().unwrap().misses;
        client.get_data("/w", None).unwrap();
        assert_eq!(client.read_cache_stats().unwrap().misses, misses + 1);
    });
}
