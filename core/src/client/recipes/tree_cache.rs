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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::support::{RecipeError, RecipeResult, SessionSlot};
use crate::client::{Client, Error, Watcher};
use crate::proto::{
    AddWatchMode, ErrorCode, EventType, KeeperState, Stat, WatchedEvent, WatcherType,
};

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
}

struct Inner {
    slot: SessionSlot,
    root: String,
    mirror: Mutex<Mirror>,
    listeners: Mutex<Vec<(u64, TreeListener)>>,
    next_listener: AtomicU64,
    work: Sender<Work>,
    receiver: Mutex<Option<Receiver<Work>>>,
    /// The one watcher of every watch the cache sets.
    watcher: Watcher,
    subscription: Mutex<Option<u64>>,
    /// Set by the first `close`.
    closed: AtomicBool,
    /// Held while listeners run, so `close` can wait for a call in progress.
    calling_listeners: Mutex<()>,
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
                listeners: Mutex::new(Vec::new()),
                next_listener: AtomicU64::new(1),
                work,
                receiver: Mutex::new(Some(receiver)),
                watcher,
                subscription: Mutex::new(None),
                closed: AtomicBool::new(false),
                calling_listeners: Mutex::new(()),
                worker: Mutex::new(None),
            }),
        })
    }

    /// Adds a listener; returns the id `remove_listener` takes.
    pub fn listen(&self, listener: TreeListener) -> u64 {
        let id = self.inner.next_listener.fetch_add(1, Ordering::Relaxed);
        self.inner.listeners.lock().push((id, listener));
        id
    }

    /// Removes a listener.
    pub fn remove_listener(&self, id: u64) {
        self.inner
            .listeners
            .lock()
            .retain(|(known, _)| *known != id);
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
        self.inner.listeners.lock().clear();
        let _ = self.inner.work.send(Work::Stop);
        let on_worker = *self.inner.worker.lock() == Some(std::thread::current().id());
        if !on_worker {
            drop(self.inner.calling_listeners.lock());
        }
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

/// Why a read did not answer: the znode is gone, or the connection is (a reload follows).
enum ReadFailure {
    NoNode,
    Connection,
}

fn read_failure(error: Error) -> ReadFailure {
    if error.code() == ErrorCode::NoNode {
        ReadFailure::NoNode
    } else {
        ReadFailure::Connection
    }
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn in_subtree(root: &str, path: &str) -> bool {
    root == "/"
        || path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Inner {
    fn run(self: Arc<Self>, receiver: Receiver<Work>) {
        for work in receiver {
            match work {
                Work::Stop => break,
                Work::Load => self.load(),
                Work::NewSession => {
                    self.emit(vec![plain(TreeEventKind::ConnectionReconnected)]);
                    self.load();
                }
                Work::Event(event) => self.on_event(event),
            }
        }
    }

    fn emit(&self, events: Vec<TreeEvent>) {
        if events.is_empty() {
            return;
        }
        let _calling = self.calling_listeners.lock();
        for event in &events {
            // Read again for each event: a close in between silences the rest.
            let listeners: Vec<TreeListener> = self
                .listeners
                .lock()
                .iter()
                .map(|(_, listener)| listener.clone())
                .collect();
            for listener in &listeners {
                // A panicking listener must not stop the mirror.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(event)))
                    .is_err()
                {
                    tracing::error!("a tree cache listener panicked; the cache goes on");
                }
            }
        }
    }

    /// The watcher a read leaves in per-node mode; None under the recursive watch.
    fn read_watcher(&self) -> Option<Watcher> {
        self.mirror.lock().per_node.then(|| self.watcher.clone())
    }

    /// Sets the recursive watch (unless per-node), reads the whole subtree and tells
    /// listeners the difference; Initialized after the first complete load.
    fn load(&self) {
        let Ok(client) = self.slot.client() else {
            return;
        };
        if !self.mirror.lock().per_node {
            // Watch first, then read: no change between the two goes unseen.
            let mode = AddWatchMode::PersistentRecursive;
            match client.add_watch(&self.root, self.watcher.clone(), mode) {
                Ok(()) => {}
                Err(error) if error.code() == ErrorCode::Unimplemented => {
                    self.mirror.lock().per_node = true;
                }
                Err(_) => return,
            }
        }
        let mut fresh = BTreeMap::new();
        if self.read_subtree(&client, &self.root, &mut fresh).is_err() {
            return;
        }
        let mut mirror = self.mirror.lock();
        let old = std::mem::replace(&mut mirror.nodes, fresh);
        // Descendants sort after their ancestors: removals go in reverse order.
        let mut events: Vec<TreeEvent> = old
            .iter()
            .rev()
            .filter(|(path, _)| !mirror.nodes.contains_key(*path))
            .map(|(_, node)| node_event(TreeEventKind::NodeRemoved, node))
            .collect();
        for (path, node) in &mirror.nodes {
            match old.get(path) {
                None => events.push(node_event(TreeEventKind::NodeAdded, node)),
                Some(known) if known.stat.mzxid != node.stat.mzxid => {
                    events.push(node_event(TreeEventKind::NodeUpdated, node))
                }
                Some(_) => {}
            }
        }
        if !mirror.initialized {
            mirror.initialized = true;
            events.push(plain(TreeEventKind::Initialized));
        }
        drop(mirror);
        self.emit(events);
    }

    /// Reads `path` and everything under it into `out` (with watches in per-node mode). A
    /// znode that vanished while being read is left out; Err means the connection failed.
    fn read_subtree(
        &self,
        client: &Client,
        path: &str,
        out: &mut BTreeMap<String, TreeNode>,
    ) -> Result<(), ()> {
        let watcher = self.read_watcher();
        let (data, stat) = match client.get_data(path, watcher.clone()) {
            Ok(read) => read,
            Err(error) => {
                return match read_failure(error) {
                    // An absent root is watched for its creation.
                    ReadFailure::NoNode if path == self.root && watcher.is_some() => {
                        match client.exists(path, watcher) {
                            Ok(None) => Ok(()),
                            Ok(Some(_)) => self.read_subtree(client, path, out),
                            Err(_) => Err(()),
                        }
                    }
                    ReadFailure::NoNode => Ok(()),
                    ReadFailure::Connection => Err(()),
                };
            }
        };
        let children = match client.get_children(path, watcher) {
            Ok(children) => children,
            Err(error) => {
                return match read_failure(error) {
                    ReadFailure::NoNode => Ok(()),
                    ReadFailure::Connection => Err(()),
                }
            }
        };
        out.insert(
            path.to_string(),
            TreeNode {
                path: path.to_string(),
                data,
                stat,
            },
        );
        for name in children {
            self.read_subtree(client, &child_path(path, &name), out)?;
        }
        Ok(())
    }

    fn on_event(&self, event: WatchedEvent) {
        if event.event_type == EventType::None {
            return self.on_connection(event.state);
        }
        if !in_subtree(&self.root, &event.path) {
            return;
        }
        match event.event_type {
            EventType::NodeDeleted => {
                self.remove_subtree(&event.path);
                // The root may come back; per-node mode watches for that.
                if event.path == self.root && self.read_watcher().is_some() {
                    self.refresh_subtree(&event.path);
                }
            }
            EventType::NodeCreated => self.refresh_subtree(&event.path),
            EventType::NodeDataChanged => self.refresh(&event.path),
            EventType::NodeChildrenChanged => self.refresh_children(&event.path),
            _ => {}
        }
    }

    fn on_connection(&self, state: KeeperState) {
        let mut mirror = self.mirror.lock();
        match state {
            KeeperState::Disconnected => {
                mirror.connection_lost = true;
                drop(mirror);
                self.emit(vec![plain(TreeEventKind::ConnectionSuspended)]);
            }
            KeeperState::SyncConnected | KeeperState::ConnectedReadOnly
                if mirror.connection_lost =>
            {
                mirror.connection_lost = false;
                drop(mirror);
                self.emit(vec![plain(TreeEventKind::ConnectionReconnected)]);
                self.load();
            }
            KeeperState::Expired => {
                mirror.initialized = false;
                mirror.connection_lost = false;
                drop(mirror);
                self.emit(vec![plain(TreeEventKind::ConnectionLost)]);
            }
            _ => {}
        }
    }

    /// Reads one znode again (re-watching its data in per-node mode): added or updated, or
    /// removed with its subtree when it is gone.
    fn refresh(&self, path: &str) {
        let Ok(client) = self.slot.client() else {
            return;
        };
        match client.get_data(path, self.read_watcher()) {
            Ok((data, stat)) => {
                let node = TreeNode {
                    path: path.to_string(),
                    data,
                    stat,
                };
                let mut mirror = self.mirror.lock();
                let event = match mirror.nodes.insert(path.to_string(), node.clone()) {
                    None => Some(TreeEventKind::NodeAdded),
                    Some(known) if known.stat.mzxid != stat.mzxid => {
                        Some(TreeEventKind::NodeUpdated)
                    }
                    Some(_) => None,
                };
                drop(mirror);
                self.emit(
                    event
                        .map(|kind| node_event(kind, &node))
                        .into_iter()
                        .collect(),
                );
            }
            Err(error) => {
                if let ReadFailure::NoNode = read_failure(error) {
                    self.remove_subtree(path);
                }
            }
        }
    }

    /// Reads a znode that appeared, and (in per-node mode, where no event tells of them)
    /// whatever is under it already.
    fn refresh_subtree(&self, path: &str) {
        if self.read_watcher().is_none() {
            return self.refresh(path);
        }
        let Ok(client) = self.slot.client() else {
            return;
        };
        let mut fresh = BTreeMap::new();
        if self.read_subtree(&client, path, &mut fresh).is_err() {
            return;
        }
        self.merge(fresh);
    }

    /// Per-node mode: reads a znode's children again (re-watching them) and loads the new
    /// ones; a child that went is removed by its own deletion event.
    fn refresh_children(&self, path: &str) {
        let Ok(client) = self.slot.client() else {
            return;
        };
        let children = match client.get_children(path, self.read_watcher()) {
            Ok(children) => children,
            Err(error) => {
                if let ReadFailure::NoNode = read_failure(error) {
                    self.remove_subtree(path);
                }
                return;
            }
        };
        let mut fresh = BTreeMap::new();
        for name in children {
            let child = child_path(path, &name);
            if self.mirror.lock().nodes.contains_key(&child) {
                continue;
            }
            if self.read_subtree(&client, &child, &mut fresh).is_err() {
                return;
            }
        }
        self.merge(fresh);
    }

    /// Adds (or updates) what was read, telling listeners parents first.
    fn merge(&self, fresh: BTreeMap<String, TreeNode>) {
        let mut mirror = self.mirror.lock();
        let mut events = Vec::new();
        for (path, node) in fresh {
            match mirror.nodes.insert(path, node.clone()) {
                None => events.push(node_event(TreeEventKind::NodeAdded, &node)),
                Some(known) if known.stat.mzxid != node.stat.mzxid => {
                    events.push(node_event(TreeEventKind::NodeUpdated, &node))
                }
                Some(_) => {}
            }
        }
        drop(mirror);
        self.emit(events);
    }

    /// Removes a znode and everything under it, telling listeners children first.
    fn remove_subtree(&self, path: &str) {
        let mut mirror = self.mirror.lock();
        let gone: Vec<String> = mirror
            .nodes
            .range(path.to_string()..)
            .take_while(|(known, _)| known.starts_with(path))
            .filter(|(known, _)| in_subtree(path, known))
            .map(|(known, _)| known.clone())
            .collect();
        let events: Vec<TreeEvent> = gone
            .iter()
            .rev()
            .filter_map(|known| mirror.nodes.remove(known))
            .map(|node| node_event(TreeEventKind::NodeRemoved, &node))
            .collect();
        drop(mirror);
        self.emit(events);
    }
}

fn plain(kind: TreeEventKind) -> TreeEvent {
    TreeEvent { kind, node: None }
}

fn node_event(kind: TreeEventKind, node: &TreeNode) -> TreeEvent {
    TreeEvent {
        kind,
        node: Some(node.clone()),
    }
}
