//! The client's I/O thread: finds a server, shakes hands (resuming the session), re-registers
//! watches and identities, then reads replies and events and pings until the connection breaks.

use std::io::ErrorKind;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tls::Wire;
use super::{Done, Link, Pending};
use crate::client::{ClientState, Error, Result as ClientResult};
use crate::op::{Op, Reply, SetWatchesRequest};
use crate::proto::jute::DecodeError;
use crate::proto::wire::{
    decode_event, decode_reply, decode_reply_header, encode_request, ConnectRequest,
    ConnectResponse, Request, RequestFrame, PROTOCOL_VERSION, XID_AUTH, XID_NOTIFICATION, XID_PING,
    XID_SET_WATCHES,
};
use crate::proto::{AddWatchMode, ErrorCode, KeeperState, OpCode, WatchedEvent};
use crate::server::{SessionSink, WatchRegistered};

/// Largest reply frame accepted; a bigger length means a broken or hostile peer.
const FRAME_BYTES_MAX: usize = 64 << 20;
/// setWatches requests are cut into pieces of about this many path bytes, as the Java client
/// cuts them, so a client with many watches stays under the server's jute.maxbuffer.
const SET_WATCHES_CHUNK_BYTES: usize = 128 << 10;
/// Pause after every server was tried once, growing to the max.
const RETRY_PAUSE_MIN_MS: u64 = 50;
const RETRY_PAUSE_MAX_MS: u64 = 1_000;

/// Runs until the session ends.
pub(super) fn run(link: Arc<Link>) {
    let mut next_host = start_host(link.hosts.len());
    let mut pause_ms = RETRY_PAUSE_MIN_MS;
    loop {
        if link.state.lock().ended.is_some() {
            return;
        }
        match connect_any(&link, &mut next_host) {
            Handshake::Granted(stream, response) => {
                pause_ms = RETRY_PAUSE_MIN_MS;
                serve(&link, stream, response);
            }
            Handshake::Expired => {
                expire(&link);
                return;
            }
            Handshake::NoServer => {
                std::thread::sleep(Duration::from_millis(pause_ms));
                pause_ms = (pause_ms * 2).min(RETRY_PAUSE_MAX_MS);
            }
        }
    }
}

/// Clients of one ensemble should not all start on its first server.
fn start_host(hosts: usize) -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos() as usize);
    nanos.wrapping_add(std::process::id() as usize) % hosts.max(1)
}

enum Handshake {
    Granted(Wire, ConnectResponse),
    Expired,
    NoServer,
}

/// Tries every server once, starting at `next_host`, which moves past the one that answered so
/// the next connection after a break goes elsewhere first.
fn connect_any(link: &Link, next_host: &mut usize) -> Handshake {
    let hosts = link.hosts.len();
    let per_host =
        Duration::from_millis((link.requested_timeout_ms as u64 / hosts as u64).max(500));
    for _ in 0..hosts {
        let (host, port) = &link.hosts[*next_host % hosts];
        *next_host = (*next_host + 1) % hosts;
        let Ok(addresses) = (host.as_str(), *port).to_socket_addrs() else {
            tracing::debug!(host, port, "cannot resolve");
            continue;
        };
        for address in addresses {
            if link.state.lock().ended.is_some() {
                return Handshake::NoServer;
            }
            let wire = match open_wire(link, host, address, per_host) {
                Ok(wire) => wire,
                Err(failure) => {
                    tracing::debug!(%address, %failure, "cannot connect");
                    link.state.lock().last_failure = Some(failure);
                    continue;
                }
            };
            match shake_hands(link, &wire) {
                Ok(response) if response.timeout_ms <= 0 => return Handshake::Expired,
                Ok(response) => return Handshake::Granted(wire, response),
                Err(error) => {
                    tracing::debug!(%address, %error, "handshake failed");
                    // Over TLS a refused client certificate shows here, as the server's alert.
                    if link.tls.is_some() {
                        link.state.lock().last_failure =
                            Some(format!("TLS connection to {address} failed: {error}"));
                    }
                }
            }
        }
    }
    Handshake::NoServer
}

/// Connects to `address`, over TLS when the client uses it; the error says what failed.
fn open_wire(
    link: &Link,
    host: &str,
    address: std::net::SocketAddr,
    wait: Duration,
) -> Result<Wire, String> {
    let stream = TcpStream::connect_timeout(&address, wait)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    let configure = || -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(wait))?;
        stream.set_write_timeout(Some(wait))
    };
    configure().map_err(|error| format!("cannot connect to {address}: {error}"))?;
    match &link.tls {
        None => Ok(Wire::plain(stream)),
        Some(config) => Wire::tls(stream, config.clone(), host)
            .map_err(|error| format!("TLS handshake with {address} failed: {error}")),
    }
}

fn shake_hands(link: &Link, wire: &Wire) -> std::io::Result<ConnectResponse> {
    let request = {
        let state = link.state.lock();
        ConnectRequest {
            protocol_version: PROTOCOL_VERSION,
            last_zxid_seen: state.last_zxid_seen,
            timeout_ms: link.requested_timeout_ms,
            session_id: state.session_id,
            password: state.password.to_vec(),
            read_only: Some(link.read_only),
        }
    };
    wire.write_all(&request.encode_frame())?;
    let mut frames = FrameReader::default();
    loop {
        if let Some(frame) = frames.next_frame()? {
            return ConnectResponse::decode(&frame).map_err(invalid);
        }
        if frames.fill(wire)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
    }
}

fn invalid(error: DecodeError) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, format!("{error:?}"))
}

/// Bytes read so far and the frames they hold.
#[derive(Default)]
struct FrameReader {
    buffer: Vec<u8>,
    start: usize,
}

impl FrameReader {
    /// Reads what the connection has; 0 at end of stream.
    fn fill(&mut self, wire: &Wire) -> std::io::Result<usize> {
        // Bytes already handed out go before more are read, so a client that never quite
        // catches up with a stream of events does not keep them all.
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        wire.read_into(&mut self.buffer)
    }

    /// The next whole frame's payload, if one is buffered.
    fn next_frame(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let available = &self.buffer[self.start..];
        if available.len() < 4 {
            return Ok(None);
        }
        let length = i32::from_be_bytes(available[..4].try_into().expect("4 bytes"));
        if length < 0 || length as usize > FRAME_BYTES_MAX {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("reply frame of {length} bytes"),
            ));
        }
        let length = length as usize;
        if available.len() < 4 + length {
            return Ok(None);
        }
        let frame = available[4..4 + length].to_vec();
        self.start += 4 + length;
        Ok(Some(frame))
    }
}

/// Serves one connection until it breaks or the session ends.
fn serve(link: &Link, wire: Wire, response: ConnectResponse) {
    let timeout_ms = response.timeout_ms as u64;
    // As ClientCnxn: silence for 2/3 of the timeout means the server is gone; a ping goes
    // out after half of that without sending.
    let read_timeout = Duration::from_millis((timeout_ms * 2 / 3).max(1));
    let ping_interval = read_timeout / 2;
    // The handshake's write timeout must not outlive it: a server that stops reading for a
    // while (backpressure, a slow fsync) is not a dead one; the read timeout tells that.
    if wire.socket().set_write_timeout(None).is_err() {
        return;
    }
    let Ok(writer_wire) = wire.try_clone() else {
        return;
    };
    let (writer, frames_out) = crossbeam_channel::unbounded::<Vec<u8>>();
    let spawned = std::thread::Builder::new()
        .name("zk-write".into())
        .spawn(move || {
            for frame in frames_out {
                if writer_wire.write_all(&frame).is_err() {
                    let _ = writer_wire.socket().shutdown(Shutdown::Both);
                    return;
                }
            }
        });
    if spawned.is_err() {
        return;
    }
    {
        let mut state = link.state.lock();
        if state.ended.is_some() {
            return;
        }
        let resumed = state.session_id != 0;
        state.session_id = response.session_id;
        if let Ok(password) = response.password.as_slice().try_into() {
            state.password = password;
        }
        state.timeout_ms = response.timeout_ms as u32;
        // The new connection's first frames: the watches to re-register, then the identities,
        // then whatever callers queue.
        if resumed {
            let mut watched = link.shared.tables.lock().watched_paths();
            watched.relative_zxid = state.last_zxid_seen;
            for request in chunk_set_watches(watched) {
                let _ = writer.send(frame_for(link, XID_SET_WATCHES, Op::SetWatches(request)));
            }
        }
        for (scheme, auth) in state.identities.clone() {
            let op = Op::AddAuth { scheme, auth };
            let _ = writer.send(frame_for(link, XID_AUTH, op));
            state.auth_waiters.push_back(None);
        }
        state.writer = Some(writer);
        state.socket = wire.socket().try_clone().ok();
        state.last_failure = None;
        state.last_send = Instant::now();
    }
    link.shared
        .transition(&[ClientState::Connecting], ClientState::Connected);
    let connected = if response.read_only == Some(true) {
        KeeperState::ConnectedReadOnly
    } else {
        KeeperState::SyncConnected
    };
    // The first connection's SyncConnected reaches the default watcher; a reconnect's reaches
    // every watcher too, as ZooKeeper's clients announce it. Announced before waiting callers
    // go on: the announcement clears the read cache, which must not drop a read they start.
    link.shared.dispatch(WatchedEvent::state(connected));
    link.changed.notify_all();
    read_until_broken(link, &wire, read_timeout, ping_interval);
    let _ = wire.socket().shutdown(Shutdown::Both);
    lose_connection(link);
}

fn frame_for(link: &Link, xid: i32, op: Op) -> Vec<u8> {
    encode_request(&RequestFrame {
        xid,
        opcode: super::opcode_for(&op).code(),
        multi_opcodes: Vec::new(),
        request: Request::Op(link.chroot.op_to_server(op)),
    })
}

fn chunk_set_watches(all: SetWatchesRequest) -> Vec<SetWatchesRequest> {
    let mut chunks = Vec::new();
    let mut current = SetWatchesRequest {
        relative_zxid: all.relative_zxid,
        ..SetWatchesRequest::default()
    };
    let mut bytes = 0;
    let lists = [
        (all.data, 0),
        (all.exist, 1),
        (all.child, 2),
        (all.persistent, 3),
        (all.persistent_recursive, 4),
    ];
    for (paths, kind) in lists {
        for path in paths {
            if bytes + path.len() > SET_WATCHES_CHUNK_BYTES && bytes > 0 {
                let relative_zxid = current.relative_zxid;
                chunks.push(std::mem::replace(
                    &mut current,
                    SetWatchesRequest {
                        relative_zxid,
                        ..SetWatchesRequest::default()
                    },
                ));
                bytes = 0;
            }
            bytes += path.len();
            match kind {
                0 => current.data.push(path),
                1 => current.exist.push(path),
                2 => current.child.push(path),
                3 => current.persistent.push(path),
                _ => current.persistent_recursive.push(path),
            }
        }
    }
    if bytes > 0 {
        chunks.push(current);
    }
    chunks
}

fn read_until_broken(link: &Link, wire: &Wire, read_timeout: Duration, ping_interval: Duration) {
    if wire
        .socket()
        .set_read_timeout(Some(ping_interval.max(Duration::from_millis(1))))
        .is_err()
    {
        return;
    }
    let mut frames = FrameReader::default();
    let mut last_receive = Instant::now();
    loop {
        match frames.fill(wire) {
            Ok(0) => return,
            Ok(_) => last_receive = Instant::now(),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        loop {
            match frames.next_frame() {
                Ok(Some(frame)) => {
                    if let Err(error) = handle_frame(link, &frame) {
                        tracing::warn!(?error, "bad reply from the server; reconnecting");
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if last_receive.elapsed() > read_timeout {
            tracing::info!("no answer from the server within the read timeout; reconnecting");
            return;
        }
        let mut state = link.state.lock();
        if state.ended.is_some() {
            return;
        }
        if state.last_send.elapsed() >= ping_interval {
            let ping = encode_request(&RequestFrame {
                xid: XID_PING,
                opcode: OpCode::Ping.code(),
                multi_opcodes: Vec::new(),
                request: Request::Ping,
            });
            if let Some(writer) = &state.writer {
                let _ = writer.send(ping);
            }
            state.last_send = Instant::now();
        }
    }
}

/// A reply the client cannot place: the connection is no longer trustworthy.
#[derive(Debug)]
enum ProtocolError {
    Decode(#[allow(dead_code)] DecodeError),
    UnexpectedXid(#[allow(dead_code)] i32),
}

impl From<DecodeError> for ProtocolError {
    fn from(error: DecodeError) -> Self {
        ProtocolError::Decode(error)
    }
}

fn handle_frame(link: &Link, frame: &[u8]) -> Result<(), ProtocolError> {
    let (header, body) = decode_reply_header(frame)?;
    match header.xid {
        XID_NOTIFICATION => {
            let mut event = decode_event(body)?;
            event.zxid = header.zxid;
            if header.zxid > 0 {
                let mut state = link.state.lock();
                state.last_zxid_seen = state.last_zxid_seen.max(header.zxid);
            }
            SessionSink::deliver(&*link.shared, link.chroot.event_to_client(event));
        }
        XID_PING | XID_SET_WATCHES => {}
        XID_AUTH => {
            let waiter = link.state.lock().auth_waiters.pop_front();
            let code = ErrorCode::from_code(header.err).unwrap_or(ErrorCode::SystemError);
            let result = if header.err == 0 {
                Ok(Reply::Done)
            } else {
                if code == ErrorCode::AuthFailed {
                    link.end(ErrorCode::AuthFailed);
                }
                Err(Error::new(code, None))
            };
            match waiter.flatten() {
                Some(done) => done.complete(&link.shared, result),
                // A re-sent identity failed: announce it as addAuth does.
                None if code == ErrorCode::AuthFailed
                    && link.shared.transition(
                        &[ClientState::Connected, ClientState::Connecting],
                        ClientState::AuthFailed,
                    ) =>
                {
                    link.shared
                        .dispatch(WatchedEvent::state(KeeperState::AuthFailed));
                }
                None => {}
            }
        }
        xid => {
            let pending = {
                let mut state = link.state.lock();
                if header.zxid > 0 {
                    state.last_zxid_seen = state.last_zxid_seen.max(header.zxid);
                }
                match state.pending.front() {
                    Some(pending) if pending.xid == xid => state.pending.pop_front(),
                    _ => None,
                }
            };
            let Some(pending) = pending else {
                return Err(ProtocolError::UnexpectedXid(xid));
            };
            let result = answer(link, &pending, header.err, body);
            register_watch(link, &pending, &result);
            pending.done.complete(&link.shared, result);
        }
    }
    Ok(())
}

/// The reply to a request, paths as the client sees them.
fn answer(link: &Link, pending: &Pending, err: i32, body: &[u8]) -> ClientResult<Reply> {
    let path = pending.op.path();
    let code = ErrorCode::from_code(err).unwrap_or(ErrorCode::SystemError);
    if err == 0 || (pending.opcode == OpCode::Multi && !body.is_empty()) {
        return decode_reply(pending.opcode.code(), body)
            .map(|reply| link.chroot.reply_to_client(reply))
            .map_err(|_| Error::new(ErrorCode::MarshallingError, path));
    }
    if pending.opcode == OpCode::Exists && code == ErrorCode::NoNode {
        return Ok(Reply::Exists(None));
    }
    Err(Error::new(code, path))
}

/// Records the watcher where the server registered its watch (ZooKeeper's WatchRegistration:
/// on success, and for exists also on NoNode).
fn register_watch(link: &Link, pending: &Pending, result: &ClientResult<Reply>) {
    let Some(watcher) = &pending.watcher else {
        return;
    };
    let Ok(reply) = result else {
        return;
    };
    let mut registrations: Vec<(&str, WatchRegistered)> = Vec::new();
    match (&pending.op, reply) {
        (Op::GetData { path, .. }, _) => registrations.push((path, WatchRegistered::Data)),
        (Op::Exists { path, .. }, Reply::Exists(Some(_))) => {
            registrations.push((path, WatchRegistered::Data))
        }
        (Op::Exists { path, .. }, _) => registrations.push((path, WatchRegistered::Exist)),
        (Op::GetChildren { path, .. }, _) => registrations.push((path, WatchRegistered::Child)),
        (Op::AddWatch { path, mode }, _) => registrations.push((
            path,
            match mode {
                AddWatchMode::Persistent => WatchRegistered::Persistent,
                AddWatchMode::PersistentRecursive => WatchRegistered::PersistentRecursive,
            },
        )),
        _ => {}
    }
    let mut tables = link.shared.tables.lock();
    for (path, registered) in registrations {
        tables.register(path, registered, watcher.clone());
    }
}

/// The connection broke: what waited on it fails with ConnectionLoss (or why the session
/// ended), and unless the session ended the client looks for a server again.
fn lose_connection(link: &Link) {
    let (pending, auth_waiters, ended) = {
        let mut state = link.state.lock();
        state.writer = None;
        state.socket = None;
        // A close already sent its closeSession: the end of the connection is its answer.
        if state.closing {
            state.ended.get_or_insert(ErrorCode::SessionExpired);
        }
        (
            std::mem::take(&mut state.pending),
            std::mem::take(&mut state.auth_waiters),
            state.ended,
        )
    };
    // Watchers (and the read cache) hear of the break before any caller wakes up to it.
    if ended.is_none()
        && link
            .shared
            .transition(&[ClientState::Connected], ClientState::Connecting)
    {
        link.shared
            .dispatch(WatchedEvent::state(KeeperState::Disconnected));
    }
    fail_all(
        link,
        pending,
        auth_waiters,
        ended.unwrap_or(ErrorCode::ConnectionLoss),
    );
}

pub(super) fn fail_all(
    link: &Link,
    pending: impl IntoIterator<Item = Pending>,
    auth_waiters: impl IntoIterator<Item = Option<Done>>,
    code: ErrorCode,
) {
    for pending in pending {
        let error = Error::new(code, pending.op.path());
        pending.done.complete(&link.shared, Err(error));
    }
    for done in auth_waiters.into_iter().flatten() {
        done.complete(&link.shared, Err(Error::new(code, None)));
    }
}

/// A server said the session is gone: every watcher hears Expired, every caller SessionExpired.
fn expire(link: &Link) {
    let (pending, auth_waiters) = {
        let mut state = link.state.lock();
        state.ended.get_or_insert(ErrorCode::SessionExpired);
        (
            std::mem::take(&mut state.pending),
            std::mem::take(&mut state.auth_waiters),
        )
    };
    link.changed.notify_all();
    fail_all(link, pending, auth_waiters, ErrorCode::SessionExpired);
    SessionSink::deliver(&*link.shared, WatchedEvent::state(KeeperState::Expired));
}
