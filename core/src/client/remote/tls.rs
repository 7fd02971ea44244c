//! The client's TLS: its settings (kazoo's `use_ssl`, `ca`, `certfile`, `keyfile`,
//! `verify_certs`), the rustls client configuration built from them, and the connection's byte
//! stream, plain or TLS, as the I/O and writer threads read and write it.
//!
//! Over TLS both threads share the rustls connection behind a lock, held only to encrypt or
//! decrypt, never across a socket read or write: a writer blocked on a full socket must not
//! stop the reader from taking the replies that would unblock the server.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{ClientConnection, DigitallySignedStruct, SignatureScheme};

use crate::server::net::tls::{self as pem, TlsError};

/// TLS for a client's connections; every server of the connect string is reached over it.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// PEM file of the CA certificates the server's certificate must chain to (kazoo's `ca`);
    /// needed when `verify_certs`.
    pub ca_file: Option<PathBuf>,
    /// PEM file of this client's certificate chain (kazoo's `certfile`), for servers that ask.
    pub cert_file: Option<PathBuf>,
    /// PEM file of the certificate's private key (kazoo's `keyfile`); the cert file's own key
    /// when None.
    pub key_file: Option<PathBuf>,
    /// Skip checking the server's certificate (kazoo's `verify_certs=False`): encrypted but
    /// not authenticated, for tests only.
    pub skip_verification: bool,
}

impl ClientTls {
    /// The rustls configuration: TLS 1.2 and 1.3, the server checked against `ca_file` (its
    /// certificate must name the host connected to, as the Java client checks by default),
    /// and the client certificate offered when one is set.
    ///
    /// # Errors
    /// A file that cannot be read or holds no usable certificate or key, a missing `ca_file`
    /// while verifying, or a key that does not fit the certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let provider = Arc::new(pem::ring_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Rustls(error.to_string()))?;
        let builder = if self.skip_verification {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        } else {
            let ca_file = self.ca_file.as_ref().ok_or_else(|| {
                TlsError::Settings(
                    "a CA file (ca) is needed to verify the server's certificate".into(),
                )
            })?;
            builder.with_root_certificates(pem::trust_roots(ca_file)?)
        };
        let config = match (&self.cert_file, &self.key_file) {
            (None, None) => builder.with_no_client_auth(),
            (None, Some(_)) => {
                return Err(TlsError::Settings(
                    "a key file (keyfile) without a certificate file (certfile)".into(),
                ))
            }
            (Some(cert_file), key_file) => {
                let cert_pem = pem::read_pem(cert_file)?;
                let chain = pem::certificates(cert_file, &cert_pem)?;
                if chain.is_empty() {
                    return Err(TlsError::Store(
                        cert_file.clone(),
                        "no certificate found".into(),
                    ));
                }
                let key = match key_file {
                    Some(key_file) => pem::private_key(key_file, &pem::read_pem(key_file)?)?,
                    None => pem::private_key(cert_file, &cert_pem)?,
                };
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| TlsError::Rustls(error.to_string()))?
            }
        };
        Ok(Arc::new(config))
    }
}

/// `verify_certs=False`: any server certificate is taken; signatures are still checked, so the
/// session keys belong to whoever holds the certificate's key.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A connection's bytes: the socket, and the TLS session over it when there is one.
pub(super) struct Wire {
    socket: TcpStream,
    tls: Option<Arc<Mutex<ClientConnection>>>,
}

impl Wire {
    /// The socket as it is.
    pub(super) fn plain(socket: TcpStream) -> Wire {
        Wire { socket, tls: None }
    }

    /// Completes a TLS handshake with `host` over `socket` (whose timeouts bound it).
    ///
    /// # Errors
    /// The handshake failed; the error says why (an unknown CA, an expired certificate, the
    /// server refusing ours, a name that does not match).
    pub(super) fn tls(
        mut socket: TcpStream,
        config: Arc<rustls::ClientConfig>,
        host: &str,
    ) -> std::io::Result<Wire> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|error| std::io::Error::new(ErrorKind::InvalidInput, error.to_string()))?;
        let mut connection = ClientConnection::new(config, name)
            .map_err(|error| std::io::Error::other(error.to_string()))?;
        while connection.is_handshaking() {
            connection.complete_io(&mut socket)?;
        }
        while connection.wants_write() {
            connection.write_tls(&mut socket)?;
        }
        Ok(Wire {
            socket,
            tls: Some(Arc::new(Mutex::new(connection))),
        })
    }

    /// The socket, for timeouts and shutdown.
    pub(super) fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Another handle on the same connection, for the writer thread.
    pub(super) fn try_clone(&self) -> std::io::Result<Wire> {
        Ok(Wire {
            socket: self.socket.try_clone()?,
            tls: self.tls.clone(),
        })
    }

    /// Writes all of `bytes` (encrypted over TLS, together with anything rustls owes the
    /// server, such as a key update's answer).
    pub(super) fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        let Some(tls) = &self.tls else {
            return (&self.socket).write_all(bytes);
        };
        let mut records = Vec::with_capacity(bytes.len() + 64);
        {
            // rustls takes only so much plaintext before its records are written out.
            let mut connection = tls.lock();
            let mut remaining = bytes;
            while !remaining.is_empty() {
                let taken = connection.writer().write(remaining)?;
                remaining = &remaining[taken..];
                if taken == 0 && !connection.wants_write() {
                    return Err(ErrorKind::WriteZero.into());
                }
                while connection.wants_write() {
                    connection.write_tls(&mut records)?;
                }
            }
        }
        (&self.socket).write_all(&records)
    }

    /// Appends what the connection has to `buffer`, waiting for the socket as its read
    /// timeout allows; Ok(0) when the server closed the connection.
    pub(super) fn read_into(&self, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
        let mut chunk = [0u8; 64 << 10];
        let Some(tls) = &self.tls else {
            let read = (&self.socket).read(&mut chunk)?;
            buffer.extend_from_slice(&chunk[..read]);
            return Ok(read);
        };
        let before = buffer.len();
        // After close_notify: what came before it, then 0 on the next call.
        if drain(&mut tls.lock(), buffer)? {
            return Ok(buffer.len() - before);
        }
        while buffer.len() == before {
            let read = (&self.socket).read(&mut chunk)?;
            if read == 0 {
                return Ok(0);
            }
            let mut connection = tls.lock();
            let mut records = &chunk[..read];
            // Plaintext is taken after every record batch: rustls holds only so much.
            while !records.is_empty() {
                connection.read_tls(&mut records)?;
                connection
                    .process_new_packets()
                    .map_err(|error| std::io::Error::new(ErrorKind::InvalidData, error))?;
                if drain(&mut connection, buffer)? {
                    return Ok(buffer.len() - before);
                }
            }
        }
        Ok(buffer.len() - before)
    }
}

/// Moves the plaintext rustls holds into `buffer`; true once the server sent close_notify.
fn drain(connection: &mut ClientConnection, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    match connection.reader().read_to_end(buffer) {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == ErrorKind::WouldBlock => Ok(false),
        Err(error) => Err(error),
    }
}
