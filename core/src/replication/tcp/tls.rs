//! TLS between members (`sslQuorum`): the rustls configurations made from the members' PEM
//! stores (made again when the files change), the check that a peer's certificate names its
//! host, and the stream a peer connection is read and written through, plain or TLS.
//!
//! TLS runs under the shared-secret handshake, not instead of it: the certificates prove the
//! hosts and keep the traffic private, then the handshake names the ensemble and the raft id.
//! As in ZooKeeper, both sides present certificates (`ssl.quorum.clientAuth`, need by default)
//! and, with `ssl.quorum.hostnameVerification` (default true), each names the other's host:
//! the dialer checks the listener's against the host it dialed, the listener checks the
//! dialer's against the host configured for the raft id it claims, or its address.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::ops::DerefMut;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{
    CertificateError, ClientConnection, ConnectionCommon, DigitallySignedStruct, ServerConnection,
    SignatureScheme, StreamOwned,
};

use super::handshake::{Deadline, HandshakeError};
use crate::server::net::tls::{self as pem, TlsConfig, TlsError};

/// The first byte of a TLS connection (a handshake record). A port taking both tells TLS
/// dialers from plain ones by it: a plain dialer's hello starts with "zkrp".
pub(super) const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// TLS between members: zoo.cfg's `sslQuorum`, `portUnification` and `ssl.quorum.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTlsConfig {
    /// The members' key store and trust store (needed: it verifies peers), versions and suites
    /// (`ssl.quorum.*`); `client_auth` says whether a dialer must present a certificate.
    pub tls: TlsConfig,
    /// Dial peers over TLS (`sslQuorum`).
    pub dial_tls: bool,
    /// Accept plain connections beside TLS ones (`portUnification`): the middle step of a
    /// rolling change between plain and TLS members.
    pub accept_plain: bool,
    /// A peer's certificate must name its host (`ssl.quorum.hostnameVerification`).
    pub hostname_verification: bool,
}

/// The running transport's TLS: its settings and the configurations last made from them.
pub(super) struct PeerTls {
    config: PeerTlsConfig,
    built: Mutex<Built>,
}

/// The rustls configurations and the state of the files they were made from.
struct Built {
    stamp: Vec<Option<(SystemTime, u64)>>,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl PeerTls {
    /// Reads the stores; a member whose files do not load does not start.
    pub(super) fn new(config: PeerTlsConfig) -> Result<PeerTls, TlsError> {
        let built = build(&config)?;
        Ok(PeerTls {
            config,
            built: Mutex::new(built),
        })
    }

    /// Whether peers are dialed over TLS.
    pub(super) fn dials_tls(&self) -> bool {
        self.config.dial_tls
    }

    /// Whether plain dialers are accepted too.
    pub(super) fn accepts_plain(&self) -> bool {
        self.config.accept_plain
    }

    /// The configurations for the files as they are now. A change that does not load keeps
    /// the previous ones (and is logged once): a certificate copied in two steps never cuts
    /// a member off its ensemble.
    fn current(&self) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let mut built = self.built.lock();
        let stamp = self.config.tls.stamp();
        if stamp != built.stamp {
            match build(&self.config) {
                Ok(fresh) => {
                    tracing::info!("peer TLS stores changed: reloaded");
                    *built = fresh;
                }
                Err(error) => {
                    tracing::warn!(%error, "peer TLS stores changed but do not load; keeping the previous ones");
                    built.stamp = stamp;
                }
            }
        }
        (built.server.clone(), built.client.clone())
    }

    /// The TLS handshake of a dialer, by `deadline`: the listener's certificate must chain to
    /// the trust store and, with hostname verification, name `host`.
    pub(super) fn dial(
        &self,
        mut socket: TcpStream,
        host: &str,
        deadline: &Deadline,
    ) -> Result<PeerStream, HandshakeError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| HandshakeError::Tls(format!("{host:?} is not a host name")))?;
        let (_, client) = self.current();
        let mut connection = ClientConnection::new(client, name)
            .map_err(|error| HandshakeError::Tls(error.to_string()))?;
        handshake(&mut connection, &mut socket, deadline)?;
        Ok(PeerStream::Dialed(Box::new(StreamOwned::new(
            connection, socket,
        ))))
    }

    /// The TLS handshake of a listener, by `deadline`: a dialer's certificate must chain to
    /// the trust store (if `ssl.quorum.clientAuth` asks for one; its names are checked by
    /// `verify_dialer` once the dialer said who it is).
    pub(super) fn accept(
        &self,
        mut socket: TcpStream,
        deadline: &Deadline,
    ) -> Result<PeerStream, HandshakeError> {
        let (server, _) = self.current();
        let mut connection = ServerConnection::new(server)
            .map_err(|error| HandshakeError::Tls(error.to_string()))?;
        handshake(&mut connection, &mut socket, deadline)?;
        Ok(PeerStream::Accepted(Box::new(StreamOwned::new(
            connection, socket,
        ))))
    }

    /// Checks that `certificate`, presented by a dialer claiming to be raft id `raft_id`,
    /// names `host` (its configured host) or `address` (where it connected from). Nothing to
    /// check without hostname verification or without a certificate (a plain connection,
    /// or `ssl.quorum.clientAuth` other than need).
    pub(super) fn verify_dialer(
        &self,
        certificate: Option<&CertificateDer<'static>>,
        raft_id: u64,
        host: Option<&str>,
        address: IpAddr,
    ) -> Result<(), HandshakeError> {
        let Some(certificate) = certificate.filter(|_| self.config.hostname_verification) else {
            return Ok(());
        };
        let named = webpki::EndEntityCert::try_from(certificate).is_ok_and(|certificate| {
            let by_host = host.and_then(|host| ServerName::try_from(host).ok());
            by_host
                .into_iter()
                .chain(std::iter::once(ServerName::IpAddress(address.into())))
                .any(|name| certificate.verify_is_valid_for_subject_name(&name).is_ok())
        });
        if named {
            Ok(())
        } else {
            Err(HandshakeError::CertificateName {
                raft_id,
                host: host.map_or_else(|| address.to_string(), str::to_string),
            })
        }
    }
}

/// Makes both configurations from the files.
fn build(config: &PeerTlsConfig) -> Result<Built, TlsError> {
    // Taken first: a file changing while it is read is read again at the next connection.
    let stamp = config.tls.stamp();
    let mut server = (*config.tls.server_config()?).clone();
    // Members never resume TLS sessions, and a dialer never reads after its handshake.
    server.send_tls13_tickets = 0;
    Ok(Built {
        stamp,
        server: Arc::new(server),
        client: client_config(config)?,
    })
}

/// The dialer's configuration: it presents the member's certificate and verifies the
/// listener's against the trust store.
fn client_config(config: &PeerTlsConfig) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let tls = &config.tls;
    let trust_store = tls.trust_store.as_ref().ok_or_else(|| {
        TlsError::Settings(
            "ssl.quorum.trustStore.location is needed to verify the members' certificates".into(),
        )
    })?;
    let provider = pem::provider(tls.cipher_suites.as_deref(), &tls.protocols)?;
    let by_name = WebPkiServerVerifier::builder_with_provider(
        pem::trust_roots(trust_store)?,
        provider.clone(),
    )
    .build()
    .map_err(|error| TlsError::Rustls(error.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if config.hostname_verification {
        by_name
    } else {
        Arc::new(AnyName(by_name))
    };
    let bytes = pem::read_pem(&tls.key_store)?;
    let chain = pem::certificates(&tls.key_store, &bytes)?;
    if chain.is_empty() {
        return Err(TlsError::Store(
            tls.key_store.clone(),
            "no certificate found (the key store holds the key and its certificate chain)".into(),
        ));
    }
    let key = pem::private_key(&tls.key_store, &bytes)?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&pem::versions(&tls.protocols))
        .map_err(|error| TlsError::Rustls(error.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|error| TlsError::Rustls(error.to_string()))?;
    Ok(Arc::new(client))
}

/// Drives a TLS handshake to its end, each socket operation bounded by what is left of
/// `deadline`, so a peer trickling bytes cannot hold it open.
fn handshake<C, S>(
    connection: &mut C,
    socket: &mut TcpStream,
    deadline: &Deadline,
) -> Result<(), HandshakeError>
where
    C: DerefMut<Target = ConnectionCommon<S>>,
{
    while connection.is_handshaking() {
        deadline.arm(socket)?;
        match connection.complete_io(socket) {
            Ok(_) => {}
            // The socket's timeout ran out: `arm` says whether the deadline did.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(tls_error(error)),
        }
    }
    // The dialer's last flight (TLS 1.3 sends it after the handshake ends on its side).
    while connection.wants_write() {
        deadline.arm(socket)?;
        connection.write_tls(socket).map_err(tls_error)?;
    }
    Ok(())
}

/// rustls reports what it refuses (a certificate, an alert from the peer) as InvalidData.
fn tls_error(error: io::Error) -> HandshakeError {
    match error.kind() {
        io::ErrorKind::InvalidData => HandshakeError::Tls(error.to_string()),
        _ => HandshakeError::from(error),
    }
}

/// A listener's certificate verified against the trust store, whatever host it names
/// (`ssl.quorum.hostnameVerification=false`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is verified before the name: a wrong name means a trusted certificate.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A peer connection's bytes: plain, or TLS as the side that dialed or accepted it.
pub(super) enum PeerStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, dialed by this member.
    Dialed(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// TLS, accepted by this member.
    Accepted(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl PeerStream {
    /// The socket under it, for timeouts.
    pub(super) fn socket(&self) -> &TcpStream {
        match self {
            PeerStream::Plain(socket) => socket,
            PeerStream::Dialed(stream) => &stream.sock,
            PeerStream::Accepted(stream) => &stream.sock,
        }
    }

    /// Whether it is TLS.
    pub(super) fn is_tls(&self) -> bool {
        !matches!(self, PeerStream::Plain(_))
    }

    /// The certificate a dialer presented on an accepted TLS connection.
    pub(super) fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        match self {
            PeerStream::Accepted(stream) => stream.conn.peer_certificates()?.first().cloned(),
            _ => None,
        }
    }
}

impl Read for PeerStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            PeerStream::Plain(socket) => socket.read(buffer),
            PeerStream::Dialed(stream) => stream.read(buffer),
            PeerStream::Accepted(stream) => stream.read(buffer),
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            PeerStream::Plain(socket) => socket.write(bytes),
            PeerStream::Dialed(stream) => stream.write(bytes),
            PeerStream::Accepted(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            PeerStream::Plain(socket) => socket.flush(),
            PeerStream::Dialed(stream) => stream.flush(),
            PeerStream::Accepted(stream) => stream.flush(),
        }
    }
}
