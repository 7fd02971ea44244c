//! A session over ZooKeeper's TCP protocol: requests matched to replies in order, the session
//! kept alive and carried to another server when a connection breaks (ZooKeeper's ClientCnxn).
//!
//! Three kinds of thread share a `Link`: callers queue frames (an xid, a pending entry, the
//! bytes to a writer channel, all under one lock so the wire order is the xid order); one writer
//! thread per connection drains the channel, so a caller never blocks on a full socket while
//! the reader waits for the lock; one I/O thread per client connects, reads replies and events
//! and pings (io.rs).

mod chroot;
mod io;
pub(crate) mod tls;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use super::dispatcher::Shared;
use super::watch_gate::SettingTicket;
use super::{Completion, ConnectOptions, Error, Result, Watcher};
use crate::op::{Op, Reply};
use crate::proto::wire::{encode_request, Request, RequestFrame, XID_AUTH};
use crate::proto::{ErrorCode, OpCode};
use chroot::{Chroot, ConnectString};

/// Where a reply goes.
pub(crate) enum Done {
    /// Straight to a waiting caller, from the connection's reader.
    Direct(Completion),
    /// Through the dispatcher, in order with watch events.
    Dispatched(Completion),
}

impl Done {
    /// The same destination, with `shape` applied to the answer first.
    fn map(self, shape: impl FnOnce(Result<Reply>) -> Result<Reply> + Send + 'static) -> Done {
        match self {
            Done::Direct(done) => Done::Direct(Box::new(move |reply| done(shape(reply)))),
            Done::Dispatched(done) => Done::Dispatched(Box::new(move |reply| done(shape(reply)))),
        }
    }

    fn complete(self, shared: &Shared, reply: Result<Reply>) {
        match self {
            Done::Direct(done) => done(reply),
            Done::Dispatched(done) => {
                shared.dispatcher.completion(Box::new(move || done(reply)));
            }
        }
    }
}

/// A request sent and not yet answered.
struct Pending {
    xid: i32,
    opcode: OpCode,
    /// The op as the client sent it (client paths), for watch registration and errors.
    op: Op,
    watcher: Option<Watcher>,
    done: Done,
    /// Released when the entry is dropped: after its watcher was recorded and it was answered.
    _ticket: Option<SettingTicket>,
}

/// An addAuth sent and not yet answered; None for identities re-sent after a reconnect.
type AuthWaiter = Option<Done>;

/// The session and the connection it is on now.
struct LinkState {
    /// The writer channel of the live connection; None while connecting.
    writer: Option<Sender<Vec<u8>>>,
    pending: VecDeque<Pending>,
    auth_waiters: VecDeque<AuthWaiter>,
    next_xid: i32,
    session_id: i64,
    password: [u8; 16],
    timeout_ms: u32,
    last_zxid_seen: i64,
    /// Identities added so far, re-sent on every new connection.
    identities: Vec<(String, Vec<u8>)>,
    /// The live connection's socket, to break it when the session ends.
    socket: Option<std::net::TcpStream>,
    /// Why the last attempt to reach a server failed, for the error `open` gives when none
    /// granted the session (a TLS handshake refused, a connection refused).
    last_failure: Option<String>,
    /// A closeSession was sent: the connection's end must not start a reconnect.
    closing: bool,
    /// Why the session can serve nothing more (expired, closed, auth failed).
    ended: Option<ErrorCode>,
    last_send: Instant,
}

/// What the caller's threads and the I/O thread share.
struct Link {
    hosts: Vec<(String, u16)>,
    chroot: Chroot,
    requested_timeout_ms: i32,
    read_only: bool,
    /// TLS for every connection; None: plain TCP.
    tls: Option<Arc<rustls::ClientConfig>>,
    shared: Arc<Shared>,
    state: Mutex<LinkState>,
    /// Signalled when a connection comes up or the session ends.
    changed: Condvar,
}

/// The TCP face of a `Client`.
pub(crate) struct Connection {
    link: Arc<Link>,
}

/// Most time a close waits for the server's answer.
const CLOSE_WAIT_MS: u64 = 2_000;

impl Connection {
    /// Connects and opens a session; returns once a server granted it.
    pub(crate) fn open(
        connect_string: &str,
        options: &ConnectOptions,
        shared: Arc<Shared>,
    ) -> Result<Connection> {
        let parsed = ConnectString::parse(connect_string)
            .map_err(|code| Error::new(code, Some(connect_string)))?;
        let requested_timeout_ms = options.session_timeout_ms.clamp(0, i32::MAX as i64) as i32;
        let tls = match &options.tls {
            Some(tls) => Some(tls.client_config().map_err(|error| {
                Error::new(ErrorCode::BadArguments, None).with_detail(error.to_string())
            })?),
            None => None,
        };
        let link = Arc::new(Link {
            hosts: parsed.hosts,
            chroot: Chroot::new(parsed.chroot),
            requested_timeout_ms,
            read_only: options.read_only,
            tls,
            shared,
            state: Mutex::new(LinkState {
                writer: None,
                socket: None,
                pending: VecDeque::new(),
                auth_waiters: VecDeque::new(),
                next_xid: 1,
                // A session to resume is offered in the first handshake, as after a reconnect.
                session_id: options.resume.map_or(0, |resume| resume.session_id),
                password: options.resume.map_or([0; 16], |resume| resume.password),
                timeout_ms: requested_timeout_ms as u32,
                last_zxid_seen: 0,
                identities: Vec::new(),
                last_failure: None,
                closing: false,
                ended: None,
                last_send: Instant::now(),
            }),
            changed: Condvar::new(),
        });
        let io_link = link.clone();
        std::thread::Builder::new()
            .name("zk-io".into())
            .spawn(move || io::run(io_link))
            .map_err(|_| Error::new(ErrorCode::SystemError, None))?;
        let wait_ms = options
            .connect_timeout_ms
            .unwrap_or(requested_timeout_ms as u64);
        let deadline = Instant::now() + Duration::from_millis(wait_ms.max(1));
        let mut state = link.state.lock();
        while state.writer.is_none() && state.ended.is_none() {
            if link.changed.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        if state.writer.is_some() {
            drop(state);
            return Ok(Connection { link });
        }
        let code = state.ended.unwrap_or(ErrorCode::ConnectionLoss);
        state.ended.get_or_insert(ErrorCode::ConnectionLoss);
        let failure = state.last_failure.take();
        drop(state);
        link.changed.notify_all();
        let error = Error::new(code, None);
        Err(match failure {
            Some(failure) if code == ErrorCode::ConnectionLoss => error.with_detail(failure),
            _ => error,
        })
    }

    pub(crate) fn session_id(&self) -> i64 {
        self.link.state.lock().session_id
    }

    pub(crate) fn password(&self) -> [u8; 16] {
        self.link.state.lock().password
    }

    pub(crate) fn timeout_ms(&self) -> u32 {
        self.link.state.lock().timeout_ms
    }

    /// Sends `op`; `done` gets the answer. While the client is finding a server the call
    /// waits for one, up to the session timeout, then answers ConnectionLoss.
    /// `ticket`: held until the reply has been handled, for a call that sets a watch.
    pub(crate) fn send(
        &self,
        op: Op,
        watcher: Option<Watcher>,
        done: Done,
        ticket: Option<SettingTicket>,
    ) {
        self.link.send(op, watcher, done, ticket, true);
    }

    /// Ends the session on the server (ephemerals go at once) and stops the I/O thread. A
    /// client that is between servers does not wait for one: the session then expires.
    pub(crate) fn close(&self) -> Result<()> {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let done = Done::Direct(Box::new(move |reply| drop(sender.send(reply))));
        self.link.state.lock().closing = true;
        self.link.send(Op::CloseSession, None, done, None, false);
        let result = match receiver.recv_timeout(Duration::from_millis(CLOSE_WAIT_MS)) {
            Ok(reply) => reply.map(drop),
            Err(_) => Err(Error::new(ErrorCode::ConnectionLoss, None)),
        };
        self.link.end(ErrorCode::SessionExpired);
        // What the server left unanswered fails here rather than later on the I/O thread, so
        // the closer knows every completion is queued once this returns.
        let (pending, auth_waiters) = {
            let mut state = self.link.state.lock();
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.auth_waiters),
            )
        };
        io::fail_all(&self.link, pending, auth_waiters, ErrorCode::SessionExpired);
        result
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.link.end(ErrorCode::SessionExpired);
    }
}

impl Link {
    fn send(
        &self,
        op: Op,
        watcher: Option<Watcher>,
        done: Done,
        ticket: Option<SettingTicket>,
        wait_for_server: bool,
    ) {
        // ZooKeeper 3.8 never answers a standalone check that passes (3.9 and ours answer its
        // Stat): the client answers it from an exists, as it has no atomicity to keep alone,
        // so it works against either.
        if let Op::Check { path, version } = op {
            let exists = Op::Exists {
                path: path.clone(),
                watch: false,
            };
            let done = done.map(move |reply| match reply {
                Ok(Reply::Exists(None)) => Err(Error::new(ErrorCode::NoNode, Some(&path))),
                Ok(Reply::Exists(Some(stat))) if version != -1 && stat.version != version => {
                    Err(Error::new(ErrorCode::BadVersion, Some(&path)))
                }
                Ok(Reply::Exists(Some(stat))) => Ok(Reply::Stat(stat)),
                other => other,
            });
            return self.send(exists, None, done, ticket, wait_for_server);
        }
        let path = op.path().map(str::to_string);
        let mut state = self.state.lock();
        let deadline = Instant::now() + Duration::from_millis(state.timeout_ms.max(1) as u64);
        loop {
            if let Some(code) = state.ended {
                drop(state);
                return done.complete(&self.shared, Err(Error::new(code, path.as_deref())));
            }
            if state.writer.is_some() {
                break;
            }
            if !wait_for_server || self.changed.wait_until(&mut state, deadline).timed_out() {
                drop(state);
                let error = Error::new(ErrorCode::ConnectionLoss, path.as_deref());
                return done.complete(&self.shared, Err(error));
            }
        }
        let opcode = opcode_for(&op);
        let is_auth = matches!(op, Op::AddAuth { .. });
        let xid = if is_auth {
            XID_AUTH
        } else {
            let xid = state.next_xid;
            // Positive xids only: the negative ones name pings, events and the like.
            state.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
            xid
        };
        let frame = encode_request(&RequestFrame {
            xid,
            opcode: opcode.code(),
            multi_opcodes: Vec::new(),
            request: Request::Op(self.chroot.op_to_server(op.clone())),
        });
        if let Op::AddAuth { scheme, auth } = &op {
            state.identities.push((scheme.clone(), auth.clone()));
            state.auth_waiters.push_back(Some(done));
        } else {
            state.pending.push_back(Pending {
                xid,
                opcode,
                op,
                watcher,
                done,
                _ticket: ticket,
            });
        }
        state.last_send = Instant::now();
        if let Some(writer) = &state.writer {
            // A closed channel means the connection is going down: the reader fails what is
            // pending, this request included.
            let _ = writer.send(frame);
        }
    }

    /// The session serves nothing more: waiting callers are answered and the I/O thread stops.
    fn end(&self, code: ErrorCode) {
        let mut state = self.state.lock();
        state.ended.get_or_insert(code);
        state.writer = None;
        if let Some(socket) = state.socket.take() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        drop(state);
        self.changed.notify_all();
    }
}

/// The opcode a request goes under, as the Java client picks it.
fn opcode_for(op: &Op) -> OpCode {
    match op {
        Op::Create(create) => OpCode::for_create(create.mode, OpCode::Create2),
        Op::Delete { .. } => OpCode::Delete,
        Op::SetData { .. } => OpCode::SetData,
        Op::SetAcl { .. } => OpCode::SetAcl,
        Op::Check { .. } => OpCode::Check,
        Op::Multi(_) => OpCode::Multi,
        Op::GetData { .. } => OpCode::GetData,
        Op::Exists { .. } => OpCode::Exists,
        Op::GetChildren { .. } => OpCode::GetChildren2,
        Op::GetAcl { .. } => OpCode::GetAcl,
        Op::GetAllChildrenNumber { .. } => OpCode::GetAllChildrenNumber,
        Op::GetEphemerals { .. } => OpCode::GetEphemerals,
        Op::Sync { .. } => OpCode::Sync,
        Op::MultiRead(_) => OpCode::MultiRead,
        Op::WhoAmI => OpCode::WhoAmI,
        Op::AddAuth { .. } => OpCode::Auth,
        Op::AddWatch { .. } => OpCode::AddWatch,
        Op::RemoveWatches { .. } => OpCode::RemoveWatches,
        Op::CheckWatches { .. } => OpCode::CheckWatches,
        Op::SetWatches(request)
            if request.persistent.is_empty() && request.persistent_recursive.is_empty() =>
        {
            OpCode::SetWatches
        }
        Op::SetWatches(_) => OpCode::SetWatches2,
        Op::DeleteContainer { .. } => OpCode::DeleteContainer,
        Op::Reconfig(_) => OpCode::Reconfig,
        Op::CloseSession => OpCode::CloseSession,
        Op::Sasl => OpCode::Sasl,
        // Refused before sending (validate_request).
        Op::Ping | Op::Refused(_) => OpCode::Ping,
    }
}
