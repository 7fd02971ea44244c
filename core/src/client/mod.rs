//! The native Rust client: a session on an in-process server, with blocking and async calls,
//! watch callbacks, channels and streams.
//!
//! Watch callbacks run on the client's own dispatcher thread, in the order the events
//! happened, never while an engine lock is held; a callback may call back into the client.

mod async_client;
mod dispatcher;
mod error;
mod validate;
mod watcher;

use std::sync::atomic::AtomicU8;
use std::sync::Arc;

use parking_lot::Mutex;

pub use async_client::AsyncClient;
pub use error::{Error, Result};
pub use watcher::{WatchStream, Watcher};

use crate::op::{CreateRequest, Op, OpResult, ReadOp, ReadResult, Reply};
use crate::proto::{
    Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, KeeperState, Stat, WatchedEvent,
    WatcherType,
};
use crate::server::{Engine, LocalSession, WatchRegistered};
use dispatcher::{dispatch_loop, Dispatch, Shared};
use validate::{unexpected, validate, validate_create_path, validate_op};
use watcher::WatchTables;

/// How to open a session.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Requested session timeout; the server clamps it into its [min, max] range.
    pub session_timeout_ms: i64,
    /// The default watcher: receives connection state changes.
    pub watcher: Option<Watcher>,
    /// The address ip ACLs and whoAmI see for this client.
    pub ip: String,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            session_timeout_ms: 30_000,
            watcher: None,
            ip: "127.0.0.1".to_string(),
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
}

impl ClientState {
    fn from_u8(value: u8) -> ClientState {
        match value {
            0 => ClientState::Connected,
            1 => ClientState::AuthFailed,
            2 => ClientState::Expired,
            _ => ClientState::Closed,
        }
    }
}

/// A session on an in-process server. `Send + Sync`: share it between threads with an `Arc`.
/// Dropping it closes the session.
pub struct Client {
    engine: Arc<Engine>,
    session: Arc<LocalSession>,
    shared: Arc<Shared>,
}

impl Client {
    pub(crate) fn connect(engine: Arc<Engine>, options: ConnectOptions) -> Result<Client> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            tables: Mutex::new(WatchTables::new(options.watcher.clone())),
            state: AtomicU8::new(ClientState::Connected as u8),
            dispatch: sender,
        });
        std::thread::Builder::new()
            .name("zk-dispatch".into())
            .spawn(move || dispatch_loop(receiver))
            .map_err(|_| Error::new(ErrorCode::SystemError, None))?;
        let session = match engine.open_session(
            options.session_timeout_ms,
            shared.clone(),
            Some(&options.ip),
        ) {
            Ok(session) => session,
            Err(code) => {
                let _ = shared.dispatch.send(Dispatch::Stop);
                return Err(code.into());
            }
        };
        let client = Client {
            engine,
            session,
            shared,
        };
        if let Some(watcher) = options.watcher {
            let event = WatchedEvent::state(KeeperState::SyncConnected);
            let _ = client
                .shared
                .dispatch
                .send(Dispatch::Event(vec![watcher], event));
        }
        Ok(client)
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        self.session.id()
    }

    /// The session password.
    pub fn session_password(&self) -> [u8; 16] {
        self.session.password()
    }

    /// The timeout the server granted.
    pub fn session_timeout_ms(&self) -> u32 {
        self.session.timeout_ms()
    }

    /// Where the client stands.
    pub fn state(&self) -> ClientState {
        self.shared.state()
    }

    /// The same client with async methods.
    pub fn as_async(&self) -> AsyncClient<'_> {
        AsyncClient::new(self)
    }

    /// Simulates a client cut off from the server (`false`): the session then expires after its
    /// timeout unless reattached (`true`) first. Requests still work and count as touches.
    pub fn set_attached(&self, attached: bool) {
        self.session.set_attached(attached);
    }

    fn call(&self, op: Op, path: Option<&str>, watcher: Option<&Watcher>) -> Result<Reply> {
        match self.state() {
            ClientState::Connected => {}
            ClientState::AuthFailed => return Err(Error::new(ErrorCode::AuthFailed, path)),
            ClientState::Expired | ClientState::Closed => {
                return Err(Error::new(ErrorCode::SessionExpired, path))
            }
        }
        let shared = &self.shared;
        let mut on_watch = |watched: &str, registered: WatchRegistered| {
            if let Some(watcher) = watcher {
                shared
                    .tables
                    .lock()
                    .register(watched, registered, watcher.clone());
            }
        };
        let response = self.engine.submit(&self.session, op, &mut on_watch);
        response.result.map_err(|code| Error::new(code, path))
    }

    /// Creates a znode; returns its path (with the sequence suffix for sequential modes).
    pub fn create(&self, path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> Result<String> {
        self.create2(path, data, acl, mode).map(|(path, _)| path)
    }

    /// Creates a znode; returns its path and Stat.
    pub fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        self.create_request(CreateRequest {
            path: path.into(),
            data: data.into(),
            acl: acl.into(),
            mode,
            ttl_ms: -1,
        })
    }

    /// Creates a TTL znode (`mode` PersistentWithTtl or PersistentSequentialWithTtl).
    pub fn create_ttl(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Result<(String, Stat)> {
        self.create_request(CreateRequest {
            path: path.into(),
            data: data.into(),
            acl: acl.into(),
            mode,
            ttl_ms,
        })
    }

    /// Creates a container znode.
    pub fn create_container(&self, path: &str, data: &[u8], acl: &[Acl]) -> Result<(String, Stat)> {
        self.create2(path, data, acl, CreateMode::Container)
    }

    fn create_request(&self, request: CreateRequest) -> Result<(String, Stat)> {
        validate_create_path(&request.path, request.mode)?;
        let path = request.path.clone();
        match self.call(Op::Create(request), Some(&path), None)? {
            Reply::Create { path, stat } => Ok((path, stat)),
            other => unexpected(other),
        }
    }

    /// Deletes a childless znode; `version` -1 matches any.
    pub fn delete(&self, path: &str, version: i32) -> Result<()> {
        validate(path)?;
        self.call(
            Op::Delete {
                path: path.into(),
                version,
            },
            Some(path),
            None,
        )
        .map(drop)
    }

    /// Replaces a znode's data; `version` -1 matches any.
    pub fn set_data(&self, path: &str, data: &[u8], version: i32) -> Result<Stat> {
        validate(path)?;
        match self.call(
            Op::SetData {
                path: path.into(),
                data: data.into(),
                version,
            },
            Some(path),
            None,
        )? {
            Reply::Stat(stat) => Ok(stat),
            other => unexpected(other),
        }
    }

    /// The znode's Stat, or None when it does not exist. A watcher fires on its creation,
    /// deletion or data change.
    pub fn exists(&self, path: &str, watcher: Option<Watcher>) -> Result<Option<Stat>> {
        validate(path)?;
        let op = Op::Exists {
            path: path.into(),
            watch: watcher.is_some(),
        };
        match self.call(op, Some(path), watcher.as_ref())? {
            Reply::Exists(stat) => Ok(stat),
            other => unexpected(other),
        }
    }

    /// The znode's data and Stat. A watcher fires on its deletion or data change.
    pub fn get_data(&self, path: &str, watcher: Option<Watcher>) -> Result<(Vec<u8>, Stat)> {
        validate(path)?;
        let op = Op::GetData {
            path: path.into(),
            watch: watcher.is_some(),
        };
        match self.call(op, Some(path), watcher.as_ref())? {
            Reply::Data { data, stat } => Ok((data, stat)),
            other => unexpected(other),
        }
    }

    /// The znode's children, sorted. A watcher fires when a child is created or deleted, or the
    /// znode itself is deleted.
    pub fn get_children(&self, path: &str, watcher: Option<Watcher>) -> Result<Vec<String>> {
        self.get_children2(path, watcher)
            .map(|(children, _)| children)
    }

    /// The znode's children, sorted, and its Stat.
    pub fn get_children2(
        &self,
        path: &str,
        watcher: Option<Watcher>,
    ) -> Result<(Vec<String>, Stat)> {
        validate(path)?;
        let op = Op::GetChildren {
            path: path.into(),
            watch: watcher.is_some(),
        };
        match self.call(op, Some(path), watcher.as_ref())? {
            Reply::Children { children, stat } => Ok((children, stat)),
            other => unexpected(other),
        }
    }

    /// The znode's ACL and Stat (digests masked unless the session has ADMIN).
    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        validate(path)?;
        match self.call(Op::GetAcl { path: path.into() }, Some(path), None)? {
            Reply::Acl { acl, stat } => Ok((acl, stat)),
            other => unexpected(other),
        }
    }

    /// Replaces the znode's ACL; `version` -1 matches any ACL version.
    pub fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat> {
        validate(path)?;
        match self.call(
            Op::SetAcl {
                path: path.into(),
                acl: acl.into(),
                version,
            },
            Some(path),
            None,
        )? {
            Reply::Stat(stat) => Ok(stat),
            other => unexpected(other),
        }
    }

    /// Number of descendants of the znode.
    pub fn get_all_children_number(&self, path: &str) -> Result<i32> {
        validate(path)?;
        match self.call(
            Op::GetAllChildrenNumber { path: path.into() },
            Some(path),
            None,
        )? {
            Reply::Number(number) => Ok(number),
            other => unexpected(other),
        }
    }

    /// The session's ephemerals under `prefix` ("/" for all), sorted.
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        // The Java client checks the prefix as a path too.
        validate(prefix)?;
        match self.call(
            Op::GetEphemerals {
                prefix: prefix.into(),
            },
            Some(prefix),
            None,
        )? {
            Reply::Paths(paths) => Ok(paths),
            other => unexpected(other),
        }
    }

    /// Waits until this member has applied every change committed before the call.
    pub fn sync(&self, path: &str) -> Result<String> {
        validate(path)?;
        match self.call(Op::Sync { path: path.into() }, Some(path), None)? {
            Reply::Sync(path) => Ok(path),
            other => unexpected(other),
        }
    }

    /// Fails with BadVersion unless the znode's data version is `version` (-1: any); returns its Stat.
    pub fn check(&self, path: &str, version: i32) -> Result<Stat> {
        validate(path)?;
        match self.call(
            Op::Check {
                path: path.into(),
                version,
            },
            Some(path),
            None,
        )? {
            Reply::Stat(stat) => Ok(stat),
            other => unexpected(other),
        }
    }

    /// Applies create, delete, setData and check ops atomically. On failure the error carries
    /// the first failing op's code and every op's result (`Error::multi_results`).
    pub fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        for op in &ops {
            validate_op(op)?;
        }
        match self.call(Op::Multi(ops), None, None)? {
            Reply::Multi(results) => {
                let failure = results.iter().find_map(|result| match result {
                    OpResult::Error(Some(code)) => Some(*code),
                    _ => None,
                });
                match failure {
                    Some(code) => Err(Error::multi(code, results)),
                    None => Ok(results),
                }
            }
            other => unexpected(other),
        }
    }

    /// Reads several znodes; each read succeeds or fails on its own.
    pub fn multi_read(&self, reads: Vec<ReadOp>) -> Result<Vec<ReadResult>> {
        for read in &reads {
            let (ReadOp::GetData { path, .. } | ReadOp::GetChildren { path, .. }) = read;
            validate(path)?;
        }
        match self.call(Op::MultiRead(reads), None, None)? {
            Reply::MultiRead(results) => Ok(results),
            other => unexpected(other),
        }
    }

    /// The session's authenticated identities.
    pub fn whoami(&self) -> Result<Vec<ClientInfo>> {
        match self.call(Op::WhoAmI, None, None)? {
            Reply::WhoAmI(infos) => Ok(infos),
            other => unexpected(other),
        }
    }

    /// Adds an identity (`digest` with `user:password`). An unknown scheme fails with AuthFailed
    /// and, as in ZooKeeper's clients, every later call then fails the same way.
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let op = Op::AddAuth {
            scheme: scheme.into(),
            auth: auth.into(),
        };
        let result = self.call(op, None, None);
        // Only the failure that ends the connection is announced; later calls just answer it.
        if matches!(&result, Err(error) if error.code() == ErrorCode::AuthFailed)
            && self
                .shared
                .transition(&[ClientState::Connected], ClientState::AuthFailed)
        {
            self.shared
                .dispatch(WatchedEvent::state(KeeperState::AuthFailed));
        }
        result.map(drop)
    }

    /// Leaves a persistent (or persistent recursive) watch; it stays until removed.
    pub fn add_watch(&self, path: &str, watcher: Watcher, mode: AddWatchMode) -> Result<()> {
        validate(path)?;
        self.call(
            Op::AddWatch {
                path: path.into(),
                mode,
            },
            Some(path),
            Some(&watcher),
        )
        .map(drop)
    }

    /// Removes every watcher of `watcher_type` on `path`; each is told with a *WatchRemoved
    /// event. NoWatcher when there is none.
    pub fn remove_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        self.remove(path, watcher_type, None)
    }

    /// Removes one watcher; the server drops its watch once no other watcher of the kind remains.
    pub fn remove_watcher(
        &self,
        path: &str,
        watcher: &Watcher,
        watcher_type: WatcherType,
    ) -> Result<()> {
        self.remove(path, watcher_type, Some(watcher))
    }

    fn remove(
        &self,
        path: &str,
        watcher_type: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Result<()> {
        validate(path)?;
        let removed = {
            let mut tables = self.shared.tables.lock();
            if !tables.contains(path, watcher_type, watcher) {
                return Err(Error::new(ErrorCode::NoWatcher, Some(path)));
            }
            let removed = tables.remove(path, watcher_type, watcher);
            // The server keeps one watch per session and kind, so it is told only once no local
            // watcher of the kind is left. The tables stay locked until it has answered: a read
            // that leaves a new watcher here records it under this lock, so the server's watch
            // cannot be removed from under that watcher.
            if tables.none_left(path, watcher_type) {
                let op = Op::RemoveWatches {
                    path: path.into(),
                    watcher_type,
                };
                match self.call(op, Some(path), None) {
                    // A one-shot watch may have fired on the server already.
                    Err(error) if error.code() != ErrorCode::NoWatcher => return Err(error),
                    _ => {}
                }
            }
            removed
        };
        for (watcher, event_type) in removed {
            let event = WatchedEvent::node(event_type, path, -1);
            let _ = self
                .shared
                .dispatch
                .send(Dispatch::Event(vec![watcher], event));
        }
        Ok(())
    }

    /// NoWatcher unless a watcher of `watcher_type` waits on `path`.
    pub fn check_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        validate(path)?;
        if !self.shared.tables.lock().contains(path, watcher_type, None) {
            return Err(Error::new(ErrorCode::NoWatcher, Some(path)));
        }
        self.call(
            Op::CheckWatches {
                path: path.into(),
                watcher_type,
            },
            Some(path),
            None,
        )
        .map(drop)
    }

    /// Closes the session: its ephemerals are deleted and its watches dropped. Later calls
    /// answer SessionExpired, as ZooKeeper's clients do after close.
    pub fn close(&self) -> Result<()> {
        let was_connected = self
            .shared
            .transition(&[ClientState::Connected], ClientState::Closed);
        let was_auth_failed = !was_connected
            && self
                .shared
                .transition(&[ClientState::AuthFailed], ClientState::Closed);
        if !was_connected && !was_auth_failed {
            return Ok(()); // closed or expired already
        }
        let result = self
            .engine
            .submit(&self.session, Op::CloseSession, &mut |_, _| {})
            .result
            .map(drop);
        if was_connected {
            // As ZooKeeper's clients (3.5+): the default watcher and every waiting watcher hear
            // (None, Closed), so nothing waits forever on a closed client.
            self.shared
                .dispatch(WatchedEvent::state(KeeperState::Closed));
        }
        match result {
            // The session ended first (expired meanwhile): it is closed either way.
            Err(ErrorCode::SessionExpired) => Ok(()),
            other => other.map_err(Error::from),
        }
    }
}

impl Drop for Client {
    /// Closes the session. The dispatcher thread finishes the events already queued and stops
    /// on its own; it is not joined, so a callback waiting on the dropping thread cannot
    /// deadlock the drop (ZooKeeper's close does not join its event thread either).
    fn drop(&mut self) {
        let _ = self.close();
        let _ = self.shared.dispatch.send(Dispatch::Stop);
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
