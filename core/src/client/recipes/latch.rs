//! A long-lived leader latch in the style of Apache Curator's `LeaderLatch`, with its node
//! names (`_c_<uuid>-latch-<sequence>`), so Curator participants and ours elect one leader.
//!
//! Every participant keeps an ephemeral sequential znode under the latch path; the lowest
//! sequence number leads. Each other participant watches only its predecessor, so a leader's
//! departure wakes one participant. Leadership follows the session, as in Curator: when the
//! connection is lost the latch gives up leadership at once (listeners hear `false`); when the
//! connection comes back, or the slot gets a new session, it rejoins with a fresh znode. Like
//! Curator it does not poll, which would keep alive a session the server should expire.
//!
//! One worker thread per started latch makes every ZooKeeper call and every listener call, so
//! watch callbacks only hand it work and never block the client's dispatcher thread.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use super::listeners::Listeners;
use super::protected::create_protected;
use super::support::{
    child_path, ensure_path, identifiers, normalize, refuse_in_callback, retry, split_sequence,
    uuid_dashed, Deadline, RecipeError, RecipeResult, SessionSlot,
};
use crate::client::{Error, Watcher};
use crate::proto::{CreateMode, ErrorCode, EventType, KeeperState, WatchedEvent};

/// Curator's node name after the protected prefix.
const LATCH_NAME: &str = "latch-";
/// The longest pause between attempts after a failed check.
const ERROR_BACKOFF_MS_MAX: u64 = 2_000;
const ERROR_BACKOFF_MS_MIN: u64 = 100;
/// How long `close` waits for the worker to delete the znode.
const CLOSE_WAIT_MS_MAX: u64 = 15_000;
/// A predecessor already gone sends a check round again; the bound guards against churn.
const CHECK_ROUNDS_MAX: usize = 100;

/// Where a latch is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatchState {
    /// Not started yet.
    Latent,
    /// Taking part in the election.
    Started,
    /// Closed; it cannot be started again.
    Closed,
}

/// Told `true` when the participant becomes leader and `false` when it stops being leader.
pub type LatchListener = Arc<dyn Fn(bool) + Send + Sync>;

/// Work for the worker, strongest first: a stronger one pending makes weaker ones moot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    Close,
    Reset,
    Lost,
    Check,
}

struct Status {
    state: LatchState,
    leader: bool,
    notify_on_close: bool,
    node_path: Option<String>,
    worker_done: bool,
    subscription: Option<u64>,
}

thread_local! {
    /// The latch whose worker this thread is; null on every other thread. A plain pointer
    /// compared, never followed: asking costs threads the library did not start (a C
    /// program's) no allocation, as `std::thread::current()` would.
    static LATCH_WORKING: Cell<*const Inner> = const { Cell::new(std::ptr::null()) };
}

/// What watchers and the session slot use to hand the worker work.
#[derive(Clone)]
struct Feed {
    work: Sender<Work>,
    connection_lost: Arc<AtomicBool>,
}

impl Feed {
    fn event(&self, event: &WatchedEvent) {
        let work = if event.event_type != EventType::None {
            Work::Check
        } else {
            match event.state {
                KeeperState::SyncConnected | KeeperState::ConnectedReadOnly => {
                    // Rejoin only after a loss: the first connection's event means nothing new.
                    if self.connection_lost.swap(false, Ordering::AcqRel) {
                        Work::Reset
                    } else {
                        return;
                    }
                }
                KeeperState::SaslAuthenticated => return,
                _ => {
                    self.connection_lost.store(true, Ordering::Release);
                    Work::Lost
                }
            }
        };
        let _ = self.work.send(work);
    }
}

struct Inner {
    slot: SessionSlot,
    path: String,
    id: String,
    prefix: String,
    status: Mutex<Status>,
    changed: Condvar,
    /// Silenced when the latch is dropped.
    listeners: Listeners<dyn Fn(bool) + Send + Sync>,
    feed: Feed,
    receiver: Mutex<Option<Receiver<Work>>>,
    /// One watcher for every watch the latch sets, so repeated checks do not pile up watchers.
    watcher: Watcher,
}

/// A participant in a leader election that keeps its leadership until it leaves.
pub struct LeaderLatch {
    inner: Arc<Inner>,
}

impl LeaderLatch {
    /// Prepares a participant at `path`; `identifier` is stored in its znode and listed by
    /// `participants`. Nothing is created before `start`.
    pub fn new(slot: SessionSlot, path: &str, identifier: &str) -> LeaderLatch {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let feed = Feed {
            work: sender,
            connection_lost: Arc::new(AtomicBool::new(false)),
        };
        let watched = feed.clone();
        LeaderLatch {
            inner: Arc::new(Inner {
                slot,
                path: normalize(path),
                id: identifier.to_string(),
                // Curator's protected-node naming, so Curator participants sort with ours.
                prefix: format!("_c_{}-{LATCH_NAME}", uuid_dashed()),
                status: Mutex::new(Status {
                    state: LatchState::Latent,
                    leader: false,
                    notify_on_close: false,
                    node_path: None,
                    worker_done: false,
                    subscription: None,
                }),
                changed: Condvar::new(),
                listeners: Listeners::new(),
                feed,
                receiver: Mutex::new(Some(receiver)),
                watcher: Watcher::new(move |event| watched.event(&event)),
            }),
        }
    }

    /// The latch's path.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// This participant's identifier (Curator's `getId()`).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Latent, started or closed.
    pub fn state(&self) -> LatchState {
        self.inner.status.lock().state
    }

    /// The path of this participant's znode while it has one.
    pub fn our_path(&self) -> Option<String> {
        self.inner.status.lock().node_path.clone()
    }

    /// Calls `listener(true)` each time this participant becomes leader and `listener(false)`
    /// each time it stops; listeners run on the latch's worker thread, one at a time. Returns
    /// the id `remove_listener` takes.
    pub fn add_listener(&self, listener: LatchListener) -> u64 {
        self.inner.listeners.add(listener)
    }

    /// Stops calling the listener `id`; unknown ids are ignored.
    pub fn remove_listener(&self, id: u64) {
        self.inner.listeners.remove(id);
    }

    /// Joins the election in the background; returns at once. `InvalidState` when already
    /// started or closed.
    pub fn start(&self) -> RecipeResult<()> {
        let mut status = self.inner.status.lock();
        if status.state != LatchState::Latent {
            return Err(RecipeError::InvalidState(
                "a leader latch starts once: it is started or closed",
            ));
        }
        let Some(receiver) = self.inner.receiver.lock().take() else {
            return Err(RecipeError::InvalidState("the latch's worker already ran"));
        };
        let worker_inner = self.inner.clone();
        // Not joined: `close` waits for the worker's `finish` instead, boundedly.
        std::thread::Builder::new()
            .name("zk-leader-latch".into())
            .spawn(move || worker_inner.run(receiver))
            .map_err(|_| RecipeError::ZooKeeper(Error::from(ErrorCode::SystemError)))?;
        status.state = LatchState::Started;
        // A new session in the slot means our znode belonged to the old one: rejoin.
        let work = self.inner.feed.work.clone();
        status.subscription = Some(self.inner.slot.subscribe(Arc::new(move || {
            let _ = work.send(Work::Reset);
        })));
        drop(status);
        let _ = self.inner.feed.work.send(Work::Reset);
        Ok(())
    }

    /// Leaves the election: deletes this participant's znode, so another takes over.
    /// Listeners hear `false` only with `notify_leader` (Curator's `CloseMode.NOTIFY_LEADER`).
    /// Waits up to 15 s for the deletion, unless called from a listener. Closing twice does
    /// nothing.
    pub fn close(&self, notify_leader: bool) {
        let mut status = self.inner.status.lock();
        if status.state == LatchState::Closed {
            return;
        }
        let started = status.state == LatchState::Started;
        status.state = LatchState::Closed;
        status.notify_on_close = notify_leader;
        self.inner.changed.notify_all();
        if !started {
            return;
        }
        if let Some(id) = status.subscription.take() {
            self.inner.slot.unsubscribe(id);
        }
        let _ = self.inner.feed.work.send(Work::Close);
        if self.inner.is_worker_thread() {
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(CLOSE_WAIT_MS_MAX);
        while !status.worker_done {
            if self
                .inner
                .changed
                .wait_until(&mut status, deadline)
                .timed_out()
            {
                return;
            }
        }
    }

    /// True while started and leader.
    pub fn has_leadership(&self) -> bool {
        let status = self.inner.status.lock();
        status.state == LatchState::Started && status.leader
    }

    /// Waits until this participant leads, up to `timeout` (None: forever); true when it
    /// does. False at once when the latch is not started. `InvalidState` for a wait inside a
    /// callback of the slot's client (a zero timeout only looks), since the events that move
    /// leadership would queue behind it.
    pub fn await_leadership(&self, timeout: Option<Duration>) -> RecipeResult<bool> {
        if timeout != Some(Duration::ZERO) {
            refuse_in_callback(&self.inner.slot)?;
        }
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut status = self.inner.status.lock();
        while status.state == LatchState::Started && !status.leader {
            match deadline {
                Some(deadline) => {
                    if self
                        .inner
                        .changed
                        .wait_until(&mut status, deadline)
                        .timed_out()
                    {
                        break;
                    }
                }
                None => self.inner.changed.wait(&mut status),
            }
        }
        Ok(status.state == LatchState::Started && status.leader)
    }

    /// The identifiers of all participants, the leader first.
    pub fn participants(&self) -> RecipeResult<Vec<String>> {
        let paths: Vec<String> = self
            .inner
            .ordered_children()?
            .iter()
            .map(|name| child_path(&self.inner.path, name))
            .collect();
        identifiers(&self.inner.slot, &paths)
    }

    /// The leader's identifier; None when there are no participants.
    pub fn leader(&self) -> RecipeResult<Option<String>> {
        Ok(self.participants()?.into_iter().next())
    }
}

impl Drop for LeaderLatch {
    /// A latch dropped without `close` leaves the election silently. Once dropped, no listener
    /// runs again: a call in progress on the worker is waited for (unless the drop happens in
    /// that very call), so a listener's captured state may go with the latch.
    fn drop(&mut self) {
        self.close(false);
        self.inner.listeners.silence(self.inner.is_worker_thread());
    }
}

impl std::fmt::Debug for LeaderLatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLatch")
            .field("path", &self.inner.path)
            .field("id", &self.inner.id)
            .field("state", &self.state())
            .finish()
    }
}

impl Inner {
    /// True on the latch's worker thread, that is inside a listener.
    fn is_worker_thread(&self) -> bool {
        LATCH_WORKING.with(|latch| std::ptr::eq(latch.get(), self))
    }
}

// The rest runs on the worker thread.
impl Inner {
    fn run(&self, receiver: Receiver<Work>) {
        LATCH_WORKING.with(|latch| latch.set(self));
        let mut backoff_ms = 0;
        let mut retry_work: Option<Work> = None;
        loop {
            let first = match retry_work {
                Some(_) => receiver
                    .recv_timeout(Duration::from_millis(backoff_ms))
                    .unwrap_or(Work::Check),
                None => receiver.recv().unwrap_or(Work::Close),
            };
            let mut work = receiver.try_iter().fold(first, Work::min);
            if let Some(pending) = retry_work.take() {
                work = work.min(pending);
            }
            if work == Work::Close || self.status.lock().state == LatchState::Closed {
                self.finish();
                return;
            }
            let outcome = match work {
                Work::Lost => {
                    self.set_leader(false);
                    Ok(())
                }
                Work::Reset => self.reset().and_then(|()| self.check()),
                _ => self.check(),
            };
            match outcome {
                Ok(()) => backoff_ms = 0,
                Err(error) => {
                    // Without a session nobody can vouch for our leadership.
                    self.set_leader(false);
                    if error.session_is_gone() {
                        // No retry can revive this session: rejoin when a new one comes.
                        self.feed.connection_lost.store(true, Ordering::Release);
                        self.status.lock().node_path = None;
                        continue;
                    }
                    backoff_ms = (backoff_ms * 2).clamp(ERROR_BACKOFF_MS_MIN, ERROR_BACKOFF_MS_MAX);
                    retry_work = Some(Work::Check);
                    tracing::debug!(path = %self.path, %error, backoff_ms, "leader latch retries");
                }
            }
        }
    }

    fn ordered_children(&self) -> RecipeResult<Vec<String>> {
        let children = match retry(Deadline::none(), || {
            Ok(self.slot.client()?.get_children(&self.path, None)?)
        }) {
            Ok(children) => children,
            Err(error) if error.zookeeper_code() == Some(ErrorCode::NoNode) => return Ok(vec![]),
            Err(error) => return Err(error),
        };
        let mut latches: Vec<(i64, String)> = children
            .into_iter()
            .filter_map(|name| {
                let (stem, sequence) = split_sequence(&name)?;
                stem.ends_with(LATCH_NAME)
                    .then_some((sequence, name.clone()))
            })
            .collect();
        latches.sort();
        Ok(latches.into_iter().map(|(_, name)| name).collect())
    }

    fn reset(&self) -> RecipeResult<()> {
        self.set_leader(false);
        self.delete_node()?;
        retry(Deadline::none(), || {
            ensure_path(&*self.slot.client()?, &self.path)
        })?;
        let created = create_protected(
            &self.slot,
            &self.path,
            &self.prefix,
            self.id.as_bytes(),
            CreateMode::EphemeralSequential,
            Deadline::none(),
        )?;
        self.status.lock().node_path = Some(created);
        Ok(())
    }

    fn check(&self) -> RecipeResult<()> {
        if self.status.lock().node_path.is_none() {
            self.reset()?;
        }
        for _ in 0..CHECK_ROUNDS_MAX {
            let Some(node_path) = self.status.lock().node_path.clone() else {
                self.reset()?;
                continue;
            };
            let ordered = self.ordered_children()?;
            let ours = node_path.rsplit('/').next().unwrap_or_default();
            let Some(index) = ordered.iter().position(|name| name == ours) else {
                // Our session ended and a new one came: rejoin at the back.
                self.status.lock().node_path = None;
                self.reset()?;
                continue;
            };
            // The leader watches its own znode and a follower its predecessor: either watch
            // also hears every connection change, which moves leadership.
            let watched = if index == 0 {
                node_path.clone()
            } else {
                child_path(&self.path, &ordered[index - 1])
            };
            let exists = retry(Deadline::none(), || {
                Ok(self
                    .slot
                    .client()?
                    .exists(&watched, Some(self.watcher.clone()))?)
            })?;
            if exists.is_some() {
                self.set_leader(index == 0);
                return Ok(());
            }
        }
        Ok(())
    }

    fn delete_node(&self) -> RecipeResult<()> {
        let Some(node_path) = self.status.lock().node_path.clone() else {
            return Ok(());
        };
        match retry(Deadline::none(), || {
            Ok(self.slot.client()?.delete(&node_path, -1)?)
        }) {
            Ok(()) => {}
            Err(error) if error.zookeeper_code() == Some(ErrorCode::NoNode) => {}
            Err(error) => return Err(error),
        }
        self.status.lock().node_path = None;
        Ok(())
    }

    fn finish(&self) {
        if let Err(error) = self.delete_node() {
            tracing::debug!(path = %self.path, %error, "leader latch could not delete its znode on close");
        }
        let (was_leader, notify) = {
            let mut status = self.status.lock();
            let was_leader = std::mem::replace(&mut status.leader, false);
            self.changed.notify_all();
            (was_leader, status.notify_on_close)
        };
        if was_leader && notify {
            self.call_listeners(false);
        }
        self.status.lock().worker_done = true;
        self.changed.notify_all();
    }

    fn set_leader(&self, leader: bool) {
        {
            let mut status = self.status.lock();
            if status.leader == leader || (leader && status.state != LatchState::Started) {
                return;
            }
            status.leader = leader;
            self.changed.notify_all();
        }
        self.call_listeners(leader);
    }

    fn call_listeners(&self, leader: bool) {
        self.listeners
            .call_each("leader latch", |listener| listener(leader));
    }
}
