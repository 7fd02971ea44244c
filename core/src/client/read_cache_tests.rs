//! The read cache's own rules, without a server: LRU order and bounds, fills that raced an
//! invalidation, what each event and write drops, TTL on a manual clock, stale reads.

use super::*;
use crate::proto::Stat;
use crate::server::ManualClock;

fn cache(entries_max: usize, bytes_max: usize) -> ReadCache {
    let config = ReadCacheConfig {
        entries_max,
        bytes_max,
        ..ReadCacheConfig::default()
    };
    ReadCache::new(config, Arc::new(ManualClock::new(0)))
}

fn data(bytes: &[u8]) -> Reply {
    Reply::Data {
        data: Some(bytes.to_vec()),
        stat: Stat::default(),
    }
}

fn children(names: &[&str]) -> Reply {
    Reply::Children {
        children: names.iter().map(|name| name.to_string()).collect(),
        stat: Stat::default(),
    }
}

#[test]
fn least_recently_used_entries_go_first_within_both_bounds() {
    let cache = cache(3, 10);
    let epoch = cache.epoch();
    assert!(cache
        .fill(ReadKind::Data, "/a", &data(b"aaaa"), epoch)
        .is_empty());
    cache.fill(ReadKind::Children, "/a", &children(&["xy", "zw"]), epoch);
    cache.fill(ReadKind::Exists, "/b", &Reply::Exists(None), epoch);
    assert!(cache.get(ReadKind::Data, "/a").is_some()); // /a's children are now the oldest
    let evicted = cache.fill(ReadKind::Data, "/c", &data(b"cc"), epoch);
    assert_eq!(evicted, vec![(ReadKind::Children, "/a".to_string())]);
    assert!(cache.get(ReadKind::Children, "/a").is_none());
    // 4 + 2 + 6 > 10 bytes: /b's existence (0 bytes) goes first, then /a's data.
    let evicted = cache.fill(ReadKind::Data, "/d", &data(b"dddddd"), epoch);
    assert_eq!(
        evicted,
        vec![
            (ReadKind::Exists, "/b".to_string()),
            (ReadKind::Data, "/a".to_string())
        ]
    );
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.bytes, stats.evictions), (2, 8, 3));
    cache.fill(ReadKind::Data, "/huge", &data(&[0; 11]), epoch);
    assert!(
        cache.get(ReadKind::Data, "/huge").is_none(),
        "larger than the whole cache"
    );
    let stats = cache.stats();
    assert_eq!(
        (stats.data, stats.exists, stats.children),
        (
            ReadKindStats { hits: 1, misses: 1 },
            ReadKindStats::default(),
            ReadKindStats { hits: 0, misses: 1 }
        )
    );
}

#[test]
fn a_fill_that_raced_an_invalidation_is_dropped() {
    let cache = cache(10, 100);
    let epoch = cache.epoch();
    cache.observe(&WatchedEvent::node(EventType::NodeDataChanged, "/a", 5));
    cache.fill(ReadKind::Data, "/a", &data(b"old"), epoch);
    assert!(cache.get(ReadKind::Data, "/a").is_none());
    let epoch = cache.epoch();
    cache.fill(ReadKind::Data, "/a", &data(b"new"), epoch);
    assert_eq!(cache.get(ReadKind::Data, "/a"), Some(data(b"new")));
    let null = Reply::Data {
        data: None,
        stat: Stat::default(),
    };
    cache.fill(ReadKind::Data, "/null", &null, cache.epoch());
    assert_eq!(
        cache.get(ReadKind::Data, "/null"),
        Some(null),
        "null data stays null"
    );
    cache.observe(&WatchedEvent::state(KeeperState::Disconnected));
    assert!(cache.get(ReadKind::Data, "/a").is_none());
}

#[test]
fn any_event_on_a_znode_drops_all_its_kinds_and_a_write_its_parents_too() {
    let cache = cache(10, 100);
    let fill_all = |path: &str| {
        let epoch = cache.epoch();
        cache.fill(ReadKind::Data, path, &data(b"d"), epoch);
        cache.fill(ReadKind::Exists, path, &Reply::Exists(None), epoch);
        cache.fill(ReadKind::Children, path, &children(&["c"]), epoch);
    };
    fill_all("/a");
    // A child change alters the Stat getData and exists answer with.
    cache.observe(&WatchedEvent::node(EventType::NodeChildrenChanged, "/a", 7));
    assert_eq!(cache.stats().entries, 0);
    fill_all("/a");
    fill_all("/a/b");
    cache.wrote(&changed_by(&Op::Delete {
        path: "/a/b".into(),
        version: -1,
    }));
    assert_eq!(cache.stats().entries, 0);
    fill_all("/a");
    cache.wrote(&changed_by(&Op::GetData {
        path: "/a".into(),
        watch: false,
    }));
    assert_eq!(cache.stats().entries, 3, "a read changes nothing");
    assert!(
        cache
            .fill(ReadKind::Data, "/a", &Reply::Exists(None), cache.epoch())
            .is_empty()
            && cache.get(ReadKind::Data, "/a") == Some(data(b"d")),
        "an answer of another kind is not stored"
    );
}

#[test]
fn an_entry_lives_ttl_ms_and_its_watch_is_then_released() {
    let clock = ManualClock::new(0);
    let config = ReadCacheConfig {
        ttl_ms: Some(1_000),
        ..ReadCacheConfig::default()
    };
    let cache = ReadCache::new(config, Arc::new(clock.clone()));
    cache.fill(ReadKind::Data, "/a", &data(b"a"), cache.epoch());
    clock.advance(999);
    assert_eq!(cache.get(ReadKind::Data, "/a"), Some(data(b"a")));
    clock.advance(1);
    assert_eq!(cache.get(ReadKind::Data, "/a"), None);
    let stats = cache.stats();
    assert_eq!((stats.expirations, stats.entries, stats.hits), (1, 0, 1));
    assert_eq!(
        cache.take_evicted(),
        vec![(ReadKind::Data, "/a".to_string())]
    );
}

#[test]
fn stale_reads_while_disconnected_only_when_asked_for_and_never_after_reconnecting() {
    for serve_stale_while_disconnected in [false, true] {
        let config = ReadCacheConfig {
            serve_stale_while_disconnected,
            ..ReadCacheConfig::default()
        };
        let cache = ReadCache::new(config, Arc::new(ManualClock::new(0)));
        let epoch = cache.epoch();
        cache.fill(ReadKind::Exists, "/a", &Reply::Exists(None), epoch);
        cache.observe(&WatchedEvent::state(KeeperState::Disconnected));
        assert_eq!(
            cache.get(ReadKind::Exists, "/a").is_some(),
            serve_stale_while_disconnected
        );
        cache.fill(ReadKind::Data, "/b", &data(b"b"), epoch);
        assert_eq!(
            cache.get(ReadKind::Data, "/b"),
            None,
            "a fill begun before the disconnection"
        );
        cache.observe(&WatchedEvent::state(KeeperState::SyncConnected));
        assert_eq!(cache.get(ReadKind::Exists, "/a"), None);
    }
}
