//! The client's watch-coherent LRU read cache: getData, exists (present and absent) and
//! getChildren answers, each kept while the session holds the server-side watch its read left,
//! and dropped the moment an event on the znode (or a connection change) reaches the client, so
//! a cached read is never older than the events the client has seen.
//!
//! Coherence rests on where invalidation runs: in `Shared::dispatch`, when an event is
//! *produced* (the engine's apply in process, the reader thread over TCP), in the same order as
//! replies, so a write's own event invalidates before the write's reply is handed on. A fill
//! races with invalidation (the reply is stored after the watch was set), so each fill carries
//! the invalidation epoch it started in and is dropped if any invalidation happened since.
//! Every event on a znode drops all three kinds of its entries: each answer carries the
//! znode's Stat, which a data change and a child change both alter. The client's own writes
//! drop what they change before their reply is handed on, the parent's entries included (its
//! Stat's child fields), since no watch of the session need fire for those.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::op::{Op, Reply};
use crate::proto::{EventType, KeeperState, WatchedEvent, WatcherType};
use crate::server::Clock;
use crate::tree::data_bytes;
use crate::tree::path::parent;

/// Bounds of a client's read cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadCacheConfig {
    /// Most answers kept (one znode's data, existence and children are three).
    pub entries_max: usize,
    /// Most bytes kept: data, plus child names (an answer larger than this is never cached).
    pub bytes_max: usize,
    /// Most time an answer is served after it was read; None: as long as its watch lives.
    /// Watches keep answers coherent while connected; this bounds staleness while disconnected
    /// (with `serve_stale_while_disconnected`) and the age of rarely-changing answers.
    pub ttl_ms: Option<u64>,
    /// While the client is disconnected, keep answering from the cache (entries younger than
    /// `ttl_ms`) instead of dropping it. Outside ZooKeeper's guarantees: the answers may be
    /// older than changes the server has made since, and no event will say so until the
    /// client reconnects (the cache is dropped then).
    pub serve_stale_while_disconnected: bool,
}

impl Default for ReadCacheConfig {
    fn default() -> Self {
        ReadCacheConfig {
            entries_max: 4_096,
            bytes_max: 64 << 20,
            ttl_ms: None,
            serve_stale_while_disconnected: false,
        }
    }
}

/// The reads the cache answers; each lives while the watch its read left on the server does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReadKind {
    /// getData, kept under a data watch.
    Data,
    /// exists: present under a data watch, absent under an exist watch.
    Exists,
    /// getChildren and getChildren2, kept under a child watch.
    Children,
}

/// Hits and misses of one kind of read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadKindStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to the server.
    pub misses: u64,
}

/// What the cache did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadCacheStats {
    /// Reads answered from the cache, all kinds.
    pub hits: u64,
    /// Reads that went to the server, all kinds.
    pub misses: u64,
    /// Entries dropped by an event, a write, a removed watch or a connection change.
    pub invalidations: u64,
    /// Entries dropped to stay within the bounds.
    pub evictions: u64,
    /// Entries dropped because they outlived `ttl_ms`.
    pub expirations: u64,
    /// `removeWatches` sent for the server-side watches of evicted entries, so a
    /// long-running client does not pile them up there.
    pub watches_released: u64,
    /// Answers cached now.
    pub entries: usize,
    /// Bytes cached now.
    pub bytes: usize,
    /// getData.
    pub data: ReadKindStats,
    /// exists.
    pub exists: ReadKindStats,
    /// getChildren and getChildren2.
    pub children: ReadKindStats,
}

impl ReadCacheStats {
    fn kind(&mut self, kind: ReadKind) -> &mut ReadKindStats {
        match kind {
            ReadKind::Data => &mut self.data,
            ReadKind::Exists => &mut self.exists,
            ReadKind::Children => &mut self.children,
        }
    }
}

/// The cache's question for `op`, when it is a read the cache may answer: a plain getData,
/// exists or getChildren (a read with the user's own watch goes to the server).
pub(crate) fn cacheable(op: &Op) -> Option<(ReadKind, &str)> {
    match op {
        Op::GetData { path, watch: false } => Some((ReadKind::Data, path)),
        Op::Exists { path, watch: false } => Some((ReadKind::Exists, path)),
        Op::GetChildren { path, watch: false } => Some((ReadKind::Children, path)),
        _ => None,
    }
}

/// The read a miss sends: the same read, leaving the watch that keeps its answer coherent.
pub(crate) fn watching(kind: ReadKind, path: &str) -> Op {
    let path = path.to_string();
    match kind {
        ReadKind::Data => Op::GetData { path, watch: true },
        ReadKind::Exists => Op::Exists { path, watch: true },
        ReadKind::Children => Op::GetChildren { path, watch: true },
    }
}

/// The znodes whose entries a successful `op` makes stale, with no watch of the session
/// bound to fire for them: the znode written and, for a create or delete, its parent (whose
/// Stat's child fields moved). Empty for anything but a write.
pub(crate) fn changed_by(op: &Op) -> Vec<String> {
    let with_parent = |path: &str| {
        let mut paths = vec![path.to_string()];
        if path != "/" {
            paths.push(parent(path).to_string());
        }
        paths
    };
    match op {
        Op::Create(request) => with_parent(&request.path),
        Op::Delete { path, .. } => with_parent(path),
        Op::SetData { path, .. } | Op::SetAcl { path, .. } => vec![path.clone()],
        Op::Multi(ops) => ops.iter().flat_map(changed_by).collect(),
        _ => Vec::new(),
    }
}

/// Bytes an answer holds.
fn answer_bytes(reply: &Reply) -> usize {
    match reply {
        Reply::Data { data, .. } => data_bytes(data.as_deref()),
        Reply::Children { children, .. } => children.iter().map(String::len).sum(),
        _ => 0,
    }
}

/// True when `reply` is what a read of `kind` answers.
fn answers(kind: ReadKind, reply: &Reply) -> bool {
    matches!(
        (kind, reply),
        (ReadKind::Data, Reply::Data { .. })
            | (ReadKind::Exists, Reply::Exists(_))
            | (ReadKind::Children, Reply::Children { .. })
    )
}

pub(crate) type Key = (ReadKind, String);

struct Entry {
    reply: Reply,
    bytes: usize,
    /// When it was last read or stored (the LRU's own counter).
    last_use: u64,
    /// Its key in `Lru::order`: `last_use` as of when it was last placed there.
    placed: u64,
    /// When it was stored (the client's clock).
    filled_ms: u64,
}

/// A znode's entries, one per kind (indexed by `ReadKind as usize`).
type Kinds = [Option<Entry>; 3];

#[derive(Default)]
struct Lru {
    /// Looked up by `&str`, so a hit allocates nothing.
    entries: HashMap<String, Kinds>,
    /// placed -> key, oldest first. A hit only moves its entry's `last_use`; the entry's
    /// place here is moved when eviction meets it, so the order stays exact (least recently
    /// used first) without a tree update per hit.
    order: BTreeMap<u64, Key>,
    count: usize,
    clock: u64,
    bytes: usize,
    stats: ReadCacheStats,
}

impl Lru {
    fn entry(&self, kind: ReadKind, path: &str) -> Option<&Entry> {
        self.entries.get(path)?[kind as usize].as_ref()
    }

    fn remove(&mut self, kind: ReadKind, path: &str) -> bool {
        let Some(kinds) = self.entries.get_mut(path) else {
            return false;
        };
        let Some(entry) = kinds[kind as usize].take() else {
            return false;
        };
        if kinds.iter().all(Option::is_none) {
            self.entries.remove(path);
        }
        self.order.remove(&entry.placed);
        self.bytes -= entry.bytes;
        self.count -= 1;
        true
    }

    /// Removes the least recently used entry; None when there is none.
    fn evict_oldest(&mut self) -> Option<Key> {
        loop {
            let (placed, (kind, path)) = self.order.pop_first()?;
            let entry = self.entries.get_mut(&path)?[kind as usize].as_mut()?;
            if entry.last_use != placed {
                // Used since it was placed: move it to where it belongs and look again.
                entry.placed = entry.last_use;
                self.order.insert(entry.last_use, (kind, path));
                continue;
            }
            // Already out of `order`: only the map and the counters are left.
            let kinds = self.entries.get_mut(&path)?;
            let entry = kinds[kind as usize].take()?;
            if kinds.iter().all(Option::is_none) {
                self.entries.remove(&path);
            }
            self.bytes -= entry.bytes;
            self.count -= 1;
            return Some((kind, path));
        }
    }
}

/// A session's read cache.
pub(crate) struct ReadCache {
    config: ReadCacheConfig,
    lru: Mutex<Lru>,
    /// Evicted entries whose watches may still be on the server (see cache_watches.rs).
    evicted: Mutex<Vec<Key>>,
    /// Bumped by every invalidation; a fill that started in an older epoch is not stored.
    epoch: AtomicU64,
    /// Times entries for `ttl_ms`.
    clock: Arc<dyn Clock>,
}

impl ReadCache {
    /// A cache timing its entries by `clock` (the engine's in process, so tests can move it).
    pub(crate) fn new(config: ReadCacheConfig, clock: Arc<dyn Clock>) -> ReadCache {
        ReadCache {
            clock,
            config,
            lru: Mutex::new(Lru::default()),
            evicted: Mutex::new(Vec::new()),
            epoch: AtomicU64::new(0),
        }
    }

    /// The cached answer to a read of `kind` on `path`, counting a hit or a miss.
    pub(crate) fn get(&self, kind: ReadKind, path: &str) -> Option<Reply> {
        self.find(kind, path, true)
    }

    /// The cached answer, counting a hit; a miss is left for the `get` that follows.
    pub(crate) fn hit(&self, kind: ReadKind, path: &str) -> Option<Reply> {
        self.find(kind, path, false)
    }

    fn find(&self, kind: ReadKind, path: &str, count_miss: bool) -> Option<Reply> {
        let mut lru = self.lru.lock();
        lru.clock += 1;
        let now = lru.clock;
        let expired = self.config.ttl_ms.is_some_and(|ttl_ms| {
            lru.entry(kind, path)
                .is_some_and(|entry| self.clock.now_ms().saturating_sub(entry.filled_ms) >= ttl_ms)
        });
        if expired {
            lru.remove(kind, path);
            lru.stats.expirations += 1;
            // Its watch is still on the server, as an evicted entry's.
            self.evicted.lock().push((kind, path.to_string()));
        }
        let Some(entry) = lru
            .entries
            .get_mut(path)
            .and_then(|kinds| kinds[kind as usize].as_mut())
        else {
            if count_miss {
                lru.stats.misses += 1;
                lru.stats.kind(kind).misses += 1;
            }
            return None;
        };
        entry.last_use = now;
        let found = entry.reply.clone();
        lru.stats.hits += 1;
        lru.stats.kind(kind).hits += 1;
        Some(found)
    }

    /// The epoch a fill starts in.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores the answer to a read of `kind` sent with its watch, unless anything was
    /// invalidated since `epoch` (its event may concern this very answer). Returns the
    /// entries evicted to make room: their watches stay on the server until released
    /// (`take_evicted`).
    pub(crate) fn fill(&self, kind: ReadKind, path: &str, reply: &Reply, epoch: u64) -> Vec<Key> {
        let bytes = answer_bytes(reply);
        if !answers(kind, reply) || bytes > self.config.bytes_max || self.config.entries_max == 0 {
            return Vec::new();
        }
        let mut lru = self.lru.lock();
        // Checked under the lock invalidation takes, so no invalidation slips in between.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return Vec::new();
        }
        lru.remove(kind, path);
        let mut evicted = Vec::new();
        while lru.count >= self.config.entries_max || lru.bytes + bytes > self.config.bytes_max {
            let Some(oldest) = lru.evict_oldest() else {
                break;
            };
            lru.stats.evictions += 1;
            evicted.push(oldest);
        }
        lru.clock += 1;
        let last_use = lru.clock;
        lru.order.insert(last_use, (kind, path.to_string()));
        lru.bytes += bytes;
        lru.count += 1;
        let filled_ms = self.clock.now_ms();
        lru.entries.entry(path.to_string()).or_default()[kind as usize] = Some(Entry {
            reply: reply.clone(),
            bytes,
            last_use,
            placed: last_use,
            filled_ms,
        });
        self.evicted.lock().extend(evicted.iter().cloned());
        evicted
    }

    /// How many evicted entries wait for their watches to be released.
    pub(crate) fn evicted_count(&self) -> usize {
        self.evicted.lock().len()
    }

    /// The evicted entries waiting for their watches to be released, now the caller's job.
    pub(crate) fn take_evicted(&self) -> Vec<Key> {
        std::mem::take(&mut *self.evicted.lock())
    }

    /// True when an entry cached now relies on the session's server-side watch of
    /// `watcher_type` on `path`: a data watch (or an exist watch, which the same removal
    /// drops) for getData and exists, a child watch for getChildren.
    pub(crate) fn relies_on(&self, path: &str, watcher_type: WatcherType) -> bool {
        let kinds: &[ReadKind] = match watcher_type {
            WatcherType::Children => &[ReadKind::Children],
            _ => &[ReadKind::Data, ReadKind::Exists],
        };
        let lru = self.lru.lock();
        kinds.iter().any(|kind| lru.entry(*kind, path).is_some())
    }

    /// Counts watches removed from the server for evicted entries.
    pub(crate) fn released(&self, watches: u64) {
        self.lru.lock().stats.watches_released += watches;
    }

    /// Drops what `event` makes stale: every entry of the znode for its changes (each holds
    /// its Stat), everything for a connection change (watches may be missed while away), but
    /// for a disconnection when the user opted into stale reads: then the entries stay until
    /// the client is connected again.
    pub(crate) fn observe(&self, event: &WatchedEvent) {
        match (event.event_type, event.state) {
            (
                EventType::NodeDataChanged
                | EventType::NodeDeleted
                | EventType::NodeCreated
                | EventType::NodeChildrenChanged,
                _,
            ) => self.invalidate(&event.path),
            (EventType::None, KeeperState::Disconnected)
                if self.config.serve_stale_while_disconnected =>
            {
                // No fill that started before may land: its watch may be lost with the
                // connection.
                let _lru = self.lru.lock();
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            (EventType::None, _) => self.clear(),
            _ => {}
        }
    }

    /// Drops what the client's own successful write changed (`changed_by`), before its
    /// reply is handed on.
    pub(crate) fn wrote(&self, paths: &[String]) {
        for path in paths {
            self.invalidate(path);
        }
    }

    /// Drops every entry of one znode (one of its watches is gone, or it changed).
    pub(crate) fn invalidate(&self, path: &str) {
        let mut lru = self.lru.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for kind in [ReadKind::Data, ReadKind::Exists, ReadKind::Children] {
            if lru.remove(kind, path) {
                lru.stats.invalidations += 1;
            }
        }
    }

    fn clear(&self) {
        let mut lru = self.lru.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let dropped = lru.count as u64;
        lru.entries.clear();
        lru.order.clear();
        lru.count = 0;
        lru.bytes = 0;
        lru.stats.invalidations += dropped;
    }

    pub(crate) fn stats(&self) -> ReadCacheStats {
        let lru = self.lru.lock();
        ReadCacheStats {
            entries: lru.count,
            bytes: lru.bytes,
            ..lru.stats
        }
    }
}

#[cfg(test)]
#[path = "read_cache_tests.rs"]
mod tests;
