//! Watchers (callbacks, channels and async streams) and the client-side watch tables that decide
//! which watchers an event reaches (ZooKeeper's ZKWatchManager rules).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::proto::{EventType, WatchedEvent, WatcherType};
use crate::server::WatchRegistered;

/// A watch callback. Clones are the same watcher: a watcher registered twice on a path fires once.
#[derive(Clone)]
pub struct Watcher(Arc<dyn Fn(WatchedEvent) + Send + Sync>);

impl Watcher {
    /// A watcher that calls `callback` on the client's dispatcher thread.
    pub fn new(callback: impl Fn(WatchedEvent) + Send + Sync + 'static) -> Watcher {
        Watcher(Arc::new(callback))
    }

    /// A watcher that sends its events into a channel.
    pub fn channel() -> (Watcher, crossbeam_channel::Receiver<WatchedEvent>) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        (
            Watcher::new(move |event| drop(sender.send(event))),
            receiver,
        )
    }

    /// A watcher whose events are awaited from a `WatchStream`.
    pub fn stream() -> (Watcher, WatchStream) {
        let shared = Arc::new(Mutex::new(StreamState::default()));
        let feed = shared.clone();
        let watcher = Watcher::new(move |event| {
            let mut state = feed.lock();
            state.events.push_back(event);
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        });
        (watcher, WatchStream { shared })
    }

    /// How many handles to this watcher exist: its clones, those held by the client's watch
    /// tables and by queued events included. A binding that keeps a watcher per foreign
    /// callback (so the same callback is the same watcher) may forget its own once this is 1.
    pub fn handle_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    pub(crate) fn call(&self, event: WatchedEvent) {
        (self.0)(event)
    }

    /// The watcher's identity: clones share it.
    fn key(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }
}

impl<F: Fn(WatchedEvent) + Send + Sync + 'static> From<F> for Watcher {
    fn from(callback: F) -> Watcher {
        Watcher::new(callback)
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watcher")
    }
}

#[derive(Default)]
struct StreamState {
    events: VecDeque<WatchedEvent>,
    waker: Option<Waker>,
}

/// Events of a `Watcher::stream()` watcher, in order, for async code.
pub struct WatchStream {
    shared: Arc<Mutex<StreamState>>,
}

impl WatchStream {
    /// The next event, waiting for one if none is queued.
    pub fn recv(&mut self) -> impl Future<Output = WatchedEvent> + '_ {
        NextEvent {
            shared: &self.shared,
        }
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<WatchedEvent> {
        self.shared.lock().events.pop_front()
    }
}

struct NextEvent<'a> {
    shared: &'a Mutex<StreamState>,
}

impl Future for NextEvent<'_> {
    type Output = WatchedEvent;
    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<WatchedEvent> {
        let mut state = self.shared.lock();
        match state.events.pop_front() {
            Some(event) => Poll::Ready(event),
            None => {
                state.waker = Some(context.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Distinct watchers in the order they were added; membership by identity in O(1), because
/// an event is matched against them while the engine's tree lock is held.
#[derive(Default)]
pub(crate) struct WatcherSet {
    ordered: Vec<Watcher>,
    members: HashSet<usize>,
}

impl WatcherSet {
    fn insert(&mut self, watcher: &Watcher) {
        if self.members.insert(watcher.key()) {
            self.ordered.push(watcher.clone());
        }
    }

    fn extend(&mut self, other: &WatcherSet) {
        for watcher in &other.ordered {
            self.insert(watcher);
        }
    }

    fn contains(&self, watcher: &Watcher) -> bool {
        self.members.contains(&watcher.key())
    }

    fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    pub(crate) fn into_vec(self) -> Vec<Watcher> {
        self.ordered
    }
}

type Table = HashMap<String, WatcherSet>;

/// The client's record of which watcher waits for what.
#[derive(Default)]
pub(crate) struct WatchTables {
    default: Option<Watcher>,
    data: Table,
    exist: Table,
    child: Table,
    persistent: Table,
    recursive: Table,
}

fn take(table: &mut Table, path: &str, into: &mut WatcherSet) {
    if let Some(watchers) = table.remove(path) {
        into.extend(&watchers);
    }
}

impl WatchTables {
    pub(crate) fn new(default: Option<Watcher>) -> WatchTables {
        WatchTables {
            default,
            ..WatchTables::default()
        }
    }

    /// Records `watcher` where the server registered its watch.
    pub(crate) fn register(&mut self, path: &str, registered: WatchRegistered, watcher: Watcher) {
        let table = match registered {
            WatchRegistered::Data => &mut self.data,
            WatchRegistered::Exist => &mut self.exist,
            WatchRegistered::Child => &mut self.child,
            WatchRegistered::Persistent => &mut self.persistent,
            WatchRegistered::PersistentRecursive => &mut self.recursive,
        };
        table.entry(path.to_string()).or_default().insert(&watcher);
    }

    /// The watchers an event reaches, one-shot ones removed (ZKWatchManager.materialize).
    pub(crate) fn materialize(&mut self, event: &WatchedEvent) -> Vec<Watcher> {
        let mut result = WatcherSet::default();
        let path = event.path.as_str();
        match event.event_type {
            EventType::None => {
                if let Some(default) = &self.default {
                    result.insert(default);
                }
                for table in [
                    &self.data,
                    &self.exist,
                    &self.child,
                    &self.persistent,
                    &self.recursive,
                ] {
                    for watchers in table.values() {
                        result.extend(watchers);
                    }
                }
            }
            EventType::NodeCreated | EventType::NodeDataChanged => {
                take(&mut self.data, path, &mut result);
                take(&mut self.exist, path, &mut result);
                self.persistent_for(path, event.event_type, &mut result);
            }
            EventType::NodeChildrenChanged => {
                take(&mut self.child, path, &mut result);
                self.persistent_for(path, event.event_type, &mut result);
            }
            EventType::NodeDeleted => {
                take(&mut self.data, path, &mut result);
                take(&mut self.exist, path, &mut result);
                take(&mut self.child, path, &mut result);
                self.persistent_for(path, event.event_type, &mut result);
            }
            EventType::DataWatchRemoved
            | EventType::ChildWatchRemoved
            | EventType::PersistentWatchRemoved => {}
        }
        result.into_vec()
    }

    /// Persistent watchers on the path; recursive ones on the path and its ancestors, except for
    /// child events, which recursive watches never report.
    fn persistent_for(&self, path: &str, event_type: EventType, result: &mut WatcherSet) {
        if let Some(watchers) = self.persistent.get(path) {
            result.extend(watchers);
        }
        if event_type == EventType::NodeChildrenChanged || self.recursive.is_empty() {
            return;
        }
        let mut current = path;
        loop {
            if let Some(watchers) = self.recursive.get(current) {
                result.extend(watchers);
            }
            if current == "/" {
                break;
            }
            current = match current.rfind('/') {
                Some(0) => "/",
                Some(index) => &current[..index],
                None => break,
            };
        }
    }

    /// True when a watcher (`Some`: that one) of `watcher_type` waits on `path`.
    pub(crate) fn contains(
        &self,
        path: &str,
        watcher_type: WatcherType,
        watcher: Option<&Watcher>,
    ) -> bool {
        self.tables_for(watcher_type).iter().any(|(table, _)| {
            table.get(path).is_some_and(|watchers| {
                watcher.map_or(!watchers.is_empty(), |w| watchers.contains(w))
            })
        })
    }

    /// Removes watchers (`Some`: only that one) of `watcher_type` on `path`; returns each with
    /// the removal event type it is told.
    pub(crate) fn remove(
        &mut self,
        path: &str,
        watcher_type: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Vec<(Watcher, EventType)> {
        let mut removed: Vec<(Watcher, EventType)> = Vec::new();
        let mut told = HashSet::new();
        for (table, event_type) in self.tables_for_mut(watcher_type) {
            let Some(watchers) = table.remove(path) else {
                continue;
            };
            let mut kept = WatcherSet::default();
            for known in watchers.into_vec() {
                if watcher.is_none_or(|w| known.key() == w.key()) {
                    // A watcher in both the data and the exist table is told once.
                    if told.insert((known.key(), event_type as i32)) {
                        removed.push((known, event_type));
                    }
                } else {
                    kept.insert(&known);
                }
            }
            if !kept.is_empty() {
                table.insert(path.to_string(), kept);
            }
        }
        removed
    }

    fn tables_for(&self, watcher_type: WatcherType) -> Vec<(&Table, EventType)> {
        use EventType::{
            ChildWatchRemoved as Child, DataWatchRemoved as Data,
            PersistentWatchRemoved as Persistent,
        };
        match watcher_type {
            WatcherType::Children => vec![(&self.child, Child)],
            WatcherType::Data => vec![(&self.data, Data), (&self.exist, Data)],
            WatcherType::Persistent => vec![(&self.persistent, Persistent)],
            WatcherType::PersistentRecursive => vec![(&self.recursive, Persistent)],
            WatcherType::Any => vec![
                (&self.child, Child),
                (&self.data, Data),
                (&self.exist, Data),
                (&self.persistent, Persistent),
                (&self.recursive, Persistent),
            ],
        }
    }

    fn tables_for_mut(&mut self, watcher_type: WatcherType) -> Vec<(&mut Table, EventType)> {
        use EventType::{
            ChildWatchRemoved as Child, DataWatchRemoved as Data,
            PersistentWatchRemoved as Persistent,
        };
        match watcher_type {
            WatcherType::Children => vec![(&mut self.child, Child)],
            WatcherType::Data => vec![(&mut self.data, Data), (&mut self.exist, Data)],
            WatcherType::Persistent => vec![(&mut self.persistent, Persistent)],
            WatcherType::PersistentRecursive => vec![(&mut self.recursive, Persistent)],
            WatcherType::Any => vec![
                (&mut self.child, Child),
                (&mut self.data, Data),
                (&mut self.exist, Data),
                (&mut self.persistent, Persistent),
                (&mut self.recursive, Persistent),
            ],
        }
    }

    /// True when no watcher of the kinds the server tracks for `watcher_type` remains on `path`.
    pub(crate) fn none_left(&self, path: &str, watcher_type: WatcherType) -> bool {
        !self.contains(path, watcher_type, None)
    }
}

impl WatchTables {
    /// Every watched path by kind, to re-register after a reconnect (ZooKeeper's setWatches).
    pub(crate) fn watched_paths(&self) -> crate::op::SetWatchesRequest {
        let keys = |table: &Table| table.keys().cloned().collect::<Vec<_>>();
        crate::op::SetWatchesRequest {
            relative_zxid: 0,
            data: keys(&self.data),
            exist: keys(&self.exist),
            child: keys(&self.child),
            persistent: keys(&self.persistent),
            persistent_recursive: keys(&self.recursive),
        }
    }
}
