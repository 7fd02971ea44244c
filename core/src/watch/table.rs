//! One watch table: which sessions watch which paths, and in which modes.
//!
//! ZooKeeper keeps two of these per server (`DataTree.dataWatches` and `DataTree.childWatches`,
//! each a `WatchManager`). A table is indexed both ways, like `WatchManager.watchTable` and
//! `watch2Paths`: by path, because every write looks up its path, and by session, because a
//! closing session must drop all of its watches without scanning every path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use ahash::RandomState;

/// The modes one session holds on one path in one table, as bits (ZooKeeper's `WatchStats`).
pub(super) type Modes = u8;

/// A one-shot watch (getData, exists, getChildren): removed when it fires.
pub(super) const STANDARD: Modes = 1;
/// An addWatch PERSISTENT watch: stays after firing.
pub(super) const PERSISTENT: Modes = 1 << 1;
/// An addWatch PERSISTENT_RECURSIVE watch: stays, and also fires for every descendant.
pub(super) const RECURSIVE: Modes = 1 << 2;
/// Every mode, for removal of whatever a session holds (`WatcherType.Any`).
pub(super) const ALL_MODES: Modes = STANDARD | PERSISTENT | RECURSIVE;

/// One table of watches.
///
/// Invariants (checked by `check_invariants` in tests): a (path, session) entry is in `by_path`
/// exactly when it is in `by_session`; no entry has empty modes; no path or session maps to an
/// empty collection; `entries` and `recursive_entries` count what is there.
#[derive(Debug, Default)]
pub(super) struct WatchTable {
    /// Path -> session -> modes. The per-path map is ordered so a firing walks sessions in id
    /// order without sorting, and stays compact when a few sessions share a path.
    by_path: HashMap<Arc<str>, BTreeMap<i64, Modes>, RandomState>,
    /// Session -> the paths it watches here. The `Arc<str>` is the same allocation as the
    /// `by_path` key, so a path is stored once however many sessions watch it.
    by_session: HashMap<i64, HashSet<Arc<str>, RandomState>, RandomState>,
    /// Number of (path, session) entries: what ZooKeeper's `WatchManager.size()` reports.
    entries: usize,
    /// Number of entries holding `RECURSIVE` (`WatchManager.recursiveWatchQty`). While it is
    /// zero a firing never looks at parent paths, so a write costs one lookup.
    recursive_entries: usize,
}

impl WatchTable {
    /// The modes `session` holds on `path`; 0 when it has no entry.
    pub(super) fn modes(&self, session: i64, path: &str) -> Modes {
        self.by_path
            .get(path)
            .and_then(|sessions| sessions.get(&session))
            .copied()
            .unwrap_or(0)
    }

    /// The key under which `path` is already stored here, so another table can share it.
    pub(super) fn shared_key(&self, path: &str) -> Option<Arc<str>> {
        self.by_path
            .get_key_value(path)
            .map(|(key, _)| Arc::clone(key))
    }

    /// Adds `mode` to `session`'s entry on `path`, creating the entry if needed
    /// (`WatchManager.addWatch`). `make_key` is called only when the path is new to this table.
    /// Returns true when a new entry was created.
    pub(super) fn add(
        &mut self,
        session: i64,
        path: &str,
        mode: Modes,
        make_key: impl FnOnce() -> Arc<str>,
    ) -> bool {
        debug_assert!(
            mode != 0 && mode & !ALL_MODES == 0,
            "invalid watch mode {mode:#b}"
        );
        let (key, sessions) = match self.by_path.get_key_value(path) {
            Some((key, _)) => {
                let key = Arc::clone(key);
                let sessions = self.by_path.get_mut(path).expect("key was just found");
                (key, sessions)
            }
            None => {
                let key = make_key();
                debug_assert_eq!(&*key, path);
                (Arc::clone(&key), self.by_path.entry(key).or_default())
            }
        };
        let modes = sessions.entry(session).or_insert(0);
        let old = *modes;
        *modes |= mode;
        if old & RECURSIVE == 0 && *modes & RECURSIVE != 0 {
            self.recursive_entries += 1;
        }
        if old != 0 {
            return false;
        }
        self.entries += 1;
        self.by_session.entry(session).or_default().insert(key);
        true
    }

    /// Removes the bits of `mask` from `session`'s entry on `path`, dropping the entry when no
    /// mode is left (`WatchManager.removeWatcher(path, watcher, mode)`). Returns the modes the
    /// entry held before; the caller's "was anything removed" is `old & mask != 0`.
    pub(super) fn remove_modes(&mut self, session: i64, path: &str, mask: Modes) -> Modes {
        let Some(sessions) = self.by_path.get_mut(path) else {
            return 0;
        };
        let Some(modes) = sessions.get_mut(&session) else {
            return 0;
        };
        let old = *modes;
        *modes &= !mask;
        if old & RECURSIVE != 0 && *modes & RECURSIVE == 0 {
            self.recursive_entries -= 1;
        }
        if *modes == 0 {
            sessions.remove(&session);
            if sessions.is_empty() {
                self.by_path.remove(path);
            }
            self.unindex(session, path);
        }
        old
    }

    /// Drops every entry of `session` (`WatchManager.removeWatcher(watcher)`).
    pub(super) fn remove_session(&mut self, session: i64) {
        let Some(paths) = self.by_session.remove(&session) else {
            return;
        };
        for path in paths {
            let sessions = self
                .by_path
                .get_mut(&*path)
                .expect("indexed path is in by_path");
            let modes = sessions
                .remove(&session)
                .expect("indexed entry is in by_path");
            if modes & RECURSIVE != 0 {
                self.recursive_entries -= 1;
            }
            self.entries -= 1;
            if sessions.is_empty() {
                self.by_path.remove(&*path);
            }
        }
    }

    /// Collects into `notified` the sessions a change at `path` notifies, as
    /// `WatchManager.triggerWatch` does: every entry on `path` itself fires and loses its
    /// `STANDARD` mode; entries on ancestors fire only if they hold `RECURSIVE`, and ancestors
    /// are visited only while some recursive entry exists. `notified` comes back sorted and
    /// without duplicates (ZooKeeper collects into a set: one event per session per pass).
    pub(super) fn trigger(&mut self, path: &str, notified: &mut Vec<i64>) {
        debug_assert!(notified.is_empty());
        if let Some(sessions) = self.by_path.get_mut(path) {
            let by_session = &mut self.by_session;
            let entries = &mut self.entries;
            sessions.retain(|&session, modes| {
                notified.push(session);
                *modes &= !STANDARD;
                if *modes != 0 {
                    return true;
                }
                *entries -= 1;
                unindex(by_session, session, path);
                false
            });
            if sessions.is_empty() {
                self.by_path.remove(path);
            }
        }
        if self.recursive_entries == 0 {
            // `retain` walked the sessions in id order, so `notified` is already sorted.
            return;
        }
        let mut ancestor = parent(path);
        while let Some(current) = ancestor {
            if let Some(sessions) = self.by_path.get(current) {
                notified.extend(
                    sessions
                        .iter()
                        .filter(|(_, &modes)| modes & RECURSIVE != 0)
                        .map(|(&session, _)| session),
                );
            }
            ancestor = parent(current);
        }
        notified.sort_unstable();
        notified.dedup();
    }

    /// Number of (path, session) entries.
    pub(super) fn entries(&self) -> usize {
        self.entries
    }

    /// Number of entries holding `RECURSIVE`.
    #[cfg(test)]
    pub(super) fn recursive_watch_count(&self) -> usize {
        self.recursive_entries
    }

    /// Number of paths `session` has an entry on.
    pub(super) fn session_entries(&self, session: i64) -> usize {
        self.by_session.get(&session).map_or(0, HashSet::len)
    }

    /// The paths `session` has an entry on.
    pub(super) fn session_paths(&self, session: i64) -> Vec<String> {
        self.by_session
            .get(&session)
            .map(|paths| paths.iter().map(|path| path.to_string()).collect())
            .unwrap_or_default()
    }

    /// Every session's watched paths.
    pub(super) fn paths_by_session(
        &self,
    ) -> impl Iterator<Item = (i64, &HashSet<Arc<str>, RandomState>)> {
        self.by_session
            .iter()
            .map(|(&session, paths)| (session, paths))
    }

    /// Every path's watching sessions.
    pub(super) fn sessions_by_path(&self) -> impl Iterator<Item = (&str, &BTreeMap<i64, Modes>)> {
        self.by_path
            .iter()
            .map(|(path, sessions)| (&**path, sessions))
    }

    fn unindex(&mut self, session: i64, path: &str) {
        self.entries -= 1;
        unindex(&mut self.by_session, session, path);
    }

    /// Panics if the two indexes disagree or a counter is off.
    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        let mut entries = 0;
        let mut recursive = 0;
        for (path, sessions) in &self.by_path {
            assert!(!sessions.is_empty(), "empty session map left for {path}");
            for (&session, &modes) in sessions {
                assert!(
                    modes != 0 && modes & !ALL_MODES == 0,
                    "bad modes {modes:#b}"
                );
                assert!(
                    self.by_session[&session].contains(path),
                    "{path} not indexed for {session}"
                );
                entries += 1;
                recursive += usize::from(modes & RECURSIVE != 0);
            }
        }
        let indexed: usize = self.by_session.values().map(HashSet::len).sum();
        assert!(self.by_session.values().all(|paths| !paths.is_empty()));
        assert_eq!(indexed, entries, "by_session and by_path disagree");
        assert_eq!(self.entries, entries);
        assert_eq!(self.recursive_entries, recursive);
    }
}

/// Removes `path` from `session`'s index, dropping the session's set when it empties.
fn unindex(
    by_session: &mut HashMap<i64, HashSet<Arc<str>, RandomState>, RandomState>,
    session: i64,
    path: &str,
) {
    let paths = by_session
        .get_mut(&session)
        .expect("entry is indexed by session");
    let removed = paths.remove(path);
    debug_assert!(
        removed,
        "entry for {path} was not indexed for session {session}"
    );
    if paths.is_empty() {
        by_session.remove(&session);
    }
}

/// The parent of a znode path, or None for the root (`PathParentIterator.next`). Borrows from
/// `path`, so walking ancestors allocates nothing.
pub(super) fn parent(path: &str) -> Option<&str> {
    if path == "/" || path.is_empty() {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(slash) => Some(&path[..slash]),
        // Not an absolute path: the tree validates paths, so there is nothing above it.
        None => None,
    }
}
