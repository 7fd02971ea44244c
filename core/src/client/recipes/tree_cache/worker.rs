//! The tree cache's worker: the one thread that reads the subtree, applies each watch event
//! from a fresh read of its znode, reloads after a reconnect or a new session, and tells
//! listeners what changed, in order.

use std::collections::BTreeMap;

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::{Inner, TreeEvent, TreeEventKind, TreeNode, Work};
use crate::client::{Client, Error, Watcher};
use crate::proto::{AddWatchMode, ErrorCode, EventType, KeeperState, WatchedEvent};

/// First pause before a failed load is tried again; it doubles up to `RETRY_MS_MAX`.
const RETRY_MS_MIN: u64 = 50;
const RETRY_MS_MAX: u64 = 2_000;

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
    pub(super) fn run(self: std::sync::Arc<Self>, receiver: Receiver<Work>) {
        let mut backoff_ms = RETRY_MS_MIN;
        loop {
            // A load the connection cut short is tried again, with backoff: until it succeeds
            // the cache may hold no watch, and so hear of no reconnection.
            let work = if self.mirror.lock().load_failed {
                match receiver.recv_timeout(Duration::from_millis(backoff_ms)) {
                    Ok(work) => work,
                    Err(RecvTimeoutError::Timeout) => {
                        backoff_ms = (backoff_ms * 2).min(RETRY_MS_MAX);
                        Work::Load
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                backoff_ms = RETRY_MS_MIN;
                match receiver.recv() {
                    Ok(work) => work,
                    Err(_) => break,
                }
            };
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
        for event in &events {
            self.listeners
                .call_each("tree cache", |listener| listener(event));
        }
    }

    /// The watcher a read leaves in per-node mode; None under the recursive watch.
    fn read_watcher(&self) -> Option<Watcher> {
        self.mirror.lock().per_node.then(|| self.watcher.clone())
    }

    /// Sets the recursive watch (unless per-node), reads the whole subtree and tells
    /// listeners the difference; Initialized after the first complete load.
    fn load(&self) {
        self.mirror.lock().load_failed = false;
        let Ok(client) = self.slot.client() else {
            return;
        };
        // Connection trouble: try again later, unless the session is over (a new one in the
        // slot brings a load of its own).
        let failed = || self.mirror.lock().load_failed = !client.state().is_terminal();
        if !self.mirror.lock().per_node {
            // Watch first, then read: no change between the two goes unseen.
            let mode = AddWatchMode::PersistentRecursive;
            match client.add_watch(&self.root, self.watcher.clone(), mode) {
                Ok(()) => {}
                Err(error) if error.code() == ErrorCode::Unimplemented => {
                    self.mirror.lock().per_node = true;
                }
                Err(_) => return failed(),
            }
        }
        let mut fresh = BTreeMap::new();
        if self.read_subtree(&client, &self.root, &mut fresh).is_err() {
            return failed();
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
