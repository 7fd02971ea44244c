//! The client port: ZooKeeper's wire protocol over TCP, served on a tokio runtime the server
//! owns (never the caller's), with limits on connections, frames and queues.

mod admin;
mod connection;
mod four_letter;
mod four_letter_stats;
mod four_letter_system;
mod http;
mod outbound;
mod prometheus;
pub mod tls;
mod transport;
mod x509_name;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use four_letter::FourLetterWhitelist;
use four_letter_stats::ResponseStats;
pub use http::{HttpCfg, HttpConfig, PROMETHEUS_PROVIDER};
pub use tls::{ClientAuth, TlsConfig, TlsError, TlsVersion};
use transport::{PortKind, ServerTls};

use crate::server::Engine;

/// How the client port runs; ZooKeeper's zoo.cfg names in brackets.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Where to listen (clientPortAddress:clientPort).
    pub address: SocketAddr,
    /// Most connections from one IP address; 0 for no limit (maxClientCnxns, 60).
    pub connections_per_ip_max: usize,
    /// Most connections in all (`maxConnections`, ours: ZooKeeper has no such limit and is
    /// bounded only by its file descriptors; this stays under the usual 65,536).
    pub connections_max: usize,
    /// Largest frame a client may send, in bytes (jute.maxbuffer, 1,048,575).
    pub frame_bytes_max: usize,
    /// Bytes of replies and notifications queued for one connection. Replies wait for room
    /// (the connection's requests are then read no further); a notification that finds no room
    /// closes the connection, since the engine must never wait on one client.
    pub connection_queue_bytes_max: usize,
    /// How long a new connection may take to send its handshake.
    pub handshake_timeout_ms: u64,
    /// Which four-letter words answer (4lw.commands.whitelist; ZooKeeper's default: srvr).
    pub four_letter_words: FourLetterWhitelist,
    /// Runtime worker threads.
    pub worker_threads: usize,
    /// The data directory, reported by the conf four-letter word (dataDir).
    pub data_dir: Option<PathBuf>,
    /// The ensemble this member belongs to, for `conf` (None: standalone).
    pub ensemble: Option<crate::server::zoo_cfg::EnsembleCfg>,
    /// The HTTP ports: Prometheus's /metrics and the AdminServer (both off by default).
    pub http: HttpConfig,
    /// Whether `address` is served (false when zoo.cfg names only a secureClientPort).
    pub client_port_enabled: bool,
    /// Where to serve TLS only (clientPortAddress:secureClientPort).
    pub secure_address: Option<SocketAddr>,
    /// `address` takes TLS and plain connections alike (client.portUnification).
    pub port_unification: bool,
    /// TLS settings, needed by a secure address or port unification (ssl.*).
    pub tls: Option<TlsConfig>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 2181)),
            connections_per_ip_max: 60,
            connections_max: 60_000,
            frame_bytes_max: crate::proto::DATA_BYTES_MAX_DEFAULT,
            connection_queue_bytes_max: 16 * 1024 * 1024,
            handshake_timeout_ms: 10_000,
            four_letter_words: FourLetterWhitelist::default(),
            worker_threads: 2,
            data_dir: None,
            ensemble: None,
            http: HttpConfig::default(),
            client_port_enabled: true,
            secure_address: None,
            port_unification: false,
            tls: None,
        }
    }
}

/// What every connection shares: the engine, limits, the connection table and counters.
pub(crate) struct NetShared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: NetConfig,
    pub(crate) connections: Mutex<Connections>,
    /// The bound address (config.address may ask for port 0).
    pub(crate) local_address: SocketAddr,
    /// The TLS acceptor when any listener speaks TLS.
    pub(crate) tls: Option<Arc<ServerTls>>,
}

/// The live connections, for limits and for the cons/stat four-letter words.
#[derive(Default)]
pub(crate) struct Connections {
    next_id: u64,
    per_ip: HashMap<IpAddr, usize>,
    pub(crate) live: HashMap<u64, Arc<ConnectionInfo>>,
}

/// One connection as the four-letter words report it.
pub(crate) struct ConnectionInfo {
    pub(crate) peer: SocketAddr,
    pub(crate) session_id: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) queued: AtomicU64,
    /// Wall-clock ms since the Unix epoch when the connection was accepted.
    pub(crate) established_ms: i64,
    pub(crate) responses: Mutex<ResponseStats>,
}

impl NetShared {
    /// Admits a connection unless a limit says no.
    fn admit(&self, peer: SocketAddr) -> Option<(u64, Arc<ConnectionInfo>)> {
        let mut connections = self.connections.lock();
        if connections.live.len() >= self.config.connections_max {
            tracing::warn!(%peer, "connection refused: {} connections is the limit", self.config.connections_max);
            self.engine
                .metrics()
                .connections_rejected
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let from_ip = connections.per_ip.get(&peer.ip()).copied().unwrap_or(0);
        let per_ip_max = self.config.connections_per_ip_max;
        if per_ip_max > 0 && from_ip >= per_ip_max {
            tracing::warn!(%peer, "too many connections from {} - max is {per_ip_max}", peer.ip());
            self.engine
                .metrics()
                .connections_rejected
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *connections.per_ip.entry(peer.ip()).or_insert(0) += 1;
        connections.next_id += 1;
        let id = connections.next_id;
        let info = Arc::new(ConnectionInfo {
            peer,
            session_id: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            established_ms: four_letter_system::wall_ms(),
            responses: Mutex::new(ResponseStats::default()),
        });
        connections.live.insert(id, info.clone());
        self.engine
            .metrics()
            .alive_connections
            .fetch_add(1, Ordering::Relaxed);
        Some((id, info))
    }

    fn release(&self, id: u64, peer: SocketAddr) {
        let mut connections = self.connections.lock();
        if connections.live.remove(&id).is_some() {
            self.engine
                .metrics()
                .alive_connections
                .fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(count) = connections.per_ip.get_mut(&peer.ip()) {
            *count -= 1;
            if *count == 0 {
                connections.per_ip.remove(&peer.ip());
            }
        }
    }
}

/// Gives a connection's slot back when its task ends, however it ends.
pub(super) struct Release<'a> {
    shared: &'a NetShared,
    id: u64,
    peer: SocketAddr,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.shared.release(self.id, self.peer);
    }
}

/// A listening client port (and secure client port). Dropping it stops listening and closes
/// every connection (sessions live on until they expire, as when a ZooKeeper server's clients
/// lose their connections).
pub struct NetServer {
    local_address: SocketAddr,
    metrics_address: Option<SocketAddr>,
    admin_address: Option<SocketAddr>,
    secure_address: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl NetServer {
    /// Binds the client port (and the secure one, when configured) and starts serving
    /// `engine` on them.
    ///
    /// # Errors
    /// A port that cannot be bound, TLS asked for without `tls` settings, or TLS stores
    /// that do not load (`InvalidInput`, with the reason).
    pub fn start(engine: Arc<Engine>, config: NetConfig) -> io::Result<NetServer> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        let wants_tls = config.secure_address.is_some() || config.port_unification;
        let tls = match (&config.tls, wants_tls) {
            (Some(tls), true) => Some(Arc::new(
                ServerTls::new(tls.clone()).map_err(|error| invalid(error.to_string()))?,
            )),
            (None, true) => {
                return Err(invalid(
                    "secureClientPort and client.portUnification need ssl.keyStore.location".into(),
                ))
            }
            (_, false) => None,
        };
        if !config.client_port_enabled && config.secure_address.is_none() {
            return Err(invalid(
                "neither clientPort nor secureClientPort is set".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.max(1))
            .thread_name("zk-net")
            .enable_all()
            .build()?;
        let mut listeners = Vec::new();
        if config.client_port_enabled {
            let kind = if config.port_unification {
                PortKind::Unified
            } else {
                PortKind::Plain
            };
            listeners.push((runtime.block_on(TcpListener::bind(config.address))?, kind));
        }
        if let Some(secure) = config.secure_address {
            listeners.push((runtime.block_on(TcpListener::bind(secure))?, PortKind::Tls));
        }
        let local_address = listeners[0].0.local_addr()?;
        let secure_address = match listeners.last() {
            Some((listener, PortKind::Tls)) => Some(listener.local_addr()?),
            _ => None,
        };
        let mut http_listeners = Vec::new();
        for (site, address) in [
            (http::Site::Metrics, config.http.metrics_address),
            (http::Site::Admin, config.http.admin_address),
        ] {
            if let Some(address) = address {
                let listener = runtime.block_on(http::bind(address, site))?;
                http_listeners.push((site, listener.local_addr()?, listener));
            }
        }
        let http_address = |wanted: http::Site| {
            http_listeners
                .iter()
                .find(|(site, _, _)| *site == wanted)
                .map(|(_, address, _)| *address)
        };
        let metrics_address = http_address(http::Site::Metrics);
        let admin_address = http_address(http::Site::Admin);
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(NetShared {
            engine,
            config,
            connections: Mutex::new(Connections::default()),
            local_address,
            tls: tls.clone(),
        });
        if let Some(tls) = tls {
            let mut stopped = stopped.clone();
            runtime.spawn(async move {
                tokio::select! {
                    _ = stopped.wait_for(|stopped| *stopped) => {}
                    _ = tls.reload_loop() => {}
                }
            });
        }
        for (site, address, listener) in http_listeners {
            runtime.spawn(http::serve(listener, site, shared.clone(), stopped.clone()));
            tracing::info!(%address, "serving HTTP: {site:?}");
        }
        for (listener, kind) in listeners {
            let address = listener.local_addr()?;
            runtime.spawn(accept_loop(listener, kind, shared.clone(), stopped.clone()));
            tracing::info!(%address, ?kind, "serving the ZooKeeper client protocol");
        }
        Ok(NetServer {
            local_address,
            secure_address,
            metrics_address,
            admin_address,
            stop,
            runtime: Some(runtime),
        })
    }

    /// The address the client port is bound to (useful with port 0); the secure port's when
    /// only that one is served.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// The address the secure client port is bound to, when there is one.
    pub fn secure_address(&self) -> Option<SocketAddr> {
        self.secure_address
    }

    /// Where /metrics is served, if it is.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// Where the AdminServer is served, if it is.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin_address
    }
}

impl Drop for NetServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    kind: PortKind,
    shared: Arc<NetShared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped.wait_for(|stopped| *stopped) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // A connection the kernel took while the port was stopping is not served.
                if *stopped.borrow() {
                    return;
                }
                let Some((id, info)) = shared.admit(peer) else {
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    // Released even if serving panics, so no address is locked out.
                    let slot = Release {
                        shared: &shared,
                        id,
                        peer,
                    };
                    // The TLS handshake holds the slot too, so connection limits bound
                    // handshakes that never finish.
                    let Some(stream) = transport::open(stream, kind, &shared).await else {
                        return;
                    };
                    connection::serve(stream, info, &shared, stopped, slot).await;
                });
            }
            Err(error) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

impl ConnectionInfo {
    pub(crate) fn count_received(&self, shared: &NetShared) {
        self.received.fetch_add(1, Ordering::Relaxed);
        shared
            .engine
            .metrics()
            .packets_received
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_sent(&self, shared: &NetShared) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        shared
            .engine
            .metrics()
            .packets_sent
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Records a response to the request with `opcode` and `xid`, begun at `started`, for
    /// cons and the server's latency (ZooKeeper's `FinalRequestProcessor.updateStats`).
    pub(crate) fn record_response(
        &self,
        shared: &NetShared,
        opcode: i32,
        xid: i32,
        zxid: i64,
        started: Instant,
    ) {
        let Some(op) = four_letter_stats::op_name(opcode) else {
            return;
        };
        let latency_ms = four_letter_stats::whole_ms(started.elapsed());
        let now_ms = shared.engine.config().clock.now_ms();
        self.responses
            .lock()
            .record(op, xid, zxid, now_ms, latency_ms);
        shared
            .engine
            .metrics()
            .record_request(four_letter_stats::is_write(opcode), latency_ms);
    }
}
