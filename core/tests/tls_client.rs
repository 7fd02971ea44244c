//! Guards against a native client that cannot reach a TLS client port, or that fails against
//! an untrusted server, a refused certificate or broken files without saying why.
//!
//! Certificates are made at test time with the openssl command line; nothing is committed.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::certificates::{ca, leaf};

use zookeeper_core::server::net::{ClientAuth, NetConfig, NetServer, TlsConfig, TlsVersion};
use zookeeper_core::{
    Acl, Client, ClientInfo, ClientTls, ConnectOptions, CreateMode, ErrorCode, Id, Perms, Server,
    ServerConfig,
};

const CLIENT_SUBJECT: &str = "CN=client,O=Example\\, Inc.";

/// A temporary directory with a CA, another CA, a server store and two clients' stores.
struct Certificates(PathBuf);

impl Certificates {
    fn make(test: &str) -> Certificates {
        let directory =
            std::env::temp_dir().join(format!("zkrs-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        ca(&directory, "ca");
        ca(&directory, "other-ca");
        let server = "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
        leaf(&directory, "server", "/CN=server", "ca", server);
        leaf(
            &directory,
            "client",
            "/O=Example, Inc./CN=client",
            "ca",
            "basicConstraints=CA:FALSE\n",
        );
        leaf(
            &directory,
            "stranger",
            "/CN=stranger",
            "other-ca",
            "basicConstraints=CA:FALSE\n",
        );
        Certificates(directory)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn client(&self, who: Option<&str>) -> ClientTls {
        ClientTls {
            ca_file: Some(self.path("ca.pem")),
            cert_file: who.map(|who| self.path(&format!("{who}-cert.pem"))),
            key_file: who.map(|who| self.path(&format!("{who}-key.pem"))),
            skip_verification: false,
        }
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tls_server(certificates: &Certificates, client_auth: ClientAuth) -> (Server, NetServer) {
    tls_server_with(certificates, client_auth, true)
}

fn tls_server_with(
    certificates: &Certificates,
    client_auth: ClientAuth,
    x509_auth_enabled: bool,
) -> (Server, NetServer) {
    let server = Server::start(ServerConfig {
        x509_auth_enabled,
        ..ServerConfig::default()
    })
    .unwrap();
    let net = NetServer::start(
        Arc::clone(server.engine()),
        NetConfig {
            client_port_enabled: false,
            secure_address: Some("127.0.0.1:0".parse().unwrap()),
            tls: Some(TlsConfig {
                key_store: certificates.path("server.pem"),
                trust_store: Some(certificates.path("ca.pem")),
                client_auth,
                protocols: vec![TlsVersion::Tls12, TlsVersion::Tls13],
                cipher_suites: None,
                reload_check_ms: 1_000,
            }),
            ..NetConfig::default()
        },
    )
    .unwrap();
    (server, net)
}

fn connect(net: &NetServer, tls: ClientTls) -> Result<Client, zookeeper_core::Error> {
    Client::connect(
        &net.secure_address().unwrap().to_string(),
        ConnectOptions {
            session_timeout_ms: 4_000,
            connect_timeout_ms: Some(2_000),
            tls: Some(tls),
            ..ConnectOptions::default()
        },
    )
}

fn refused(result: Result<Client, zookeeper_core::Error>, what: &str) -> zookeeper_core::Error {
    match result {
        Ok(_) => panic!("connected: expected {what}"),
        Err(error) => error,
    }
}

#[test]
fn a_client_certificate_is_an_x509_identity_over_mutual_tls() {
    let certificates = Certificates::make("x509");
    let (_server, net) = tls_server(&certificates, ClientAuth::Need);
    let zk = connect(&net, certificates.client(Some("client"))).unwrap();
    let acl = [Acl::new(Perms::ALL, Id::new("x509", CLIENT_SUBJECT))];
    zk.create("/mine", b"v".as_slice(), &acl, CreateMode::Persistent)
        .unwrap();
    assert_eq!(zk.get_data("/mine", None).unwrap().0, Some(b"v".to_vec()));
    // Frames larger than a TLS record and than one socket read come back whole.
    let big: Vec<u8> = (0..900_000u32).map(|i| (i % 251) as u8).collect();
    zk.create("/big", big.clone(), &acl, CreateMode::Persistent)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(zk.get_data("/big", None).unwrap().0, Some(big.clone()));
    }
    assert!(zk.whoami().unwrap().contains(&ClientInfo {
        auth_scheme: "x509".into(),
        user: CLIENT_SUBJECT.into(),
    }));
}

#[test]
fn an_untrusted_server_or_a_refused_certificate_is_a_clear_error() {
    let certificates = Certificates::make("refused");
    let (_server, net) = tls_server(&certificates, ClientAuth::Need);
    let wrong_ca = ClientTls {
        ca_file: Some(certificates.path("other-ca.pem")),
        ..certificates.client(Some("client"))
    };
    let error = refused(connect(&net, wrong_ca), "an untrusted server");
    assert_eq!(error.code(), ErrorCode::ConnectionLoss);
    let detail = error.detail().expect("why").to_string();
    assert!(
        detail.contains("TLS handshake") && detail.contains("UnknownIssuer"),
        "{detail}"
    );

    let stranger = certificates.client(Some("stranger"));
    let error = refused(connect(&net, stranger), "a refused certificate");
    let detail = error.detail().expect("why").to_string();
    assert!(detail.contains("alert"), "{detail}");

    let error = refused(connect(&net, certificates.client(None)), "no certificate");
    assert!(error.detail().expect("why").contains("alert"), "{error}");

    // Not verifying the server (kazoo's verify_certs=False) still offers our certificate.
    let unverified = ClientTls {
        ca_file: None,
        skip_verification: true,
        ..certificates.client(Some("client"))
    };
    let zk = connect(&net, unverified).unwrap();
    assert!(zk.exists("/", None).unwrap().is_some());
}

#[test]
fn broken_client_files_fail_at_once_with_the_file_named() {
    let certificates = Certificates::make("files");
    let (_server, net) = tls_server(&certificates, ClientAuth::None);
    let missing = ClientTls {
        ca_file: Some(certificates.path("nowhere.pem")),
        ..ClientTls::default()
    };
    let error = refused(connect(&net, missing), "a refusal");
    assert_eq!(error.code(), ErrorCode::BadArguments);
    assert!(error.to_string().contains("nowhere.pem"), "{error}");
    let no_ca = ClientTls::default();
    let error = refused(connect(&net, no_ca), "a refusal");
    assert!(error.to_string().contains("CA file"), "{error}");
    // With client auth off, a client without a certificate is served.
    let zk = connect(&net, certificates.client(None)).unwrap();
    assert!(zk.exists("/", None).unwrap().is_some());
}

#[test]
fn without_the_x509_provider_a_presented_certificate_is_refused() {
    // ZooKeeper's CertificateVerifier closes such a connection ("X509 Auth provider not
    // found"); its zoo.cfg path always registers the provider with a TLS port, the embedding
    // API leaves it to the caller.
    let certificates = Certificates::make("no-provider");
    let (_server, net) = tls_server_with(&certificates, ClientAuth::Want, false);
    let error = refused(
        connect(&net, certificates.client(Some("client"))),
        "a certificate nobody maps to an id",
    );
    assert_eq!(error.code(), ErrorCode::ConnectionLoss);
    assert!(
        error.detail().expect("why").contains("TLS connection"),
        "{error}"
    );
    // An anonymous client is still served (clientAuth=want).
    let zk = connect(&net, certificates.client(None)).unwrap();
    assert!(zk.exists("/", None).unwrap().is_some());
}
