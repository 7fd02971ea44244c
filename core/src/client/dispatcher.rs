//! The dispatcher: one thread per client that runs watch callbacks and async completions in
//! the order they happened, never under an engine lock; the state a client, its session sink
//! and its dispatcher share; and the close that waits until no callback can run any more.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::read_cache::ReadCache;
use super::watch_gate::WatchGate;
use super::watcher::{WatchTables, Watcher};
use super::{ClientState, Error, Result};
use crate::proto::{ErrorCode, EventType, KeeperState, WatchedEvent};
use crate::server::SessionSink;

enum Message {
    Event(Vec<Watcher>, WatchedEvent),
    Completion(Box<dyn FnOnce() + Send>),
    Stop,
}

/// One callback to run.
enum Job {
    Watcher(Watcher, WatchedEvent),
    Completion(Box<dyn FnOnce() + Send>),
}

impl Job {
    fn run(self) {
        // A panicking callback must not silence the ones after it.
        let (outcome, what) = match self {
            Job::Watcher(watcher, event) => (
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| watcher.call(event))),
                "a watcher",
            ),
            Job::Completion(completion) => (
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(completion)),
                "a completion",
            ),
        };
        if outcome.is_err() {
            tracing::error!("{what} panicked; the dispatcher goes on");
        }
    }
}

/// What the dispatcher thread shares with the client that stops it.
struct Queue {
    receiver: Receiver<Message>,
    /// The watchers of the event being delivered that have not run yet, so a close made by
    /// one of them can run the others before it returns.
    current: Mutex<VecDeque<Job>>,
    /// Set once no callback may start any more.
    stopped: AtomicBool,
}

thread_local! {
    /// The queue whose callbacks this thread runs; null on every other thread. A plain
    /// pointer compared, never followed: asking costs threads the library did not start (a C
    /// program's) no allocation, as `std::thread::current()` would.
    static DISPATCHING: Cell<*const Queue> = const { Cell::new(std::ptr::null()) };
}

impl Queue {
    /// The next callback in order: the rest of the current event's watchers, then the
    /// channel's (waiting for one when `wait`). None at a stop, or when nothing is queued and
    /// `wait` is false.
    fn next(&self, wait: bool) -> Option<Job> {
        loop {
            if let Some(job) = self.current.lock().pop_front() {
                return Some(job);
            }
            let message = if wait {
                self.receiver.recv().ok()?
            } else {
                self.receiver.try_recv().ok()?
            };
            match message {
                Message::Event(watchers, event) => self.current.lock().extend(
                    watchers
                        .into_iter()
                        .map(|watcher| Job::Watcher(watcher, event.clone())),
                ),
                Message::Completion(completion) => return Some(Job::Completion(completion)),
                Message::Stop => return None,
            }
        }
    }

    fn run(&self) {
        DISPATCHING.with(|queue| queue.set(self));
        while !self.stopped.load(Ordering::Acquire) {
            match self.next(true) {
                Some(job) => job.run(),
                None => break,
            }
        }
        self.stopped.store(true, Ordering::Release);
    }
}

/// The client's dispatcher thread and the channel that feeds it.
pub(super) struct Dispatcher {
    sender: Sender<Message>,
    queue: Arc<Queue>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Dispatcher {
    /// Starts the thread; SystemError when the system cannot spawn one.
    pub(super) fn start() -> Result<Dispatcher> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let queue = Arc::new(Queue {
            receiver,
            current: Mutex::new(VecDeque::new()),
            stopped: AtomicBool::new(false),
        });
        let running = queue.clone();
        let thread = std::thread::Builder::new()
            .name("zk-dispatch".into())
            .spawn(move || running.run())
            .map_err(|_| Error::new(ErrorCode::SystemError, None))?;
        Ok(Dispatcher {
            sender,
            queue,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `event` for each of `watchers`.
    pub(super) fn event(&self, watchers: Vec<Watcher>, event: WatchedEvent) {
        let _ = self.sender.send(Message::Event(watchers, event));
    }

    /// Queues an async call's completion, in order with the events.
    pub(super) fn completion(&self, completion: Box<dyn FnOnce() + Send>) {
        let _ = self.sender.send(Message::Completion(completion));
    }

    /// True on the dispatcher thread, that is inside one of this client's callbacks.
    pub(super) fn is_current_thread(&self) -> bool {
        DISPATCHING.with(|queue| std::ptr::eq(queue.get(), Arc::as_ptr(&self.queue)))
    }

    /// Stops once the callbacks queued so far have run, without waiting for that: a callback
    /// waiting on the caller cannot deadlock it.
    pub(super) fn stop(&self) {
        let _ = self.sender.send(Message::Stop);
    }

    /// Runs every callback queued so far and stops: once it returns, no callback starts again
    /// and none is running (but the caller's own, when called from one). From a callback it
    /// runs the rest itself, as ZooKeeper's C client drains its completions when
    /// `zookeeper_close` is called from one; from any other thread it waits for the thread.
    pub(super) fn stop_and_join(&self) {
        if self.is_current_thread() {
            while let Some(job) = self.queue.next(false) {
                job.run();
            }
            // The thread ends as soon as the callback that called this returns.
            self.queue.stopped.store(true, Ordering::Release);
            return;
        }
        self.stop();
        // Held while joining, so a second caller also returns only once the thread ended.
        let mut thread = self.thread.lock();
        if let Some(thread) = thread.take() {
            let _ = thread.join();
        }
    }
}

/// Shared by the client, its session sink and its dispatcher.
pub(super) struct Shared {
    pub(super) tables: Mutex<WatchTables>,
    /// The read cache, invalidated here as events are produced.
    pub(super) cache: Option<ReadCache>,
    /// Keeps watch removals and calls setting watches apart.
    pub(super) gate: Arc<WatchGate>,
    pub(super) state: AtomicU8,
    pub(super) dispatcher: Dispatcher,
}

impl Shared {
    pub(super) fn state(&self) -> ClientState {
        ClientState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Moves to `to` if the client is in one of `from`; false (and no change) otherwise, so
    /// terminal states stay terminal and each is announced once.
    pub(super) fn transition(&self, from: &[ClientState], to: ClientState) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if !from.contains(&ClientState::from_u8(current)) {
                return false;
            }
            match self.state.compare_exchange(
                current,
                to as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Hands an event to the dispatcher with the watchers it reaches, decided now: a watcher
    /// registered after this point must not see an event that happened before its read.
    pub(super) fn dispatch(&self, event: WatchedEvent) {
        if let Some(cache) = &self.cache {
            cache.observe(&event);
        }
        let watchers = self.tables.lock().materialize(&event);
        if !watchers.is_empty() {
            self.dispatcher.event(watchers, event);
        }
    }
}

impl SessionSink for Shared {
    fn deliver(&self, event: WatchedEvent) {
        let expired = event.event_type == EventType::None && event.state == KeeperState::Expired;
        // A client closed by its user does not also hear that its session expired.
        if expired
            && !self.transition(
                &[
                    ClientState::Connected,
                    ClientState::Connecting,
                    ClientState::AuthFailed,
                ],
                ClientState::Expired,
            )
        {
            return;
        }
        self.dispatch(event);
    }

    /// The server stopped. A durable server's session lives on in its data directory, but an
    /// in-process client cannot follow the server to a restart: it is disconnected for good,
    /// and its calls answer ConnectionLoss. An in-memory server's session went with it.
    fn member_stopped(&self, session_lives_on: bool) {
        if !session_lives_on {
            return self.detach();
        }
        if self.transition(
            &[ClientState::Connected, ClientState::AuthFailed],
            ClientState::Connecting,
        ) {
            self.dispatch(WatchedEvent::state(KeeperState::Disconnected));
        }
    }

    /// The member lost its leader: the session lives on, so the client waits, connecting,
    /// for the member to serve again (its calls answer ConnectionLoss meanwhile).
    fn disconnected(&self) {
        if self.transition(
            &[ClientState::Connected, ClientState::AuthFailed],
            ClientState::Connecting,
        ) {
            self.dispatch(WatchedEvent::state(KeeperState::Disconnected));
        }
    }

    fn reconnected(&self) {
        if self.transition(&[ClientState::Connecting], ClientState::Connected) {
            self.dispatch(WatchedEvent::state(KeeperState::SyncConnected));
        }
    }

    /// The session ended without an event: the client is expired, as a TCP client finds its
    /// session when it reaches a server again.
    fn detach(&self) {
        if self.transition(
            &[
                ClientState::Connected,
                ClientState::Connecting,
                ClientState::AuthFailed,
            ],
            ClientState::Expired,
        ) {
            self.dispatch(WatchedEvent::state(KeeperState::Expired));
        }
    }
}
