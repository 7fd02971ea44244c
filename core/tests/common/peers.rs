//! Peer transports on loopback for the transport suites: a member that records what it
//! receives, fresh ports, and ensemble ids no other test shares.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use raft::eraftpb::{Message, MessageType};
use zookeeper_core::replication::{PeerMessage, TcpTransport, TcpTransportConfig};

/// How long a test waits for what must come.
pub const WAIT: Duration = Duration::from_secs(20);

/// A transport and what it received (the probe lives while this does: the transport keeps
/// only a weak reference to what it delivers to).
pub struct Member {
    pub transport: Arc<TcpTransport>,
    _probe: Arc<Sender<(u64, PeerMessage)>>,
    pub received: Receiver<(u64, PeerMessage)>,
}

impl Member {
    pub fn start(config: TcpTransportConfig, listener: Option<TcpListener>) -> Member {
        let transport = match listener {
            Some(listener) => TcpTransport::start_on(config, listener).unwrap(),
            None => TcpTransport::start(config).unwrap(),
        };
        let (probe, received) = crossbeam_channel::unbounded();
        let probe = Arc::new(probe);
        transport.attach(&probe);
        Member {
            transport,
            _probe: probe,
            received,
        }
    }

    pub fn next(&self) -> (u64, PeerMessage) {
        let stats = || self.transport.stats();
        self.received
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no message came; {:?}", stats()))
    }
}

pub fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    (listener, address)
}

/// A new ensemble id for each test: tests run side by side, and a port one of them let go
/// may be another's by the time it is dialed; the ensemble id keeps their members apart.
pub fn ensemble_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Apart from other runs of this file too, and from `ensemble + 1` ("another ensemble").
    (u64::from(std::process::id()) << 32) | (NEXT.fetch_add(1, Ordering::Relaxed) << 1)
}

/// A raft heartbeat from `from` to `to` whose commit index tells messages apart.
pub fn raft_message(from: u64, to: u64, index: u64) -> PeerMessage {
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgHeartbeat);
    message.from = from;
    message.to = to;
    message.term = 3;
    message.commit = index;
    PeerMessage::Raft(message)
}
