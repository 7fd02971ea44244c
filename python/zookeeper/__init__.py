"""zookeeper-rs for Python: a ZooKeeper client for any ZooKeeper ensemble, and an embedded
ZooKeeper server (or a whole ensemble, for tests) that runs inside this process.

::

    from zookeeper import ZooKeeper, ZooServer, ZooEnsemble, CreateMode

    zk = ZooKeeper("127.0.0.1:2181", timeout=10000)     # any ZooKeeper server
    zk.create("/app", b"v1", CreateMode.PERSISTENT)
    data = zk.get("/app")                                # bytes, with data.stat
    zk.set("/app", b"v2", version=data)                  # only if unchanged since the read

    with ZooServer() as server:                          # in process, no JVM, no TCP
        client = server.client()
        client.ensure_path("/config")

    with ZooEnsemble(3) as ensemble:                     # three members, in process
        zk = ZooKeeper(ensemble.hosts, 10000)            # fails over between them
        ensemble.kill(ensemble.wait_for_leader())        # a new leader in ~100-200 ms

Errors are exceptions named as kazoo names them (``zookeeper.exceptions``); ``zookeeper.aio``
has the same API with awaitables.
"""

from zookeeper._client import Transaction, ZooKeeper
from zookeeper._cache import CacheStats, ReadCache, ReadStats
from zookeeper._types import (ACL, ClientInfo, ConnectionState, CreateMode, Data, EventType, Id,
                              KeeperState, NullData, Stat, WatchedEvent, WatcherType, ZnodeStat, ZooDefs,
                              make_acl, make_digest_acl, make_digest_acl_credential)
from zookeeper.exceptions import (
    ZooKeeperError,
    ZookeeperError,
    RolledBackError,
    SystemZooKeeperError,
    SystemZookeeperError,
    RuntimeInconsistency,
    DataInconsistency,
    ConnectionLossError,
    ConnectionLoss,
    MarshallingError,
    UnimplementedError,
    OperationTimeoutError,
    BadArgumentsError,
    UnknownSessionError,
    NewConfigNoQuorumError,
    ReconfigInProcessError,
    APIError,
    NoNodeError,
    NoAuthError,
    BadVersionError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NotEmptyError,
    SessionExpiredError,
    InvalidCallbackError,
    InvalidACLError,
    AuthFailedError,
    SessionMovedError,
    NotReadOnlyCallError,
    EphemeralOnLocalSessionError,
    NoWatcherError,
    RequestTimeoutError,
    ReconfigDisabledError,
    SessionClosedRequireSaslError,
    QuotaExceededError,
    ThrottledOpError,
    ConnectionClosedError,
    error_for_code,
)
from zookeeper.server import ZooClient, ZooServer
from zookeeper.ensemble import ZooEnsemble
from zookeeper.watchers import ChildrenWatch, DataWatch
from zookeeper._native import __version__

__all__ = [
    "ZooKeeper", "ZooServer", "ZooClient", "ZooEnsemble", "Transaction", "ReadCache", "CacheStats",
    "ReadStats", "DataWatch", "ChildrenWatch", "ACL",
    "ClientInfo", "ConnectionState", "CreateMode", "Data", "EventType", "Id", "KeeperState",
    "NullData", "Stat", "WatchedEvent", "WatcherType", "ZnodeStat", "ZooDefs", "make_acl", "make_digest_acl",
    "make_digest_acl_credential", "__version__",
    "ZooKeeperError",
    "ZookeeperError",
    "RolledBackError",
    "SystemZooKeeperError",
    "SystemZookeeperError",
    "RuntimeInconsistency",
    "DataInconsistency",
    "ConnectionLossError",
    "ConnectionLoss",
    "MarshallingError",
    "UnimplementedError",
    "OperationTimeoutError",
    "BadArgumentsError",
    "UnknownSessionError",
    "NewConfigNoQuorumError",
    "ReconfigInProcessError",
    "APIError",
    "NoNodeError",
    "NoAuthError",
    "BadVersionError",
    "NoChildrenForEphemeralsError",
    "NodeExistsError",
    "NotEmptyError",
    "SessionExpiredError",
    "InvalidCallbackError",
    "InvalidACLError",
    "AuthFailedError",
    "SessionMovedError",
    "NotReadOnlyCallError",
    "EphemeralOnLocalSessionError",
    "NoWatcherError",
    "RequestTimeoutError",
    "ReconfigDisabledError",
    "SessionClosedRequireSaslError",
    "QuotaExceededError",
    "ThrottledOpError",
    "ConnectionClosedError",
    "error_for_code",
]
