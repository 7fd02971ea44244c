//! The native Rust client: a session on a server in this process (through the engine's entry
//! point) or on any ZooKeeper server over TCP (`remote/`), with blocking and async calls,
//! watch callbacks, channels and streams, and a watch-coherent read cache.
//!
//! Watch callbacks run on the client's own dispatcher thread, in the order the events
//! happened, never while an engine lock is held; a callback may call back into the client.

mod async_client;
mod cache_watches;
mod calls;
mod close;
mod dispatcher;
mod error;
mod in_process;
mod read_cache;
pub mod recipes;
mod remote;
mod stateful;
mod validate;
mod watch_gate;
mod watcher;

use std::sync::atomic::AtomicU8;
use std::sync::Arc;

use parking_lot::Mutex;

pub use async_client::AsyncClient;
pub use cache_watches::RELEASE_BATCH as READ_CACHE_RELEASE_BATCH;
pub use error::{Error, Result};
pub use read_cache::{ReadCacheConfig, ReadCacheStats, ReadKind, ReadKindStats};
pub use remote::tls::ClientTls;
pub use watcher::{WatchStream, Watcher};

use crate::op::{Op, OpResult, Reply};
use crate::proto::{ErrorCode, KeeperState, WatchedEvent};
use crate::server::{Clock, Engine, LocalSession, SystemClock, WatchRegistered};
use dispatcher::{Dispatcher, Shared};
use in_process::{Destination, InProcessAnswer};
use read_cache::{cacheable, changed_by, watching, ReadCache};
use stateful::is_stateful;
use validate::validate_request;
use watcher::WatchTables;

/// How to open a session.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Requested session timeout; the server clamps it into its [min, max] range.
    pub session_timeout_ms: i64,
    /// The default watcher: receives connection state changes.
    pub watcher: Option<Watcher>,
    /// The address ip ACLs and whoAmI see for an in-process client (a TCP client is seen at
    /// its socket's address).
    pub ip: String,
    /// Over TCP: also accept a read-only server (ZooKeeper's canBeReadOnly).
    pub read_only: bool,
    /// Keep getData answers in a watch-coherent LRU cache (see `read_cache.rs`); None: off.
    pub read_cache: Option<ReadCacheConfig>,
    /// Over TCP: how long `Client::connect` waits for a server to grant the session; None:
    /// the session timeout.
    pub connect_timeout_ms: Option<u64>,
    /// Resume this session instead of opening a new one (ZooKeeper's `new ZooKeeper(...,
    /// sessionId, sessionPasswd)`); connecting answers SessionExpired when the server no longer
    /// has it or the password is wrong.
    pub resume: Option<SessionCredentials>,
    /// Over TCP: connect over TLS (kazoo's `use_ssl`); None: plain TCP.
    pub tls: Option<ClientTls>,
}

/// What identifies a session to resume: its id and password, as `Client::session_id` and
/// `Client::session_password` report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCredentials {
    /// The session id.
    pub session_id: i64,
    /// The session password.
    pub password: [u8; 16],
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            session_timeout_ms: 30_000,
            watcher: None,
            ip: "127.0.0.1".to_string(),
            read_only: false,
            read_cache: None,
            connect_timeout_ms: None,
            resume: None,
            tls: None,
        }
    }
}

/// Where the client stands with its session (ZooKeeper's `ZooKeeper.States`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// The session is live.
    Connected = 0,
    /// addAuth failed: every later call answers AuthFailed, as ZooKeeper's clients do.
    AuthFailed = 1,
    /// The server expired the session.
    Expired = 2,
    /// `close()` was called.
    Closed = 3,
    /// Over TCP: the connection was lost and the client is finding a server again; calls
    /// wait for it (up to the session timeout), as ZooKeeper's clients queue them.
    Connecting = 4,
}

impl ClientState {
    fn from_u8(value: u8) -> ClientState {
        match value {
            0 => ClientState::Connected,
            1 => ClientState::AuthFailed,
            2 => ClientState::Expired,
            4 => ClientState::Connecting,
            _ => ClientState::Closed,
        }
    }

    /// True once the client can never serve a call again.
    pub fn is_terminal(self) -> bool {
        matches!(self, ClientState::Expired | ClientState::Closed)
    }
}

/// How the client reaches its session.
enum Link {
    /// A session on an engine in this process: calls run on the caller's thread.
    InProcess {
        engine: Arc<Engine>,
        session: Arc<LocalSession>,
    },
    /// A session over ZooKeeper's TCP protocol, on any server that speaks it.
    Tcp(remote::Connection),
}

/// A call's answer still on its way: `wait` for it. In process it is ready at once.
pub struct PendingReply(PendingInner);

enum PendingInner {
    Ready(Option<Result<Reply>>),
    Waiting(crossbeam_channel::Receiver<Result<Reply>>),
}

impl PendingReply {
    /// The answer, or None if it has not come within `timeout` (ask again).
    pub fn wait_timeout(&mut self, timeout: std::time::Duration) -> Option<Result<Reply>> {
        match &mut self.0 {
            PendingInner::Ready(reply) => reply.take(),
            PendingInner::Waiting(receiver) => match receiver.recv_timeout(timeout) {
                Ok(reply) => Some(reply),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    Some(Err(Error::new(ErrorCode::ConnectionLoss, None)))
                }
            },
        }
    }

    /// The answer, waiting as long as it takes.
    pub fn wait(mut self) -> Result<Reply> {
        loop {
            if let Some(reply) = self.wait_timeout(std::time::Duration::from_secs(3600)) {
                return reply;
            }
        }
    }
}

/// Runs once with a call's answer, on the client's dispatcher thread.
pub type Completion = Box<dyn FnOnce(Result<Reply>) + Send>;

/// A session on a ZooKeeper server: in process (`Server::connect`) or over TCP
/// (`Client::connect`). `Send + Sync`: share it between threads with an `Arc`.
/// Dropping it closes the session.
pub struct Client {
    link: Link,
    shared: Arc<Shared>,
}

/// What a call needs to reach the session: the link and the state shared with the dispatcher,
/// borrowed from the `Client`.
#[derive(Clone, Copy)]
struct Route<'a> {
    link: &'a Link,
    shared: &'a Arc<Shared>,
}

impl Client {
    /// `clock` times read-cache entries (`ttl_ms`).
    fn new_shared(options: &ConnectOptions, clock: Arc<dyn Clock>) -> Result<Arc<Shared>> {
        Ok(Arc::new(Shared {
            tables: Mutex::new(WatchTables::new(options.watcher.clone())),
            cache: options
                .read_cache
                .map(|config| ReadCache::new(config, clock)),
            gate: Arc::default(),
            state: AtomicU8::new(ClientState::Connected as u8),
            dispatcher: Dispatcher::start()?,
        }))
    }

    pub(crate) fn in_process(engine: Arc<Engine>, options: ConnectOptions) -> Result<Client> {
        let shared = Client::new_shared(&options, engine.clock().clone())?;
        let opened = match options.resume {
            Some(credentials) => engine.resume_session(
                credentials.session_id,
                &credentials.password,
                shared.clone(),
                Some(&options.ip),
            ),
            None => engine.open_session(
                options.session_timeout_ms,
                shared.clone(),
                Some(&options.ip),
            ),
        };
        let session = match opened {
            Ok(session) => session,
            Err(code) => {
                shared.dispatcher.stop();
                return Err(code.into());
            }
        };
        let client = Client {
            link: Link::InProcess { engine, session },
            shared,
        };
        if let Some(watcher) = options.watcher {
            let event = WatchedEvent::state(KeeperState::SyncConnected);
            client.shared.dispatcher.event(vec![watcher], event);
        }
        Ok(client)
    }

    /// Opens a session over TCP. `connect_string` is ZooKeeper's: `host:port[,host:port...][/chroot]`
    /// (port 2181 when left out). Returns once a server granted the session; fails with
    /// ConnectionLoss if none did within `connect_timeout_ms` (default: the session timeout). The client then keeps the session
    /// alive (pings), moves to another server when its connection breaks, and re-registers its
    /// watches and identities there.
    pub fn connect(connect_string: &str, options: ConnectOptions) -> Result<Client> {
        let shared = Client::new_shared(&options, Arc::new(SystemClock::default()))?;
        match remote::Connection::open(connect_string, &options, shared.clone()) {
            Ok(connection) => Ok(Client {
                link: Link::Tcp(connection),
                shared,
            }),
            Err(error) => {
                shared.dispatcher.stop();
                Err(error)
            }
        }
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        match &self.link {
            Link::InProcess { session, .. } => session.id(),
            Link::Tcp(connection) => connection.session_id(),
        }
    }

    /// The session password.
    pub fn session_password(&self) -> [u8; 16] {
        match &self.link {
            Link::InProcess { session, .. } => session.password(),
            Link::Tcp(connection) => connection.password(),
        }
    }

    /// The timeout the server granted.
    pub fn session_timeout_ms(&self) -> u32 {
        match &self.link {
            Link::InProcess { session, .. } => session.timeout_ms(),
            Link::Tcp(connection) => connection.timeout_ms(),
        }
    }

    /// What the read cache did so far; None when it is off.
    pub fn read_cache_stats(&self) -> Option<ReadCacheStats> {
        self.shared.cache.as_ref().map(ReadCache::stats)
    }

    /// True for a session on an engine in this process (calls never wait on a network).
    pub fn is_in_process(&self) -> bool {
        matches!(self.link, Link::InProcess { .. })
    }

    /// Where the client stands.
    pub fn state(&self) -> ClientState {
        self.shared.state()
    }

    fn route(&self) -> Route<'_> {
        Route {
            link: &self.link,
            shared: &self.shared,
        }
    }

    /// The same client with async methods.
    pub fn as_async(&self) -> AsyncClient<'_> {
        AsyncClient::new(self)
    }

    /// Simulates a client cut off from the server (`false`): the session then expires after its
    /// timeout unless reattached (`true`) first. Requests still work and count as touches.
    /// Over TCP it does nothing: cut the network instead.
    pub fn set_attached(&self, attached: bool) {
        if let Link::InProcess { session, .. } = &self.link {
            session.set_attached(attached);
        }
    }

    fn call(&self, op: Op, path: Option<&str>, watcher: Option<&Watcher>) -> Result<Reply> {
        // A read the cache answers costs a lock and a lookup, nothing more.
        if let Some(reply) = self.route().cached(&op, watcher) {
            return Ok(reply);
        }
        // The in-process fast path (no watcher, no cache): a read runs on this thread against
        // the engine's tree, with none of the deferred machinery; it is what in-process
        // benchmarks measure.
        if let (Link::InProcess { engine, session }, None, None) =
            (&self.link, watcher, &self.shared.cache)
        {
            if let Some(error) = self.route().refusal(path) {
                return Err(error);
            }
            return match engine.call_now(session, op, &mut |_, _| {}) {
                Ok(response) => response.result.map_err(|code| Error::new(code, path)),
                Err(op) => self.deferred(op, path, watcher, keep).wait(),
            };
        }
        self.deferred(op, path, watcher, keep).wait()
    }

    /// Sends `op`; `shape` turns the raw answer into the caller's.
    fn deferred(
        &self,
        op: Op,
        path: Option<&str>,
        watcher: Option<&Watcher>,
        shape: Shape,
    ) -> PendingReply {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let done: Completion = Box::new(move |reply| drop(sender.send(reply)));
        self.route().start(op, path, watcher, shape, done, false);
        // In process the answer is often there already.
        match receiver.try_recv() {
            Ok(reply) => PendingReply(PendingInner::Ready(Some(reply))),
            Err(_) => PendingReply(PendingInner::Waiting(receiver)),
        }
    }

    /// Sends any op; the answer as `Reply` (a failed multi is an `Error` carrying every op's
    /// result). The form bindings use: the typed calls are the same with typed answers.
    pub fn submit(&self, op: Op, watcher: Option<Watcher>) -> Result<Reply> {
        self.submit_deferred(op, watcher).wait()
    }

    /// `submit` without waiting: the answer comes through the returned `PendingReply`.
    pub fn submit_deferred(&self, op: Op, watcher: Option<Watcher>) -> PendingReply {
        if is_stateful(&op) {
            return PendingReply(PendingInner::Ready(Some(self.submit_stateful(op, watcher))));
        }
        if let Err(error) = validate_request(&op) {
            return PendingReply(PendingInner::Ready(Some(Err(error))));
        }
        if let Some(reply) = self.route().cached(&op, watcher.as_ref()) {
            return PendingReply(PendingInner::Ready(Some(Ok(reply))));
        }
        let shape = shape_for(&op);
        let path = op.path().map(str::to_string);
        self.deferred(op, path.as_deref(), watcher.as_ref(), shape)
    }

    /// `submit` whose answer goes to `done` on the client's dispatcher thread, in order with
    /// watch events (a change's events run before the completion of the write that made it),
    /// as ZooKeeper's async callbacks do.
    pub fn submit_async(&self, op: Op, watcher: Option<Watcher>, done: Completion) {
        if !is_stateful(&op) {
            if let Err(error) = validate_request(&op) {
                return self.route().answer_now(done, Err(error), true);
            }
            let shape = shape_for(&op);
            let path = op.path().map(str::to_string);
            return self
                .route()
                .start(op, path.as_deref(), watcher.as_ref(), shape, done, true);
        }
        self.submit_stateful_async(op, watcher, done);
    }
}

impl Route<'_> {
    /// The read cache's answer to `op` when it holds one (a hit is counted; a miss is counted
    /// by the `start` that follows).
    fn cached(self, op: &Op, watcher: Option<&Watcher>) -> Option<Reply> {
        let cache = self.shared.cache.as_ref()?;
        let (kind, path) = cacheable(op).filter(|_| watcher.is_none())?;
        if self.refusal(Some(path)).is_some() {
            return None;
        }
        cache.hit(kind, path)
    }

    fn refusal(self, path: Option<&str>) -> Option<Error> {
        match self.shared.state() {
            ClientState::Connected | ClientState::Connecting => None,
            ClientState::AuthFailed => Some(Error::new(ErrorCode::AuthFailed, path)),
            ClientState::Expired | ClientState::Closed => {
                Some(Error::new(ErrorCode::SessionExpired, path))
            }
        }
    }

    /// Sends `op` on its way; its answer, shaped by `shape`, goes to `done`: on the answering
    /// thread, or through the dispatcher (`dispatched`), in order with watch events.
    fn start(
        self,
        op: Op,
        path: Option<&str>,
        watcher: Option<&Watcher>,
        shape: Shape,
        done: Completion,
        dispatched: bool,
    ) {
        if let Some(error) = self.refusal(path) {
            return self.answer_now(done, Err(error), dispatched);
        }
        // A plain read goes through the read cache: answered from it, or read with a watch
        // (which keeps the entry coherent) and stored. A write drops what it changed.
        let mut fill = None;
        let mut written = Vec::new();
        let mut op = op;
        if let Some(cache) = &self.shared.cache {
            match cacheable(&op) {
                Some((kind, read_path)) if watcher.is_none() => {
                    if let Some(reply) = cache.get(kind, read_path) {
                        return self.answer_now(done, shape(Ok(reply)), dispatched);
                    }
                    let path = read_path.to_string();
                    self.release_evicted_watches();
                    fill = Some((kind, path.clone(), cache.epoch()));
                    op = watching(kind, &path);
                }
                _ => written = changed_by(&op),
            }
        }
        let ticket = sets_watch(&op).then(|| self.shared.gate.enter());
        let shared = self.shared.clone();
        let done: Completion = Box::new(move |reply: Result<Reply>| {
            if let Some(cache) = &shared.cache {
                match (fill, &reply) {
                    (Some((kind, path, epoch)), Ok(answer)) => {
                        cache.fill(kind, &path, answer, epoch);
                    }
                    // A failed write changed nothing (a multi that failed is still an Ok
                    // here, before `shape`: dropping its entries too costs only a miss).
                    (None, Ok(_)) => cache.wrote(&written),
                    _ => {}
                }
            }
            done(shape(reply))
        });
        match self.link {
            Link::InProcess { engine, session } => {
                // A read of a session with nothing waiting runs here and now.
                let op = if dispatched {
                    op
                } else {
                    let shared = self.shared;
                    let mut on_watch = |watched: &str, registered: WatchRegistered| {
                        if let Some(watcher) = watcher {
                            shared
                                .tables
                                .lock()
                                .register(watched, registered, watcher.clone());
                        }
                    };
                    match engine.call_now(session, op, &mut on_watch) {
                        Ok(response) => {
                            drop(ticket);
                            return done(response.result.map_err(|code| Error::new(code, path)));
                        }
                        Err(op) => op,
                    }
                };
                let answer = InProcessAnswer {
                    shared: self.shared.clone(),
                    watcher: watcher.cloned(),
                    ticket,
                    path: path.map(str::to_string),
                    destination: if dispatched {
                        Destination::Dispatched(done)
                    } else {
                        Destination::Direct(done)
                    },
                };
                engine.submit(session, op, Box::new(answer));
            }
            Link::Tcp(connection) => {
                let done = if dispatched {
                    remote::Done::Dispatched(done)
                } else {
                    remote::Done::Direct(done)
                };
                connection.send(op, watcher.cloned(), done, ticket);
            }
        }
    }

    /// Hands an answer known without asking the server to `done`.
    fn answer_now(self, done: Completion, reply: Result<Reply>, dispatched: bool) {
        if dispatched {
            self.shared
                .dispatcher
                .completion(Box::new(move || done(reply)));
        } else {
            done(reply);
        }
    }
}

/// Turns a raw answer into the caller's.
type Shape = fn(Result<Reply>) -> Result<Reply>;

fn keep(reply: Result<Reply>) -> Result<Reply> {
    reply
}

/// A multi whose results hold a failure answers as an error carrying them all.
fn multi_failure(reply: Result<Reply>) -> Result<Reply> {
    match reply {
        Ok(Reply::Multi(results)) => {
            let failure = results.iter().find_map(|result| match result {
                OpResult::Error(Some(code)) => Some(*code),
                _ => None,
            });
            match failure {
                Some(code) => Err(Error::multi(code, results)),
                None => Ok(Reply::Multi(results)),
            }
        }
        other => other,
    }
}

fn shape_for(op: &Op) -> Shape {
    if matches!(op, Op::Multi(_)) {
        multi_failure
    } else {
        keep
    }
}

/// Ops that leave a watch on the server.
fn sets_watch(op: &Op) -> bool {
    match op {
        Op::GetData { watch, .. } | Op::Exists { watch, .. } | Op::GetChildren { watch, .. } => {
            *watch
        }
        Op::AddWatch { .. } => true,
        _ => false,
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &format_args!("0x{:x}", self.session_id()))
            .field("state", &self.state())
            .finish()
    }
}
