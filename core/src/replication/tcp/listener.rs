//! Receiving: the listener thread accepts peer connections once an engine is attached; each
//! inbound connection's reader thread authenticates the peer, then hands every message it
//! decodes to the attached engine.
//! A frame over `frame_bytes_max` or one that is not a message closes the connection (the
//! peer dials again); a newer authenticated connection from a member replaces its older one,
//! which a restarted peer may have left half open.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::frame::{self, FrameError};
use super::handshake::{self, Deadline, HandshakeError};
use super::stats::add;
use super::tls::{PeerStream, TLS_HANDSHAKE_RECORD};
use super::{codec, join_all, Shared, TcpTransportError};
use crate::replication::PeerMessage;

/// Bytes read from a peer's socket at once.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// The running listener.
pub(super) struct Listener {
    /// Where to connect to wake its blocked `accept` when stopping.
    wake_address: SocketAddr,
    /// Tells the thread to start accepting (sent once, by `open`); dropped unsent, it tells a
    /// thread that never accepted to end.
    open: Option<Sender<()>>,
    thread: JoinHandle<()>,
}

/// The inbound connections, so that `stop` and `set_peers` can close them and their threads
/// are joined.
#[derive(Default)]
pub(super) struct Inbound {
    next_id: u64,
    connections: BTreeMap<u64, InboundConnection>,
}

struct InboundConnection {
    /// A handle on the socket, to shut it down from outside; None once the reader ended.
    stream: Option<TcpStream>,
    /// The authenticated peer (None while handshaking).
    peer: Option<u64>,
    thread: Option<JoinHandle<()>>,
}

impl Inbound {
    /// Connections whose reader still runs.
    fn open(&self) -> usize {
        self.connections
            .values()
            .filter(|connection| connection.stream.is_some())
            .count()
    }

    /// Takes out the connections whose reader thread finished, to join.
    fn reap(&mut self) -> Vec<JoinHandle<()>> {
        let finished: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, connection)| {
                connection
                    .thread
                    .as_ref()
                    .is_some_and(JoinHandle::is_finished)
            })
            .map(|(id, _)| *id)
            .collect();
        finished
            .into_iter()
            .filter_map(|id| self.connections.remove(&id)?.thread)
            .collect()
    }

    /// Records that connection `id` authenticated `peer` and closes the peer's older ones;
    /// false when a newer one of the peer's is open already (handshakes can end out of
    /// order): this one is stale then, and must close.
    fn claim(&mut self, id: u64, peer: u64) -> bool {
        let superseded = self
            .connections
            .range(id + 1..)
            .any(|(_, connection)| connection.peer == Some(peer) && connection.stream.is_some());
        if superseded {
            return false;
        }
        for (_, connection) in self.connections.range_mut(..id) {
            if connection.peer == Some(peer) {
                shut(connection);
            }
        }
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.peer = Some(peer);
        }
        true
    }

    /// True when connection `id` of `peer` ended on the peer's side: not shut from here
    /// (stop, removal, a newer connection) and no newer one of the peer's is open.
    fn ended_by_peer(&self, id: u64, peer: u64) -> bool {
        self.connections
            .get(&id)
            .is_some_and(|connection| connection.stream.is_some())
            && !self
                .connections
                .range(id + 1..)
                .any(|(_, connection)| connection.peer == Some(peer) && connection.stream.is_some())
    }

    /// Closes the connections of a member that is no longer a peer.
    pub(super) fn close_peer(&mut self, peer: u64) {
        for connection in self.connections.values_mut() {
            if connection.peer == Some(peer) {
                shut(connection);
            }
        }
    }

    /// Closes every connection; answers their threads, to join.
    pub(super) fn close_all(&mut self) -> Vec<JoinHandle<()>> {
        let connections = std::mem::take(&mut self.connections);
        connections
            .into_values()
            .filter_map(|mut connection| {
                shut(&mut connection);
                connection.thread
            })
            .collect()
    }
}

fn shut(connection: &mut InboundConnection) {
    if let Some(stream) = connection.stream.take() {
        let _ = stream.shutdown(Shutdown::Both);
    }
}

/// Starts the listener's thread ("zk-peer-listen"), which accepts once `open` is called:
/// until then peers' connections wait in the listen backlog, so nothing they send is dropped
/// for want of an engine while the member's engine is being built.
pub(super) fn start(
    shared: &Arc<Shared>,
    listener: TcpListener,
) -> Result<Listener, TcpTransportError> {
    listener
        .set_nonblocking(false)
        .map_err(TcpTransportError::Listener)?;
    let local = listener.local_addr().map_err(TcpTransportError::Listener)?;
    let wake_address = match local {
        SocketAddr::V4(address) if address.ip().is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, address.port()))
        }
        SocketAddr::V6(address) if address.ip().is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, address.port()))
        }
        bound => bound,
    };
    let (open, opened) = crossbeam_channel::bounded(1);
    let shared = Arc::clone(shared);
    let thread = std::thread::Builder::new()
        .name("zk-peer-listen".into())
        .spawn(move || {
            if opened.recv().is_ok() && !shared.is_stopping() {
                accept_loop(&shared, &listener);
            }
        })
        .map_err(TcpTransportError::Spawn)?;
    Ok(Listener {
        wake_address,
        open: Some(open),
        thread,
    })
}

impl Listener {
    /// Starts accepting (again calls do nothing).
    pub(super) fn open(&mut self) {
        if let Some(open) = self.open.take() {
            let _ = open.send(());
        }
    }

    /// Ends the thread (`Shared::stopping` must be set) and joins it.
    pub(super) fn stop(mut self) {
        let accepting = self.open.take().is_none();
        if accepting {
            // std's listener cannot be closed from another thread; a connection of our own
            // wakes its accept, which then sees the stop.
            let woken = TcpStream::connect_timeout(&self.wake_address, Duration::from_secs(1));
            if let Err(error) = woken {
                tracing::error!(
                    address = %self.wake_address,
                    %error,
                    "cannot wake the peer listener to stop it; its thread is left to end with the process"
                );
                return;
            }
        }
        join_all(vec![self.thread]);
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    loop {
        let accepted = listener.accept();
        if shared.is_stopping() {
            return;
        }
        match accepted {
            Ok((stream, remote)) => admit(shared, stream, remote),
            Err(error) => {
                // Out of file descriptors, or a connection reset before it was taken:
                // pausing keeps a persistent error from spinning the thread.
                tracing::warn!(%error, "peer listener cannot accept");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Gives an accepted connection its reader thread, unless too many are open.
fn admit(shared: &Arc<Shared>, stream: TcpStream, remote: SocketAddr) {
    let finished = shared.inbound.lock().reap();
    join_all(finished);
    let id = {
        let mut inbound = shared.inbound.lock();
        if inbound.open() >= shared.config.connections_inbound_max {
            drop(inbound);
            add(&shared.stats.refused_handshakes, 1);
            tracing::warn!(%remote, connections_inbound_max = shared.config.connections_inbound_max, "refused a peer connection: too many open");
            return;
        }
        let handle = match stream.try_clone() {
            Ok(handle) => handle,
            Err(error) => {
                tracing::warn!(%remote, %error, "cannot take a peer connection");
                return;
            }
        };
        let id = inbound.next_id;
        inbound.next_id += 1;
        inbound.connections.insert(
            id,
            InboundConnection {
                stream: Some(handle),
                peer: None,
                thread: None,
            },
        );
        id
    };
    let reader = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("zk-peer-in".into())
        .spawn(move || {
            serve(&reader, stream, remote, id);
            if let Some(connection) = reader.inbound.lock().connections.get_mut(&id) {
                connection.stream = None;
            }
        });
    let mut inbound = shared.inbound.lock();
    match spawned {
        Ok(thread) => {
            if let Some(connection) = inbound.connections.get_mut(&id) {
                connection.thread = Some(thread);
            }
        }
        Err(error) => {
            inbound.connections.remove(&id);
            tracing::warn!(%remote, %error, "cannot start a reader for a peer connection");
        }
    }
}

/// Authenticates the peer, then delivers its messages until the connection ends.
fn serve(shared: &Shared, socket: TcpStream, remote: SocketAddr, id: u64) {
    let _ = socket.set_nodelay(true);
    let deadline = Deadline::new(Duration::from_millis(shared.config.handshake_timeout_ms));
    let (mut stream, peer) = match authenticate(shared, socket, remote, &deadline) {
        Ok(accepted) => accepted,
        Err(error) if error.is_refusal() || matches!(error, HandshakeError::TimedOut) => {
            add(&shared.stats.refused_handshakes, 1);
            tracing::warn!(%remote, reason = %error, "refused a peer connection");
            return;
        }
        Err(error) => {
            tracing::debug!(%remote, %error, "peer connection ended in its handshake");
            return;
        }
    };
    if stream.socket().set_read_timeout(None).is_err() {
        return;
    }
    add(&shared.stats.accepts, 1);
    {
        let mut inbound = shared.inbound.lock();
        // Checked again under the lock `set_peers` closes a removed member's connections
        // with: a member removed during this handshake is not let in after the closing.
        if !shared.is_peer(peer) || !inbound.claim(id, peer) {
            return;
        }
    }
    tracing::info!(peer, %remote, tls = stream.is_tls(), "peer connected");
    let ended = read_messages(shared, &mut stream, remote, peer);
    let lost = matches!(ended, Ended::ByPeer)
        && !shared.is_stopping()
        && shared.inbound.lock().ended_by_peer(id, peer);
    if lost {
        shared.peer_lost(peer);
    }
}

/// Runs the TLS handshake (when the port takes TLS and the dialer speaks it), then the
/// shared-secret one, and checks that the dialer's certificate names the member it proved to
/// be; answers the stream and the dialer's raft id.
fn authenticate(
    shared: &Shared,
    socket: TcpStream,
    remote: SocketAddr,
    deadline: &Deadline,
) -> Result<(PeerStream, u64), HandshakeError> {
    let mut stream = match &shared.tls {
        None => PeerStream::Plain(socket),
        Some(tls) => {
            deadline.arm(&socket)?;
            let mut first = [0u8; 1];
            if socket.peek(&mut first)? == 0 {
                return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if first[0] == TLS_HANDSHAKE_RECORD {
                tls.accept(socket, deadline)?
            } else if tls.accepts_plain() {
                PeerStream::Plain(socket)
            } else {
                return Err(HandshakeError::PlainRefused);
            }
        }
    };
    let certificate = stream.peer_certificate();
    let admit = |raft_id| {
        if !shared.is_peer(raft_id) {
            return Err(HandshakeError::UnknownMember(raft_id));
        }
        match &shared.tls {
            Some(tls) => tls.verify_dialer(
                certificate.as_ref(),
                raft_id,
                shared.peer_host(raft_id).as_deref(),
                remote.ip(),
            ),
            None => Ok(()),
        }
    };
    let peer = handshake::accept(&mut stream, shared.identity(), admit, deadline)?;
    Ok((stream, peer))
}

/// Why a peer's connection stopped being read.
enum Ended {
    /// It closed or broke on the peer's side (or the socket was shut from here).
    ByPeer,
    /// It broke a rule and was closed from here: no sign the peer is gone.
    ByRule,
}

/// Hands the peer's messages on until its connection ends or breaks a rule.
fn read_messages(shared: &Shared, stream: &mut PeerStream, remote: SocketAddr, peer: u64) -> Ended {
    let config = &shared.config;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let mut parts = codec::Parts::default();
    loop {
        let frame = match frame::read_frame(&mut reader, config.frame_bytes_max) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                tracing::info!(peer, %remote, "peer closed its connection");
                return Ended::ByPeer;
            }
            Err(error @ FrameError::TooLong { .. }) => {
                add(&shared.stats.frames_rejected, 1);
                tracing::warn!(peer, %remote, %error, "closing a peer connection: frame too long");
                return Ended::ByRule;
            }
            Err(error) => {
                tracing::info!(peer, %remote, %error, "peer connection ended");
                return Ended::ByPeer;
            }
        };
        let body = match parts.take(frame, config.message_bytes_max) {
            Ok(Some(body)) => body,
            Ok(None) => continue,
            Err(error) => {
                add(&shared.stats.frames_rejected, 1);
                tracing::warn!(peer, %remote, %error, "closing a peer connection: broken message parts");
                return Ended::ByRule;
            }
        };
        match codec::decode(&body) {
            // raft trusts a message's `from` and `to`: a peer may speak only for itself, and
            // only to this member.
            Ok(PeerMessage::Raft(message))
                if message.from != peer || message.to != config.raft_id =>
            {
                add(&shared.stats.frames_rejected, 1);
                tracing::warn!(
                    peer,
                    %remote,
                    from = message.from,
                    to = message.to,
                    "closing a peer connection: a raft message not from it or not for us"
                );
                return Ended::ByRule;
            }
            Ok(message) => shared.deliver(peer, message),
            Err(error) => {
                add(&shared.stats.frames_rejected, 1);
                tracing::warn!(peer, %remote, %error, "closing a peer connection: a frame that is not a message");
                return Ended::ByRule;
            }
        }
    }
}
