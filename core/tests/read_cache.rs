//! Guards the read cache against serving data older than what the client has been told: a
//! write's own reply, another session's change announced before a later reply, a deletion, a
//! removed watch; and against leaking its watches into the user's view.

mod common;

use zookeeper_core::{
    Acl, Client, ConnectOptions, CreateMode, ErrorCode, Op, ReadCacheConfig, Server, Watcher,
    WatcherType,
};

fn cached_options() -> ConnectOptions {
    ConnectOptions {
        read_cache: Some(ReadCacheConfig {
            entries_max: 100,
            bytes_max: 1 << 20,
            ..ReadCacheConfig::default()
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

#[test]
fn exists_and_children_are_cached_absent_answers_too_until_their_watch_fires() {
    both(|server, client| {
        let other = server.connect().unwrap();
        assert_eq!(client.exists("/e", None).unwrap(), None);
        assert_eq!(client.exists("/e", None).unwrap(), None);
        let created = other
            .create2("/e", b"x", &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap()
            .1;
        client.sync("/").unwrap();
        assert_eq!(client.exists("/e", None).unwrap(), Some(created));
        assert_eq!(
            client.get_children("/e", None).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            client.get_children("/e", None).unwrap(),
            Vec::<String>::new()
        );
        other
            .create("/e/k", b"", &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap();
        client.sync("/").unwrap();
        let (children, stat) = client.get_children2("/e", None).unwrap();
        assert_eq!((children, stat.num_children), (vec!["k".to_string()], 1));
        // The child change moved /e's Stat, which exists answers with too.
        assert_eq!(client.exists("/e", None).unwrap(), Some(stat));
        let stats = client.read_cache_stats().unwrap();
        assert_eq!(
            (stats.exists.hits, stats.exists.misses),
            (1, 3),
            "{stats:?}"
        );
        assert_eq!(
            (stats.children.hits, stats.children.misses),
            (1, 2),
            "{stats:?}"
        );
    });
}

#[test]
fn async_calls_are_answered_from_the_cache_as_blocking_ones() {
    both(|_server, client| {
        client
            .create("/a", b"v", &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap();
        let (sender, answers) = crossbeam_channel::unbounded();
        for _ in 0..2 {
            for op in [
                Op::GetData {
                    path: "/a".into(),
                    watch: false,
                },
                Op::Exists {
                    path: "/a".into(),
                    watch: false,
                },
                Op::GetChildren {
                    path: "/a".into(),
                    watch: false,
                },
            ] {
                let sender = sender.clone();
                client.submit_async(op, None, Box::new(move |reply| drop(sender.send(reply))));
            }
            for _ in 0..3 {
                answers.recv_timeout(common::EVENT_WAIT).unwrap().unwrap();
            }
        }
        let async_client = client.as_async();
        let answer = block_on(async_client.get_data("/a", None));
        assert_eq!(answer.unwrap().0, Some(b"v".to_vec()));
        let stats = client.read_cache_stats().unwrap();
        assert_eq!(
            [stats.data, stats.exists, stats.children].map(|kind| (kind.hits, kind.misses)),
            [(2, 1), (1, 1), (1, 1)],
            "{stats:?}"
        );
    });
}

/// Polls a future that is ready at once or after its blocking call returned.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the async client's call did not complete"),
    }
}

#[test]
fn evicted_entries_watches_are_removed_so_the_servers_count_stays_bounded() {
    let entries_max = 16;
    let options = ConnectOptions {
        read_cache: Some(ReadCacheConfig {
            entries_max,
            bytes_max: 1 << 20,
            ..ReadCacheConfig::default()
        }),
        ..ConnectOptions::default()
    };
    let (server, _clock) = common::server();
    let net = common::serve_tcp(&server);
    let writer = server.connect().unwrap();
    writer
        .create("/churn", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    for index in 0..300 {
        writer
            .create(
                &format!("/churn/{index}"),
                b"d",
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .unwrap();
    }
    let in_process = server.connect_with(options.clone()).unwrap();
    let over_tcp = Client::connect(&net.local_address().to_string(), options).unwrap();
    for client in [&in_process, &over_tcp] {
        let mut most = 0;
        for round in 0..3 {
            for index in 0..300 {
                let path = format!("/churn/{index}");
                client.get_data(&path, None).unwrap();
                client.exists(&path, None).unwrap();
                client.get_children(&path, None).unwrap();
                client.exists(&format!("{path}/absent"), None).unwrap();
                most = most.max(server.engine().watch_count());
            }
            // A user's watch on a znode whose entry is evicted is not taken away with it.
            if round == 0 {
                let (watcher, events) = Watcher::channel();
                client.get_data("/churn/0", None).unwrap();
                client.get_data("/churn/0", Some(watcher)).unwrap();
                let released = client.read_cache_stats().unwrap().watches_released;
                for index in 1..200 {
                    client.get_data(&format!("/churn/{index}"), None).unwrap();
                }
                assert!(client.read_cache_stats().unwrap().watches_released > released);
                writer.set_data("/churn/0", b"e", -1).unwrap();
                assert_eq!(common::next(&events).path, "/churn/0");
            }
        }
        // Per (znode, kind) kept: the entries' and the batch waiting to be released.
        let bound = entries_max + zookeeper_core::client::READ_CACHE_RELEASE_BATCH;
        assert!(
            most <= bound,
            "the server held {most} watches, more than {bound}"
        );
        let stats = client.read_cache_stats().unwrap();
        assert!(stats.watches_released > 300, "{stats:?}");
        client.close().unwrap();
        assert_eq!(server.engine().watch_count(), 0);
    }
}

#[test]
fn an_entry_is_served_at_most_ttl_ms_on_the_servers_manual_clock() {
    let (server, clock) = common::server();
    let client = server
        .connect_with(ConnectOptions {
            read_cache: Some(ReadCacheConfig {
                ttl_ms: Some(5_000),
                ..ReadCacheConfig::default()
            }),
            ..ConnectOptions::default()
        })
        .unwrap();
    client
        .create("/t", b"v", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    client.get_children("/t", None).unwrap();
    clock.advance(4_999);
    client.get_children("/t", None).unwrap();
    clock.advance(1);
    client.get_children("/t", None).unwrap();
    let stats = client.read_cache_stats().unwrap();
    assert_eq!(
        (
            stats.children.hits,
            stats.children.misses,
            stats.expirations
        ),
        (1, 2, 1)
    );
}

#[test]
fn stale_reads_while_disconnected_are_served_only_when_asked_for() {
    for serve_stale_while_disconnected in [false, true] {
        let (server, _clock) = common::server();
        let net = common::serve_tcp(&server);
        let proxy = common::proxy::Proxy::start(net.local_address());
        let (watcher, events) = Watcher::channel();
        let client = Client::connect(
            &proxy.address.to_string(),
            ConnectOptions {
                watcher: Some(watcher),
                session_timeout_ms: 2_000,
                read_cache: Some(ReadCacheConfig {
                    serve_stale_while_disconnected,
                    ..ReadCacheConfig::default()
                }),
                ..ConnectOptions::default()
            },
        )
        .unwrap();
        common::next(&events); // SyncConnected
        client
            .create("/s", b"old", &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap();
        client.get_data("/s", None).unwrap();
        proxy.cut(true);
        assert_eq!(
            common::next(&events),
            zookeeper_core::WatchedEvent::state(zookeeper_core::KeeperState::Disconnected)
        );
        server
            .connect()
            .unwrap()
            .set_data("/s", b"new", -1)
            .unwrap();
        let read = client.get_data("/s", None);
        if serve_stale_while_disconnected {
            assert_eq!(read.unwrap().0, Some(b"old".to_vec()), "stale, as asked");
        } else {
            assert_eq!(read.unwrap_err().code(), ErrorCode::ConnectionLoss);
        }
        proxy.heal();
        common::wait_for("a fresh read after reconnecting", || {
            client
                .get_data("/s", None)
                .is_ok_and(|read| read.0 == Some(b"new".to_vec()))
        });
    }
}

#[test]
fn a_linearizable_read_is_not_answered_from_the_cache_before_its_sync() {
    let (server, _clock) = common::server();
    let net = common::serve_tcp(&server);
    let proxy = common::proxy::Proxy::start(net.local_address());
    let client = Client::connect(&proxy.address.to_string(), cached_options()).unwrap();
    let other = server.connect().unwrap();
    other
        .create("/l", b"old", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    client.get_data("/l", None).unwrap();
    // The change's event and the sync's reply are held back on their way to the client.
    proxy.hold_replies(true);
    other.set_data("/l", b"new", -1).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        proxy.hold_replies(false);
        proxy
    });
    let read = client.get_data_linearizable("/l", None).unwrap();
    assert_eq!(read.0, Some(b"new".to_vec()));
    let _proxy = release.join().unwrap();
}
