//! The records clients see: Stat, ACLs, create modes, watch events and their enums.

use serde::{Deserialize, Serialize};

/// The `ephemeralOwner` ZooKeeper reports for container znodes (`Long.MIN_VALUE`).
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;

/// The largest TTL in milliseconds a TTL znode may have (40 bits, as ZooKeeper's `EphemeralType`).
pub const TTL_MS_MAX: i64 = 0x00FF_FFFF_FFFF;

/// A znode's metadata, field for field as ZooKeeper's `Stat` record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stat {
    /// zxid of the change that created the znode.
    pub czxid: i64,
    /// zxid of the change that last modified the znode's data.
    pub mzxid: i64,
    /// Milliseconds since the epoch when the znode was created.
    pub ctime: i64,
    /// Milliseconds since the epoch when the znode's data was last modified.
    pub mtime: i64,
    /// Number of changes to the data.
    pub version: i32,
    /// Number of changes to the children (creates; deletes do not count, as in ZooKeeper).
    pub cversion: i32,
    /// Number of changes to the ACL.
    pub aversion: i32,
    /// The owning session of an ephemeral; 0 otherwise, containers and TTL znodes included
    /// (the server stores a marker for those, but clients see 0, as in ZooKeeper).
    pub ephemeral_owner: i64,
    /// Length of the data in bytes.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the change that last created or deleted a child.
    pub pzxid: i64,
}

/// Permission bits of an ACL entry (`ZooDefs.Perms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Perms(pub i32);

impl Perms {
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set the ACL.
    pub const ADMIN: Perms = Perms(16);
    /// Every permission.
    pub const ALL: Perms = Perms(31);

    /// True when any bit of `other` is granted here (ZooKeeper's check: `(perms & wanted) != 0`).
    pub fn grants_any(self, other: Perms) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

/// An identity: an authentication scheme and an id within it, such as `digest`/`user:hash`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Id {
    /// `world`, `auth`, `digest`, `ip`, or `super` for a session's own identities.
    pub scheme: String,
    /// The id within the scheme.
    pub id: String,
    /// The client sent the id as jute's null (length -1), not as a string: kazoo writes every
    /// empty string so. Only a create's or setACL's ACL carries one, for `acl::fixup` to
    /// refuse as ZooKeeper does; a refused entry is never stored, so this is not serialized.
    #[serde(skip)]
    pub(crate) id_is_null: bool,
    /// The client sent the scheme as jute's null, as `id_is_null` says of the id.
    #[serde(skip)]
    pub(crate) scheme_is_null: bool,
}

impl Id {
    /// An identity from its two parts.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
            id_is_null: false,
            scheme_is_null: false,
        }
    }

    /// `world:anyone`.
    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }

    /// `auth:` (the creator's authenticated identities, expanded at create time).
    pub fn auth() -> Id {
        Id::new("auth", "")
    }
}

/// One ACL entry: who gets which permissions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Acl {
    /// The permissions granted.
    pub perms: Perms,
    /// To whom.
    pub id: Id,
}

impl Acl {
    /// An entry granting `perms` to `id`.
    pub fn new(perms: Perms, id: Id) -> Acl {
        Acl { perms, id }
    }

    /// `ZooDefs.Ids.OPEN_ACL_UNSAFE`: everyone may do everything.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::anyone())]
    }

    /// `ZooDefs.Ids.READ_ACL_UNSAFE`: everyone may read.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, Id::anyone())]
    }

    /// `ZooDefs.Ids.CREATOR_ALL_ACL`: the creator's authenticated identities may do everything.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::auth())]
    }
}

/// How a znode is created (`CreateMode`), with ZooKeeper's flag numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CreateMode {
    /// Lives until deleted.
    Persistent = 0,
    /// Deleted when the creating session ends.
    Ephemeral = 1,
    /// Persistent, with a 10-digit sequence suffix from the parent's cversion.
    PersistentSequential = 2,
    /// Ephemeral, with a sequence suffix.
    EphemeralSequential = 3,
    /// Deleted by the server once it has had children and has none left.
    Container = 4,
    /// Deleted by the server when it has no children and was not modified for its TTL.
    PersistentWithTtl = 5,
    /// A TTL znode with a sequence suffix.
    PersistentSequentialWithTtl = 6,
}

impl CreateMode {
    /// The mode for a wire flag, `None` for unknown flags.
    pub fn from_flag(flag: i32) -> Option<CreateMode> {
        Some(match flag {
            0 => Self::Persistent,
            1 => Self::Ephemeral,
            2 => Self::PersistentSequential,
            3 => Self::EphemeralSequential,
            4 => Self::Container,
            5 => Self::PersistentWithTtl,
            6 => Self::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    /// The wire flag.
    pub fn flag(self) -> i32 {
        self as i32
    }

    /// True for the modes whose znodes die with their session.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, Self::Ephemeral | Self::EphemeralSequential)
    }

    /// True for the modes that append a sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            Self::PersistentSequential
                | Self::EphemeralSequential
                | Self::PersistentSequentialWithTtl
        )
    }

    /// True for container znodes.
    pub fn is_container(self) -> bool {
        self == Self::Container
    }

    /// True for the TTL modes.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            Self::PersistentWithTtl | Self::PersistentSequentialWithTtl
        )
    }
}

/// What happened, in a watch event (`Watcher.Event.EventType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A connection state change, not a znode change.
    None = -1,
    /// The znode was created.
    NodeCreated = 1,
    /// The znode was deleted.
    NodeDeleted = 2,
    /// The znode's data changed.
    NodeDataChanged = 3,
    /// The znode's list of children changed.
    NodeChildrenChanged = 4,
    /// A data watch was removed.
    DataWatchRemoved = 5,
    /// A child watch was removed.
    ChildWatchRemoved = 6,
    /// A persistent watch was removed.
    PersistentWatchRemoved = 7,
}

impl EventType {
    /// The wire number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The event type for a wire number.
    pub fn from_code(code: i32) -> Option<EventType> {
        Some(match code {
            -1 => Self::None,
            1 => Self::NodeCreated,
            2 => Self::NodeDeleted,
            3 => Self::NodeDataChanged,
            4 => Self::NodeChildrenChanged,
            5 => Self::DataWatchRemoved,
            6 => Self::ChildWatchRemoved,
            7 => Self::PersistentWatchRemoved,
            _ => return None,
        })
    }
}

/// A session's connection state, as reported in watch events (`Watcher.Event.KeeperState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeeperState {
    /// Not connected; the session may still be alive.
    Disconnected = 0,
    /// Connected.
    SyncConnected = 3,
    /// Authentication failed; the client will not reconnect.
    AuthFailed = 4,
    /// Connected to a read-only server.
    ConnectedReadOnly = 5,
    /// SASL authentication succeeded.
    SaslAuthenticated = 6,
    /// The client was closed.
    Closed = 7,
    /// The session expired.
    Expired = -112,
}

impl KeeperState {
    /// The wire number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The state for a wire number.
    pub fn from_code(code: i32) -> Option<KeeperState> {
        Some(match code {
            0 => Self::Disconnected,
            3 => Self::SyncConnected,
            4 => Self::AuthFailed,
            5 => Self::ConnectedReadOnly,
            6 => Self::SaslAuthenticated,
            7 => Self::Closed,
            -112 => Self::Expired,
            _ => return None,
        })
    }
}

/// Which watches removeWatches and checkWatches mean (`Watcher.WatcherType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WatcherType {
    /// One-shot child watches.
    Children = 1,
    /// One-shot data and exists watches.
    Data = 2,
    /// Every kind of one-shot watch.
    Any = 3,
    /// Persistent watches.
    Persistent = 4,
    /// Persistent recursive watches.
    PersistentRecursive = 5,
}

impl WatcherType {
    /// The watcher type for a wire number.
    pub fn from_code(code: i32) -> Option<WatcherType> {
        Some(match code {
            1 => Self::Children,
            2 => Self::Data,
            3 => Self::Any,
            4 => Self::Persistent,
            5 => Self::PersistentRecursive,
            _ => return None,
        })
    }
}

/// The kind of persistent watch addWatch sets (`AddWatchMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AddWatchMode {
    /// Fires for the znode's data, existence and children, and stays.
    Persistent = 0,
    /// Fires for the znode and every descendant's data and existence (not children), and stays.
    PersistentRecursive = 1,
}

impl AddWatchMode {
    /// The mode for a wire number.
    pub fn from_code(code: i32) -> Option<AddWatchMode> {
        match code {
            0 => Some(Self::Persistent),
            1 => Some(Self::PersistentRecursive),
            _ => None,
        }
    }
}

/// A watch notification: what happened, the session's state, and the znode's path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The connection state at the time.
    pub state: KeeperState,
    /// The znode's path; empty for state changes.
    pub path: String,
    /// The zxid of the change that fired it; -1 for state changes and client-side events.
    pub zxid: i64,
}

impl WatchedEvent {
    /// A znode change observed while connected.
    pub fn node(event_type: EventType, path: impl Into<String>, zxid: i64) -> WatchedEvent {
        WatchedEvent {
            event_type,
            state: KeeperState::SyncConnected,
            path: path.into(),
            zxid,
        }
    }

    /// A connection state change.
    pub fn state(state: KeeperState) -> WatchedEvent {
        WatchedEvent {
            event_type: EventType::None,
            state,
            path: String::new(),
            zxid: -1,
        }
    }
}

/// One of a session's authenticated identities, as whoAmI reports it (`ClientInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientInfo {
    /// The scheme, such as `ip` or `digest`.
    pub auth_scheme: String,
    /// The user name within it (for digest, the part before the colon).
    pub user: String,
}
