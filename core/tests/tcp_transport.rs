//! Guards against a peer transport that loses, reorders or corrupts what members send each
//! other, lets a stranger in, or cannot find a peer again after it restarts: transports on
//! loopback exchange every kind of message, refuse members without the secret, of another
//! ensemble or not configured, survive garbage, queue for a peer that is away, and carry a
//! whole ensemble of engines through an election, writes and the loss of its leader.

mod common;
// Not in common/: the CLI's suites share common/ and have no raft crate.
#[path = "common/peers.rs"]
mod peers;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper_core::client::Client;
use zookeeper_core::replication::{
    raft_id, PeerMessage, TcpTransport, TcpTransportConfig, Transport,
};
use zookeeper_core::storage::FakeDisk;
use zookeeper_core::{Acl, CreateMode, EnsembleConfig, Server, ServerConfig};

use common::wait_for;
use peers::{bind, ensemble_id, raft_message, Member, WAIT};

const SECRET: &[u8] = b"the ensemble's shared secret";

/// A configuration with quick reconnects, for loopback.
fn config(
    ensemble_id: u64,
    raft_id: u64,
    address: SocketAddr,
    peers: &[(u64, SocketAddr)],
) -> TcpTransportConfig {
    TcpTransportConfig {
        reconnect_backoff_ms_min: 10,
        reconnect_backoff_ms_max: 100,
        ..TcpTransportConfig::new(
            raft_id,
            ensemble_id,
            SECRET,
            address,
            peers.iter().copied().collect(),
        )
    }
}

/// A configuration that dials once within any test (a refused dial is not retried soon), so
/// refusals can be counted exactly.
fn dial_once(config: TcpTransportConfig) -> TcpTransportConfig {
    TcpTransportConfig {
        reconnect_backoff_ms_min: 600_000,
        reconnect_backoff_ms_max: 600_000,
        ..config
    }
}

/// Members 1 and 2 of `ensemble`, each the other's peer, and their addresses.
fn two_members(ensemble: u64) -> (Member, Member, (SocketAddr, SocketAddr)) {
    let ((listener_1, address_1), (listener_2, address_2)) = (bind(), bind());
    let one = Member::start(
        config(ensemble, 1, address_1, &[(2, address_2)]),
        Some(listener_1),
    );
    let two = Member::start(
        config(ensemble, 2, address_2, &[(1, address_1)]),
        Some(listener_2),
    );
    (one, two, (address_1, address_2))
}

fn touches(number: i64) -> PeerMessage {
    PeerMessage::Touches(vec![number])
}

#[test]
fn two_transports_exchange_every_kind_of_message_in_order() {
    let (one, two, _) = two_members(ensemble_id());
    let to_two = vec![
        raft_message(1, 2, 10),
        PeerMessage::Forward {
            term: 3,
            run: 1,
            requests: Vec::new(),
        },
        PeerMessage::ForwardAck {
            term: 3,
            run: 1,
            through: 7,
        },
        touches(-5),
        raft_message(1, 2, 11),
    ];
    for message in &to_two {
        one.transport.send(1, 2, message.clone());
    }
    two.transport.send(2, 1, raft_message(2, 1, 12));
    for message in to_two {
        assert_eq!(two.next(), (1, message));
    }
    assert_eq!(one.next(), (2, raft_message(2, 1, 12)));

    // A writer counts a batch once written, which may be after the peer read it.
    wait_for("the writers' counts", || {
        one.transport.stats().sent == 5 && two.transport.stats().sent == 1
    });
    let (stats_1, stats_2) = (one.transport.stats(), two.transport.stats());
    assert_eq!((stats_1.sent, stats_1.delivered), (5, 1));
    assert_eq!((stats_2.sent, stats_2.delivered), (1, 5));
    for stats in [stats_1, stats_2] {
        assert_eq!((stats.connects, stats.accepts), (1, 1));
        assert_eq!(
            (
                stats.refused_handshakes,
                stats.frames_rejected,
                stats.dropped_queue_full
            ),
            (0, 0, 0)
        );
    }
}

#[test]
fn a_peer_without_the_secret_is_refused_both_ways() {
    let ensemble = ensemble_id();
    let ((listener_1, address_1), (listener_2, address_2)) = (bind(), bind());
    let one = Member::start(
        dial_once(config(ensemble, 1, address_1, &[(2, address_2)])),
        Some(listener_1),
    );
    let two = Member::start(
        TcpTransportConfig {
            secret: b"not the ensemble's secret".to_vec(),
            ..dial_once(config(ensemble, 2, address_2, &[(1, address_1)]))
        },
        Some(listener_2),
    );
    one.transport.send(1, 2, touches(1));
    two.transport.send(2, 1, touches(2));
    // Each refuses the other's dial when its proof fails.
    wait_for("both refusals", || {
        one.transport.stats().refused_handshakes == 1
            && two.transport.stats().refused_handshakes == 1
    });
    for member in [&one, &two] {
        let stats = member.transport.stats();
        assert_eq!(
            (stats.connects, stats.accepts, stats.sent, stats.delivered),
            (0, 0, 0, 0)
        );
        assert!(member.received.is_empty());
    }
}

#[test]
fn a_member_not_in_the_peer_set_is_refused() {
    let ensemble = ensemble_id();
    let ((listener_1, address_1), (listener_9, address_9)) = (bind(), bind());
    let (_down, address_2) = bind(); // member 2 is down: nobody takes its connections
    let one = Member::start(
        config(ensemble, 1, address_1, &[(2, address_2)]),
        Some(listener_1),
    );
    let stranger = Member::start(
        dial_once(config(ensemble, 9, address_9, &[(1, address_1)])),
        Some(listener_9),
    );
    stranger.transport.send(9, 1, touches(9));
    wait_for("the refusal", || {
        one.transport.stats().refused_handshakes == 1
    });
    assert_eq!(one.transport.stats().accepts, 0);
    assert_eq!(one.transport.stats().delivered, 0);
    assert!(one.received.is_empty());
    assert_eq!(stranger.transport.stats().connects, 0);
}

#[test]
fn a_member_of_another_ensemble_is_refused() {
    let ensemble = ensemble_id();
    let ((listener_1, address_1), (listener_2, address_2)) = (bind(), bind());
    let one = Member::start(
        dial_once(config(ensemble, 1, address_1, &[(2, address_2)])),
        Some(listener_1),
    );
    let other = Member::start(
        TcpTransportConfig {
            ensemble_id: ensemble + 1,
            ..dial_once(config(ensemble, 2, address_2, &[(1, address_1)]))
        },
        Some(listener_2),
    );
    other.transport.send(2, 1, touches(2));
    // Each refuses the other's dial.
    wait_for("the refusals", || {
        one.transport.stats().refused_handshakes == 1
            && other.transport.stats().refused_handshakes == 1
    });
    assert_eq!(one.transport.stats().accepts, 0);
    assert_eq!(one.transport.stats().delivered, 0);
    assert!(one.received.is_empty());
}

#[test]
fn garbage_and_a_4_gib_header_before_the_handshake_are_refused_and_peers_still_served() {
    use std::io::{Read, Write};

    let ensemble = ensemble_id();

    let ((listener_1, address_1), (listener_2, address_2)) = (bind(), bind());
    let one = Member::start(
        config(ensemble, 1, address_1, &[(2, address_2)]),
        Some(listener_1),
    );
    let refused = |bytes: &[u8]| {
        let mut stream = TcpStream::connect(address_1).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(bytes).unwrap();
        let mut answer = Vec::new();
        // Closed without a byte in answer (a reset counts as closed too).
        match stream.read_to_end(&mut answer) {
            Ok(0) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("{other:?} {answer:?}"),
        }
    };
    refused(b"\x8b\x02garbage that is no hello at all");
    refused(&u32::MAX.to_be_bytes());
    refused(b"ruok");
    wait_for("three refusals", || {
        one.transport.stats().refused_handshakes == 3
    });

    let two = Member::start(
        config(ensemble, 2, address_2, &[(1, address_1)]),
        Some(listener_2),
    );
    two.transport.send(2, 1, touches(2));
    assert_eq!(one.next(), (2, touches(2)));
    assert_eq!(one.transport.stats().refused_handshakes, 3);
    assert_eq!(one.transport.stats().frames_rejected, 0);
}

#[test]
fn messages_wait_for_a_peer_that_is_away_up_to_the_queue_limit() {
    let ensemble = ensemble_id();
    // Member 2 is down: its port is held, but nobody takes the connections waiting there.
    let ((listener_1, address_1), (listener_2, address_2)) = (bind(), bind());
    let one = Member::start(
        TcpTransportConfig {
            messages_queued_max: 4,
            ..config(ensemble, 1, address_1, &[(2, address_2)])
        },
        Some(listener_1),
    );
    for number in 0..10 {
        one.transport.send(1, 2, touches(number));
    }
    one.transport.send(1, 3, touches(99)); // not a peer
    let stats = one.transport.stats();
    assert_eq!((stats.dropped_queue_full, stats.dropped_no_link), (6, 1));

    // Member 2 comes up: the four queued messages arrive, in order.
    let two = Member::start(
        config(ensemble, 2, address_2, &[(1, address_1)]),
        Some(listener_2),
    );
    for number in 0..4 {
        assert_eq!(two.next(), (1, touches(number)));
    }
    one.transport.send(1, 2, touches(4));
    assert_eq!(two.next(), (1, touches(4)));
    wait_for("the writer's count", || one.transport.stats().sent == 5);
    assert_eq!(one.transport.stats().connects, 1);
}

#[test]
fn a_restarted_peer_is_dialed_again_and_gets_later_messages() {
    let ensemble = ensemble_id();
    let (one, two, (address_1, address_2)) = two_members(ensemble);
    one.transport.send(1, 2, touches(0));
    assert_eq!(two.next(), (1, touches(0)));

    two.transport.stop();
    drop(two);
    let two = Member::start(config(ensemble, 2, address_2, &[(1, address_1)]), None);
    // Messages written into the old connection before its loss shows are lost (raft sends
    // again); once member 1 dials the new member 2, every later message arrives, in order.
    let mut number = 1;
    let first = loop {
        one.transport.send(1, 2, touches(number));
        if let Ok(received) = two.received.recv_timeout(Duration::from_millis(20)) {
            break received;
        }
        number += 1;
        assert!(number < 1_000, "{:?}", one.transport.stats());
    };
    let PeerMessage::Touches(first) = first.1 else {
        panic!("{first:?}");
    };
    for later in number + 1..number + 20 {
        one.transport.send(1, 2, touches(later));
    }
    let mut expected = first[0];
    while expected < number {
        expected += 1;
        assert_eq!(two.next(), (1, touches(expected)));
    }
    for later in number + 1..number + 20 {
        assert_eq!(two.next(), (1, touches(later)));
    }
    assert_eq!(one.transport.stats().connects, 2);
    assert_eq!(two.transport.stats().accepts, 1);
}

#[test]
fn set_peers_starts_and_stops_links() {
    let ensemble = ensemble_id();
    let ((listener_1, address_1), (listener_2, address_2)) = (bind(), bind());
    let one = Member::start(config(ensemble, 1, address_1, &[]), Some(listener_1));
    let two = Member::start(
        config(ensemble, 2, address_2, &[(1, address_1)]),
        Some(listener_2),
    );
    one.transport.send(1, 2, touches(1));
    assert_eq!(one.transport.stats().dropped_no_link, 1);
    // Member 1 does not know member 2 yet: refused.
    two.transport.send(2, 1, touches(2));
    wait_for("a refusal", || {
        one.transport.stats().refused_handshakes >= 1
    });

    one.transport
        .set_peers(BTreeMap::from([(2, address_2)]))
        .unwrap();
    one.transport.send(1, 2, touches(3));
    assert_eq!(two.next(), (1, touches(3)));
    // Member 2 dials again with backoff and gets in now; what it queued meanwhile arrives.
    assert_eq!(one.next(), (2, touches(2)));

    one.transport.set_peers(BTreeMap::new()).unwrap();
    one.transport.send(1, 2, touches(4));
    assert_eq!(one.transport.stats().dropped_no_link, 2);
    assert!(one
        .transport
        .set_peers(BTreeMap::from([(1, address_2)]))
        .is_err());
}

/// Member `member_id` of a three-member ensemble over `transport`, with the in-process
/// ensemble's quick raft timing and a disk in memory.
fn member_server(member_id: u8, transport: &Arc<TcpTransport>) -> Server {
    let config = ServerConfig {
        member_id,
        voters: vec![0, 1, 2],
        transport: Some(transport.clone()),
        data_dir: Some(PathBuf::from(format!("/zookeeper/member-{member_id}"))),
        disk: Arc::new(FakeDisk::new()),
        raft_seed: 7,
        ..EnsembleConfig::default().server
    };
    let server = Server::start(config).unwrap();
    transport.attach(server.engine());
    server
}

/// The member that leads and serves, among `candidates`.
fn wait_for_leader(servers: &[Server], candidates: &[usize]) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        let leader = candidates.iter().copied().find(|&member| {
            let engine = servers[member].engine();
            engine.is_leader() && engine.is_serving()
        });
        if let Some(leader) = leader {
            return leader;
        }
        assert!(Instant::now() < deadline, "no leader among {candidates:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A session on `server`, once the member serves.
fn connect(server: &Server) -> Client {
    wait_for("the member to serve", || server.engine().is_serving());
    server.connect().unwrap()
}

#[test]
fn an_ensemble_over_tcp_elects_replicates_and_survives_losing_its_leader_s_transport() {
    let ensemble = ensemble_id();
    let bound: Vec<(TcpListener, SocketAddr)> = (0..3).map(|_| bind()).collect();
    let addresses: Vec<SocketAddr> = bound.iter().map(|(_, address)| *address).collect();
    let transports: Vec<Arc<TcpTransport>> = bound
        .into_iter()
        .enumerate()
        .map(|(member, (listener, address))| {
            let peers: Vec<(u64, SocketAddr)> = (0..3)
                .filter(|other| *other != member)
                .map(|other| (raft_id(other as u8), addresses[other]))
                .collect();
            TcpTransport::start_on(
                config(ensemble, raft_id(member as u8), address, &peers),
                listener,
            )
            .unwrap()
        })
        .collect();
    let servers: Vec<Server> = (0..3)
        .map(|member| member_server(member as u8, &transports[member]))
        .collect();

    let leader = wait_for_leader(&servers, &[0, 1, 2]);
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    // Writes from a follower's client are forwarded to the leader over TCP.
    let zk = connect(&servers[follower]);
    let (path, created) = zk
        .create2("/tcp", b"v1", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(path, "/tcp");
    let updated = zk.set_data("/tcp", b"v2", 0).unwrap();
    assert_eq!(updated.version, 1);
    assert!(updated.mzxid > created.czxid);
    assert_eq!(updated.czxid, created.czxid);
    assert_eq!(
        zk.get_data("/tcp", None).unwrap(),
        (Some(b"v2".to_vec()), updated)
    );
    let reader = connect(&servers[other]);
    reader.sync("/tcp").unwrap();
    assert_eq!(
        reader.get_data("/tcp", None).unwrap(),
        (Some(b"v2".to_vec()), updated)
    );
    for transport in &transports {
        let stats = transport.stats();
        assert!(stats.sent > 0 && stats.delivered > 0, "{stats:?}");
        assert_eq!((stats.connects, stats.accepts), (2, 2), "{stats:?}");
        assert_eq!((stats.refused_handshakes, stats.frames_rejected), (0, 0));
    }

    // The leader's network goes: the other two elect a new leader and take writes.
    transports[leader].stop();
    let new_leader = wait_for_leader(&servers, &[follower, other]);
    wait_for("the follower to serve under the new leader", || {
        servers[follower].engine().is_serving()
    });
    let after = zk.set_data("/tcp", b"v3", 1).unwrap();
    assert_eq!(after.version, 2);
    assert!(after.mzxid > updated.mzxid);
    let survivor = connect(&servers[new_leader]);
    survivor.sync("/tcp").unwrap();
    assert_eq!(
        survivor.get_data("/tcp", None).unwrap(),
        (Some(b"v3".to_vec()), after)
    );
    let survivor_stats = transports[new_leader].stats();
    assert_eq!(survivor_stats.refused_handshakes, 0);
    // The old leader, cut off, hears from no quorum and steps down (check-quorum).
    wait_for("the old leader to step down", || {
        !servers[leader].engine().is_leader() && !servers[leader].engine().is_serving()
    });

    drop((zk, reader, survivor));
    drop(servers);
    for transport in &transports {
        transport.stop();
    }
}

/// Records what a transport tells its engine about peers' connections ending.
#[derive(Default)]
struct LossRecorder {
    received: parking_lot::Mutex<Vec<u64>>,
    lost: parking_lot::Mutex<Vec<u64>>,
}

impl zookeeper_core::replication::PeerReceiver for LossRecorder {
    fn receive(&self, from: u64, _message: PeerMessage) {
        self.received.lock().push(from);
    }

    fn peer_lost(&self, from: u64) {
        self.lost.lock().push(from);
    }
}

#[test]
fn a_peer_whose_connection_ends_on_its_side_is_reported_lost_and_a_stop_reports_nothing() {
    let ensemble = ensemble_id();
    let ((listener_1, address_1), (listener_2, address_2)) = (bind(), bind());
    let one = TcpTransport::start_on(
        config(ensemble, 1, address_1, &[(2, address_2)]),
        listener_1,
    )
    .unwrap();
    let two = TcpTransport::start_on(
        config(ensemble, 2, address_2, &[(1, address_1)]),
        listener_2,
    )
    .unwrap();
    let (heard_by_one, heard_by_two) = (
        Arc::new(LossRecorder::default()),
        Arc::new(LossRecorder::default()),
    );
    one.attach(&heard_by_one);
    two.attach(&heard_by_two);
    // Both directions connected: each has heard from the other.
    wait_for("both directions to connect", || {
        one.send(1, 2, touches(1));
        two.send(2, 1, touches(2));
        !heard_by_one.received.lock().is_empty() && !heard_by_two.received.lock().is_empty()
    });
    two.stop();
    wait_for("member 1 to hear of the loss", || {
        !heard_by_one.lost.lock().is_empty()
    });
    assert_eq!(*heard_by_one.lost.lock(), vec![2]);
    // Member 2 closed its own connections: it hears of no loss.
    assert!(heard_by_two.lost.lock().is_empty());
    one.stop();
    assert_eq!(*heard_by_one.lost.lock(), vec![2]);
}
