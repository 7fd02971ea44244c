//! The client's watch-coherent LRU read cache: getData answers kept while the session holds a
//! data watch on the znode, dropped the moment the watch's event (or a connection change)
//! reaches the client, so a cached read is never older than the events the client has seen.
//!
//! Coherence rests on where invalidation runs: in `Shared::dispatch`, when an event is
//! *produced* (the engine's apply in process, the reader thread over TCP), in the same order as
//! replies, so a write's own event invalidates before the write's reply is handed on. A fill
//! races with invalidation (the reply is stored after the watch was set), so each fill carries
//! the invalidation epoch it started in and is dropped if any invalidation happened since.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::proto::{EventType, Stat, WatchedEvent};
use crate::tree::data_bytes;

/// Bounds of a client's read cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadCacheConfig {
    /// Most znodes kept.
    pub entries_max: usize,
    /// Most data bytes kept (a znode larger than this is never cached).
    pub bytes_max: usize,
}

impl Default for ReadCacheConfig {
    fn default() -> Self {
        ReadCacheConfig {
            entries_max: 4_096,
            bytes_max: 64 << 20,
        }
    }
}

/// What the cache did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadCacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to the server.
    pub misses: u64,
    /// Entries dropped by an event, a removed watch or a connection change.
    pub invalidations: u64,
    /// Entries dropped to stay within the bounds.
    pub evictions: u64,
    /// Znodes cached now.
    pub entries: usize,
    /// Data bytes cached now.
    pub bytes: usize,
}

struct Entry {
    /// None: null data.
    data: Option<Vec<u8>>,
    stat: Stat,
    last_use: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    /// last_use -> path, oldest first.
    order: BTreeMap<u64, String>,
    clock: u64,
    bytes: usize,
    stats: ReadCacheStats,
}

impl Lru {
    fn remove(&mut self, path: &str) -> bool {
        match self.entries.remove(path) {
            Some(entry) => {
                self.order.remove(&entry.last_use);
                self.bytes -= data_bytes(entry.data.as_deref());
                true
            }
            None => false,
        }
    }
}

/// A session's read cache.
pub(crate) struct ReadCache {
    config: ReadCacheConfig,
    lru: Mutex<Lru>,
    /// Bumped by every invalidation; a fill that started in an older epoch is not stored.
    epoch: AtomicU64,
}

impl ReadCache {
    pub(crate) fn new(config: ReadCacheConfig) -> ReadCache {
        ReadCache {
            config,
            lru: Mutex::new(Lru::default()),
            epoch: AtomicU64::new(0),
        }
    }

    /// The cached data and Stat, counting a hit or a miss.
    pub(crate) fn get(&self, path: &str) -> Option<(Option<Vec<u8>>, Stat)> {
        let mut lru = self.lru.lock();
        lru.clock += 1;
        let now = lru.clock;
        let Some(entry) = lru.entries.get_mut(path) else {
            lru.stats.misses += 1;
            return None;
        };
        let previous = std::mem::replace(&mut entry.last_use, now);
        let found = (entry.data.clone(), entry.stat);
        lru.order.remove(&previous);
        lru.order.insert(now, path.to_string());
        lru.stats.hits += 1;
        Some(found)
    }

    /// The epoch a fill starts in.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores a getData answer read with a data watch, unless anything was invalidated since
    /// `epoch` (its event may concern this very answer).
    pub(crate) fn fill(&self, path: &str, data: Option<&[u8]>, stat: Stat, epoch: u64) {
        let bytes = data_bytes(data);
        if bytes > self.config.bytes_max || self.config.entries_max == 0 {
            return;
        }
        let mut lru = self.lru.lock();
        // Checked under the lock invalidation takes, so no invalidation slips in between.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        lru.remove(path);
        while lru.entries.len() >= self.config.entries_max
            || lru.bytes + bytes > self.config.bytes_max
        {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(entry) = lru.entries.remove(&oldest) {
                lru.bytes -= data_bytes(entry.data.as_deref());
                lru.stats.evictions += 1;
            }
        }
        lru.clock += 1;
        let last_use = lru.clock;
        lru.order.insert(last_use, path.to_string());
        lru.bytes += bytes;
        lru.entries.insert(
            path.to_string(),
            Entry {
                data: data.map(<[u8]>::to_vec),
                stat,
                last_use,
            },
        );
    }

    /// Drops what `event` makes stale: the znode's entry for its changes, everything for a
    /// connection change (watches may be missed while away).
    pub(crate) fn observe(&self, event: &WatchedEvent) {
        match event.event_type {
            EventType::NodeDataChanged | EventType::NodeDeleted | EventType::NodeCreated => {
                self.invalidate(&event.path)
            }
            EventType::None => self.clear(),
            _ => {}
        }
    }

    /// Drops one znode's entry (its data watch is gone).
    pub(crate) fn invalidate(&self, path: &str) {
        let mut lru = self.lru.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if lru.remove(path) {
            lru.stats.invalidations += 1;
        }
    }

    fn clear(&self) {
        let mut lru = self.lru.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let dropped = lru.entries.len() as u64;
        lru.entries.clear();
        lru.order.clear();
        lru.bytes = 0;
        lru.stats.invalidations += dropped;
    }

    pub(crate) fn stats(&self) -> ReadCacheStats {
        let lru = self.lru.lock();
        ReadCacheStats {
            entries: lru.entries.len(),
            bytes: lru.bytes,
            ..lru.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::KeeperState;

    fn cache(entries_max: usize, bytes_max: usize) -> ReadCache {
        ReadCache::new(ReadCacheConfig {
            entries_max,
            bytes_max,
        })
    }

    #[test]
    fn least_recently_used_entries_go_first_within_both_bounds() {
        let cache = cache(2, 10);
        let epoch = cache.epoch();
        cache.fill("/a", Some(b"aaaa"), Stat::default(), epoch);
        cache.fill("/b", Some(b"bbbb"), Stat::default(), epoch);
        assert!(cache.get("/a").is_some()); // /b is now the oldest
        cache.fill("/c", Some(b"cc"), Stat::default(), epoch);
        assert!(cache.get("/b").is_none());
        cache.fill("/d", Some(b"dddddd"), Stat::default(), epoch); // 4 + 2 + 6 > 10 bytes
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.bytes, stats.evictions), (2, 8, 2));
        cache.fill("/huge", Some(&[0; 11]), Stat::default(), epoch);
        assert!(cache.get("/huge").is_none(), "larger than the whole cache");
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_dropped() {
        let cache = cache(10, 100);
        let epoch = cache.epoch();
        cache.observe(&WatchedEvent::node(EventType::NodeDataChanged, "/a", 5));
        cache.fill("/a", Some(b"old"), Stat::default(), epoch);
        assert!(cache.get("/a").is_none());
        let epoch = cache.epoch();
        cache.fill("/a", Some(b"new"), Stat::default(), epoch);
        assert_eq!(cache.get("/a").unwrap().0.as_deref(), Some(&b"new"[..]));
        cache.fill("/null", None, Stat::default(), cache.epoch());
        assert_eq!(cache.get("/null").unwrap().0, None, "null data stays null");
        cache.observe(&WatchedEvent::state(KeeperState::Disconnected));
        assert!(cache.get("/a").is_none());
    }
}
