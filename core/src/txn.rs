//! Txn: the unit that is logged, replicated and applied.
//!
//! Prepare turns a validated write into a Txn; every replica applies the same Txns in log order
//! and must reach the same tree. So a Txn carries everything apply needs (time, session ids,
//! the parent's new cversion, the expanded ACL) and apply never consults a clock or the
//! requesting connection. The zxid is not inside: it is the index of the committed log entry and
//! is handed to apply beside the Txn.

use serde::{Deserialize, Serialize};

use crate::proto::Acl;

/// A write, ready to be logged, replicated and applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Wall-clock time in milliseconds since the epoch, chosen once by the preparing member.
    pub time_ms: i64,
    /// The change.
    pub op: TxnOp,
}

/// The change a Txn makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Start tracking a session.
    CreateSession {
        /// The id, assigned by the preparing member (its member id in the top byte).
        session_id: i64,
        /// The negotiated timeout.
        timeout_ms: u32,
        /// The password a client must show to resume the session.
        password: [u8; 16],
    },
    /// End a session and delete its ephemerals (the tree's own index says which).
    CloseSession {
        /// The session to end.
        session_id: i64,
    },
    /// Create one znode.
    Create {
        /// The final path, sequence suffix included.
        path: String,
        /// The data.
        data: Vec<u8>,
        /// The ACL with `auth` entries already expanded.
        acl: Vec<Acl>,
        /// 0, a session id, the container marker or a TTL encoding (see `Stat::ephemeral_owner`).
        ephemeral_owner: i64,
        /// The parent's cversion after this create.
        parent_cversion: i32,
    },
    /// Delete one childless znode.
    Delete {
        /// The znode.
        path: String,
    },
    /// Replace a znode's data.
    SetData {
        /// The znode.
        path: String,
        /// The new data.
        data: Vec<u8>,
        /// The znode's new data version.
        version: i32,
    },
    /// Replace a znode's ACL.
    SetAcl {
        /// The znode.
        path: String,
        /// The new ACL, `auth` entries expanded.
        acl: Vec<Acl>,
        /// The znode's new ACL version.
        version: i32,
    },
    /// A version check inside a multi; changes nothing.
    Check {
        /// The znode.
        path: String,
    },
    /// Several changes applied atomically under one zxid.
    Multi(Vec<TxnOp>),
}
