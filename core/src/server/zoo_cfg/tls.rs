//! zoo.cfg's TLS keys (`secureClientPort`, `client.portUnification`, `ssl.*`, the x509 auth
//! provider, and for the members `sslQuorum`, `portUnification`, `ssl.quorum.*`) gathered
//! while the file is read, then checked together into the client port's `TlsConfig`, the
//! engine's x509 settings and the peer transport's `PeerTlsConfig`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::{boolean, number, CfgError, ZooCfg};
use crate::replication::PeerTlsConfig;
use crate::server::net::tls::CONVERT_HINT;
use crate::server::net::{ClientAuth, TlsConfig, TlsVersion};

/// The class ZooKeeper loads for the `x509` scheme (`authProvider.N=<class>`).
const X509_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

/// How often the stores are checked for changes, in ms (ZooKeeper watches them for changes).
const RELOAD_CHECK_MS: u64 = 1_000;

/// The TLS keys seen so far.
#[derive(Default)]
pub(super) struct TlsKeys {
    secure_client_port: Option<u16>,
    secure_client_address: Option<IpAddr>,
    port_unification: bool,
    /// `ssl.*`: the client port's stores.
    client: StoreKeys,
    /// `ssl.quorum.*`: the members' stores.
    quorum: StoreKeys,
    ssl_quorum: bool,
    quorum_port_unification: bool,
    x509_provider: bool,
    super_user: Option<String>,
}

/// One family of store keys: the client port's (`ssl.`) or the members' (`ssl.quorum.`); the
/// same names follow each prefix, as in ZooKeeper's X509Util.
#[derive(Default)]
struct StoreKeys {
    key_store: Option<PathBuf>,
    key_store_type: Option<String>,
    trust_store: Option<PathBuf>,
    trust_store_type: Option<String>,
    client_auth: ClientAuth,
    protocol: Option<String>,
    enabled_protocols: Option<String>,
    cipher_suites: Option<String>,
    hostname_verification: Option<bool>,
}

fn invalid(key: &str, message: impl Into<String>) -> CfgError {
    CfgError {
        key: key.to_string(),
        message: message.into(),
    }
}

impl TlsKeys {
    /// Takes `key` when it is a TLS key (Ok(true)); Ok(false) leaves it to the caller.
    pub(super) fn take(
        &mut self,
        key: &str,
        value: &str,
        warnings: &mut Vec<String>,
    ) -> Result<bool, CfgError> {
        if let Some(name) = key.strip_prefix("ssl.quorum.") {
            return self.quorum.take(key, name, value, warnings);
        }
        if let Some(name) = key.strip_prefix("ssl.") {
            return self.client.take(key, name, value, warnings);
        }
        match key {
            "secureClientPort" => self.secure_client_port = Some(number(key, value)?),
            "secureClientPortAddress" => {
                self.secure_client_address = Some(
                    value
                        .parse()
                        .map_err(|_| invalid(key, format!("{value:?} is not an IP address")))?,
                )
            }
            "client.portUnification" => self.port_unification = boolean(key, value)?,
            // Only Netty serves TLS in ZooKeeper; this server's one implementation always can.
            "serverCnxnFactory" => {}
            "sslQuorum" => self.ssl_quorum = boolean(key, value)?,
            "portUnification" => self.quorum_port_unification = boolean(key, value)?,
            // Members always load changed stores (at their next connection).
            "sslQuorumReloadCertFiles" => {
                boolean(key, value)?;
            }
            "X509AuthenticationProvider.superUser" => self.super_user = Some(value.to_string()),
            key if key.starts_with("authProvider.") => {
                if value == X509_PROVIDER_CLASS {
                    self.x509_provider = true;
                } else {
                    warnings.push(format!("{key}: auth provider {value} is not available"));
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Puts the TLS settings into `cfg`: a secure port on `address` (or secureClientPortAddress),
    /// the plain port off when only a secure one was named, and the x509 provider for the
    /// engine. Answers the members' TLS, if any.
    pub(super) fn settle(
        self,
        cfg: &mut ZooCfg,
        address: IpAddr,
        client_port_given: bool,
    ) -> Result<Option<PeerTlsConfig>, CfgError> {
        cfg.server.x509_super_user = self.super_user.clone();
        cfg.net.secure_address = self
            .secure_client_port
            .map(|port| SocketAddr::new(self.secure_client_address.unwrap_or(address), port));
        cfg.net.port_unification = self.port_unification;
        // ZooKeeper registers the x509 provider itself whenever a port speaks TLS
        // (QuorumPeerConfig.configureSSLAuth); authProvider.x509 matters only without one.
        let tls_in_use = cfg.net.secure_address.is_some() || self.port_unification;
        cfg.server.x509_auth_enabled = self.x509_provider || tls_in_use;
        if cfg.net.secure_address.is_some() && !client_port_given {
            cfg.net.client_port_enabled = false;
        }
        if tls_in_use {
            cfg.net.tls = Some(self.client.tls_config("ssl.", &mut cfg.warnings)?);
        }
        // portUnification alone takes TLS dialers while still dialing plain: the first step
        // of turning sslQuorum on across a running ensemble.
        if !self.ssl_quorum && !self.quorum_port_unification {
            return Ok(None);
        }
        let hostname_verification = self.quorum.hostname_verification.unwrap_or(true);
        let tls = self.quorum.tls_config("ssl.quorum.", &mut cfg.warnings)?;
        if tls.trust_store.is_none() {
            return Err(invalid(
                "ssl.quorum.trustStore.location",
                "TLS between members needs a PEM trust store to verify them",
            ));
        }
        Ok(Some(PeerTlsConfig {
            tls,
            dial_tls: self.ssl_quorum,
            accept_plain: self.quorum_port_unification,
            hostname_verification,
        }))
    }
}

impl StoreKeys {
    /// Takes `key` (`name` after its prefix) when it is a store key of this family.
    fn take(
        &mut self,
        key: &str,
        name: &str,
        value: &str,
        warnings: &mut Vec<String>,
    ) -> Result<bool, CfgError> {
        match name {
            "keyStore.location" => self.key_store = Some(PathBuf::from(value)),
            "keyStore.type" => self.key_store_type = Some(value.to_string()),
            "trustStore.location" => self.trust_store = Some(PathBuf::from(value)),
            "trustStore.type" => self.trust_store_type = Some(value.to_string()),
            "clientAuth" => {
                self.client_auth = match value.to_ascii_lowercase().as_str() {
                    "" | "need" => ClientAuth::Need,
                    "want" => ClientAuth::Want,
                    "none" => ClientAuth::None,
                    _ => return Err(invalid(key, format!("{value:?} is not need, want or none"))),
                }
            }
            "protocol" => self.protocol = Some(value.to_string()),
            "enabledProtocols" => self.enabled_protocols = Some(value.to_string()),
            "ciphersuites" => self.cipher_suites = Some(value.to_string()),
            "keyStore.password"
            | "keyStore.passwordPath"
            | "trustStore.password"
            | "trustStore.passwordPath" => warnings.push(format!(
                "{key} is not read: PEM keys must not be encrypted (openssl pkey decrypts one)"
            )),
            // Revocation checks asked for but not made would let revoked certificates in.
            "crl" | "ocsp" if boolean(key, value)? => {
                return Err(invalid(
                    key,
                    "certificate revocation checks are not supported",
                ))
            }
            "crl" | "ocsp" => {}
            // The client port verifies no client host names in ZooKeeper either; the members'
            // verify each other's.
            "hostnameVerification" => self.hostname_verification = Some(boolean(key, value)?),
            "handshakeDetectionTimeoutMillis" => {}
            "authProvider" if value != "x509" => {
                return Err(invalid(
                    key,
                    "only the x509 provider authenticates TLS clients",
                ))
            }
            "authProvider" => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The TLS configuration these keys make; `prefix` names the keys in errors.
    fn tls_config(self, prefix: &str, warnings: &mut Vec<String>) -> Result<TlsConfig, CfgError> {
        let key_store = self.key_store.ok_or_else(|| {
            invalid(
                &format!("{prefix}keyStore.location"),
                "TLS needs a PEM key store",
            )
        })?;
        for (name, path, kind) in [
            ("keyStore.type", Some(&key_store), &self.key_store_type),
            (
                "trustStore.type",
                self.trust_store.as_ref(),
                &self.trust_store_type,
            ),
        ] {
            check_pem(&format!("{prefix}{name}"), path, kind.as_deref())?;
        }
        let protocols_key = format!("{prefix}enabledProtocols");
        let protocols_text = self
            .enabled_protocols
            .or(self.protocol)
            .unwrap_or_else(|| "TLSv1.2".to_string());
        let mut protocols = Vec::new();
        for name in protocols_text
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            match TlsVersion::parse(name).map_err(|message| invalid(&protocols_key, message))? {
                Some(version) if !protocols.contains(&version) => protocols.push(version),
                Some(_) => {}
                None => warnings.push(format!("{protocols_key}: {name} is not offered (too old)")),
            }
        }
        if protocols.is_empty() {
            return Err(invalid(
                &protocols_key,
                "no protocol left to offer (TLSv1.2, TLSv1.3)",
            ));
        }
        let cipher_suites = self.cipher_suites.map(|text| {
            text.split(',')
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty())
                .collect()
        });
        Ok(TlsConfig {
            key_store,
            trust_store: self.trust_store,
            client_auth: self.client_auth,
            protocols,
            cipher_suites,
            reload_check_ms: RELOAD_CHECK_MS,
        })
    }
}

/// A store must be PEM: said so by its type, or, without a type, by a `.pem` name (ZooKeeper
/// infers the type from the extension the same way).
fn check_pem(key: &str, path: Option<&PathBuf>, kind: Option<&str>) -> Result<(), CfgError> {
    let Some(path) = path else {
        return Ok(());
    };
    let kind = match kind {
        Some(kind) if !kind.is_empty() => kind.to_ascii_uppercase(),
        _ => match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("pem") => "PEM".into(),
            Some(ext) if ext.eq_ignore_ascii_case("jks") => "JKS".into(),
            Some(ext) if ext.eq_ignore_ascii_case("p12") || ext.eq_ignore_ascii_case("pfx") => {
                "PKCS12".into()
            }
            _ => {
                return Err(invalid(
                    key,
                    format!("{} has no .pem extension: set {key}=PEM", path.display()),
                ))
            }
        },
    };
    if kind != "PEM" {
        return Err(invalid(
            key,
            format!("{kind} stores are not read; {CONVERT_HINT}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ZooCfg, CfgError> {
        ZooCfg::parse(text)
    }

    #[test]
    fn a_secure_port_alone_turns_the_plain_port_off() {
        let cfg = parse(
            "secureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.trustStore.location=/t.pem\n\
             ssl.clientAuth=want\nauthProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n",
        )
        .unwrap();
        assert!(!cfg.net.client_port_enabled);
        assert_eq!(
            cfg.net.secure_address,
            Some("127.0.0.1:2281".parse().unwrap())
        );
        let tls = cfg.net.tls.unwrap();
        assert_eq!(tls.client_auth, ClientAuth::Want);
        assert_eq!(tls.protocols, vec![TlsVersion::Tls12]);
        assert_eq!(tls.cipher_suites, None);
        assert!(cfg.server.x509_auth_enabled);
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }

    #[test]
    fn both_ports_protocols_and_suites() {
        let cfg = parse(
            "clientPort=2181\nsecureClientPort=2281\nclientPortAddress=127.0.0.1\n\
             zookeeper.ssl.keyStore.location=/k\nssl.keyStore.type=PEM\n\
             ssl.enabledProtocols=TLSv1.3, TLSv1.2,TLSv1.1\nssl.ciphersuites=TLS_AES_128_GCM_SHA256\n\
             client.portUnification=true\nsecureClientPortAddress=127.0.0.2\n",
        )
        .unwrap();
        assert!(cfg.net.client_port_enabled);
        assert!(cfg.net.port_unification);
        assert_eq!(
            cfg.net.secure_address,
            Some("127.0.0.2:2281".parse().unwrap())
        );
        let tls = cfg.net.tls.unwrap();
        assert_eq!(tls.protocols, vec![TlsVersion::Tls13, TlsVersion::Tls12]);
        assert_eq!(
            tls.cipher_suites,
            Some(vec!["TLS_AES_128_GCM_SHA256".to_string()])
        );
        assert_eq!(tls.client_auth, ClientAuth::Need);
        // Without authProvider.x509 too: a TLS port brings the provider, as in ZooKeeper.
        assert!(cfg.server.x509_auth_enabled);
        assert_eq!(cfg.warnings.len(), 1, "{:?}", cfg.warnings);
    }

    #[test]
    fn broken_tls_settings_name_their_key() {
        let key_of = |text: &str| parse(text).unwrap_err().key;
        assert_eq!(key_of("secureClientPort=2281\n"), "ssl.keyStore.location");
        assert_eq!(
            key_of("secureClientPort=1\nssl.keyStore.location=/k.jks\n"),
            "ssl.keyStore.type"
        );
        let error =
            parse("secureClientPort=1\nssl.keyStore.location=/k\nssl.keyStore.type=PKCS12\n")
                .unwrap_err();
        assert!(error.message.contains("openssl pkcs12"), "{error}");
        assert_eq!(key_of("ssl.clientAuth=maybe\n"), "ssl.clientAuth");
        assert_eq!(key_of("sslQuorum=true\n"), "ssl.quorum.keyStore.location");
        assert_eq!(
            key_of("sslQuorum=true\nssl.quorum.keyStore.location=/k.pem\n"),
            "ssl.quorum.trustStore.location"
        );
        assert_eq!(
            key_of("portUnification=true\nssl.quorum.keyStore.location=/k.jks\n"),
            "ssl.quorum.keyStore.type"
        );
        assert_eq!(
            key_of("sslQuorum=true\nssl.quorum.hostnameVerification=perhaps\n"),
            "ssl.quorum.hostnameVerification"
        );
        assert_eq!(key_of("ssl.crl=true\n"), "ssl.crl");
        assert_eq!(
            key_of(
                "secureClientPort=1\nssl.keyStore.location=/k.pem\nssl.enabledProtocols=TLSv1\n"
            ),
            "ssl.enabledProtocols"
        );
    }

    #[test]
    fn the_members_stores_are_read_apart_from_the_client_port_s() {
        let cfg = parse(
            "secureClientPort=2281\nssl.keyStore.location=/client.pem\n\
             sslQuorum=true\nssl.quorum.keyStore.location=/member.pem\n\
             zookeeper.ssl.quorum.trustStore.location=/ca.pem\nssl.quorum.clientAuth=want\n\
             ssl.quorum.enabledProtocols=TLSv1.3\nsslQuorumReloadCertFiles=true\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n",
        )
        .unwrap();
        assert_eq!(cfg.net.tls.unwrap().key_store, PathBuf::from("/client.pem"));
        let quorum = cfg.ensemble.unwrap().tls.unwrap();
        assert_eq!(quorum.tls.key_store, PathBuf::from("/member.pem"));
        assert_eq!(quorum.tls.trust_store, Some(PathBuf::from("/ca.pem")));
        assert_eq!(quorum.tls.client_auth, ClientAuth::Want);
        assert_eq!(quorum.tls.protocols, vec![TlsVersion::Tls13]);
        assert!(quorum.dial_tls && !quorum.accept_plain && quorum.hostname_verification);
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);

        // portUnification alone: TLS dialers are taken, peers still dialed plain.
        let cfg = parse(
            "portUnification=true\nssl.quorum.keyStore.location=/member.pem\n\
             ssl.quorum.trustStore.location=/ca.pem\nssl.quorum.hostnameVerification=false\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n",
        )
        .unwrap();
        let quorum = cfg.ensemble.unwrap().tls.unwrap();
        assert!(!quorum.dial_tls && quorum.accept_plain && !quorum.hostname_verification);
        assert_eq!(quorum.tls.client_auth, ClientAuth::Need);
        assert!(cfg.net.tls.is_none());
    }

    #[test]
    fn unknown_store_keys_are_warned_about() {
        let cfg = parse("ssl.quorum.keyStorePassword=x\nssl.nonsense=1\n").unwrap();
        assert_eq!(cfg.warnings.len(), 2, "{:?}", cfg.warnings);
    }

    #[test]
    fn plain_configurations_are_untouched() {
        let cfg = parse("clientPort=2181\nssl.keyStore.location=/k.pem\n").unwrap();
        assert!(cfg.net.client_port_enabled);
        assert!(cfg.net.tls.is_none());
        assert_eq!(cfg.net.secure_address, None);
        assert!(!cfg.server.x509_auth_enabled);
    }
}
