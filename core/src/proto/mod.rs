//! The ZooKeeper client protocol's vocabulary: error codes, opcodes and the records clients see.
//!
//! These types are shared by every front end (in-process client, TCP server, C, Python), so the
//! numbers here are the wire numbers from apache/zookeeper's `zookeeper.jute`, `ZooDefs.java`,
//! `KeeperException.java` and `Watcher.java`.

mod error_code;
pub mod jute;
mod opcode;
mod records;
pub mod wire;

pub use error_code::ErrorCode;
pub use opcode::OpCode;
pub use records::{
    Acl, AddWatchMode, ClientInfo, CreateMode, EventType, Id, KeeperState, Perms, Stat,
    WatchedEvent, WatcherType, CONTAINER_EPHEMERAL_OWNER, TTL_MS_MAX,
};

/// Default and maximum znode data length in bytes (`jute.maxbuffer` - 1 in ZooKeeper: 0xfffff).
pub const DATA_BYTES_MAX_DEFAULT: usize = 1_048_575;
