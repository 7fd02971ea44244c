//! What a client connection reads and writes: plain TCP, or TLS over it (a secure port, or a
//! unified port where the first byte decides), with the handshake bounded in time and the
//! client certificate's subject turned into the connection's `x509` identity.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::tls::{ClientAuth, TlsConfig};
use super::{x509_name, NetShared};
use crate::proto::Id;

/// The reading half of a client connection.
pub(super) type ClientReader = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a client connection.
pub(super) type ClientWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// The first byte of every TLS connection: a handshake record (ZooKeeper's
/// `TLS_HANDSHAKE_RECORD_TYPE`, how its unified port tells TLS from plain).
const TLS_HANDSHAKE_RECORD_TYPE: u8 = 0x16;

/// What a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PortKind {
    /// Plain TCP only (clientPort).
    Plain,
    /// TLS only (secureClientPort).
    Tls,
    /// Both, told apart by the first byte (clientPort with client.portUnification).
    Unified,
}

/// A connection ready for ZooKeeper's protocol: its halves, and the identities its
/// certificate gives (empty without TLS or without a client certificate).
pub(super) struct ClientStream {
    pub(super) reader: ClientReader,
    pub(super) writer: ClientWriter,
    pub(super) identities: Vec<Id>,
}

/// The TLS side of the client port: the acceptor, rebuilt when the stores change.
pub(crate) struct ServerTls {
    config: TlsConfig,
    acceptor: RwLock<TlsAcceptor>,
}

impl ServerTls {
    /// Builds the acceptor from the stores as they are now.
    pub(super) fn new(config: TlsConfig) -> Result<ServerTls, super::tls::TlsError> {
        let acceptor = TlsAcceptor::from(config.server_config()?);
        Ok(ServerTls {
            config,
            acceptor: RwLock::new(acceptor),
        })
    }

    /// Watches the stores and swaps in a new acceptor when they change; a store that fails to
    /// load keeps the old one serving and is logged once per change.
    pub(super) async fn reload_loop(self: Arc<Self>) {
        let period = Duration::from_millis(self.config.reload_check_ms.max(10));
        let mut stamp = self.config.stamp();
        loop {
            tokio::time::sleep(period).await;
            let now = self.config.stamp();
            if now == stamp {
                continue;
            }
            stamp = now;
            match self.config.server_config() {
                Ok(server_config) => {
                    *self.acceptor.write() = TlsAcceptor::from(server_config);
                    tracing::info!(key_store = %self.config.key_store.display(), "TLS stores changed: reloaded");
                }
                Err(error) => {
                    tracing::warn!(%error, "TLS stores changed but do not load; the previous ones still serve")
                }
            }
        }
    }
}

/// Turns an accepted TCP connection into a client stream: as it is on a plain port, after a
/// TLS handshake on a secure one, after looking at the first byte on a unified one. None when
/// the connection must close (logged here, once).
pub(super) async fn open(
    stream: TcpStream,
    kind: PortKind,
    shared: &NetShared,
) -> Option<ClientStream> {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |address| address.to_string());
    let handshake = Duration::from_millis(shared.config.handshake_timeout_ms);
    let tls = match kind {
        PortKind::Plain => false,
        PortKind::Tls => true,
        PortKind::Unified => {
            let mut first = [0u8; 1];
            match tokio::time::timeout(handshake, stream.peek(&mut first)).await {
                Ok(Ok(1)) => first[0] == TLS_HANDSHAKE_RECORD_TYPE,
                _ => return None,
            }
        }
    };
    if !tls {
        let (reader, writer) = stream.into_split();
        return Some(ClientStream {
            reader: Box::new(reader),
            writer: Box::new(writer),
            identities: Vec::new(),
        });
    }
    let server_tls = shared.tls.as_ref()?;
    let acceptor = server_tls.acceptor.read().clone();
    let stream = match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::info!(%peer, %error, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::info!(
                %peer,
                "TLS handshake not finished within {} ms",
                handshake.as_millis()
            );
            return None;
        }
    };
    let identities = match certificate_identities(&stream, &server_tls.config, shared) {
        Ok(identities) => identities,
        Err(why) => {
            tracing::error!(%peer, "closing a TLS connection: {why}");
            return None;
        }
    };
    let (reader, writer) = tokio::io::split(stream);
    Some(ClientStream {
        reader: Box::new(reader),
        writer: Box::new(writer),
        identities,
    })
}

/// ZooKeeper's `CertificateVerifier`: when a certificate was asked for and given, the x509
/// provider must be configured (`authProvider.x509`), and the subject becomes an `x509` id
/// (and a `super` one when it is `X509AuthenticationProvider.superUser`).
fn certificate_identities(
    stream: &tokio_rustls::server::TlsStream<TcpStream>,
    config: &TlsConfig,
    shared: &NetShared,
) -> Result<Vec<Id>, String> {
    if config.client_auth == ClientAuth::None {
        return Ok(Vec::new());
    }
    let Some(leaf) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
    else {
        // rustls already refused a client without one when it is needed.
        return Ok(Vec::new());
    };
    let server = shared.engine.config();
    if !server.x509_auth_enabled {
        return Err(
            "X509 Auth provider not found: x509 (set authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider)"
                .into(),
        );
    }
    let name = x509_name::subject_name(leaf.as_ref())
        .ok_or_else(|| "the client certificate's subject does not parse".to_string())?;
    let mut identities = Vec::with_capacity(2);
    if server.x509_super_user.as_deref() == Some(name.as_str()) {
        identities.push(Id::new("super", name.clone()));
    }
    tracing::info!("Authenticated Id '{name}' for Scheme 'x509'");
    identities.push(Id::new("x509", name));
    Ok(identities)
}
