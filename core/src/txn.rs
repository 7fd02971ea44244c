//! Txn: the unit that is logged, replicated and applied.
//!
//! Prepare turns a validated write into a Txn; every replica applies the same Txns in log order
//! and must reach the same tree. So a Txn carries everything apply needs (time, session ids,
//! the parent's new cversion, the expanded ACL) and apply never consults a clock or the
//! requesting connection. The zxid is not inside: it is the index of the committed log entry and
//! is handed to apply beside the Txn.

use serde::{Deserialize, Serialize};

use crate::op::OpResult;
use crate::proto::{Acl, ErrorCode};

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
        /// The data; None is null, kept apart from empty.
        #[serde(with = "crate::serde_bytes::option")]
        data: Option<Vec<u8>>,
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
        /// The new data; None is null.
        #[serde(with = "crate::serde_bytes::option")]
        data: Option<Vec<u8>>,
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
    /// A write forwarded by another member that prepare refused. It changes nothing; it is in
    /// the log so that the member that forwarded it learns the outcome in log order, between
    /// the session's writes, where the session's next reads must run.
    Failed(Refusal),
    /// A reconfig: `/zookeeper/config` becomes `members` (one `server.N=...` line each, as
    /// `Membership::config_text` prints them) followed by `version=` and the entry's zxid in
    /// hexadecimal, as ZooKeeper's reconfig writes it. The zxid is known only when the entry
    /// applies, so the version line is the tree's to add. When voters or observers change,
    /// the Txn rides in the context of raft's membership change, which applies with it.
    Reconfig {
        /// The member lines, each ending with a newline.
        members: String,
    },
}

impl TxnOp {
    /// The bytes of znode data it carries (to size buffers before encoding it).
    pub fn data_bytes(&self) -> usize {
        match self {
            TxnOp::Create { data, path, .. } | TxnOp::SetData { data, path, .. } => {
                data.as_ref().map_or(0, Vec::len) + path.len()
            }
            TxnOp::Multi(ops) => ops.iter().map(|op| op.data_bytes() + 16).sum(),
            _ => 0,
        }
    }
}

/// Why a write makes no change: prepare's refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The write fails with this error.
    Code(ErrorCode),
    /// A multi fails: ZooKeeper's per-op results (see `Prepare::multi`).
    Multi(Vec<OpResult>),
}

/// The member that proposed a Txn, and which of its requests waits for the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The proposing member's raft id.
    pub member: u64,
    /// Which run of that member (a restart starts a new one), so a Txn proposed before a
    /// restart is never taken for a request of the new run.
    pub run: u64,
    /// The request's number within the run.
    pub request: u64,
}

/// What a replicated log entry carries: a Txn and its origin (none for the server's own Txns,
/// such as expiry and reaping, and for Txns logged before replication).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Who waits for the outcome.
    pub origin: Option<Origin>,
    /// The change.
    pub txn: Txn,
}

impl Proposal {
    /// The bytes a log entry carries.
    pub fn encode(&self) -> Vec<u8> {
        // Room for the payload up front: a Vec grown by doubling copies it several times.
        let capacity = 64 + self.txn.op.data_bytes();
        postcard::to_extend(self, Vec::with_capacity(capacity)).expect("a Vec never refuses bytes")
    }

    /// The proposal in a log entry's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Proposal, postcard::Error> {
        match postcard::take_from_bytes(bytes)? {
            (proposal, []) => Ok(proposal),
            (_, _rest) => Err(postcard::Error::DeserializeUnexpectedEnd),
        }
    }
}

/// Txns as format version 1 logged them, before null data was kept apart from empty: read so
/// a data directory written by an older binary still opens (its null data reads as empty,
/// which is what that binary had stored).
pub(crate) mod v1 {
    use serde::Deserialize;

    use crate::proto::Acl;

    /// A version-1 Txn.
    #[derive(Deserialize)]
    pub(crate) struct Txn {
        time_ms: i64,
        op: TxnOp,
    }

    /// A version-1 TxnOp: the same variants in the same order, data never null.
    #[derive(Deserialize)]
    enum TxnOp {
        CreateSession {
            session_id: i64,
            timeout_ms: u32,
            password: [u8; 16],
        },
        CloseSession {
            session_id: i64,
        },
        Create {
            path: String,
            data: Vec<u8>,
            acl: Vec<Acl>,
            ephemeral_owner: i64,
            parent_cversion: i32,
        },
        Delete {
            path: String,
        },
        SetData {
            path: String,
            data: Vec<u8>,
            version: i32,
        },
        SetAcl {
            path: String,
            acl: Vec<Acl>,
            version: i32,
        },
        Check {
            path: String,
        },
        Multi(Vec<TxnOp>),
    }

    impl From<Txn> for super::Txn {
        fn from(txn: Txn) -> super::Txn {
            super::Txn {
                time_ms: txn.time_ms,
                op: txn.op.into(),
            }
        }
    }

    impl From<TxnOp> for super::TxnOp {
        fn from(op: TxnOp) -> super::TxnOp {
            use super::TxnOp as Now;
            match op {
                TxnOp::CreateSession {
                    session_id,
                    timeout_ms,
                    password,
                } => Now::CreateSession {
                    session_id,
                    timeout_ms,
                    password,
                },
                TxnOp::CloseSession { session_id } => Now::CloseSession { session_id },
                TxnOp::Create {
                    path,
                    data,
                    acl,
                    ephemeral_owner,
                    parent_cversion,
                } => Now::Create {
                    path,
                    data: Some(data),
                    acl,
                    ephemeral_owner,
                    parent_cversion,
                },
                TxnOp::Delete { path } => Now::Delete { path },
                TxnOp::SetData {
                    path,
                    data,
                    version,
                } => Now::SetData {
                    path,
                    data: Some(data),
                    version,
                },
                TxnOp::SetAcl { path, acl, version } => Now::SetAcl { path, acl, version },
                TxnOp::Check { path } => Now::Check { path },
                TxnOp::Multi(ops) => Now::Multi(ops.into_iter().map(Into::into).collect()),
            }
        }
    }
}
