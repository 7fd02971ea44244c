"""ZooKeeper's records and constants in Python: Stat, ACLs, create modes, watch events, states."""

from __future__ import annotations

import base64
import enum
import hashlib
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

__all__ = [
    "Stat", "ZnodeStat", "Data", "Id", "ACL", "ZooDefs", "CreateMode", "EventType", "KeeperState",
    "WatchedEvent", "WatcherType", "ConnectionState", "ClientInfo", "make_digest_acl",
    "make_digest_acl_credential", "make_acl",
]


class Stat(NamedTuple):
    """A znode's metadata, the 11 fields of ZooKeeper's Stat under their ZooKeeper names
    (kazoo's ``ZnodeStat`` uses the same), plus kazoo's and snake_case aliases."""

    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int
    dataLength: int
    numChildren: int
    pzxid: int

    @property
    def ephemeral_owner(self) -> int:
        """The owning session of an ephemeral znode, 0 otherwise."""
        return self.ephemeralOwner

    @property
    def owner_session_id(self) -> Optional[int]:
        """kazoo's: the owning session, None for a znode that is not ephemeral."""
        return self.ephemeralOwner or None

    @property
    def data_length(self) -> int:
        """Length of the data in bytes."""
        return self.dataLength

    @property
    def num_children(self) -> int:
        """Number of children."""
        return self.numChildren

    @property
    def children_count(self) -> int:
        """kazoo's name for numChildren."""
        return self.numChildren

    @property
    def acl_version(self) -> int:
        """kazoo's name for aversion."""
        return self.aversion

    @property
    def children_version(self) -> int:
        """kazoo's name for cversion."""
        return self.cversion

    @property
    def created(self) -> float:
        """Creation time in seconds since the epoch."""
        return self.ctime / 1000.0

    @property
    def last_modified(self) -> float:
        """Last data change in seconds since the epoch."""
        return self.mtime / 1000.0

    @property
    def creation_transaction_id(self) -> int:
        """kazoo's name for czxid."""
        return self.czxid

    @property
    def last_modified_transaction_id(self) -> int:
        """kazoo's name for mzxid."""
        return self.mzxid


#: kazoo's name.
ZnodeStat = Stat


class Data(bytes):
    """A znode's data as ``bytes``, with the Stat read with it as ``.stat``.

    Pass it as ``version=`` to a write to make the write conditional on the version read.
    A znode created or set with ``None`` (ZooKeeper's null data) reads as ``NullData``.
    """

    stat: Stat

    def __new__(cls, value: bytes, stat: Stat) -> "Data":
        """Data ``value`` read with ``stat``."""
        data = super().__new__(cls, value)
        data.stat = stat
        return data

    @property
    def value(self) -> Optional[bytes]:
        """The data as kazoo's ``get`` returns it: plain bytes, or None for null data."""
        return bytes(self)

    @property
    def is_null(self) -> bool:
        """True for null data (``NullData``)."""
        return False

    def __reduce__(self) -> Any:
        return (Data, (bytes(self), self.stat))


class NullData(Data):
    """A znode's null data, kept apart from empty data as ZooKeeper keeps it (kazoo's ``get``
    returns ``None`` for it). It behaves as ``None`` where a test for data can tell: it equals
    ``None`` and not ``b""``, is falsy, and ``.value`` is ``None``; it is still ``bytes``
    (empty) with ``.stat``, so it can be passed as ``version=`` like any data read."""

    def __new__(cls, stat: Stat) -> "NullData":
        """Null data read with ``stat``."""
        data = bytes.__new__(cls, b"")
        data.stat = stat
        return data

    @property
    def value(self) -> Optional[bytes]:
        """None: the data is null."""
        return None

    @property
    def is_null(self) -> bool:
        """True."""
        return True

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, NullData)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(None)

    def __repr__(self) -> str:
        return f"NullData(stat={self.stat!r})"

    def __reduce__(self) -> Any:
        return (NullData, (self.stat,))


def _data(value: Optional[bytes], stat: Stat) -> Data:
    """What a read of ``value`` with ``stat`` returns: ``Data``, or ``NullData`` for None."""
    return NullData(stat) if value is None else Data(value, stat)


class Id(NamedTuple):
    """An identity: a scheme (``world``, ``auth``, ``digest``, ``ip``) and an id within it."""

    scheme: str
    id: str


class ACL(NamedTuple):
    """One ACL entry: the permission bits (``ZooDefs.Perms``) granted to an identity."""

    perms: int
    id: Id

    @property
    def acl_list(self) -> List[str]:
        """The granted permissions by name, as kazoo's ACL offers them."""
        names = [name for name, bit in (("READ", 1), ("WRITE", 2), ("CREATE", 4),
                                        ("DELETE", 8), ("ADMIN", 16)) if self.perms & bit]
        return ["ALL"] if self.perms & 31 == 31 else names


class ZooDefs:
    """ZooKeeper's ``ZooDefs``: permission bits and the well-known ACLs."""

    class Perms:
        """Permission bits of an ACL entry."""

        READ = 1
        WRITE = 2
        CREATE = 4
        DELETE = 8
        ADMIN = 16
        ALL = 31

    class Ids:
        """Well-known identities and ACLs."""

        ANYONE_ID_UNSAFE = Id("world", "anyone")
        AUTH_IDS = Id("auth", "")
        OPEN_ACL_UNSAFE = [ACL(31, Id("world", "anyone"))]
        READ_ACL_UNSAFE = [ACL(1, Id("world", "anyone"))]
        CREATOR_ALL_ACL = [ACL(31, Id("auth", ""))]


class CreateMode(enum.IntEnum):
    """How a znode is created, with ZooKeeper's flag numbers."""

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6

    @property
    def is_ephemeral(self) -> bool:
        """True for the modes whose znodes die with their session."""
        return self in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL)

    @property
    def is_sequential(self) -> bool:
        """True for the modes that append a 10-digit sequence number."""
        return self in (CreateMode.PERSISTENT_SEQUENTIAL, CreateMode.EPHEMERAL_SEQUENTIAL,
                        CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)

    @property
    def is_ttl(self) -> bool:
        """True for the TTL modes."""
        return self in (CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)


class EventType(enum.IntEnum):
    """What a watch event reports (ZooKeeper's ``Watcher.Event.EventType``); kazoo's short
    names, with ZooKeeper's as aliases (``EventType.NodeCreated is EventType.CREATED``)."""

    NONE = -1
    CREATED = 1
    DELETED = 2
    CHANGED = 3
    CHILD = 4
    DATA_WATCH_REMOVED = 5
    CHILD_WATCH_REMOVED = 6
    PERSISTENT_WATCH_REMOVED = 7
    NodeCreated = 1
    NodeDeleted = 2
    NodeDataChanged = 3
    NodeChildrenChanged = 4
    DataWatchRemoved = 5
    ChildWatchRemoved = 6
    PersistentWatchRemoved = 7


class KeeperState(enum.IntEnum):
    """The session's state in a watch event (ZooKeeper's ``Watcher.Event.KeeperState``)."""

    DISCONNECTED = 0
    CONNECTED = 3
    AUTH_FAILED = 4
    CONNECTED_RO = 5
    SASL_AUTHENTICATED = 6
    CLOSED = 7
    EXPIRED_SESSION = -112
    Disconnected = 0
    SyncConnected = 3
    AuthFailed = 4
    ConnectedReadOnly = 5
    SaslAuthenticated = 6
    Closed = 7
    Expired = -112


class WatchedEvent(NamedTuple):
    """A watch notification: what happened, the session's state, and the znode's path
    (empty for a state change)."""

    type: EventType
    state: KeeperState
    path: str


class WatcherType(enum.IntEnum):
    """Which watches ``remove_watches`` removes."""

    CHILDREN = 1
    DATA = 2
    ANY = 3
    PERSISTENT = 4
    PERSISTENT_RECURSIVE = 5


class ConnectionState:
    """The client's connection, as ``add_listener`` callbacks hear it: kazoo's ``KazooState``
    strings, plus CONNECTED_RO for a read-only server."""

    CONNECTED = "CONNECTED"
    CONNECTED_RO = "CONNECTED_RO"
    SUSPENDED = "SUSPENDED"
    LOST = "LOST"


class ClientInfo(NamedTuple):
    """One of the session's identities, as ``whoami`` reports them."""

    auth_scheme: str
    user: str


def make_digest_acl_credential(username: str, password: str) -> str:
    """The ``digest`` id for a user: ``user:base64(sha1(user:password))``."""
    digest = hashlib.sha1(f"{username}:{password}".encode("utf-8")).digest()
    return f"{username}:{base64.b64encode(digest).decode('ascii')}"


def _perms(read: bool, write: bool, create: bool, delete: bool, admin: bool, all: bool) -> int:
    if all:
        return ZooDefs.Perms.ALL
    return ((ZooDefs.Perms.READ if read else 0) | (ZooDefs.Perms.WRITE if write else 0)
            | (ZooDefs.Perms.CREATE if create else 0) | (ZooDefs.Perms.DELETE if delete else 0)
            | (ZooDefs.Perms.ADMIN if admin else 0))


def make_acl(scheme: str, credential: str, read: bool = False, write: bool = False,
             create: bool = False, delete: bool = False, admin: bool = False,
             all: bool = False) -> ACL:
    """An ACL entry granting the named permissions to ``scheme:credential``."""
    return ACL(_perms(read, write, create, delete, admin, all), Id(scheme, credential))


def make_digest_acl(username: str, password: str, read: bool = False, write: bool = False,
                    create: bool = False, delete: bool = False, admin: bool = False,
                    all: bool = False) -> ACL:
    """An ACL entry for a digest user (kazoo's ``make_digest_acl``)."""
    credential = make_digest_acl_credential(username, password)
    return make_acl("digest", credential, read, write, create, delete, admin, all)


AclArg = Optional[Sequence[Union[ACL, Tuple[int, Union[Id, Tuple[str, str]]]]]]


def _acl_to_native(acl: AclArg) -> List[Tuple[int, str, str]]:
    if acl is None:
        return [(31, "world", "anyone")]
    if isinstance(acl, (str, bytes)) or not hasattr(acl, "__iter__"):
        raise TypeError(f"acl must be a list of ACL, not {type(acl).__name__}")
    entries = []
    for entry in acl:
        try:
            perms, identity = entry
            scheme, credential = identity
        except (TypeError, ValueError):
            raise TypeError(f"an ACL entry must be ACL(perms, Id(scheme, id)), not {entry!r}")
        if not isinstance(perms, int) or not isinstance(scheme, str) \
                or not isinstance(credential, str):
            raise TypeError(f"an ACL entry must be ACL(perms, Id(scheme, id)), not {entry!r}")
        entries.append((int(perms), scheme, credential))
    return entries


def _acl_from_native(entries: List[Tuple[int, str, str]]) -> List[ACL]:
    return [ACL(perms, Id(scheme, credential)) for perms, scheme, credential in entries]


def _op_results(results: List[Any]) -> List[Any]:
    """A transaction's native results as kazoo gives them: the created path, True for a delete
    or check, the Stat for a set_data, an exception instance for each op of a failed one."""
    from zookeeper.exceptions import RolledBackError, error_for_code
    converted: List[Any] = []
    for result in results:
        kind = result[0]
        if kind == "create":
            converted.append(result[1])
        elif kind == "set_data":
            converted.append(Stat(*result[1]))
        elif kind in ("delete", "check"):
            converted.append(True)
        elif result[1] == 0:
            converted.append(RolledBackError())
        else:
            converted.append(error_for_code(result[1]))
    return converted
