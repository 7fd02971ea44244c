//! Guards against a peer connection that lets a misbehaving member in or takes a whole member
//! down: raw clients that pass the real handshake and then send what no member sends (a frame
//! header claiming 4 GiB, a frame that is not a message), duplicate and removed members, and
//! more connections than allowed.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::handshake::{self, Deadline, HandshakeError, Identity};
use super::tls::PeerStream;
use super::{codec, frame, TcpTransport, TcpTransportConfig, TcpTransportStats};
use crate::replication::PeerMessage;

const SECRET: &[u8] = b"the ensemble's shared secret";
const ENSEMBLE_ID: u64 = 0x2a;
const WAIT: Duration = Duration::from_secs(10);

/// A peer that is down: its port is held (no other test can take it), but nobody takes the
/// connections waiting there.
fn down() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    (listener, address)
}

/// What a transport received (the probe lives as long as the test holds this: the transport
/// keeps only a weak reference).
struct Received {
    _probe: Arc<Sender<(u64, PeerMessage)>>,
    messages: Receiver<(u64, PeerMessage)>,
}

impl std::ops::Deref for Received {
    type Target = Receiver<(u64, PeerMessage)>;

    fn deref(&self) -> &Self::Target {
        &self.messages
    }
}

/// A transport for raft id 1 with `peers`, its messages going to the returned channel.
fn start(
    peers: BTreeMap<u64, SocketAddr>,
    change: impl FnOnce(&mut TcpTransportConfig),
) -> (Arc<TcpTransport>, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = TcpTransportConfig::new(
        1,
        ENSEMBLE_ID,
        SECRET,
        listener.local_addr().unwrap(),
        peers,
    );
    change(&mut config);
    let transport = TcpTransport::start_on(config, listener).unwrap();
    let (probe, messages) = crossbeam_channel::unbounded();
    let probe = Arc::new(probe);
    transport.attach(&probe);
    (
        transport,
        Received {
            _probe: probe,
            messages,
        },
    )
}

/// A raw connection to `transport` that passed the handshake as member `raft_id`.
fn raw_peer(transport: &TcpTransport, raft_id: u64) -> TcpStream {
    let stream = TcpStream::connect(transport.local_address()).unwrap();
    let me = Identity {
        ensemble_id: ENSEMBLE_ID,
        raft_id,
        secret: SECRET,
    };
    dial_on(&stream, me, transport.raft_id()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// Runs a dialer's handshake as `me` to `peer` over a plain connection.
fn dial_on(socket: &TcpStream, me: Identity<'_>, peer: u64) -> Result<(), HandshakeError> {
    let mut stream = PeerStream::Plain(socket.try_clone().unwrap());
    handshake::dial(&mut stream, me, peer, &Deadline::new(WAIT))
}

fn frame_of(message: &PeerMessage) -> Vec<u8> {
    let mut bytes = Vec::new();
    frame::push_frame(&mut bytes, u32::MAX, |out| codec::encode(message, out)).unwrap();
    bytes
}

/// Waits until the transport closes `stream` (a read ends or is reset).
fn assert_closed(mut stream: &TcpStream) {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the connection is still open: {other:?}"),
    }
}

fn wait_for_stats(transport: &TcpTransport, done: impl Fn(&TcpTransportStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done(&transport.stats()) {
        assert!(Instant::now() < deadline, "{:?}", transport.stats());
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_4_gib_frame_header_after_the_handshake_closes_only_its_connection() {
    let ((_down_2, address_2), (_down_3, address_3)) = (down(), down());
    let (transport, received) = start(BTreeMap::from([(2, address_2), (3, address_3)]), |_| {});
    let mut raw = raw_peer(&transport, 2);
    raw.write_all(&frame_of(&PeerMessage::Touches(vec![21])))
        .unwrap();
    raw.write_all(&u32::MAX.to_be_bytes()).unwrap();
    // Were the body allocated and awaited, the connection would stay open.
    assert_closed(&raw);
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        (2, PeerMessage::Touches(vec![21]))
    );
    wait_for_stats(&transport, |stats| stats.frames_rejected == 1);

    // Member 3 still gets through, and so does member 2 on a new connection.
    let mut raw = raw_peer(&transport, 3);
    raw.write_all(&frame_of(&PeerMessage::Touches(vec![31])))
        .unwrap();
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        (3, PeerMessage::Touches(vec![31]))
    );
    let mut raw = raw_peer(&transport, 2);
    raw.write_all(&frame_of(&PeerMessage::Touches(vec![22])))
        .unwrap();
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        (2, PeerMessage::Touches(vec![22]))
    );
    let stats = transport.stats();
    assert_eq!(
        (stats.accepts, stats.delivered, stats.frames_rejected),
        (3, 3, 1)
    );
}

#[test]
fn a_frame_that_is_not_a_message_closes_its_connection() {
    let (_down_2, address_2) = down();
    let (transport, received) = start(BTreeMap::from([(2, address_2)]), |_| {});
    let mut raw = raw_peer(&transport, 2);
    let mut bytes = frame_of(&PeerMessage::ForwardAck {
        term: 1,
        run: 2,
        through: 3,
    });
    frame::push_frame(&mut bytes, u32::MAX, |out| {
        out.extend_from_slice(&[7, 1, 2])
    })
    .unwrap();
    bytes.extend_from_slice(&frame_of(&PeerMessage::Touches(vec![1])));
    raw.write_all(&bytes).unwrap();
    assert_closed(&raw);
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        (
            2,
            PeerMessage::ForwardAck {
                term: 1,
                run: 2,
                through: 3
            }
        )
    );
    wait_for_stats(&transport, |stats| stats.frames_rejected == 1);
    assert!(received.is_empty(), "nothing after the bad frame");
    assert_eq!(transport.stats().delivered, 1);
}

#[test]
fn a_member_s_new_connection_replaces_its_old_one() {
    let (_down_2, address_2) = down();
    let (transport, received) = start(BTreeMap::from([(2, address_2)]), |_| {});
    let old = raw_peer(&transport, 2);
    let mut new = raw_peer(&transport, 2);
    assert_closed(&old);
    new.write_all(&frame_of(&PeerMessage::Touches(vec![2])))
        .unwrap();
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        (2, PeerMessage::Touches(vec![2]))
    );
    assert_eq!(transport.stats().accepts, 2);
}

#[test]
fn a_removed_member_s_connection_is_closed_and_it_cannot_return() {
    let ((_down_2, address_2), (_down_3, address_3)) = (down(), down());
    let (transport, _received) = start(BTreeMap::from([(2, address_2), (3, address_3)]), |_| {});
    let raw = raw_peer(&transport, 2);
    let remaining = BTreeMap::from([(3, transport.peers()[&3])]);
    transport.set_peers(remaining.clone()).unwrap();
    assert_eq!(transport.peers(), remaining);
    assert_closed(&raw);
    let stream = TcpStream::connect(transport.local_address()).unwrap();
    let me = Identity {
        ensemble_id: ENSEMBLE_ID,
        raft_id: 2,
        secret: SECRET,
    };
    assert!(dial_on(&stream, me, 1).is_err());
    wait_for_stats(&transport, |stats| stats.refused_handshakes == 1);
}

#[test]
fn connections_past_the_limit_are_closed_as_they_arrive() {
    let (_down_2, address_2) = down();
    let (transport, _received) = start(BTreeMap::from([(2, address_2)]), |config| {
        config.connections_inbound_max = 2;
    });
    let _first = TcpStream::connect(transport.local_address()).unwrap();
    let _second = TcpStream::connect(transport.local_address()).unwrap();
    let third = TcpStream::connect(transport.local_address()).unwrap();
    third.set_read_timeout(Some(WAIT)).unwrap();
    assert_closed(&third);
    assert_eq!(transport.stats().refused_handshakes, 1);
    // Closing the others makes room (their readers end; the limit counts open ones).
    drop((_first, _second));
    let deadline = Instant::now() + WAIT;
    loop {
        let stream = TcpStream::connect(transport.local_address()).unwrap();
        let me = Identity {
            ensemble_id: ENSEMBLE_ID,
            raft_id: 2,
            secret: SECRET,
        };
        if dial_on(&stream, me, 1).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", transport.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn stop_ends_every_thread_and_later_sends_are_dropped() {
    use crate::replication::Transport;

    let (_down_2, address_2) = down();
    let (transport, _received) = start(BTreeMap::from([(2, address_2)]), |_| {});
    let _raw = raw_peer(&transport, 2);
    transport.stop();
    transport.stop();
    transport.send(1, 2, PeerMessage::Touches(vec![1]));
    assert_eq!(transport.stats().dropped_no_link, 1);
    assert!(matches!(
        transport.set_peers(BTreeMap::new()),
        Err(super::TcpTransportError::Stopped)
    ));
    assert!(TcpStream::connect(transport.local_address()).is_err());
}

#[test]
fn a_peer_that_speaks_for_another_member_is_cut_off() {
    let ((_down_2, address_2), (_down_3, address_3)) = (down(), down());
    let (transport, received) = start(BTreeMap::from([(2, address_2), (3, address_3)]), |_| {});
    for (from, to) in [(3, 1), (2, 3)] {
        let mut raw = raw_peer(&transport, 2);
        let mut forged = raft::eraftpb::Message::default();
        forged.set_msg_type(raft::eraftpb::MessageType::MsgHeartbeat);
        forged.from = from;
        forged.to = to;
        raw.write_all(&frame_of(&PeerMessage::Raft(forged)))
            .unwrap();
        assert_closed(&raw);
    }
    wait_for_stats(&transport, |stats| stats.frames_rejected == 2);
    assert!(received.is_empty(), "nothing forged is delivered");
    // Speaking for itself, to this member, is fine.
    let mut raw = raw_peer(&transport, 2);
    let mut honest = raft::eraftpb::Message::default();
    honest.set_msg_type(raft::eraftpb::MessageType::MsgHeartbeat);
    honest.from = 2;
    honest.to = 1;
    raw.write_all(&frame_of(&PeerMessage::Raft(honest.clone())))
        .unwrap();
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        (2, PeerMessage::Raft(honest))
    );
}

/// A snapshot of a large tree is one raft message longer than any frame: it must still reach
/// the follower (before parts, a message over the frame limit was dropped, and a follower that
/// needed a snapshot of more than 64 MiB never caught up).
#[test]
fn a_message_longer_than_a_frame_arrives_whole_between_real_members() {
    use crate::replication::Transport;

    let (listener_1, listener_2) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let (address_1, address_2) = (
        listener_1.local_addr().unwrap(),
        listener_2.local_addr().unwrap(),
    );
    let config = |raft_id: u64, listen: SocketAddr, peer: (u64, SocketAddr)| {
        let mut config =
            TcpTransportConfig::new(raft_id, ENSEMBLE_ID, SECRET, listen, BTreeMap::from([peer]));
        config.frame_bytes_max = 1024;
        config
    };
    let leader = TcpTransport::start_on(config(1, address_1, (2, address_2)), listener_1).unwrap();
    let follower =
        TcpTransport::start_on(config(2, address_2, (1, address_1)), listener_2).unwrap();
    let (probe, received) = crossbeam_channel::unbounded();
    let probe = Arc::new(probe);
    follower.attach(&probe);

    let mut snapshot = raft::eraftpb::Message::default();
    snapshot.set_msg_type(raft::eraftpb::MessageType::MsgSnapshot);
    snapshot.from = 1;
    snapshot.to = 2;
    let data: Vec<u8> = (0..300_000u32).map(|index| (index % 251) as u8).collect();
    snapshot.mut_snapshot().data = data.into();
    snapshot.mut_snapshot().mut_metadata().index = 77;
    let heartbeat = {
        let mut heartbeat = raft::eraftpb::Message::default();
        heartbeat.set_msg_type(raft::eraftpb::MessageType::MsgHeartbeat);
        heartbeat.from = 1;
        heartbeat.to = 2;
        heartbeat
    };
    leader.send(1, 2, PeerMessage::Raft(snapshot.clone()));
    leader.send(1, 2, PeerMessage::Raft(heartbeat.clone()));
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        (1, PeerMessage::Raft(snapshot))
    );
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        (1, PeerMessage::Raft(heartbeat))
    );
    assert_eq!(leader.stats().dropped_oversize, 0);
    assert_eq!(follower.stats().frames_rejected, 0);
    leader.stop();
    follower.stop();
}

#[test]
fn parts_past_message_bytes_max_close_only_their_connection() {
    let (_down_2, address_2) = down();
    let (transport, received) = start(BTreeMap::from([(2, address_2)]), |config| {
        config.frame_bytes_max = 1024;
        config.message_bytes_max = 4096;
    });
    let mut raw = raw_peer(&transport, 2);
    let mut bytes = frame_of(&PeerMessage::Touches(vec![1]));
    // Parts that never end: 5 x 1,000 bytes pass 4,096.
    for _ in 0..5 {
        frame::push_frame(&mut bytes, u32::MAX, |out| {
            out.push(5);
            out.extend_from_slice(&[0; 1000]);
        })
        .unwrap();
    }
    raw.write_all(&bytes).unwrap();
    assert_closed(&raw);
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        (2, PeerMessage::Touches(vec![1]))
    );
    wait_for_stats(&transport, |stats| stats.frames_rejected == 1);

    // A message between the parts of another closes its connection too.
    let mut raw = raw_peer(&transport, 2);
    let mut bytes = Vec::new();
    frame::push_frame(&mut bytes, u32::MAX, |out| out.extend_from_slice(&[5, 1])).unwrap();
    bytes.extend_from_slice(&frame_of(&PeerMessage::Touches(vec![2])));
    raw.write_all(&bytes).unwrap();
    assert_closed(&raw);
    wait_for_stats(&transport, |stats| stats.frames_rejected == 2);
    assert!(received.is_empty(), "nothing after the broken parts");
}
