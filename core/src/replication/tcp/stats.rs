//! The transport's counters, for tests and operators: what was sent, delivered, dropped and
//! refused, each counted where it happens.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the counters since the transport started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpTransportStats {
    /// Messages written to a peer's connection.
    pub sent: u64,
    /// Messages `send` dropped because the peer's queue was full.
    pub dropped_queue_full: u64,
    /// Messages `send` dropped because the member is not a peer (or the transport stopped).
    pub dropped_no_link: u64,
    /// Messages of this member's dropped because they exceed `message_bytes_max`.
    pub dropped_oversize: u64,
    /// Messages in a batch whose write failed (some may have arrived).
    pub dropped_connection_lost: u64,
    /// Messages handed to the attached engine.
    pub delivered: u64,
    /// Messages received with no engine to take them (it was dropped after `attach`).
    pub dropped_no_receiver: u64,
    /// Connections this member refused in the handshake, either way: a stranger, another
    /// ensemble, an unknown or duplicate raft id, a wrong proof, too many connections.
    pub refused_handshakes: u64,
    /// Frames that closed their connection: longer than `frame_bytes_max`, not a message, or
    /// parts of one past `message_bytes_max` or interrupted.
    pub frames_rejected: u64,
    /// Outbound connections that passed the handshake.
    pub connects: u64,
    /// Inbound connections that passed the handshake.
    pub accepts: u64,
}

/// The live counters.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) sent: AtomicU64,
    pub(super) dropped_queue_full: AtomicU64,
    pub(super) dropped_no_link: AtomicU64,
    pub(super) dropped_oversize: AtomicU64,
    pub(super) dropped_connection_lost: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) dropped_no_receiver: AtomicU64,
    pub(super) refused_handshakes: AtomicU64,
    pub(super) frames_rejected: AtomicU64,
    pub(super) connects: AtomicU64,
    pub(super) accepts: AtomicU64,
}

/// Adds `count` to a counter (each counts on its own: no two need to agree at an instant).
pub(super) fn add(counter: &AtomicU64, count: u64) {
    counter.fetch_add(count, Ordering::Relaxed);
}

impl Counters {
    pub(super) fn snapshot(&self) -> TcpTransportStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TcpTransportStats {
            sent: get(&self.sent),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_no_link: get(&self.dropped_no_link),
            dropped_oversize: get(&self.dropped_oversize),
            dropped_connection_lost: get(&self.dropped_connection_lost),
            delivered: get(&self.delivered),
            dropped_no_receiver: get(&self.dropped_no_receiver),
            refused_handshakes: get(&self.refused_handshakes),
            frames_rejected: get(&self.frames_rejected),
            connects: get(&self.connects),
            accepts: get(&self.accepts),
        }
    }
}
