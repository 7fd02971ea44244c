//! Guards against the async face drifting from the blocking one: an async twin that answers
//! differently (other Stat, other error, lost watch), a future that is not `Send`, and a
//! `WatchStream` that loses events, reorders them, or never wakes its task.
//!
//! Runs on a hand-written `block_on` (std's `Wake` and thread parking) so no executor's own
//! behaviour hides a missed wake-up.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use zookeeper_core::server::Clock;
use zookeeper_core::*;

const WAIT: Duration = Duration::from_secs(5);

/// Wakes the thread that is blocked in `block_on`, and counts wake-ups.
struct ThreadWaker {
    thread: Thread,
    wakes: AtomicUsize,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Runs a future to completion on this thread; panics if it is not done within `WAIT`, so a
/// missed wake-up fails the test instead of hanging it.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker_state = Arc::new(ThreadWaker {
        thread: std::thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(waker_state);
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        let now = Instant::now();
        assert!(now < deadline, "future not woken within {WAIT:?}");
        std::thread::park_timeout(deadline - now);
    }
}

fn manual_server() -> (Server, ManualClock) {
    let (config, clock) = ServerConfig::with_manual_clock();
    (Server::start(config).unwrap(), clock)
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// The next event if one arrives within 100 ms: how a test asserts that nothing came.
fn quiet(stream: &mut WatchStream) -> Option<WatchedEvent> {
    std::thread::sleep(Duration::from_millis(100));
    stream.try_recv()
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[test]
fn async_twins_answer_like_the_blocking_calls() {
    let (server, clock) = manual_server();
    let zk = server.connect().unwrap();
    let twin = zk.as_async();
    block_on(async {
        let (path, created) = twin
            .create2("/a", b"one", &open(), CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(path, "/a");
        assert_eq!(
            (created.version, created.data_length, created.ctime),
            (0, 3, clock.wall_ms())
        );
        assert_eq!(
            twin.create("/a/b", b"", &open(), CreateMode::Persistent)
                .await
                .unwrap(),
            "/a/b"
        );
        let (data, stat) = twin.get_data("/a", None).await.unwrap();
        assert_eq!(
            (data.as_deref(), stat),
            (Some(&b"one"[..]), zk.get_data("/a", None).unwrap().1)
        );
        let changed = twin.set_data("/a", b"two", 0).await.unwrap();
        assert_eq!((changed.version, changed.czxid), (1, created.czxid));
        assert!(changed.mzxid > created.mzxid);
        assert_eq!(twin.exists("/a", None).await.unwrap(), Some(changed));
        assert_eq!(twin.exists("/missing", None).await.unwrap(), None);
        assert_eq!(twin.get_children("/a", None).await.unwrap(), vec!["b"]);
        let (children, parent) = twin.get_children2("/a", None).await.unwrap();
        assert_eq!((children, parent.num_children), (vec!["b".to_string()], 1));
        assert_eq!(twin.get_all_children_number("/a").await.unwrap(), 1);
        assert_eq!(twin.check("/a", 1).await.unwrap(), changed);
        assert_eq!(twin.sync("/a").await.unwrap(), "/a");

        let acl_stat = twin.set_acl("/a/b", &Acl::read_unsafe(), 0).await.unwrap();
        assert_eq!(acl_stat.aversion, 1);
        assert_eq!(
            twin.get_acl("/a/b").await.unwrap(),
            (Acl::read_unsafe(), acl_stat)
        );

        let (container, container_stat) = twin.create_container("/c", b"", &open()).await.unwrap();
        assert_eq!(container, "/c");
        // Clients see owner 0 for containers (DataNode.getClientEphemeralOwner).
        assert_eq!(container_stat.ephemeral_owner, 0);
        let (ttl, _) = twin
            .create_ttl("/t", b"", &open(), CreateMode::PersistentWithTtl, 60_000)
            .await
            .unwrap();
        assert_eq!(ttl, "/t");

        twin.create("/e", b"", &open(), CreateMode::Ephemeral)
            .await
            .unwrap();
        assert_eq!(
            twin.get_ephemerals("/").await.unwrap(),
            vec!["/e".to_string()]
        );

        let results = twin
            .multi(vec![
                Op::create("/m", b"", &open(), CreateMode::Persistent),
                Op::check("/a", 1),
            ])
            .await
            .unwrap();
        assert_eq!(results.len(), 2);
        assert!(matches!(&results[0], OpResult::Create { path, .. } if path == "/m"));
        assert_eq!(results[1], OpResult::Check);
        let reads = twin
            .multi_read(vec![
                ReadOp::GetData { path: "/a".into() },
                ReadOp::GetChildren {
                    path: "/missing".into(),
                },
            ])
            .await
            .unwrap();
        assert_eq!(
            reads[0],
            ReadResult::Data {
                data: Some(b"two".to_vec()),
                stat: changed
            }
        );
        assert_eq!(reads[1], ReadResult::Error(ErrorCode::NoNode));

        twin.add_auth("digest", b"alice:secret").await.unwrap();
        let identities = twin.whoami().await.unwrap();
        assert_eq!(
            identities.last().map(|info| info.user.as_str()),
            Some("alice")
        );

        twin.delete("/a/b", 0).await.unwrap();
        assert_eq!(twin.exists("/a/b", None).await.unwrap(), None);
    });
}

#[test]
fn async_errors_carry_the_same_codes() {
    let (server, _clock) = manual_server();
    let zk = server.connect().unwrap();
    let twin = zk.as_async();
    block_on(async {
        assert_eq!(
            twin.get_data("/missing", None).await.unwrap_err().code(),
            ErrorCode::NoNode
        );
        twin.create("/a", b"", &open(), CreateMode::Persistent)
            .await
            .unwrap();
        let again = twin
            .create("/a", b"", &open(), CreateMode::Persistent)
            .await;
        assert_eq!(again.unwrap_err().code(), ErrorCode::NodeExists);
        assert_eq!(
            twin.set_data("/a", b"", 7).await.unwrap_err().code(),
            ErrorCode::BadVersion
        );
        assert_eq!(
            twin.delete("/", -1).await.unwrap_err().code(),
            ErrorCode::BadArguments
        );
        let failed = twin.multi(vec![Op::check("/a", 3)]).await.unwrap_err();
        assert_eq!(failed.code(), ErrorCode::BadVersion);
        assert_eq!(
            failed.multi_results().unwrap(),
            &[OpResult::Error(Some(ErrorCode::BadVersion))]
        );
        assert_eq!(
            twin.remove_watches("/a", WatcherType::Any)
                .await
                .unwrap_err()
                .code(),
            ErrorCode::NoWatcher
        );
        assert_eq!(
            twin.add_auth("bogus", b"").await.unwrap_err().code(),
            ErrorCode::AuthFailed
        );
        assert_eq!(
            twin.exists("/a", None).await.unwrap_err().code(),
            ErrorCode::AuthFailed
        );
    });
    let other = server.connect().unwrap();
    block_on(async {
        other.as_async().close().await.unwrap();
        let after = other.as_async().get_data("/a", None).await;
        assert_eq!(after.unwrap_err().code(), ErrorCode::SessionExpired);
    });
}

#[test]
fn futures_are_send() {
    let (server, _clock) = manual_server();
    let zk = server.connect().unwrap();
    let twin = zk.as_async();
    // A future that is not Send cannot run on a work-stealing executor.
    let future = assert_send(twin.get_data("/", None));
    assert_eq!(block_on(future).unwrap().1.num_children, 1);
    let (watcher, mut stream) = Watcher::stream();
    block_on(assert_send(twin.exists("/x", Some(watcher)))).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            zk.create("/x", b"", &Acl::open_unsafe(), CreateMode::Persistent)
                .unwrap()
        });
    });
    let event = block_on(assert_send(stream.recv()));
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeCreated, "/x")
    );
}

#[test]
fn stream_watcher_gets_one_shot_events() {
    let (server, _clock) = manual_server();
    let zk = server.connect().unwrap();
    let writer = server.connect().unwrap();
    zk.create("/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let (watcher, mut stream) = Watcher::stream();
    assert_eq!(stream.try_recv(), None);
    block_on(zk.as_async().get_data("/a", Some(watcher.clone()))).unwrap();
    let stat = writer.set_data("/a", b"x", -1).unwrap();
    let event = block_on(stream.recv());
    assert_eq!(
        event,
        WatchedEvent::node(EventType::NodeDataChanged, "/a", stat.mzxid)
    );
    // One-shot: a second change is not reported.
    writer.set_data("/a", b"y", -1).unwrap();
    assert_eq!(quiet(&mut stream), None);
    // The same stream watcher, left again, hears the next change.
    block_on(zk.as_async().get_children("/a", Some(watcher))).unwrap();
    let (_, created) = writer
        .create2("/a/c", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let event = block_on(stream.recv());
    assert_eq!(
        event,
        WatchedEvent::node(EventType::NodeChildrenChanged, "/a", created.czxid)
    );
}

#[test]
fn pending_stream_is_woken_by_the_event() {
    let (server, _clock) = manual_server();
    let zk = server.connect().unwrap();
    let writer = server.connect().unwrap();
    let (watcher, mut stream) = Watcher::stream();
    zk.exists("/later", Some(watcher)).unwrap();

    let waker_state = Arc::new(ThreadWaker {
        thread: std::thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(waker_state.clone());
    let mut context = Context::from_waker(&waker);
    let mut next = pin!(stream.recv());
    assert!(
        next.as_mut().poll(&mut context).is_pending(),
        "nothing happened yet"
    );
    assert_eq!(waker_state.wakes.load(Ordering::SeqCst), 0);

    let (_, stat) = writer
        .create2("/later", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while waker_state.wakes.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the event did not wake the task");
        std::thread::park_timeout(deadline - Instant::now());
    }
    match next.as_mut().poll(&mut context) {
        Poll::Ready(event) => assert_eq!(
            event,
            WatchedEvent::node(EventType::NodeCreated, "/later", stat.czxid)
        ),
        Poll::Pending => panic!("woken but not ready"),
    }
}

#[test]
fn persistent_recursive_stream_keeps_order() {
    let (server, _clock) = manual_server();
    let zk = server.connect().unwrap();
    let writer = server.connect().unwrap();
    zk.create("/r", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let (watcher, mut stream) = Watcher::stream();
    block_on(
        zk.as_async()
            .add_watch("/r", watcher, AddWatchMode::PersistentRecursive),
    )
    .unwrap();

    let (_, created) = writer
        .create2("/r/a", b"", &open(), CreateMode::Persistent)
        .unwrap();
    let changed = writer.set_data("/r/a", b"x", -1).unwrap();
    let (_, deep) = writer
        .create2("/r/a/b", b"", &open(), CreateMode::Persistent)
        .unwrap();
    writer.delete("/r/a/b", -1).unwrap();
    let deleted_zxid = writer.exists("/r/a", None).unwrap().unwrap().pzxid;

    let events: Vec<WatchedEvent> = block_on(async {
        let mut events = Vec::new();
        for _ in 0..4 {
            events.push(stream.recv().await);
        }
        events
    });
    assert_eq!(
        events,
        vec![
            WatchedEvent::node(EventType::NodeCreated, "/r/a", created.czxid),
            WatchedEvent::node(EventType::NodeDataChanged, "/r/a", changed.mzxid),
            WatchedEvent::node(EventType::NodeCreated, "/r/a/b", deep.czxid),
            WatchedEvent::node(EventType::NodeDeleted, "/r/a/b", deleted_zxid),
        ]
    );
    assert_eq!(
        quiet(&mut stream),
        None,
        "recursive watches report no child events"
    );

    block_on(
        zk.as_async()
            .remove_watches("/r", WatcherType::PersistentRecursive),
    )
    .unwrap();
    let removed = block_on(stream.recv());
    assert_eq!(
        removed,
        WatchedEvent::node(EventType::PersistentWatchRemoved, "/r", -1)
    );
}

#[test]
fn stream_as_default_watcher_hears_state_changes() {
    let (server, clock) = manual_server();
    let (watcher, mut stream) = Watcher::stream();
    let options = ConnectOptions {
        session_timeout_ms: 4000,
        watcher: Some(watcher),
        ..ConnectOptions::default()
    };
    let zk = server.connect_with(options).unwrap();
    assert_eq!(
        block_on(stream.recv()),
        WatchedEvent::state(KeeperState::SyncConnected)
    );
    zk.set_attached(false);
    clock.advance(6000);
    server.tick();
    assert_eq!(
        block_on(stream.recv()),
        WatchedEvent::state(KeeperState::Expired)
    );
    let after = block_on(zk.as_async().exists("/", None));
    assert_eq!(after.unwrap_err().code(), ErrorCode::SessionExpired);
}
