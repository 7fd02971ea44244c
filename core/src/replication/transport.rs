//! The transport seam: what members send each other (raft's messages, and what a follower
//! hands its leader on behalf of its sessions), and the trait that carries it. Between
//! processes it is `tcp::TcpTransport`; tests and the simulation bring their own (in memory,
//! with seeded loss, delay, duplication, reordering and partitions).

use std::collections::BTreeMap;

use raft::eraftpb::Message;
use serde::{Deserialize, Serialize};

use crate::op::Op;
use crate::proto::Id;
use crate::txn::Origin;

/// A message between members. Any of them may be lost, delayed, duplicated or reordered:
/// raft copes with that for its own, and forwards travel in numbered streams the leader takes
/// in order, acknowledges, and the follower sends again until acknowledged.
#[derive(Clone, Debug, PartialEq)]
pub enum PeerMessage {
    /// raft's own.
    Raft(Message),
    /// A follower's requests for its leader, numbered within the follower's stream for the
    /// leader's `term` (a new leader, a new stream).
    Forward {
        /// The leader's term the stream belongs to.
        term: u64,
        /// The follower's run (a newer run starts a new stream).
        run: u64,
        /// The requests, in stream order.
        requests: Vec<Forwarded>,
    },
    /// The leader took the sender's stream for `term` through request `through`.
    ForwardAck {
        /// The stream's term.
        term: u64,
        /// The newest run of the follower the leader knows: the stream's, or a newer one the
        /// follower must move past.
        run: u64,
        /// The newest stream number taken.
        through: u64,
    },
    /// Sessions attached to the sender that were alive since its last touches: the leader's
    /// session tracker decides expiry from them.
    Touches(Vec<i64>),
}

/// One request a follower forwards to its leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    /// Its number in the follower's stream (1, 2, ...).
    pub seq: u64,
    /// Who waits for the outcome: the follower and its request number.
    pub origin: Origin,
    /// The session it is for.
    pub session_id: i64,
    /// The session's identities when the request was sent (prepare judges by them).
    pub identities: Vec<Id>,
    /// What is asked.
    pub request: ForwardedRequest,
}

/// What a follower forwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedRequest {
    /// A session's write (closeSession included).
    Write(Op),
    /// The session's client reconnected to the follower (ZooKeeper's revalidate): the
    /// leader takes its writes from there from now on, and refuses the old member's with
    /// SessionMoved.
    Attach,
    /// A session a client opened on the follower, with the password it chose (the leader
    /// gives the id).
    OpenSession {
        /// The negotiated timeout.
        timeout_ms: u32,
        /// The password the client will show to resume it.
        password: [u8; 16],
    },
}

/// Carries messages between members, by raft id.
///
/// Contract: `send` never blocks on the network and never calls back into the sending
/// engine; delivery is best effort (see `PeerMessage`). The receiver hands each message to
/// its engine's `Engine::receive`.
pub trait Transport: Send + Sync {
    /// Sends `message` from member `from` to member `to`.
    fn send(&self, from: u64, to: u64, message: PeerMessage);

    /// The membership changed: from now on the peers are `peers` (raft id to `host:port`),
    /// the only members whose connections are taken. A transport without addresses (in
    /// memory) ignores it.
    fn set_members(&self, peers: &BTreeMap<u64, String>) {
        let _ = peers;
    }
}
