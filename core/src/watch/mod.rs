//! The watch registry: which sessions watch which znodes, and which events a change fires.
//!
//! This is ZooKeeper 3.9's server-side watch bookkeeping (`DataTree.dataWatches`,
//! `DataTree.childWatches`, both `WatchManager`s) without the connections: a watcher is a
//! session id, and firing hands back `(session, WatchedEvent)` pairs for the connection layer
//! to deliver. Two tables are kept, exactly as ZooKeeper does, because the trigger rules differ
//! per table: the data table answers created/deleted/data-changed and holds recursive watches;
//! the child table answers children-changed and deleted.
//!
//! ```
//! use zookeeper_core::proto::EventType;
//! use zookeeper_core::tree::{Change, ChangeKind};
//! use zookeeper_core::watch::{WatchKind, WatchRegistry};
//!
//! let mut watches = WatchRegistry::new(1_000);
//! watches.add(7, "/app", WatchKind::PersistentRecursive).unwrap();
//! watches.add(9, "/app/config", WatchKind::Data).unwrap();
//!
//! let mut events = Vec::new();
//! let change = Change::open("/app/config", ChangeKind::DataChanged);
//! watches.fire(&change, 42, &mut events);
//! let sessions: Vec<i64> = events.iter().map(|(session, _)| *session).collect();
//! assert_eq!(sessions, [7, 9]);
//! assert!(events.iter().all(|(_, event)| event.event_type == EventType::NodeDataChanged));
//!
//! // The one-shot watch is gone; the recursive one stays.
//! events.clear();
//! watches.fire(&change, 43, &mut events);
//! assert_eq!(events.len(), 1);
//! ```

#[cfg(test)]
mod model_tests;
mod table;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::proto::{AddWatchMode, ErrorCode, EventType, WatchedEvent, WatcherType};
use crate::tree::{Change, ChangeKind};

use table::{Modes, WatchTable, ALL_MODES, PERSISTENT, RECURSIVE, STANDARD};

/// What kind of watch a request sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// A one-shot watch set by getData or exists: the data table, STANDARD mode.
    Data,
    /// A one-shot watch set by getChildren: the child table, STANDARD mode.
    Child,
    /// addWatch PERSISTENT: both tables, PERSISTENT mode (`DataTree.addWatch`).
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE: the data table only, PERSISTENT_RECURSIVE mode.
    PersistentRecursive,
}

impl From<AddWatchMode> for WatchKind {
    fn from(mode: AddWatchMode) -> WatchKind {
        match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        }
    }
}

impl WatchKind {
    /// The modes this kind adds to the data table and to the child table (0: none).
    fn modes(self) -> (Modes, Modes) {
        match self {
            WatchKind::Data => (STANDARD, 0),
            WatchKind::Child => (0, STANDARD),
            WatchKind::Persistent => (PERSISTENT, PERSISTENT),
            WatchKind::PersistentRecursive => (RECURSIVE, 0),
        }
    }
}

/// One session's watches by kind (`WatchRegistry::session_watches`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionWatches {
    /// One-shot data-table watches (getData, or exists on a znode then present or not).
    pub data: Vec<String>,
    /// One-shot child watches.
    pub child: Vec<String>,
    /// Persistent watches.
    pub persistent: Vec<String>,
    /// Persistent recursive watches.
    pub persistent_recursive: Vec<String>,
}

/// The watches of every session connected to this server.
///
/// Not replicated: watches live where the session's connection is, and a client re-registers
/// them with setWatches when it reconnects elsewhere.
#[derive(Debug)]
pub struct WatchRegistry {
    /// getData/exists watches, persistent and recursive watches (`DataTree.dataWatches`).
    data: WatchTable,
    /// getChildren watches and persistent watches (`DataTree.childWatches`).
    child: WatchTable,
    /// The most (table, path) entries one session may hold, so one client cannot grow the
    /// server's memory without bound.
    watches_per_session_max: usize,
    /// Reused buffer of the sessions one table pass notifies, so firing allocates nothing
    /// beyond the events themselves.
    notified: Vec<i64>,
}

impl WatchRegistry {
    /// An empty registry in which a session may hold at most `watches_per_session_max` watch
    /// entries (one per table and path; see [`WatchRegistry::session_watch_count`]).
    pub fn new(watches_per_session_max: usize) -> WatchRegistry {
        WatchRegistry {
            data: WatchTable::default(),
            child: WatchTable::default(),
            watches_per_session_max,
            notified: Vec::new(),
        }
    }

    /// Sets a watch of `kind` on `path` for `session`. The path is not checked against the
    /// tree: exists may watch a znode that does not exist yet.
    ///
    /// Adding a watch the session already holds changes nothing. Adding a mode to an entry the
    /// session already has on that table and path (a persistent watch where a getData watch
    /// is) does not count against the cap either, because ZooKeeper stores both in one entry.
    ///
    /// # Errors
    ///
    /// `ErrorCode::QuotaExceeded` if the new entries would take the session past
    /// `watches_per_session_max`; then nothing is added, in either table.
    pub fn add(&mut self, session: i64, path: &str, kind: WatchKind) -> Result<(), ErrorCode> {
        let (data_mode, child_mode) = kind.modes();
        let new_entries = usize::from(data_mode != 0 && self.data.modes(session, path) == 0)
            + usize::from(child_mode != 0 && self.child.modes(session, path) == 0);
        if self.session_watch_count(session) + new_entries > self.watches_per_session_max {
            return Err(ErrorCode::QuotaExceeded);
        }
        // Share one allocation of the path between the two tables when both hold it.
        if data_mode != 0 {
            let shared = self.child.shared_key(path);
            self.data.add(session, path, data_mode, || {
                shared.unwrap_or_else(|| Arc::from(path))
            });
        }
        if child_mode != 0 {
            let shared = self.data.shared_key(path);
            self.child.add(session, path, child_mode, || {
                shared.unwrap_or_else(|| Arc::from(path))
            });
        }
        Ok(())
    }

    /// Appends to `out` the events `change` fires, and removes the one-shot watches that
    /// fired, following `DataTree.createNode`, `deleteNode` and `setData`:
    ///
    /// - `Created`: the data table at the path, `NodeCreated`.
    /// - `DataChanged`: the data table at the path, `NodeDataChanged`.
    /// - `Deleted`: the data table, then the child table, at the path, `NodeDeleted`. A session
    ///   the data pass notified is not notified again by the child pass, but its one-shot
    ///   child watch is still used up.
    /// - `ChildrenChanged`: the child table at the path (the parent), `NodeChildrenChanged`.
    ///
    /// In the data table, recursive watches on the path's ancestors fire too. Each session
    /// gets at most one event per table pass; within a pass events are in session id order.
    /// Every event has state SyncConnected, the change's path and `zxid`.
    ///
    /// With no watch on the path and no recursive watch anywhere this is one hash lookup and
    /// allocates nothing: it runs for every change of every write.
    pub fn fire(&mut self, change: &Change, zxid: i64, out: &mut Vec<(i64, WatchedEvent)>) {
        match change.kind {
            ChangeKind::Created => self.fire_data(change, EventType::NodeCreated, zxid, out),
            ChangeKind::DataChanged => {
                self.fire_data(change, EventType::NodeDataChanged, zxid, out)
            }
            ChangeKind::ChildrenChanged => {
                // Nothing to suppress: the suppressed range starts at the end of `out`.
                let end = out.len();
                self.fire_child(change, EventType::NodeChildrenChanged, zxid, end, out)
            }
            ChangeKind::Deleted => {
                let data_start = out.len();
                self.fire_data(change, EventType::NodeDeleted, zxid, out);
                self.fire_child(change, EventType::NodeDeleted, zxid, data_start, out);
            }
        }
    }

    /// The data table pass of a change.
    fn fire_data(
        &mut self,
        change: &Change,
        event_type: EventType,
        zxid: i64,
        out: &mut Vec<(i64, WatchedEvent)>,
    ) {
        let mut notified = std::mem::take(&mut self.notified);
        self.data.trigger(&change.path, &mut notified);
        push_events(&notified, change, event_type, zxid, out);
        notified.clear();
        self.notified = notified;
    }

    /// The child table pass of a change. Sessions with an event in `out[suppress_from..]`
    /// (the data pass of the same delete, sorted by session) are skipped, as
    /// `WatchManager.triggerWatch`'s `suppress` argument does.
    fn fire_child(
        &mut self,
        change: &Change,
        event_type: EventType,
        zxid: i64,
        suppress_from: usize,
        out: &mut Vec<(i64, WatchedEvent)>,
    ) {
        let mut notified = std::mem::take(&mut self.notified);
        self.child.trigger(&change.path, &mut notified);
        let suppressed = &out[suppress_from..];
        if !suppressed.is_empty() {
            notified.retain(|session| {
                suppressed
                    .binary_search_by_key(session, |(notified, _)| *notified)
                    .is_err()
            });
        }
        push_events(&notified, change, event_type, zxid, out);
        notified.clear();
        self.notified = notified;
    }

    /// Removes `session`'s watches of `watcher_type` on `path` (`DataTree.removeWatch`):
    ///
    /// - `Children`: the child table's one-shot watch.
    /// - `Data`: the data table's one-shot watch.
    /// - `Persistent`: the PERSISTENT watch in both tables.
    /// - `PersistentRecursive`: the data table's recursive watch.
    /// - `Any`: every mode in both tables.
    ///
    /// Returns true if anything was removed; the caller answers `NoWatcher` otherwise.
    pub fn remove(&mut self, session: i64, path: &str, watcher_type: WatcherType) -> bool {
        let (data_mask, child_mask) = match watcher_type {
            WatcherType::Children => (0, STANDARD),
            WatcherType::Data => (STANDARD, 0),
            WatcherType::Persistent => (PERSISTENT, PERSISTENT),
            WatcherType::PersistentRecursive => (RECURSIVE, 0),
            WatcherType::Any => (ALL_MODES, ALL_MODES),
        };
        let mut removed = false;
        if child_mask != 0 {
            removed |= self.child.remove_modes(session, path, child_mask) & child_mask != 0;
        }
        if data_mask != 0 {
            removed |= self.data.remove_modes(session, path, data_mask) & data_mask != 0;
        }
        removed
    }

    /// Whether `session` holds a watch of `watcher_type` on `path` (`DataTree.containsWatcher`).
    /// Same table and mode choice as [`WatchRegistry::remove`], except that `Persistent` looks
    /// only at the data table, as ZooKeeper does (both tables always hold it together).
    pub fn contains(&self, session: i64, path: &str, watcher_type: WatcherType) -> bool {
        match watcher_type {
            WatcherType::Children => self.child.modes(session, path) & STANDARD != 0,
            WatcherType::Data => self.data.modes(session, path) & STANDARD != 0,
            WatcherType::Persistent => self.data.modes(session, path) & PERSISTENT != 0,
            WatcherType::PersistentRecursive => self.data.modes(session, path) & RECURSIVE != 0,
            WatcherType::Any => {
                self.child.modes(session, path) != 0 || self.data.modes(session, path) != 0
            }
        }
    }

    /// Drops every watch of `session`, when it closes or expires (`DataTree.removeCnxn`).
    pub fn remove_session(&mut self, session: i64) {
        self.data.remove_session(session);
        self.child.remove_session(session);
    }

    /// Every watch `session` holds, by kind, paths sorted (for re-registering them against
    /// another tree: a member that installs a snapshot runs setWatches for its sessions).
    pub fn session_watches(&self, session: i64) -> SessionWatches {
        let mut watches = SessionWatches::default();
        for path in self.data.session_paths(session) {
            let modes = self.data.modes(session, &path);
            if modes & STANDARD != 0 {
                watches.data.push(path.clone());
            }
            if modes & PERSISTENT != 0 {
                watches.persistent.push(path.clone());
            }
            if modes & RECURSIVE != 0 {
                watches.persistent_recursive.push(path);
            }
        }
        for path in self.child.session_paths(session) {
            if self.child.modes(session, &path) & STANDARD != 0 {
                watches.child.push(path);
            }
        }
        for paths in [
            &mut watches.data,
            &mut watches.child,
            &mut watches.persistent,
            &mut watches.persistent_recursive,
        ] {
            paths.sort();
        }
        watches
    }

    /// Number of watch entries in both tables, one per (table, path, session): ZooKeeper's
    /// `DataTree.getWatchCount`, reported by mntr as `zk_watch_count`.
    pub fn watch_count(&self) -> usize {
        self.data.entries() + self.child.entries()
    }

    /// Number of entries `session` holds in both tables: what `watches_per_session_max` caps.
    pub fn session_watch_count(&self, session: i64) -> usize {
        self.data.session_entries(session) + self.child.session_entries(session)
    }

    /// The paths each session watches, for wchc. Like ZooKeeper's `DataTree.getWatches`, this
    /// reports the data table only: getChildren-only watches do not appear.
    pub fn paths_by_session(&self) -> BTreeMap<i64, BTreeSet<String>> {
        self.data
            .paths_by_session()
            .map(|(session, paths)| (session, paths.iter().map(|path| path.to_string()).collect()))
            .collect()
    }

    /// The sessions watching each path, for wchp. Like ZooKeeper's `DataTree.getWatchesByPath`,
    /// this reports the data table only.
    pub fn sessions_by_path(&self) -> BTreeMap<String, BTreeSet<i64>> {
        self.data
            .sessions_by_path()
            .map(|(path, sessions)| (path.to_owned(), sessions.keys().copied().collect()))
            .collect()
    }

    /// Panics if either table's indexes disagree.
    #[cfg(test)]
    fn check_invariants(&self) {
        self.data.check_invariants();
        self.child.check_invariants();
    }
}

/// Appends one event per session in `notified` (sorted) to `out`.
fn push_events(
    notified: &[i64],
    change: &Change,
    event_type: EventType,
    zxid: i64,
    out: &mut Vec<(i64, WatchedEvent)>,
) {
    out.extend(notified.iter().map(|&session| {
        (
            session,
            WatchedEvent::node(event_type, change.path.as_str(), zxid),
        )
    }));
}
