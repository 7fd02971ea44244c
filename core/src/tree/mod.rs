//! The replicated state: the znode tree with its Stats, ACLs and indexes, and the session records.
//!
//! `DataTree::apply(zxid, &Txn)` is the only way state changes: a pure function of the tree and
//! the Txn (no clock, no I/O), so every replica that applies the same Txns in the same order
//! holds the same tree. Reads borrow the tree; ACL checks and path rules live beside it.

pub mod acl;
mod acl_cache;
mod data_tree;
mod distinguished_name;
pub mod path;
mod quota;
mod shared_acl;
mod snapshot;
mod snapshot_image;
mod znode;
mod znode_slab;
mod znode_table;

pub use data_tree::{data_bytes, Applied, DataTree, SessionRecord, TxnResult};
pub use quota::{QuotaExceeded, StatsTrack, LIMITS_NODE, QUOTA_ROOT, STATS_NODE};
pub use shared_acl::SharedAcl;
pub use snapshot::{FrozenTree, SnapshotDecodeError};
pub use snapshot_image::ZnodeImage;
pub use znode::{owner_ttl_ms, ttl_owner, Znode};

use crate::proto::Acl;

/// A change apply made that watches may care about, in the order ZooKeeper fires them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The znode that changed: the created, deleted or modified znode, or for
    /// `ChildrenChanged` the parent whose children changed.
    pub path: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The ACL that decides who may hear of it: the znode's own (as it was, for a delete), or
    /// the parent's for `ChildrenChanged`. Watch events go only to sessions with READ on it.
    pub acl: SharedAcl,
}

impl Change {
    /// A change readable by everyone (world:anyone READ), for tests and tools.
    pub fn open(path: impl Into<String>, kind: ChangeKind) -> Change {
        Change {
            path: path.into(),
            kind,
            acl: Acl::open_unsafe().into(),
        }
    }
}

/// The kinds of change that fire watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The znode was created.
    Created,
    /// The znode was deleted.
    Deleted,
    /// The znode's data was replaced.
    DataChanged,
    /// A child of the znode was created or deleted.
    ChildrenChanged,
}
