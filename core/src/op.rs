//! What a session asks of the engine (`Op`) and what it gets back (`Reply`).
//!
//! These are the same for every front end: the in-process client builds them directly, the TCP
//! server decodes them from jute, the C and Python bindings go through the in-process client.

use serde::{Deserialize, Serialize};

use crate::proto::{Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, Stat, WatcherType};

/// A request from a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Create a znode. `ttl_ms` is -1 unless `mode` is a TTL mode.
    Create(CreateRequest),
    /// Delete a childless znode; `version` -1 matches any.
    Delete {
        /// The znode.
        path: String,
        /// Expected data version, -1 for any.
        version: i32,
    },
    /// Replace a znode's data; `version` -1 matches any.
    SetData {
        /// The znode.
        path: String,
        /// The new data; None is ZooKeeper's null, kept apart from empty.
        #[serde(with = "crate::serde_bytes::option")]
        data: Option<Vec<u8>>,
        /// Expected data version, -1 for any.
        version: i32,
    },
    /// Replace a znode's ACL; `version` -1 matches any ACL version.
    SetAcl {
        /// The znode.
        path: String,
        /// The new ACL.
        acl: Vec<Acl>,
        /// Expected ACL version, -1 for any.
        version: i32,
    },
    /// Fail unless the znode's data version matches (useful inside a multi).
    Check {
        /// The znode.
        path: String,
        /// Expected data version, -1 for any.
        version: i32,
    },
    /// Apply write ops atomically: all succeed or none does.
    Multi(Vec<Op>),
    /// Read a znode's data and Stat, optionally leaving a data watch.
    GetData {
        /// The znode.
        path: String,
        /// Leave a one-shot data watch.
        watch: bool,
    },
    /// Read a znode's Stat, optionally leaving a watch (set even if the znode does not exist).
    Exists {
        /// The znode.
        path: String,
        /// Leave a one-shot exists watch.
        watch: bool,
    },
    /// List a znode's children (sorted) and its Stat, optionally leaving a child watch.
    GetChildren {
        /// The znode.
        path: String,
        /// Leave a one-shot child watch.
        watch: bool,
    },
    /// Read a znode's ACL and Stat.
    GetAcl {
        /// The znode.
        path: String,
    },
    /// Count every descendant of a znode.
    GetAllChildrenNumber {
        /// The znode.
        path: String,
    },
    /// List the session's ephemerals whose path starts with `prefix` ("/" or "" for all).
    GetEphemerals {
        /// The path prefix.
        prefix: String,
    },
    /// Wait until this member has applied everything committed before the sync.
    Sync {
        /// Echoed back.
        path: String,
    },
    /// Read several znodes; each read succeeds or fails on its own.
    MultiRead(Vec<ReadOp>),
    /// The session's authenticated identities.
    WhoAmI,
    /// Add an identity to the session.
    AddAuth {
        /// The scheme, `digest` here (others answer AuthFailed).
        scheme: String,
        /// For digest: `user:password`.
        auth: Vec<u8>,
    },
    /// Leave a persistent or persistent-recursive watch.
    AddWatch {
        /// The znode (need not exist).
        path: String,
        /// Which kind.
        mode: AddWatchMode,
    },
    /// Remove the session's watches of a type on a path; NoWatcher if there are none.
    RemoveWatches {
        /// The znode.
        path: String,
        /// Which watches.
        watcher_type: WatcherType,
    },
    /// NoWatcher unless the session has a watch of the type on the path.
    CheckWatches {
        /// The znode.
        path: String,
        /// Which watches.
        watcher_type: WatcherType,
    },
    /// Re-register watches after a reconnect, firing what the session missed since `relative_zxid`.
    SetWatches(SetWatchesRequest),
    /// Delete an empty container znode. The server's reaper deletes empty containers and
    /// expired TTL znodes with it; a client may delete only an empty container (see prepare).
    DeleteContainer {
        /// The znode.
        path: String,
    },
    /// Change the ensemble's membership (ReconfigRequest).
    Reconfig(ReconfigRequest),
    /// End the session.
    CloseSession,
    /// Keep the session alive; answered in its turn, as ZooKeeper answers pings.
    Ping,
    /// A SASL token. No SASL mechanism is served: answered with a null token, as ZooKeeper
    /// without a SASL login answers.
    Sasl,
    /// A request the front end could not read (its body did not decode, or a flag, mode or
    /// type was out of range): answered with this error in its turn.
    Refused(ErrorCode),
}

/// reconfig's arguments (ZooKeeper's ReconfigRequest): incremental (joining and leaving
/// servers) or a whole new membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconfigRequest {
    /// Servers to add, as comma-separated `server.N=...` specs.
    pub joining_servers: Option<String>,
    /// Server ids to remove, comma-separated.
    pub leaving_servers: Option<String>,
    /// The whole new membership (non-incremental form).
    pub new_members: Option<String>,
    /// Apply only if the current configuration's version is this one; -1 for any.
    pub config_version: i64,
}

impl Op {
    /// The znode path the op names, if it names one (a multi's ops name their own).
    pub fn path(&self) -> Option<&str> {
        match self {
            Op::Create(request) => Some(&request.path),
            Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::SetAcl { path, .. }
            | Op::Check { path, .. }
            | Op::GetData { path, .. }
            | Op::Exists { path, .. }
            | Op::GetChildren { path, .. }
            | Op::GetAcl { path }
            | Op::GetAllChildrenNumber { path }
            | Op::Sync { path }
            | Op::AddWatch { path, .. }
            | Op::RemoveWatches { path, .. }
            | Op::CheckWatches { path, .. }
            | Op::DeleteContainer { path } => Some(path),
            Op::GetEphemerals { prefix } => Some(prefix),
            Op::Multi(_)
            | Op::MultiRead(_)
            | Op::WhoAmI
            | Op::AddAuth { .. }
            | Op::SetWatches(_)
            | Op::Reconfig(_)
            | Op::CloseSession
            | Op::Ping
            | Op::Sasl
            | Op::Refused(_) => None,
        }
    }
}

/// A create, in every mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRequest {
    /// Requested path (a sequence suffix is appended for sequential modes).
    pub path: String,
    /// Initial data; None is ZooKeeper's null, kept apart from empty.
    #[serde(with = "crate::serde_bytes::option")]
    pub data: Option<Vec<u8>>,
    /// ACL; `auth` entries are expanded to the session's identities.
    pub acl: Vec<Acl>,
    /// The mode.
    pub mode: CreateMode,
    /// TTL in milliseconds for TTL modes, -1 otherwise.
    pub ttl_ms: i64,
}

/// A read inside multiRead. ZooKeeper leaves no watch for a multiRead's reads (it drops the
/// watch flag its records carry), so neither has one here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadOp {
    /// As `Op::GetData` without a watch.
    GetData {
        /// The znode.
        path: String,
    },
    /// As `Op::GetChildren` without a watch.
    GetChildren {
        /// The znode.
        path: String,
    },
}

/// Watches to re-register (setWatches / setWatches2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWatchesRequest {
    /// The last zxid the client saw.
    pub relative_zxid: i64,
    /// Data watches.
    pub data: Vec<String>,
    /// Exists watches.
    pub exist: Vec<String>,
    /// Child watches.
    pub child: Vec<String>,
    /// Persistent watches.
    pub persistent: Vec<String>,
    /// Persistent recursive watches.
    pub persistent_recursive: Vec<String>,
}

/// What a successful op returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Create: the final path and the new znode's Stat.
    Create {
        /// The created path.
        path: String,
        /// Its Stat.
        stat: Stat,
    },
    /// SetData, SetAcl and Check: the znode's Stat afterwards (Check: as it is).
    Stat(Stat),
    /// Exists: the Stat, or None when the znode does not exist.
    Exists(Option<Stat>),
    /// GetData.
    Data {
        /// The data; None for a znode created or set with null data.
        data: Option<Vec<u8>>,
        /// The Stat.
        stat: Stat,
    },
    /// GetChildren: sorted names and the parent's Stat.
    Children {
        /// Child names, sorted.
        children: Vec<String>,
        /// The parent's Stat.
        stat: Stat,
    },
    /// GetAcl.
    Acl {
        /// The ACL (digests masked when the session lacks ADMIN).
        acl: Vec<Acl>,
        /// The Stat.
        stat: Stat,
    },
    /// GetAllChildrenNumber.
    Number(i32),
    /// GetEphemerals: sorted paths.
    Paths(Vec<String>),
    /// Sync: the path echoed.
    Sync(String),
    /// Multi: one result per op.
    Multi(Vec<OpResult>),
    /// MultiRead: one result per read.
    MultiRead(Vec<ReadResult>),
    /// WhoAmI.
    WhoAmI(Vec<ClientInfo>),
    /// Delete, AddAuth, AddWatch, RemoveWatches, CheckWatches, SetWatches, CloseSession.
    Done,
}

/// One op's outcome inside a multi.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// A create succeeded.
    Create {
        /// The created path.
        path: String,
        /// Its Stat.
        stat: Stat,
    },
    /// A delete succeeded.
    Delete,
    /// A setData succeeded.
    SetData(Stat),
    /// A check succeeded.
    Check,
    /// The multi failed. `None` (ZooKeeper's code 0) for ops before the failing one, which were
    /// valid but rolled back; the failing op's own code; RuntimeInconsistency for ops after it.
    Error(Option<ErrorCode>),
}

/// One read's outcome inside multiRead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// Data and Stat.
    Data {
        /// The data; None for null data.
        data: Option<Vec<u8>>,
        /// The Stat.
        stat: Stat,
    },
    /// Sorted child names.
    Children(Vec<String>),
    /// The read failed.
    Error(ErrorCode),
}

/// The outcome of an op with the zxid the member had reached when it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The member's last applied zxid when it answered (the reply header's zxid).
    pub zxid: i64,
    /// The reply, or the ZooKeeper error.
    pub result: Result<Reply, ErrorCode>,
}

/// How the engine runs an op: the one place that decides it, for every front end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Prepared into a Txn (or refused) in request order and answered once the Txn applies:
    /// the session's later reads see it, its earlier ones do not.
    Write,
    /// Run against the member's tree in its turn, once every earlier request of the session
    /// is answered: reads, watches, whoAmI, pings.
    InTurn,
    /// sync: answered in turn once this member applied everything the leader had committed
    /// when the sync reached it (raft's ReadIndex), so the session's next reads see it all.
    Sync,
    /// Takes effect as it arrives and is answered at once, out of turn, as ZooKeeper handles
    /// auth packets (their replies carry their own xid): addAuth.
    AtOnce,
}

impl Op {
    /// How the engine runs this op.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Create(_)
            | Op::Delete { .. }
            | Op::SetData { .. }
            | Op::SetAcl { .. }
            | Op::Check { .. }
            | Op::Multi(_)
            | Op::DeleteContainer { .. }
            | Op::Reconfig(_)
            | Op::CloseSession => OpKind::Write,
            Op::AddAuth { .. } => OpKind::AtOnce,
            Op::Sync { .. } => OpKind::Sync,
            Op::GetData { .. }
            | Op::Exists { .. }
            | Op::GetChildren { .. }
            | Op::GetAcl { .. }
            | Op::GetAllChildrenNumber { .. }
            | Op::GetEphemerals { .. }
            | Op::MultiRead(_)
            | Op::WhoAmI
            | Op::AddWatch { .. }
            | Op::RemoveWatches { .. }
            | Op::CheckWatches { .. }
            | Op::SetWatches(_)
            | Op::Ping
            | Op::Sasl
            | Op::Refused(_) => OpKind::InTurn,
        }
    }

    /// True for the ops a multi may hold: create, delete, setData and check.
    pub fn is_multi_write(&self) -> bool {
        matches!(
            self,
            Op::Create(_) | Op::Delete { .. } | Op::SetData { .. } | Op::Check { .. }
        )
    }

    /// A create op for `multi`.
    pub fn create(path: &str, data: impl IntoData, acl: &[Acl], mode: CreateMode) -> Op {
        Op::Create(CreateRequest {
            path: path.into(),
            data: data.into_data(),
            acl: acl.into(),
            mode,
            ttl_ms: -1,
        })
    }

    /// A delete op for `multi`; `version` -1 matches any.
    pub fn delete(path: &str, version: i32) -> Op {
        Op::Delete {
            path: path.into(),
            version,
        }
    }

    /// A setData op for `multi`; `version` -1 matches any.
    pub fn set_data(path: &str, data: impl IntoData, version: i32) -> Op {
        Op::SetData {
            path: path.into(),
            data: data.into_data(),
            version,
        }
    }

    /// A version check for `multi`; `version` -1 matches any.
    pub fn check(path: &str, version: i32) -> Op {
        Op::Check {
            path: path.into(),
            version,
        }
    }
}

/// What a create or setData takes as znode data: bytes (`b"v1"`, `&vec[..]`, `&vec`), or
/// `None` for ZooKeeper's null data, which reads back as null rather than empty. (One impl
/// for `Option` so that a bare `None` needs no type; an `Option<Vec<u8>>` goes as
/// `.as_deref()`.)
pub trait IntoData {
    /// The data, None for null.
    fn into_data(self) -> Option<Vec<u8>>;
}

impl IntoData for &[u8] {
    fn into_data(self) -> Option<Vec<u8>> {
        Some(self.to_vec())
    }
}

impl<const N: usize> IntoData for &[u8; N] {
    fn into_data(self) -> Option<Vec<u8>> {
        Some(self.to_vec())
    }
}

impl IntoData for &Vec<u8> {
    fn into_data(self) -> Option<Vec<u8>> {
        Some(self.clone())
    }
}

impl IntoData for Vec<u8> {
    fn into_data(self) -> Option<Vec<u8>> {
        Some(self)
    }
}

impl IntoData for Option<&[u8]> {
    fn into_data(self) -> Option<Vec<u8>> {
        self.map(<[u8]>::to_vec)
    }
}
