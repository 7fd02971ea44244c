//! Guards against authentication bugs: a digest that does not match ZooKeeper's
//! user:base64(sha1(user:password)) form, a super digest that does not pass every check,
//! whoAmI reporting the wrong identities, and a failed addAuth that leaves the session usable.
//!
//! Mirrors Apache ZooKeeper's AuthTest. Expected answers were checked against ZooKeeper 3.8.0
//! (kazoo and zkCli), except where 3.9 changed behaviour (noted).

use std::time::Duration;

use zookeeper_core::*;

mod common;
use common::{code, connect_as, connect_from};

/// `base64(sha1("alice:secret"))`, computed with python3's hashlib: a known vector, so a
/// broken digest function cannot agree with itself.
const ALICE_DIGEST_ID: &str = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";
/// `super:base64(sha1("super:test"))`, the super digest a server is configured with.
const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

fn server() -> Server {
    let (config, _clock) = ServerConfig::with_manual_clock();
    Server::start(config).unwrap()
}

fn super_server() -> Server {
    let (config, _clock) = ServerConfig::with_manual_clock();
    Server::start(ServerConfig {
        super_digest: Some(SUPER_DIGEST.to_string()),
        ..config
    })
    .unwrap()
}

fn info(scheme: &str, user: &str) -> ClientInfo {
    ClientInfo {
        auth_scheme: scheme.to_string(),
        user: user.to_string(),
    }
}

#[test]
fn super_digest_passes_every_check() {
    let server = super_server();
    let alice = connect_as(&server, "alice:secret");
    alice
        .create("/locked", b"x", &Acl::creator_all(), CreateMode::Persistent)
        .unwrap();
    alice
        .create(
            "/locked/k",
            b"",
            &Acl::creator_all(),
            CreateMode::Persistent,
        )
        .unwrap();
    alice
        .set_acl(
            "/locked",
            &[Acl::new(Perms::READ, Id::new("digest", ALICE_DIGEST_ID))],
            0,
        )
        .unwrap();

    let root = connect_as(&server, "super:test");
    assert_eq!(
        root.get_data("/locked", None).unwrap().0,
        Some(b"x".to_vec())
    );
    assert_eq!(root.get_children("/locked", None).unwrap(), vec!["k"]);
    // Super sees digests unmasked even without ADMIN in the ACL.
    assert_eq!(root.get_acl("/locked").unwrap().0[0].id.id, ALICE_DIGEST_ID);
    // The wrong super password is only an ordinary digest.
    let impostor = connect_as(&server, "super:wrong");
    assert_eq!(code(impostor.get_data("/locked", None)), ErrorCode::NoAuth);
    assert_eq!(
        impostor.whoami().unwrap(),
        vec![info("ip", "127.0.0.1"), info("digest", "super")]
    );

    root.set_data("/locked", b"y", -1).unwrap();
    root.create(
        "/locked/new",
        b"",
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .unwrap();
    root.delete("/locked/k", -1).unwrap();
    let stat = root.set_acl("/locked", &Acl::open_unsafe(), 1).unwrap();
    assert_eq!(stat.aversion, 2);
}

#[test]
fn whoami_lists_ip_then_digest_identities() {
    let server = super_server();
    let zk = server.connect().unwrap();
    assert_eq!(zk.whoami().unwrap(), vec![info("ip", "127.0.0.1")]);
    zk.add_auth("digest", b"alice:secret").unwrap();
    assert_eq!(
        zk.whoami().unwrap(),
        vec![info("ip", "127.0.0.1"), info("digest", "alice")]
    );
    // The same credential twice adds nothing.
    zk.add_auth("digest", b"alice:secret").unwrap();
    assert_eq!(zk.whoami().unwrap().len(), 2);

    let remote = connect_from(&server, "10.0.0.5");
    assert_eq!(remote.whoami().unwrap(), vec![info("ip", "10.0.0.5")]);

    let root = connect_as(&server, "super:test");
    assert_eq!(
        root.whoami().unwrap(),
        vec![
            info("ip", "127.0.0.1"),
            info("super", ""),
            info("digest", "super")
        ]
    );
}

#[test]
fn add_auth_with_unknown_scheme_fails_the_session_for_good() {
    let server = server();
    let (watcher, events) = Watcher::channel();
    let zk = server
        .connect_with(ConnectOptions {
            watcher: Some(watcher),
            ..ConnectOptions::default()
        })
        .unwrap();
    let connected = events.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        (connected.event_type, connected.state),
        (EventType::None, KeeperState::SyncConnected)
    );
    zk.create("/before", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();

    assert_eq!(
        code(zk.add_auth("bogus", b"whatever")),
        ErrorCode::AuthFailed
    );
    let failed = events.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(failed, WatchedEvent::state(KeeperState::AuthFailed));
    assert_eq!(zk.state(), ClientState::AuthFailed);

    assert_eq!(code(zk.get_data("/before", None)), ErrorCode::AuthFailed);
    assert_eq!(code(zk.exists("/missing", None)), ErrorCode::AuthFailed);
    assert_eq!(
        code(zk.create("/after", b"", &Acl::open_unsafe(), CreateMode::Persistent)),
        ErrorCode::AuthFailed
    );
    assert_eq!(code(zk.whoami()), ErrorCode::AuthFailed);
    assert_eq!(
        code(zk.add_auth("digest", b"alice:secret")),
        ErrorCode::AuthFailed
    );
    let again = events.recv_timeout(Duration::from_millis(100));
    assert!(again.is_err(), "AuthFailed is told once, then {again:?}");

    let other = server.connect().unwrap();
    assert!(other.exists("/before", None).unwrap().is_some());
    assert_eq!(other.exists("/after", None).unwrap(), None);
}
#[test]
fn digest_acl_matches_sha1_base64_of_user_and_password() {
    let server = server();
    let creator = server.connect().unwrap();
    let acl = vec![Acl::new(Perms::ALL, Id::new("digest", ALICE_DIGEST_ID))];
    creator
        .create("/alice", b"secret data", &acl, CreateMode::Persistent)
        .unwrap();
    assert_eq!(code(creator.get_data("/alice", None)), ErrorCode::NoAuth);

    let alice = connect_as(&server, "alice:secret");
    assert_eq!(
        alice.get_data("/alice", None).unwrap().0,
        Some(b"secret data".to_vec())
    );
    assert_eq!(alice.get_acl("/alice").unwrap().0, acl);

    let wrong_password = connect_as(&server, "alice:wrong");
    assert_eq!(
        code(wrong_password.get_data("/alice", None)),
        ErrorCode::NoAuth
    );
    let bob = connect_as(&server, "bob:pw");
    assert_eq!(code(bob.set_data("/alice", b"", -1)), ErrorCode::NoAuth);
}
