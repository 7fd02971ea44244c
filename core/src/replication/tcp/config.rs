//! The TCP transport's configuration: who this member is, its peers, the shared secret, and
//! every limit with its unit, validated once with errors that name the broken rule.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use super::{PeerTlsConfig, TcpTransportError};

/// How a `TcpTransport` runs. Start from `TcpTransportConfig::new` and change what you need.
#[derive(Clone)]
pub struct TcpTransportConfig {
    /// This member's raft id (`replication::raft_id(member_id)`): what it says it is in the
    /// handshake, and the `from` of every message it receives from others.
    pub raft_id: u64,
    /// The ensemble's id: members of another ensemble are refused, even with the same secret.
    pub ensemble_id: u64,
    /// The secret every member of the ensemble shares (from configuration, at least 16
    /// bytes): a peer proves it holds it before anything it sends is read.
    pub secret: Vec<u8>,
    /// Where to listen for the other members (unused when `start_on` is given a listener).
    pub listen_address: SocketAddr,
    /// The other members by raft id, and where each listens. `set_peers` replaces them.
    pub peers: BTreeMap<u64, SocketAddr>,
    /// Largest frame body accepted or sent, in bytes (default 16 MiB). A peer's longer frame
    /// closes its connection before anything is allocated; a longer message of this member's
    /// (a snapshot of a large tree) goes in parts, one per frame.
    pub frame_bytes_max: u32,
    /// Largest message accepted or sent, in bytes, in one frame or in parts (default 4 GiB:
    /// a raft snapshot carries the whole tree). A peer's parts past it close its connection;
    /// a longer message of this member's is dropped and counted.
    pub message_bytes_max: usize,
    /// Messages waiting for one peer's connection (default 4,096). When full, `send` drops
    /// the message: raft and the forward streams send again.
    pub messages_queued_max: usize,
    /// The first backoff step after a failed dial or a lost connection, in ms (default 50).
    /// Each wait is drawn from the upper half of the step (jitter, so members do not dial in
    /// lockstep); the step doubles after each failure and returns to this after a handshake.
    pub reconnect_backoff_ms_min: u64,
    /// The largest backoff step, in ms (default 5,000).
    pub reconnect_backoff_ms_max: u64,
    /// Time for a whole handshake, either way, in ms (default 5,000).
    pub handshake_timeout_ms: u64,
    /// Time for a dial to connect, in ms (default 2,000).
    pub connect_timeout_ms: u64,
    /// Time a write to a peer may block, in ms (default 10,000): a peer that takes nothing
    /// for that long (gone without a reset, or stopped) is dialed again.
    pub write_timeout_ms: u64,
    /// Inbound connections open at once, handshaking or authenticated (default 64); more are
    /// closed as they arrive, so strangers cannot exhaust threads.
    pub connections_inbound_max: usize,
    /// Bytes written to a peer in one batch (default 1 MiB): the queue is drained into one
    /// write until it is empty or the batch this large.
    pub batch_bytes_max: usize,
    /// TLS between members (`sslQuorum`); None: plain TCP, authenticated by the secret only.
    pub tls: Option<PeerTlsConfig>,
    /// The host each peer's `server.N` line names (a name or an IP address), which its
    /// certificate must name under TLS; a peer missing here is checked against its IP.
    /// `Transport::set_members` keeps it current.
    pub peer_hosts: BTreeMap<u64, String>,
}

impl TcpTransportConfig {
    /// A configuration with the default limits.
    pub fn new(
        raft_id: u64,
        ensemble_id: u64,
        secret: impl Into<Vec<u8>>,
        listen_address: SocketAddr,
        peers: BTreeMap<u64, SocketAddr>,
    ) -> TcpTransportConfig {
        TcpTransportConfig {
            raft_id,
            ensemble_id,
            secret: secret.into(),
            listen_address,
            peers,
            frame_bytes_max: 16 << 20,
            message_bytes_max: 4 << 30,
            messages_queued_max: 4096,
            reconnect_backoff_ms_min: 50,
            reconnect_backoff_ms_max: 5_000,
            handshake_timeout_ms: 5_000,
            connect_timeout_ms: 2_000,
            write_timeout_ms: 10_000,
            connections_inbound_max: 64,
            batch_bytes_max: 1 << 20,
            tls: None,
            peer_hosts: BTreeMap::new(),
        }
    }

    /// Checks every rule; the error names the one broken.
    pub fn validate(&self) -> Result<(), TcpTransportError> {
        let rule = |ok: bool, rule: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(TcpTransportError::Config { rule })
            }
        };
        rule(self.raft_id != 0, "raft_id must not be 0 (raft's nobody)")?;
        rule(
            self.secret.len() >= SECRET_BYTES_MIN,
            "secret must be at least 16 bytes",
        )?;
        validate_peers(self.raft_id, &self.peers)?;
        rule(
            self.frame_bytes_max >= 1024,
            "frame_bytes_max must be at least 1024",
        )?;
        rule(
            self.message_bytes_max >= self.frame_bytes_max as usize,
            "message_bytes_max must be at least frame_bytes_max",
        )?;
        rule(
            self.messages_queued_max > 0,
            "messages_queued_max must be greater than 0",
        )?;
        rule(
            self.reconnect_backoff_ms_min > 0
                && self.reconnect_backoff_ms_min <= self.reconnect_backoff_ms_max,
            "reconnect_backoff_ms_min must be greater than 0 and at most reconnect_backoff_ms_max",
        )?;
        rule(
            self.handshake_timeout_ms > 0,
            "handshake_timeout_ms must be greater than 0",
        )?;
        rule(
            self.connect_timeout_ms > 0,
            "connect_timeout_ms must be greater than 0",
        )?;
        rule(
            self.write_timeout_ms > 0,
            "write_timeout_ms must be greater than 0",
        )?;
        rule(
            self.connections_inbound_max > 0,
            "connections_inbound_max must be greater than 0",
        )?;
        rule(
            self.batch_bytes_max > 0,
            "batch_bytes_max must be greater than 0",
        )
    }
}

/// The shortest shared secret taken: 128 bits.
const SECRET_BYTES_MIN: usize = 16;

/// Checks a peer set for the member `raft_id` (also what `set_peers` is given).
pub(super) fn validate_peers(
    raft_id: u64,
    peers: &BTreeMap<u64, SocketAddr>,
) -> Result<(), TcpTransportError> {
    if peers.contains_key(&0) {
        return Err(TcpTransportError::Config {
            rule: "peers must not include raft id 0 (raft's nobody)",
        });
    }
    if peers.contains_key(&raft_id) {
        return Err(TcpTransportError::Config {
            rule: "peers must not include this member's own raft id",
        });
    }
    Ok(())
}

/// Never prints the secret.
impl fmt::Debug for TcpTransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpTransportConfig")
            .field("raft_id", &self.raft_id)
            .field("ensemble_id", &self.ensemble_id)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("listen_address", &self.listen_address)
            .field("peers", &self.peers)
            .field("frame_bytes_max", &self.frame_bytes_max)
            .field("message_bytes_max", &self.message_bytes_max)
            .field("messages_queued_max", &self.messages_queued_max)
            .field("reconnect_backoff_ms_min", &self.reconnect_backoff_ms_min)
            .field("reconnect_backoff_ms_max", &self.reconnect_backoff_ms_max)
            .field("handshake_timeout_ms", &self.handshake_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("write_timeout_ms", &self.write_timeout_ms)
            .field("connections_inbound_max", &self.connections_inbound_max)
            .field("batch_bytes_max", &self.batch_bytes_max)
            .field("tls", &self.tls)
            .field("peer_hosts", &self.peer_hosts)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TcpTransportConfig {
        let peers = BTreeMap::from([(2, "127.0.0.1:2888".parse().unwrap())]);
        TcpTransportConfig::new(
            1,
            7,
            b"sixteen byte key".to_vec(),
            "127.0.0.1:0".parse().unwrap(),
            peers,
        )
    }

    fn broken_rule(config: TcpTransportConfig) -> &'static str {
        match config.validate() {
            Err(TcpTransportError::Config { rule }) => rule,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().unwrap();
    }

    #[test]
    fn errors_name_the_rule() {
        let mut short_secret = config();
        short_secret.secret.pop();
        assert_eq!(
            broken_rule(short_secret),
            "secret must be at least 16 bytes"
        );
        let mut own_peer = config();
        own_peer.peers.insert(1, "127.0.0.1:2889".parse().unwrap());
        assert_eq!(
            broken_rule(own_peer),
            "peers must not include this member's own raft id"
        );
        let backwards = TcpTransportConfig {
            reconnect_backoff_ms_min: 10,
            reconnect_backoff_ms_max: 5,
            ..config()
        };
        assert_eq!(
            broken_rule(backwards),
            "reconnect_backoff_ms_min must be greater than 0 and at most reconnect_backoff_ms_max"
        );
        let nobody = TcpTransportConfig {
            raft_id: 0,
            ..config()
        };
        assert_eq!(broken_rule(nobody), "raft_id must not be 0 (raft's nobody)");
    }

    #[test]
    fn debug_hides_the_secret() {
        let text = format!("{:?}", config());
        assert!(text.contains("secret: <16 bytes>"), "{text}");
        assert!(!text.contains("sixteen"), "{text}");
    }
}
