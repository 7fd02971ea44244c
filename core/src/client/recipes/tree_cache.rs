//! A subtree cache (kazoo's TreeCache, Curator's CuratorCache): mirrors the data and Stat of
//! every znode under a root, kept current by one persistent-recursive watch (per-node data and
//! child watches against servers older than 3.6), and tells listeners of nodes added, updated
//! and removed, of the initial load, and of the connection's ups and downs.
//!
//! One worker thread does all the reading and keeps the mirror: watch events and connection
//! changes are queued to it, so changes are applied one at a time, each from a fresh read of
//! the znode (an event says what changed, not what it holds now). A load (at start, after a
//! reconnect or on a new session) reads the whole subtree again and tells listeners the
//! difference from what they were told so far, so nothing missed while away stays missed:
//! a persistent watch's missed events are not replayed by the server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

mod worker;

use super::listeners::Listeners;
use super::support::{RecipeError, RecipeResult, SessionSlot};
use crate::client::{Error, Watcher};
use crate::proto::{ErrorCode, Stat, WatchedEvent, WatcherType};

/// What happened, numbered as kazoo's `TreeEvent` types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TreeEventKind {
    /// A znode appeared in the mirror (at the initial load too).
    NodeAdded = 0,
    /// A mirrored znode's data changed (its mzxid moved).
    NodeUpdated = 1,
    /// A znode left the mirror; descendants are removed before their ancestors.
    NodeRemoved = 2,
    /// The connection broke: the mirror may be falling behind.
    ConnectionSuspended = 3,
    /// The connection (or a new session) is back; the mirror is being reloaded.
    ConnectionReconnected = 4,
    /// The session expired; the mirror waits for a new session.
    ConnectionLost = 5,
    /// The first load since the start (or since the session was lost) is complete.
    Initialized = 6,
}

/// A mirrored znode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeNode {
    /// Its full path.
    pub path: String,
    /// Its data (None: null data).
    pub data: Option<Vec<u8>>,
    /// Its Stat when last read.
    pub stat: Stat,
}

/// An event a listener hears: the node concerned (what it was, for a removal) for node events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEvent {
    /// What happened.
    pub kind: TreeEventKind,
    /// The znode, for NodeAdded, NodeUpdated and NodeRemoved.
    pub node: Option<TreeNode>,
}

/// Hears a tree cache's events, on its worker thread, in order.
pub type TreeListener = Arc<dyn Fn(&TreeEvent) + Send + Sync>;

/// How the cache watches the subtree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeWatchMode {
    /// One persistent-recursive watch; per-node watches when the server answers addWatch
    /// with Unimplemented (ZooKeeper before 3.6).
    Auto,
    /// A data and a child watch on every znode, as kazoo's TreeCache.
    PerNode,
}

enum Work {
    Load,
    NewSession,
    Event(WatchedEvent),
    Stop,
}

#[derive(Default)]
struct Mirror {
    nodes: BTreeMap<String, TreeNode>,
    initialized: bool,
    /// The connection broke since the last load: a SyncConnected means reload.
    connection_lost: bool,
    /// The server has no addWatch: per-node watches from now on.
    per_node: bool,
    /// The last load was cut short by the connection: the worker tries again.
    load_failed: bool,
}

struct Inner {
    slot: SessionSlot,
    root: String,
    mirror: Mutex<Mirror>,
    /// Silenced by `close`.
    listeners: Listeners<dyn Fn(&TreeEvent) + Send + Sync>,
    work: Sender<Work>,
    receiver: Mutex<Option<Receiver<Work>>>,
    /// The one watcher of every watch the cache sets.
    watcher: Watcher,
    subscription: Mutex<Option<u64>>,
    /// Set by the first `close`.
    closed: AtomicBool,
    /// The worker thread, so `close` called from a listener does not wait on itself.
    worker: Mutex<Option<std::thread::ThreadId>>,
}

/// A mirror of the subtree under a root. Dropping it closes it.
pub struct TreeCache {
    inner: Arc<Inner>,
}

impl TreeCache {
    /// A cache of the subtree under `root` (which need not exist yet), through `slot`'s
    /// session; `start` begins the mirroring. BadArguments for an invalid path.
    pub fn new(slot: SessionSlot, root: &str, mode: TreeWatchMode) -> RecipeResult<TreeCache> {
        crate::tree::path::validate(root)
            .map_err(|code| RecipeError::ZooKeeper(Error::new(code, Some(root))))?;
        let (work, receiver) = crossbeam_channel::unbounded();
        let events = work.clone();
        let watcher = Watcher::new(move |event| drop(events.send(Work::Event(event))));
        Ok(TreeCache {
            inner: Arc::new(Inner {
                slot,
                root: root.to_string(),
                mirror: Mutex::new(Mirror {
                    per_node: mode == TreeWatchMode::PerNode,
                    ..Mirror::default()
                }),
                listeners: Listeners::new(),
                work,
                receiver: Mutex::new(Some(receiver)),
                watcher,
                subscription: Mutex::new(None),
                closed: AtomicBool::new(false),
                worker: Mutex::new(None),
            }),
        })
    }

    /// Adds a listener; returns the id `remove_listener` takes.
    pub fn listen(&self, listener: TreeListener) -> u64 {
        self.inner.listeners.add(listener)
    }

    /// Removes a listener.
    pub fn remove_listener(&self, id: u64) {
        self.inner.listeners.remove(id);
    }

    /// Starts mirroring in the background; returns at once (the load ends with Initialized).
    /// `InvalidState` when started before.
    pub fn start(&self) -> RecipeResult<()> {
        let Some(receiver) = self.inner.receiver.lock().take() else {
            return Err(RecipeError::InvalidState("a tree cache starts once"));
        };
        let inner = self.inner.clone();
        let worker = std::thread::Builder::new()
            .name("zk-tree-cache".into())
            .spawn(move || inner.run(receiver))
            .map_err(|_| RecipeError::ZooKeeper(Error::from(ErrorCode::SystemError)))?;
        *self.inner.worker.lock() = Some(worker.thread().id());
        // A new session in the slot starts the mirror over on it.
        let work = self.inner.work.clone();
        *self.inner.subscription.lock() = Some(self.inner.slot.subscribe(Arc::new(move || {
            let _ = work.send(Work::NewSession);
        })));
        let _ = self.inner.work.send(Work::Load);
        Ok(())
    }

    /// Stops mirroring and removes the cache's watches from the server. Once it returns no
    /// listener is called again: a call in progress is waited for, unless this is called from
    /// that very call.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(id) = self.inner.subscription.lock().take() {
            self.inner.slot.unsubscribe(id);
        }
        let _ = self.inner.work.send(Work::Stop);
        let on_worker = *self.inner.worker.lock() == Some(std::thread::current().id());
        self.inner.listeners.silence(on_worker);
        let Ok(client) = self.inner.slot.client() else {
            return;
        };
        let (per_node, paths): (bool, Vec<String>) = {
            let mirror = self.inner.mirror.lock();
            (mirror.per_node, mirror.nodes.keys().cloned().collect())
        };
        let watcher = &self.inner.watcher;
        if per_node {
            for path in paths.iter().chain([&self.inner.root]) {
                let _ = client.remove_watcher(path, watcher, WatcherType::Any);
            }
        } else {
            let _ = client.remove_watcher(&self.inner.root, watcher, WatcherType::Any);
        }
    }

    /// The mirrored znode at `path`, if any.
    pub fn get_data(&self, path: &str) -> Option<TreeNode> {
        self.inner.mirror.lock().nodes.get(path).cloned()
    }

    /// The names of the mirrored children of `path`, sorted; None when `path` is not mirrored.
    pub fn get_children(&self, path: &str) -> Option<Vec<String>> {
        let mirror = self.inner.mirror.lock();
        mirror.nodes.get(path)?;
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Some(
            mirror
                .nodes
                .range(prefix.clone()..)
                .take_while(|(child, _)| child.starts_with(&prefix))
                .filter_map(|(child, _)| {
                    let name = &child[prefix.len()..];
                    (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
                })
                .collect(),
        )
    }

    /// Every mirrored znode, by path.
    pub fn snapshot(&self) -> BTreeMap<String, TreeNode> {
        self.inner.mirror.lock().nodes.clone()
    }

    /// True once the first load is complete (and until the session is lost).
    pub fn is_initialized(&self) -> bool {
        self.inner.mirror.lock().initialized
    }

    /// True while the cache uses per-node watches (asked for, or the server has no addWatch).
    pub fn uses_per_node_watches(&self) -> bool {
        self.inner.mirror.lock().per_node
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.close();
    }
}
