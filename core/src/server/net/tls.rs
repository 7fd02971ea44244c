//! TLS on the client port: ZooKeeper's `ssl.*` settings turned into a rustls server
//! configuration built from PEM files, and rebuilt when those files change.
//!
//! Only PEM stores are read (`ssl.keyStore.type=PEM`, as ZooKeeper 3.8 supports): the key store
//! is one file holding the private key and the certificate chain, the trust store a file of CA
//! certificates. JKS and PKCS12 stores are refused with the command that converts them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use pki_types::pem::PemObject;
use pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, SupportedCipherSuite, SupportedProtocolVersion};

/// Largest PEM file read, in bytes: a store is a few kilobytes; a huge file is a mistake.
const PEM_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Whether the server asks for a client certificate (`ssl.clientAuth`, default need).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// A client without a trusted certificate is refused.
    #[default]
    Need,
    /// A certificate is asked for; a client without one still connects (anonymously).
    Want,
    /// No certificate is asked for.
    None,
}

/// A TLS protocol version by its Java name (`ssl.enabledProtocols`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLSv1.2, ZooKeeper 3.8's default (`ssl.protocol`).
    Tls12,
    /// TLSv1.3.
    Tls13,
}

impl TlsVersion {
    /// Parses a Java protocol name; Ok(None) for the older ones rustls never speaks.
    pub fn parse(name: &str) -> Result<Option<TlsVersion>, String> {
        match name {
            "TLSv1.2" => Ok(Some(TlsVersion::Tls12)),
            "TLSv1.3" => Ok(Some(TlsVersion::Tls13)),
            "TLSv1" | "TLSv1.1" | "SSLv3" => Ok(None),
            other => Err(format!(
                "{other:?} is not a TLS protocol name (TLSv1.2, TLSv1.3)"
            )),
        }
    }

    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }
}

/// ZooKeeper 3.8's default cipher suites on Java 9+ that rustls has (it has no CBC suites).
const DEFAULT_TLS12_SUITES: [&str; 4] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];

/// TLS on the client port; ZooKeeper's zoo.cfg names in brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with the private key and the certificate chain (ssl.keyStore.location).
    pub key_store: PathBuf,
    /// PEM file with the CA certificates client certificates must chain to
    /// (ssl.trustStore.location); needed unless client_auth is None.
    pub trust_store: Option<PathBuf>,
    /// Whether a client certificate is asked for (ssl.clientAuth).
    pub client_auth: ClientAuth,
    /// Versions offered (ssl.enabledProtocols; default: ssl.protocol, TLSv1.2).
    pub protocols: Vec<TlsVersion>,
    /// Cipher suites by IANA name (ssl.ciphersuites); None: ZooKeeper's default GCM suites
    /// for TLS 1.2 and every TLS 1.3 suite.
    pub cipher_suites: Option<Vec<String>>,
    /// How often the two files are checked for changes, in ms.
    pub reload_check_ms: u64,
}

/// Why a TLS configuration could not be built.
#[derive(Debug)]
pub enum TlsError {
    /// A store could not be read.
    Read(PathBuf, std::io::Error),
    /// A store is not what PEM stores hold.
    Store(PathBuf, String),
    /// The settings do not fit together (a suite list with nothing usable, ...).
    Settings(String),
    /// rustls refused the key, certificates or settings.
    Rustls(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read(path, error) => write!(f, "cannot read {}: {error}", path.display()),
            TlsError::Store(path, message) => write!(f, "{}: {message}", path.display()),
            TlsError::Settings(message) => f.write_str(message),
            TlsError::Rustls(message) => write!(f, "TLS setup failed: {message}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// What it takes to convert a Java store to PEM, for the error that refuses one.
pub const CONVERT_HINT: &str = "only PEM stores are read (ssl.keyStore.type=PEM); convert a JKS \
     store with `keytool -importkeystore -srckeystore store.jks -destkeystore store.p12 \
     -deststoretype PKCS12`, then a PKCS12 one with `openssl pkcs12 -in store.p12 -nodes -out \
     store.pem`";

/// Reads a PEM file, bounded in size; refuses what looks like a JKS or PKCS12 store.
pub(crate) fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read = || -> std::io::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, PEM_FILE_BYTES_MAX + 1),
            &mut bytes,
        )?;
        Ok(bytes)
    };
    let bytes = read().map_err(|error| TlsError::Read(path.to_path_buf(), error))?;
    if bytes.len() as u64 > PEM_FILE_BYTES_MAX {
        return Err(TlsError::Store(
            path.to_path_buf(),
            format!("larger than {PEM_FILE_BYTES_MAX} bytes"),
        ));
    }
    if !contains(&bytes, b"-----BEGIN ") {
        return Err(TlsError::Store(
            path.to_path_buf(),
            format!("not a PEM file; {CONVERT_HINT}"),
        ));
    }
    Ok(bytes)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The certificates in PEM text, in file order.
pub(crate) fn certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Store(path.to_path_buf(), error.to_string()))
}

/// The private key in PEM text; encrypted keys are refused with how to decrypt them.
pub(crate) fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    if contains(pem, b"-----BEGIN ENCRYPTED PRIVATE KEY") {
        return Err(TlsError::Store(
            path.to_path_buf(),
            "the private key is encrypted; passwords (ssl.keyStore.password) are not read: \
             decrypt it with `openssl pkey -in key.pem -out plain-key.pem`"
                .into(),
        ));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| {
        TlsError::Store(
            path.to_path_buf(),
            format!("no private key found ({error})"),
        )
    })
}

/// The CA certificates of a trust store.
pub(crate) fn trust_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let pem = read_pem(path)?;
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path, &pem)? {
        roots
            .add(certificate)
            .map_err(|error| TlsError::Store(path.to_path_buf(), error.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsError::Store(
            path.to_path_buf(),
            "no certificate found".into(),
        ));
    }
    Ok(Arc::new(roots))
}

/// The crypto provider (ring) with the suites `names` allows, and the versions asked for.
pub(crate) fn provider(
    names: Option<&[String]>,
    protocols: &[TlsVersion],
) -> Result<Arc<rustls::crypto::CryptoProvider>, TlsError> {
    let mut provider = ring_provider();
    let allowed = |suite: &SupportedCipherSuite| -> bool {
        let name = suite_name(suite);
        match names {
            Some(names) => names.contains(&name),
            None => {
                suite.version() == &rustls::version::TLS13
                    || DEFAULT_TLS12_SUITES.contains(&name.as_str())
            }
        }
    };
    provider.cipher_suites.retain(|suite| allowed(suite));
    let usable = provider.cipher_suites.iter().any(|suite| {
        protocols
            .iter()
            .any(|version| suite.version() == version.rustls())
    });
    if !usable {
        return Err(TlsError::Settings(format!(
            "no cipher suite of ssl.ciphersuites is available for {protocols:?} (rustls has: {})",
            ring_provider()
                .cipher_suites
                .iter()
                .map(suite_name)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Arc::new(provider))
}

/// rustls with *ring*: it builds in seconds from Rust and a little C, where aws-lc-rs needs
/// cmake and a large C build. rustls 0.23.48 deprecates it only for lacking post-quantum key
/// exchange, which no ZooKeeper client offers.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A suite's IANA name, which Java uses too (rustls writes TLS 1.3 ones as `TLS13_...`).
pub(crate) fn suite_name(suite: &SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// The protocol versions for rustls.
pub(crate) fn versions(protocols: &[TlsVersion]) -> Vec<&'static SupportedProtocolVersion> {
    protocols.iter().map(|version| version.rustls()).collect()
}

impl TlsConfig {
    /// Builds the rustls server configuration from the files as they are now.
    ///
    /// # Errors
    /// A store that cannot be read or holds no usable key or certificate, a missing trust
    /// store while client certificates are asked for, or settings rustls refuses.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let pem = read_pem(&self.key_store)?;
        let chain = certificates(&self.key_store, &pem)?;
        if chain.is_empty() {
            return Err(TlsError::Store(
                self.key_store.clone(),
                "no certificate found (the key store holds the key and its certificate chain)"
                    .into(),
            ));
        }
        let key = private_key(&self.key_store, &pem)?;
        let provider = provider(self.cipher_suites.as_deref(), &self.protocols)?;
        let verifier = match self.client_auth {
            ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
            want_or_need => {
                let trust_store = self.trust_store.as_ref().ok_or_else(|| {
                    TlsError::Settings(
                        "ssl.trustStore.location is needed to verify client certificates \
                         (or set ssl.clientAuth=none)"
                            .into(),
                    )
                })?;
                let builder = WebPkiClientVerifier::builder_with_provider(
                    trust_roots(trust_store)?,
                    provider.clone(),
                );
                let builder = if want_or_need == ClientAuth::Want {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                builder
                    .build()
                    .map_err(|error| TlsError::Rustls(error.to_string()))?
            }
        };
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions(&self.protocols))
            .map_err(|error| TlsError::Rustls(error.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|error| TlsError::Rustls(error.to_string()))?;
        Ok(Arc::new(config))
    }

    /// What identifies the files' current contents: modification time and length of each.
    pub(crate) fn stamp(&self) -> Vec<Option<(SystemTime, u64)>> {
        std::iter::once(&self.key_store)
            .chain(self.trust_store.as_ref())
            .map(|path| {
                std::fs::metadata(path)
                    .ok()
                    .and_then(|meta| Some((meta.modified().ok()?, meta.len())))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_are_java_names() {
        assert_eq!(TlsVersion::parse("TLSv1.2"), Ok(Some(TlsVersion::Tls12)));
        assert_eq!(TlsVersion::parse("TLSv1.3"), Ok(Some(TlsVersion::Tls13)));
        assert_eq!(TlsVersion::parse("TLSv1.1"), Ok(None));
        assert!(TlsVersion::parse("tls13").is_err());
    }

    #[test]
    fn default_suites_are_zookeepers_gcm_ones_and_tls13() {
        let provider = provider(None, &[TlsVersion::Tls12, TlsVersion::Tls13]).unwrap();
        let names: Vec<String> = provider.cipher_suites.iter().map(suite_name).collect();
        assert_eq!(
            names,
            [
                "TLS_AES_256_GCM_SHA384",
                "TLS_AES_128_GCM_SHA256",
                "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ]
        );
    }

    #[test]
    fn a_suite_list_without_a_usable_suite_is_refused() {
        let only_cbc = vec!["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".to_string()];
        let error = provider(Some(&only_cbc), &[TlsVersion::Tls12]).unwrap_err();
        assert!(error.to_string().contains("no cipher suite"), "{error}");
        let tls13_only = vec!["TLS_AES_128_GCM_SHA256".to_string()];
        assert!(provider(Some(&tls13_only), &[TlsVersion::Tls12]).is_err());
        assert!(provider(Some(&tls13_only), &[TlsVersion::Tls13]).is_ok());
    }

    #[test]
    fn java_stores_and_encrypted_keys_are_refused_with_a_hint() {
        let dir = std::env::temp_dir().join(format!("zkrs-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let jks = dir.join("store.jks");
        std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
        let error = read_pem(&jks).unwrap_err().to_string();
        assert!(error.contains("keytool -importkeystore"), "{error}");
        let encrypted =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let error = private_key(&jks, encrypted).unwrap_err().to_string();
        assert!(error.contains("openssl pkey"), "{error}");
        let missing = read_pem(&dir.join("missing.pem")).unwrap_err().to_string();
        assert!(missing.contains("cannot read"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
