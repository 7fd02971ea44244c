//! The C watchers of one client: one `Watcher` per (callback, userdata) pair, so the same pair
//! registered twice fires once and `zk_remove_watches` can name it; a pair is forgotten once
//! nothing but this table holds its watcher, and the table is bounded.

use std::collections::HashMap;

use zookeeper_core::Watcher;

use crate::result::zk_result;

/// Most distinct (callback, userdata) pairs one client keeps watching at once; past it a call
/// that would add one answers `ZK_LIMIT_EXCEEDED`. A pair counts while a watch, a queued event
/// or a call on its way holds its watcher.
pub(crate) const WATCHERS_PER_CLIENT_MAX: usize = 1 << 20;
/// The table is first swept for forgotten pairs at this size; then whenever it doubled since.
const PRUNE_AT_WATCHERS_MIN: usize = 64;

/// A callback's address and its userdata.
pub(crate) type Pair = (usize, usize);

pub(crate) struct CWatchers {
    by_pair: HashMap<Pair, Watcher>,
    /// The size at which the next insert sweeps: twice what the last sweep kept, so sweeping
    /// costs O(1) per insert however many watchers stay live.
    prune_at_watchers: usize,
    watchers_max: usize,
}

impl CWatchers {
    pub(crate) fn new(watchers_max: usize) -> CWatchers {
        CWatchers {
            by_pair: HashMap::new(),
            prune_at_watchers: PRUNE_AT_WATCHERS_MIN,
            watchers_max,
        }
    }

    /// The pair's watcher, made with `make` when it has none.
    pub(crate) fn get_or_insert(
        &mut self,
        pair: Pair,
        make: impl FnOnce() -> Watcher,
    ) -> Result<Watcher, zk_result> {
        if let Some(watcher) = self.by_pair.get(&pair) {
            return Ok(watcher.clone());
        }
        if self.by_pair.len() >= self.prune_at_watchers.min(self.watchers_max) {
            // Held only here: no watch, queued event or call on its way needs it, so the same
            // pair later gets a fresh watcher with nothing to tell the two apart.
            self.by_pair.retain(|_, watcher| watcher.handle_count() > 1);
            self.prune_at_watchers = (self.by_pair.len() * 2).max(PRUNE_AT_WATCHERS_MIN);
        }
        if self.by_pair.len() >= self.watchers_max {
            return Err(zk_result::ZK_LIMIT_EXCEEDED);
        }
        let watcher = make();
        self.by_pair.insert(pair, watcher.clone());
        Ok(watcher)
    }

    /// The watcher already standing for the pair.
    pub(crate) fn get(&self, pair: Pair) -> Option<Watcher> {
        self.by_pair.get(&pair).cloned()
    }

    pub(crate) fn clear(&mut self) {
        self.by_pair.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_pair.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher() -> Watcher {
        Watcher::new(|_| {})
    }

    #[test]
    fn pairs_nothing_else_holds_are_forgotten_as_the_table_grows() {
        let mut table = CWatchers::new(WATCHERS_PER_CLIENT_MAX);
        let live: Vec<Watcher> = (0..10)
            .map(|pair| table.get_or_insert((1, pair), watcher).unwrap())
            .collect();
        let again = table.get_or_insert((1, 3), watcher).unwrap();
        assert_eq!(again.handle_count(), 3, "the same pair is the same watcher");
        // A thousand pairs whose watches fired and were dropped.
        for pair in 10..1_010 {
            drop(table.get_or_insert((1, pair), watcher).unwrap());
        }
        assert!(table.len() < 200, "{} pairs kept", table.len());
        for (pair, watcher) in live.iter().enumerate() {
            let kept = table.get((1, pair)).expect("a live pair is kept");
            assert_eq!(kept.handle_count(), watcher.handle_count());
        }
    }

    #[test]
    fn live_pairs_past_the_limit_are_refused() {
        let mut table = CWatchers::new(PRUNE_AT_WATCHERS_MIN + 8);
        let live: Vec<Watcher> = (0..PRUNE_AT_WATCHERS_MIN + 8)
            .map(|pair| table.get_or_insert((1, pair), watcher).unwrap())
            .collect();
        assert_eq!(
            table.get_or_insert((2, 0), watcher).err(),
            Some(zk_result::ZK_LIMIT_EXCEEDED)
        );
        assert!(
            table.get_or_insert((1, 0), watcher).is_ok(),
            "known pairs still answer"
        );
        drop(live);
        assert!(
            table.get_or_insert((2, 0), watcher).is_ok(),
            "room once they went"
        );
    }
}
