//! Guards the subtree cache against a mirror that drifts from the server: a change not
//! mirrored, an event of the wrong kind or order (a parent removed before its children, an
//! update without a data change), changes made while disconnected or across a session
//! expiry that stay missed, and watches left behind on the server after it is closed. Both
//! ways of watching (one persistent-recursive watch, per-node watches) run the same script.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::proxy::Proxy;
use crossbeam_channel::Receiver;
use zookeeper_core::client::recipes::{
    SessionSlot, TreeCache, TreeEvent, TreeEventKind, TreeWatchMode,
};
use zookeeper_core::{Acl, Client, ConnectOptions, CreateMode, Server};

use TreeEventKind::*;

fn listen(cache: &TreeCache) -> Receiver<TreeEvent> {
    let (sender, events) = crossbeam_channel::unbounded();
    cache.listen(Arc::new(move |event: &TreeEvent| {
        drop(sender.send(event.clone()))
    }));
    events
}

/// The next `count` events as (kind, path).
fn take(events: &Receiver<TreeEvent>, count: usize) -> Vec<(TreeEventKind, String)> {
    (0..count)
        .map(|_| {
            let event = events
                .recv_timeout(Duration::from_secs(10))
                .expect("a tree cache event within 10 s");
            (
                event.kind,
                event.node.map(|node| node.path).unwrap_or_default(),
            )
        })
        .collect()
}

fn assert_quiet(events: &Receiver<TreeEvent>) {
    if let Ok(event) = events.recv_timeout(Duration::from_millis(100)) {
        panic!("unexpected tree cache event {event:?}");
    }
}

fn kinds(pairs: &[(TreeEventKind, &str)]) -> Vec<(TreeEventKind, String)> {
    pairs
        .iter()
        .map(|(kind, path)| (*kind, path.to_string()))
        .collect()
}

/// The subtree as the server has it: path -> (data, mzxid).
fn truth(client: &Client, root: &str) -> BTreeMap<String, (Option<Vec<u8>>, i64)> {
    let mut all = BTreeMap::new();
    let mut stack = vec![root.to_string()];
    while let Some(path) = stack.pop() {
        let Ok((data, stat)) = client.get_data(&path, None) else {
            continue;
        };
        for name in client.get_children(&path, None).unwrap_or_default() {
            stack.push(format!("{path}/{name}"));
        }
        all.insert(path, (data, stat.mzxid));
    }
    all
}

fn mirrored(cache: &TreeCache) -> BTreeMap<String, (Option<Vec<u8>>, i64)> {
    cache
        .snapshot()
        .into_iter()
        .map(|(path, node)| (path, (node.data, node.stat.mzxid)))
        .collect()
}

fn create(client: &Client, path: &str, data: &[u8]) {
    client
        .create(path, data, &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
}

fn script(server: &Server, mode: TreeWatchMode) {
    let writer = server.connect().unwrap();
    create(&writer, "/r", b"root");
    create(&writer, "/r/a", b"a");
    create(&writer, "/r/a/x", b"x");
    let cache = TreeCache::new(
        SessionSlot::fixed(Arc::new(server.connect().unwrap())),
        "/r",
        mode,
    )
    .unwrap();
    let events = listen(&cache);
    cache.start().unwrap();
    assert_eq!(
        take(&events, 4),
        kinds(&[
            (NodeAdded, "/r"),
            (NodeAdded, "/r/a"),
            (NodeAdded, "/r/a/x"),
            (Initialized, "")
        ])
    );
    assert!(cache.is_initialized());
    assert_eq!(cache.get_children("/r"), Some(vec!["a".to_string()]));

    create(&writer, "/r/b", b"b");
    assert_eq!(take(&events, 1), kinds(&[(NodeAdded, "/r/b")]));
    writer.set_data("/r/a/x", b"x2", -1).unwrap();
    assert_eq!(take(&events, 1), kinds(&[(NodeUpdated, "/r/a/x")]));
    assert_eq!(cache.get_data("/r/a/x").unwrap().data, Some(b"x2".to_vec()));
    // A child change alters /r's Stat but not its data: no update.
    writer.delete("/r/b", -1).unwrap();
    assert_eq!(take(&events, 1), kinds(&[(NodeRemoved, "/r/b")]));
    writer.delete("/r/a/x", -1).unwrap();
    writer.delete("/r/a", -1).unwrap();
    assert_eq!(
        take(&events, 2),
        kinds(&[(NodeRemoved, "/r/a/x"), (NodeRemoved, "/r/a")])
    );
    // The root itself goes and comes back.
    writer.delete("/r", -1).unwrap();
    assert_eq!(take(&events, 1), kinds(&[(NodeRemoved, "/r")]));
    assert_eq!(cache.get_children("/r"), None);
    create(&writer, "/r", b"again");
    assert_eq!(take(&events, 1), kinds(&[(NodeAdded, "/r")]));
    create(&writer, "/r/c", b"");
    assert_eq!(take(&events, 1), kinds(&[(NodeAdded, "/r/c")]));
    assert_quiet(&events);
    assert_eq!(mirrored(&cache), truth(&writer, "/r"));
    assert_eq!(
        cache.uses_per_node_watches(),
        mode == TreeWatchMode::PerNode
    );
    cache.close();
    writer.close().unwrap();
    common::wait_for("the cache's watches to leave the server", || {
        server.engine().watch_count() == 0
    });
}

#[test]
fn a_recursive_watch_mirrors_adds_updates_and_removals_in_order() {
    let (server, _clock) = common::server();
    script(&server, TreeWatchMode::Auto);
}

#[test]
fn per_node_watches_mirror_the_same_script_the_same_way() {
    let (server, _clock) = common::server();
    script(&server, TreeWatchMode::PerNode);
}

#[test]
fn changes_made_while_disconnected_are_mirrored_after_the_reconnect() {
    for mode in [TreeWatchMode::Auto, TreeWatchMode::PerNode] {
        let (server, _clock) = common::server();
        let net = common::serve_tcp(&server);
        let proxy = Proxy::start(net.local_address());
        let writer = server.connect().unwrap();
        create(&writer, "/r", b"");
        create(&writer, "/r/keep", b"1");
        create(&writer, "/r/gone", b"");
        let client = Client::connect(
            &proxy.address.to_string(),
            ConnectOptions {
                session_timeout_ms: 30_000,
                ..ConnectOptions::default()
            },
        )
        .unwrap();
        let cache = TreeCache::new(SessionSlot::fixed(Arc::new(client)), "/r", mode).unwrap();
        let events = listen(&cache);
        cache.start().unwrap();
        assert_eq!(take(&events, 4).last().unwrap().0, Initialized);
        proxy.cut(true);
        assert_eq!(take(&events, 1), kinds(&[(ConnectionSuspended, "")]));
        writer.set_data("/r/keep", b"2", -1).unwrap();
        writer.delete("/r/gone", -1).unwrap();
        create(&writer, "/r/new", b"");
        proxy.heal();
        assert_eq!(
            take(&events, 4),
            kinds(&[
                (ConnectionReconnected, ""),
                (NodeRemoved, "/r/gone"),
                (NodeUpdated, "/r/keep"),
                (NodeAdded, "/r/new"),
            ])
        );
        // And it keeps following after the reconnect.
        writer.set_data("/r/new", b"n", -1).unwrap();
        assert_eq!(take(&events, 1), kinds(&[(NodeUpdated, "/r/new")]));
        assert_quiet(&events);
        assert_eq!(mirrored(&cache), truth(&writer, "/r"));
    }
}

#[test]
fn after_an_expiry_a_new_session_rebuilds_the_mirror() {
    let (server, clock) = common::server();
    let writer = server.connect().unwrap();
    create(&writer, "/r", b"");
    create(&writer, "/r/a", b"");
    let first = Arc::new(server.connect().unwrap());
    let slot = SessionSlot::new(Some(first.clone()));
    let cache = TreeCache::new(slot.clone(), "/r", TreeWatchMode::Auto).unwrap();
    let events = listen(&cache);
    cache.start().unwrap();
    assert_eq!(take(&events, 3).last().unwrap().0, Initialized);
    first.set_attached(false);
    clock.advance(60_000);
    server.tick();
    assert_eq!(take(&events, 1), kinds(&[(ConnectionLost, "")]));
    assert!(!cache.is_initialized());
    writer.delete("/r/a", -1).unwrap();
    create(&writer, "/r/b", b"");
    slot.set(Some(Arc::new(server.connect().unwrap())));
    assert_eq!(
        take(&events, 4),
        kinds(&[
            (ConnectionReconnected, ""),
            (NodeRemoved, "/r/a"),
            (NodeAdded, "/r/b"),
            (Initialized, ""),
        ])
    );
    create(&writer, "/r/b/c", b"");
    assert_eq!(take(&events, 1), kinds(&[(NodeAdded, "/r/b/c")]));
    assert_eq!(mirrored(&cache), truth(&writer, "/r"));
}

#[test]
fn an_invalid_root_is_refused_up_front() {
    let (server, _clock) = common::server();
    let slot = SessionSlot::fixed(Arc::new(server.connect().unwrap()));
    for bad in ["", "relative", "/trailing/", "/a//b"] {
        let refused = TreeCache::new(slot.clone(), bad, TreeWatchMode::Auto).err();
        assert_eq!(
            refused.and_then(|error| error.zookeeper_code()),
            Some(zookeeper_core::ErrorCode::BadArguments),
            "{bad:?}"
        );
    }
}

#[test]
fn a_server_without_add_watch_gets_per_node_watches() {
    let (server, _clock) = common::server();
    let net = common::serve_tcp(&server);
    let proxy = Proxy::start(net.local_address());
    // As a server before 3.6 sees addWatch (106): an opcode it does not know, answered
    // Unimplemented (and the connection closed).
    proxy.rename_requests(106, 1_000);
    let writer = server.connect().unwrap();
    create(&writer, "/r", b"");
    create(&writer, "/r/a", b"");
    let client = Client::connect(&proxy.address.to_string(), ConnectOptions::default()).unwrap();
    let cache = TreeCache::new(
        SessionSlot::fixed(Arc::new(client)),
        "/r",
        TreeWatchMode::Auto,
    )
    .unwrap();
    let events = listen(&cache);
    cache.start().unwrap();
    let initial: Vec<_> = std::iter::from_fn(|| Some(take(&events, 1).remove(0)))
        .take_while(|(kind, _)| *kind != Initialized)
        .filter(|(kind, _)| *kind == NodeAdded)
        .collect();
    assert_eq!(initial, kinds(&[(NodeAdded, "/r"), (NodeAdded, "/r/a")]));
    assert!(cache.uses_per_node_watches());
    create(&writer, "/r/b", b"");
    assert_eq!(take(&events, 1), kinds(&[(NodeAdded, "/r/b")]));
    writer.set_data("/r/a", b"1", -1).unwrap();
    assert_eq!(take(&events, 1), kinds(&[(NodeUpdated, "/r/a")]));
    assert_eq!(mirrored(&cache), truth(&writer, "/r"));
}
