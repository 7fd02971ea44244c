//! The TCP peer transport: carries `PeerMessage`s between the members of an ensemble over
//! authenticated TCP connections, the real sibling of the in-memory network.
//!
//! Each member listens for its peers and dials each of them for its own messages: one
//! outbound connection per peer, written by that link's thread from a bounded queue
//! (`link.rs`), and inbound connections that are only read (`listener.rs`). A connection
//! carries nothing before both sides proved they hold the ensemble's shared secret
//! (`handshake.rs`); then length-prefixed frames (`frame.rs`), one message each (`codec.rs`).
//! Delivery is best effort, as `Transport` promises: a full queue or a lost connection drops
//! messages, and raft and the forward streams send again.
//!
//! The engine needs the transport to start and the transport needs the engine to deliver, so
//! a member starts in three steps:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::BTreeMap;
//! use zookeeper_core::replication::{raft_id, TcpTransport, TcpTransportConfig};
//! use zookeeper_core::server::{Server, ServerConfig};
//!
//! // Member 0 of three; members 1 and 2 run the same on their own hosts.
//! let peers = BTreeMap::from([
//!     (raft_id(1), "10.0.0.2:2888".parse()?),
//!     (raft_id(2), "10.0.0.3:2888".parse()?),
//! ]);
//! let secret = b"read me from the ensemble's configuration".to_vec();
//! let config = TcpTransportConfig::new(raft_id(0), 0x2a, secret, "10.0.0.1:2888".parse()?, peers);
//! let transport = TcpTransport::start(config)?;
//! let server = Server::start(ServerConfig {
//!     member_id: 0,
//!     voters: vec![0, 1, 2],
//!     transport: Some(transport.clone()),
//!     ..ServerConfig::default()
//! })?;
//! transport.attach(server.engine()); // peers' connections are taken from now on
//! # Ok(())
//! # }
//! ```

mod codec;
mod config;
mod frame;
mod handshake;
mod link;
mod listener;
mod stats;
#[cfg(test)]
mod tests;
mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};

use crate::replication::{PeerMessage, Transport};
use crate::server::net::TlsError;
use crate::server::Engine;

pub use codec::CodecError;
pub use config::TcpTransportConfig;
pub use frame::FrameError;
pub use handshake::HandshakeError;
pub use stats::TcpTransportStats;
pub use tls::PeerTlsConfig;

use handshake::Identity;
use link::Link;
use listener::{Inbound, Listener};
use stats::{add, Counters};
use tls::PeerTls;

/// Where a transport hands what it receives: the member's engine, or a test's probe.
pub trait PeerReceiver: Send + Sync {
    /// Takes `message` from the member with raft id `from` (authenticated by the handshake).
    /// Runs on the connection's reader thread: it must not wait long, since the peer's next
    /// messages wait meanwhile.
    fn receive(&self, from: u64, message: PeerMessage);

    /// The member with raft id `from` closed its connection, or it broke (not closed from
    /// here, not replaced by a newer one): the member may have died.
    fn peer_lost(&self, from: u64) {
        let _ = from;
    }
}

impl PeerReceiver for Engine {
    fn receive(&self, from: u64, message: PeerMessage) {
        Engine::receive(self, from, message);
    }

    fn peer_lost(&self, from: u64) {
        Engine::peer_lost(self, from);
    }
}

/// A channel takes what arrives, for tests and tools that look at the messages themselves.
/// Give it an unbounded channel: a full bounded one holds up the connection's reader.
impl PeerReceiver for crossbeam_channel::Sender<(u64, PeerMessage)> {
    fn receive(&self, from: u64, message: PeerMessage) {
        let _ = self.send((from, message));
    }
}

/// Why a transport did not start or take a change.
#[derive(Debug)]
pub enum TcpTransportError {
    /// The configuration (or a new peer set) breaks a rule.
    Config {
        /// The rule, in words.
        rule: &'static str,
    },
    /// The listen address could not be bound.
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The given listener cannot be used (its address unknown, its mode not settable).
    Listener(io::Error),
    /// A thread could not be started.
    Spawn(io::Error),
    /// The TLS stores (`ssl.quorum.*`) do not load.
    Tls(TlsError),
    /// The transport was stopped.
    Stopped,
}

impl fmt::Display for TcpTransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpTransportError::Config { rule } => {
                write!(f, "invalid peer transport configuration: {rule}")
            }
            TcpTransportError::Bind { address, source } => {
                write!(f, "cannot listen for peers on {address}: {source}")
            }
            TcpTransportError::Listener(error) => write!(f, "unusable peer listener: {error}"),
            TcpTransportError::Spawn(error) => {
                write!(f, "cannot start a peer transport thread: {error}")
            }
            TcpTransportError::Tls(error) => write!(f, "peer TLS: {error}"),
            TcpTransportError::Stopped => write!(f, "the peer transport was stopped"),
        }
    }
}

impl std::error::Error for TcpTransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TcpTransportError::Bind { source, .. } => Some(source),
            TcpTransportError::Listener(error) | TcpTransportError::Spawn(error) => Some(error),
            TcpTransportError::Tls(error) => Some(error),
            TcpTransportError::Config { .. } | TcpTransportError::Stopped => None,
        }
    }
}

/// What the transport's threads share.
struct Shared {
    /// As started; its `peers` are the first peer set only (`peers` below is the current).
    config: TcpTransportConfig,
    peers: RwLock<BTreeMap<u64, SocketAddr>>,
    /// The host each peer's configuration names, for its certificate (see `config.peer_hosts`).
    peer_hosts: RwLock<BTreeMap<u64, String>>,
    /// TLS between members, when configured.
    tls: Option<PeerTls>,
    receiver: RwLock<Option<Weak<dyn PeerReceiver>>>,
    stats: Counters,
    stopping: AtomicBool,
    inbound: Mutex<Inbound>,
}

impl Shared {
    fn identity(&self) -> Identity<'_> {
        Identity {
            ensemble_id: self.config.ensemble_id,
            raft_id: self.config.raft_id,
            secret: &self.config.secret,
        }
    }

    fn is_peer(&self, raft_id: u64) -> bool {
        self.peers.read().contains_key(&raft_id)
    }

    /// The host configured for `raft_id`, if any.
    fn peer_host(&self, raft_id: u64) -> Option<String> {
        self.peer_hosts.read().get(&raft_id).cloned()
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Tells the attached receiver that `from`'s connection ended on its side.
    fn peer_lost(&self, from: u64) {
        if let Some(receiver) = self.receiver.read().as_ref().and_then(Weak::upgrade) {
            receiver.peer_lost(from);
        }
    }

    /// Hands `message` to the attached receiver, if there is one.
    fn deliver(&self, from: u64, message: PeerMessage) {
        let receiver = self.receiver.read().as_ref().and_then(Weak::upgrade);
        match receiver {
            Some(receiver) => {
                // Counted first, so whoever sees the message sees it counted.
                add(&self.stats.delivered, 1);
                receiver.receive(from, message);
            }
            None => add(&self.stats.dropped_no_receiver, 1),
        }
    }
}

/// The TCP transport of one member. Dropping it stops it.
pub struct TcpTransport {
    shared: Arc<Shared>,
    /// One link per peer; `send` reads it, `set_peers` and `stop` change it.
    links: RwLock<BTreeMap<u64, Link>>,
    listener: Mutex<Option<Listener>>,
    local_address: SocketAddr,
}

impl TcpTransport {
    /// Binds `config.listen_address` and starts dialing every peer; peers are accepted once
    /// an engine is attached.
    pub fn start(config: TcpTransportConfig) -> Result<Arc<TcpTransport>, TcpTransportError> {
        // Checked before binding, so a bad configuration takes no port.
        config.validate()?;
        let address = config.listen_address;
        let listener = TcpListener::bind(address)
            .map_err(|source| TcpTransportError::Bind { address, source })?;
        TcpTransport::start_on(config, listener)
    }

    /// Starts on a listener already bound (tests bind port 0 and learn the port first);
    /// `config.listen_address` is not used.
    pub fn start_on(
        config: TcpTransportConfig,
        listener: TcpListener,
    ) -> Result<Arc<TcpTransport>, TcpTransportError> {
        config.validate()?;
        let local_address = listener.local_addr().map_err(TcpTransportError::Listener)?;
        let peers = config.peers.clone();
        let tls = config
            .tls
            .clone()
            .map(PeerTls::new)
            .transpose()
            .map_err(TcpTransportError::Tls)?;
        let shared = Arc::new(Shared {
            // Known before the listener starts: a peer that dials at once is not refused.
            peers: RwLock::new(peers.clone()),
            peer_hosts: RwLock::new(config.peer_hosts.clone()),
            tls,
            config,
            receiver: RwLock::new(None),
            stats: Counters::default(),
            stopping: AtomicBool::new(false),
            inbound: Mutex::new(Inbound::default()),
        });
        let listener = listener::start(&shared, listener)?;
        let transport = Arc::new(TcpTransport {
            shared,
            links: RwLock::new(BTreeMap::new()),
            listener: Mutex::new(Some(listener)),
            local_address,
        });
        // Starts the links. Dropping the transport on failure stops what started.
        transport.set_peers(peers)?;
        Ok(transport)
    }

    /// Where the transport listens.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// This member's raft id.
    pub fn raft_id(&self) -> u64 {
        self.shared.config.raft_id
    }

    /// Hands received messages to `receiver` from now on (the member's `Engine`, built with
    /// this transport in its `ServerConfig::transport`), and starts accepting peers: until
    /// the first attach their connections wait in the listen backlog, so nothing is dropped
    /// while the engine is being built. Only a weak reference is kept: once the engine is
    /// dropped, messages are dropped until another attaches (a restarted member's engine).
    pub fn attach<R: PeerReceiver + 'static>(&self, receiver: &Arc<R>) {
        let receiver: Weak<dyn PeerReceiver> = Arc::downgrade(receiver) as Weak<dyn PeerReceiver>;
        *self.shared.receiver.write() = Some(receiver);
        if let Some(listener) = self.listener.lock().as_mut() {
            listener.open();
        }
    }

    /// Replaces the peer set: links to new peers start, links to removed ones stop (their
    /// queued messages are dropped) and their inbound connections close; a peer whose address
    /// changed is dialed at the new one. Returns once removed links stopped.
    pub fn set_peers(&self, peers: BTreeMap<u64, SocketAddr>) -> Result<(), TcpTransportError> {
        config::validate_peers(self.shared.config.raft_id, &peers)?;
        let mut stopped = Vec::new();
        let removed: Vec<u64>;
        let started = {
            let mut links = self.links.write();
            if self.shared.is_stopping() {
                return Err(TcpTransportError::Stopped);
            }
            removed = self
                .shared
                .peers
                .read()
                .keys()
                .filter(|peer| !peers.contains_key(peer))
                .copied()
                .collect();
            *self.shared.peers.write() = peers.clone();
            let moved: Vec<u64> = links
                .iter()
                .filter(|(peer, link)| peers.get(peer) != Some(&link.address))
                .map(|(peer, _)| *peer)
                .collect();
            for peer in moved {
                if let Some(link) = links.remove(&peer) {
                    stopped.push(link.stop());
                }
            }
            let mut started = Ok(());
            for (&peer, &address) in &peers {
                if links.contains_key(&peer) {
                    continue;
                }
                match Link::start(&self.shared, peer, address) {
                    Ok(link) => {
                        links.insert(peer, link);
                    }
                    Err(error) => {
                        started = Err(TcpTransportError::Spawn(error));
                        break;
                    }
                }
            }
            started
        };
        {
            let mut inbound = self.shared.inbound.lock();
            for peer in removed {
                inbound.close_peer(peer);
            }
        }
        join_all(stopped);
        started
    }

    /// The current peer set.
    pub fn peers(&self) -> BTreeMap<u64, SocketAddr> {
        self.shared.peers.read().clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> TcpTransportStats {
        self.shared.stats.snapshot()
    }

    /// Stops listening, closes every connection and joins every thread of the transport;
    /// later `send`s drop their messages. Idempotent.
    pub fn stop(&self) {
        let links = {
            let mut links = self.links.write();
            self.shared.stopping.store(true, Ordering::Release);
            std::mem::take(&mut *links)
        };
        let listener = self.listener.lock().take();
        if let Some(listener) = listener {
            listener.stop();
        }
        let readers = self.shared.inbound.lock().close_all();
        let writers: Vec<JoinHandle<()>> = links.into_values().map(Link::stop).collect();
        join_all(readers);
        join_all(writers);
    }
}

impl Transport for TcpTransport {
    fn send(&self, from: u64, to: u64, message: PeerMessage) {
        debug_assert_eq!(
            from, self.shared.config.raft_id,
            "a TcpTransport sends for its own member only"
        );
        let links = self.links.read();
        match links.get(&to) {
            Some(link) => {
                if !link.offer(message) {
                    add(&self.shared.stats.dropped_queue_full, 1);
                }
            }
            None => add(&self.shared.stats.dropped_no_link, 1),
        }
    }

    fn set_members(&self, peers: &BTreeMap<u64, String>) {
        let mut resolved = BTreeMap::new();
        let mut hosts = BTreeMap::new();
        for (&peer, address) in peers {
            if let Some((host, _port)) = address.rsplit_once(':') {
                hosts.insert(
                    peer,
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                );
            }
            match std::net::ToSocketAddrs::to_socket_addrs(address.as_str())
                .ok()
                .and_then(|mut addresses| addresses.next())
            {
                Some(socket_address) => {
                    resolved.insert(peer, socket_address);
                }
                None => tracing::warn!(peer, %address, "a member's peer address does not resolve"),
            }
        }
        // Before the links start: a new peer's certificate is checked against its host.
        *self.shared.peer_hosts.write() = hosts;
        if let Err(error) = self.set_peers(resolved) {
            tracing::warn!(%error, "the transport did not take the new membership");
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpTransport")
            .field("raft_id", &self.shared.config.raft_id)
            .field("local_address", &self.local_address)
            .field("peers", &*self.shared.peers.read())
            .finish()
    }
}

/// Joins `threads`, except the calling thread itself: the last reference to a transport can
/// go on one of its own threads (a reader delivering to an engine that was dropped meanwhile
/// drops the engine's configuration, and so the transport), and that thread is ending anyway.
fn join_all(threads: Vec<JoinHandle<()>>) {
    let current = std::thread::current().id();
    for thread in threads {
        if thread.thread().id() != current {
            let _ = thread.join();
        }
    }
}
