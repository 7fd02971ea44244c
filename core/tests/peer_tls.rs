//! Guards against members that talk in the clear under `sslQuorum`, that let in a member
//! whose certificate another CA signed or names another host, that cannot be moved from
//! plain to TLS one at a time (`portUnification`), or that keep an old certificate after its
//! files changed.
//!
//! Certificates are made at test time with the openssl command line; nothing is committed.

mod common;
// Not in common/: the CLI's suites share common/ and have no raft crate.
#[path = "common/peers.rs"]
mod peers;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use zookeeper_core::replication::{PeerTlsConfig, TcpTransportConfig, Transport};
use zookeeper_core::server::net::{ClientAuth, TlsConfig, TlsVersion};

use common::certificates::{ca, leaf};
use common::wait_for;
use peers::{bind, ensemble_id, raft_message, Member, WAIT};

const SECRET: &[u8] = b"the ensemble's shared secret";

/// A directory with the CA members trust, another CA, and member stores: `member` (for
/// 127.0.0.1 and localhost), `elsewhere` (trusted, but for another host) and `stranger`
/// (for 127.0.0.1, signed by the other CA).
struct Certificates(PathBuf);

impl Certificates {
    fn make(test: &str) -> Certificates {
        let directory =
            std::env::temp_dir().join(format!("zkrs-peer-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        ca(&directory, "ca");
        ca(&directory, "other-ca");
        let loopback = "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
        leaf(&directory, "member", "/CN=member", "ca", loopback);
        leaf(&directory, "stranger", "/CN=stranger", "other-ca", loopback);
        let elsewhere = "basicConstraints=CA:FALSE\nsubjectAltName=DNS:elsewhere.example\n";
        leaf(&directory, "elsewhere", "/CN=elsewhere", "ca", elsewhere);
        Certificates(directory)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// TLS with `store` (a name above), trusting `ca`.
    fn tls(&self, store: &str, dial_tls: bool, accept_plain: bool) -> PeerTlsConfig {
        PeerTlsConfig {
            tls: TlsConfig {
                key_store: self.path(&format!("{store}.pem")),
                trust_store: Some(self.path("ca.pem")),
                client_auth: ClientAuth::Need,
                protocols: vec![TlsVersion::Tls13, TlsVersion::Tls12],
                cipher_suites: None,
                reload_check_ms: 1_000,
            },
            dial_tls,
            accept_plain,
            hostname_verification: true,
        }
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Member `raft_id` of `ensemble` with one peer, quick reconnects and `tls`.
fn config(
    ensemble: u64,
    raft_id: u64,
    address: SocketAddr,
    peer: (u64, SocketAddr),
    tls: Option<PeerTlsConfig>,
) -> TcpTransportConfig {
    TcpTransportConfig {
        reconnect_backoff_ms_min: 10,
        reconnect_backoff_ms_max: 100,
        tls,
        // What member_setup takes from the peer's server.N line.
        peer_hosts: BTreeMap::from([(peer.0, "127.0.0.1".to_string())]),
        ..TcpTransportConfig::new(raft_id, ensemble, SECRET, address, BTreeMap::from([peer]))
    }
}

/// Members 1 and 2 with the given TLS, member 1 dialing 2 at `via` (2's address if None).
fn two_members(
    tls_1: Option<PeerTlsConfig>,
    tls_2: Option<PeerTlsConfig>,
    via: impl FnOnce(SocketAddr) -> SocketAddr,
) -> (Member, Member, u64) {
    let ensemble = ensemble_id();
    let ((listener_1, address_1), (listener_2, address_2)) = (bind(), bind());
    let one = Member::start(
        config(ensemble, 1, address_1, (2, via(address_2)), tls_1),
        Some(listener_1),
    );
    let two = Member::start(
        config(ensemble, 2, address_2, (1, address_1), tls_2),
        Some(listener_2),
    );
    (one, two, ensemble)
}

/// Sends a heartbeat each way and waits for both.
fn assert_exchange(one: &Member, two: &Member, commit: u64) {
    one.transport.send(1, 2, raft_message(1, 2, commit));
    two.transport.send(2, 1, raft_message(2, 1, commit + 1));
    assert_eq!(two.next(), (1, raft_message(1, 2, commit)));
    assert_eq!(one.next(), (2, raft_message(2, 1, commit + 1)));
}

/// Relays connections to `target`, keeping every byte the dialers sent.
fn sniffing_relay(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let (listener, address) = bind();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    std::thread::spawn(move || {
        for dialer in listener.incoming() {
            let (Ok(mut dialer), Ok(mut upstream)) = (dialer, TcpStream::connect(target)) else {
                continue;
            };
            let (mut back_from, mut back_to) =
                (upstream.try_clone().unwrap(), dialer.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut back_from, &mut back_to));
            let kept = Arc::clone(&kept);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read @ 1..) = dialer.read(&mut buffer) {
                    kept.lock().unwrap().extend_from_slice(&buffer[..read]);
                    if upstream.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (address, seen)
}

#[test]
fn members_talk_tls_only_and_a_plain_dialer_is_refused() {
    let certificates = Certificates::make("tls-only");
    let tls = || Some(certificates.tls("member", true, false));
    let mut relay = None;
    let (one, two, ensemble) = two_members(tls(), tls(), |address_2| {
        let (address, seen) = sniffing_relay(address_2);
        relay = Some(seen);
        address
    });
    for commit in [10, 20, 30] {
        assert_exchange(&one, &two, commit);
    }
    let seen = relay.unwrap().lock().unwrap().clone();
    assert_eq!(
        seen.first(),
        Some(&0x16),
        "a TLS handshake record comes first"
    );
    // The shared-secret hello ("zkrp", the raft ids) never shows on the wire.
    assert!(!seen.windows(4).any(|window| window == b"zkrp"));
    for stats in [one.transport.stats(), two.transport.stats()] {
        assert_eq!(
            (stats.connects, stats.accepts, stats.refused_handshakes),
            (1, 1, 0)
        );
    }

    // A member without TLS, holding the secret, is refused before its hello is read.
    let (listener_3, address_3) = bind();
    let address_2 = two.transport.local_address();
    let plain = Member::start(
        config(ensemble, 1, address_3, (2, address_2), None),
        Some(listener_3),
    );
    wait_for("the plain dialer's refusal", || {
        two.transport.stats().refused_handshakes >= 1
    });
    assert_eq!(plain.transport.stats().connects, 0);
    assert_eq!(two.transport.stats().accepts, 1);
}

/// Waits until both members refused each other's dial and accept, then checks nothing got
/// through.
fn assert_refused_both_ways(one: &Member, two: &Member) {
    wait_for("both members' refusals", || {
        one.transport.stats().refused_handshakes >= 2
            && two.transport.stats().refused_handshakes >= 2
    });
    for stats in [one.transport.stats(), two.transport.stats()] {
        assert_eq!(
            (stats.connects, stats.accepts, stats.delivered),
            (0, 0, 0),
            "{stats:?}"
        );
    }
}

#[test]
fn a_certificate_from_another_ca_is_refused_both_ways() {
    let certificates = Certificates::make("stranger");
    let (one, two, _) = two_members(
        Some(certificates.tls("stranger", true, false)),
        Some(certificates.tls("member", true, false)),
        |address| address,
    );
    one.transport.send(1, 2, raft_message(1, 2, 1));
    assert_refused_both_ways(&one, &two);
}

#[test]
fn a_certificate_for_another_host_is_refused_unless_names_are_not_verified() {
    let certificates = Certificates::make("hostname");
    let (one, two, _) = two_members(
        Some(certificates.tls("member", true, false)),
        Some(certificates.tls("elsewhere", true, false)),
        |address| address,
    );
    assert_refused_both_ways(&one, &two);
    drop((one, two));

    // ssl.quorum.hostnameVerification=false: the chain still counts, the name does not.
    let unverified = |store| PeerTlsConfig {
        hostname_verification: false,
        ..certificates.tls(store, true, false)
    };
    let (one, two, _) = two_members(
        Some(unverified("member")),
        Some(unverified("elsewhere")),
        |address| address,
    );
    assert_exchange(&one, &two, 5);
}

#[test]
fn port_unification_lets_plain_and_tls_members_meet_during_a_rolling_change() {
    let certificates = Certificates::make("unification");
    // Member 1 still dials plain; member 2 already dials TLS. Both take either.
    let (one, two, _) = two_members(
        Some(certificates.tls("member", false, true)),
        Some(certificates.tls("member", true, true)),
        |address| address,
    );
    assert_exchange(&one, &two, 7);
    // And a member not yet configured for TLS at all reaches a unified port.
    drop((one, two));
    let (one, two, _) = two_members(
        None,
        Some(certificates.tls("member", false, true)),
        |address| address,
    );
    assert_exchange(&one, &two, 9);
}

#[test]
fn changed_store_files_are_used_from_the_next_connection() {
    let certificates = Certificates::make("reload");
    let store = certificates.path("member-1.pem");
    std::fs::copy(certificates.path("stranger.pem"), &store).unwrap();
    let (one, two, _) = two_members(
        Some(certificates.tls("member-1", true, false)),
        Some(certificates.tls("member", true, false)),
        |address| address,
    );
    one.transport.send(1, 2, raft_message(1, 2, 1));
    wait_for("the stranger's refusal", || {
        two.transport.stats().refused_handshakes >= 1
    });
    // Written aside and renamed in, as a careful operator (or a certificate agent) would.
    let fresh = certificates.path("member-1.pem.new");
    std::fs::copy(certificates.path("member.pem"), &fresh).unwrap();
    std::fs::rename(&fresh, &store).unwrap();
    // The heartbeat waited in member 1's queue meanwhile.
    assert_eq!(two.next(), (1, raft_message(1, 2, 1)));
    assert_exchange(&one, &two, 11);
}

#[test]
fn a_tls_handshake_that_never_finishes_is_cut_at_the_handshake_timeout() {
    let certificates = Certificates::make("stalled");
    let (listener, address) = bind();
    let (_, nobody) = bind();
    let member = Member::start(
        TcpTransportConfig {
            handshake_timeout_ms: 200,
            ..config(
                ensemble_id(),
                2,
                address,
                (1, nobody),
                Some(certificates.tls("member", true, false)),
            )
        },
        Some(listener),
    );
    // The first byte of a TLS record, then silence.
    let mut stalled = TcpStream::connect(address).unwrap();
    stalled.write_all(&[0x16]).unwrap();
    stalled.set_read_timeout(Some(WAIT)).unwrap();
    let started = std::time::Instant::now();
    let mut byte = [0u8; 1];
    let closed = matches!(stalled.read(&mut byte), Ok(0) | Err(_));
    assert!(
        closed && started.elapsed() < WAIT / 2,
        "{:?}",
        started.elapsed()
    );
    wait_for("the stalled handshake's refusal", || {
        member.transport.stats().refused_handshakes == 1
    });
}
