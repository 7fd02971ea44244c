//! Releases the server-side watches that evicted read-cache entries left behind, so a
//! long-running client reading ever new znodes does not pile up watches on the server.
//!
//! An evicted entry's watch stays on the server until it fires or is removed. Once
//! `RELEASE_BATCH` evictions are waiting, the next cache miss removes their watches before it
//! is sent: with the watch gate held (no call setting a watch is on its way, and none starts
//! until the server answered, see watch_gate.rs), it skips every watch a cached entry or a
//! user's watcher still relies on, and sends one `removeWatches` per remaining watch, all
//! pipelined. The miss itself then waits for those answers at the gate, so one miss in
//! `RELEASE_BATCH` pays a round trip; the server holds at most the cached entries' watches plus
//! `RELEASE_BATCH` (and the watches of reads on their way).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::read_cache::ReadKind;
use super::{keep, Completion, Route};
use crate::op::Op;
use crate::proto::WatcherType;

/// Evicted entries that wait before their watches are removed, in one pipelined batch.
pub const RELEASE_BATCH: usize = 64;

impl Route<'_> {
    /// Removes the watches of evicted entries once `RELEASE_BATCH` of them are waiting. Called
    /// by a cache miss before it enters the watch gate; never with a removal held.
    pub(super) fn release_evicted_watches(self) {
        let Some(cache) = &self.shared.cache else {
            return;
        };
        if cache.evicted_count() < RELEASE_BATCH {
            return;
        }
        let removal = Arc::new(self.shared.gate.exclusive());
        // Taken under the gate: another miss that got here first released them already.
        let watches: BTreeSet<(String, u8)> = cache
            .take_evicted()
            .into_iter()
            .map(|(kind, path)| (path, u8::from(kind == ReadKind::Children)))
            .collect();
        let mut released = 0;
        for (path, children) in watches {
            let watcher_type = if children == 1 {
                WatcherType::Children
            } else {
                WatcherType::Data
            };
            // Nothing new is cached and no user watcher registers while the gate is held, so
            // these answers stay true until the removal has been answered.
            if cache.relies_on(&path, watcher_type)
                || self
                    .shared
                    .tables
                    .lock()
                    .contains(&path, watcher_type, None)
            {
                continue;
            }
            released += 1;
            let removal = removal.clone();
            // NoWatcher is an answer too: the watch fired since the entry was evicted.
            let done: Completion = Box::new(move |_| drop(removal));
            let op = Op::RemoveWatches {
                path: path.clone(),
                watcher_type,
            };
            self.start(op, Some(&path), None, keep, done, false);
        }
        cache.released(released);
    }
}
