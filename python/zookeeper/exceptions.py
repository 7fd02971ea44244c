"""ZooKeeper's errors as Python exceptions: one class per error code, named as kazoo names them.

Every exception a ZooKeeper operation raises is a :class:`ZooKeeperError` with ``.code`` (the
ZooKeeper error number) and ``.path`` (the znode the failed operation concerned, or None). Catch
one failure by its class (``NoNodeError``, ``NodeExistsError``, ``BadVersionError``, ...) or every
failure with ``ZooKeeperError``. kazoo's spellings are kept as aliases (``ZookeeperError``,
``ConnectionLoss``, ``SystemZookeeperError``), so code written for kazoo catches the same errors.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Type, TypeVar

__all__ = [
    "ZooKeeperError", "ZookeeperError", "RolledBackError", "SystemZooKeeperError",
    "SystemZookeeperError", "RuntimeInconsistency", "DataInconsistency", "ConnectionLossError",
    "ConnectionLoss", "MarshallingError", "UnimplementedError", "OperationTimeoutError",
    "BadArgumentsError", "UnknownSessionError", "NewConfigNoQuorumError",
    "ReconfigInProcessError", "APIError", "NoNodeError", "NoAuthError", "BadVersionError",
    "NoChildrenForEphemeralsError", "NodeExistsError", "NotEmptyError", "SessionExpiredError",
    "InvalidCallbackError", "InvalidACLError", "AuthFailedError", "SessionMovedError",
    "NotReadOnlyCallError", "EphemeralOnLocalSessionError", "NoWatcherError",
    "RequestTimeoutError", "ReconfigDisabledError", "SessionClosedRequireSaslError",
    "QuotaExceededError", "ThrottledOpError", "ConnectionClosedError", "error_for_code",
]


class ZooKeeperError(Exception):
    """The root of every error a ZooKeeper operation raises; ``code`` is ZooKeeper's number."""

    code: int = -1
    path: Optional[str]
    results: Optional[List[Any]]

    def __init__(self, message: Optional[str] = None, path: Optional[str] = None,
                 results: Optional[List[Any]] = None) -> None:
        self.path = path
        #: For a failed transaction: every op's outcome (results or exceptions), in order.
        self.results = results
        if message is None:
            message = path if path is not None else type(self).__name__
        super().__init__(message)


#: kazoo's name for the root class.
ZookeeperError = ZooKeeperError

_BY_CODE: Dict[int, Type[ZooKeeperError]] = {}
_E = TypeVar("_E", bound=Type[ZooKeeperError])


def _code(code: int) -> Callable[[_E], _E]:
    def register(cls: _E) -> _E:
        cls.code = code
        _BY_CODE[code] = cls
        return cls
    return register


@_code(0)
class RolledBackError(ZooKeeperError):
    """In a failed transaction: this op was valid but rolled back with the rest."""


@_code(-1)
class SystemZooKeeperError(ZooKeeperError):
    """A server-side failure that is not the client's fault."""


SystemZookeeperError = SystemZooKeeperError


@_code(-2)
class RuntimeInconsistency(ZooKeeperError):
    """In a failed transaction: this op came after the failing one and was not attempted."""


@_code(-3)
class DataInconsistency(ZooKeeperError):
    """The server's state is inconsistent."""


@_code(-4)
class ConnectionLossError(ZooKeeperError):
    """The connection to the server was lost; the operation may or may not have happened."""


#: kazoo's name.
ConnectionLoss = ConnectionLossError


@_code(-5)
class MarshallingError(ZooKeeperError):
    """A request or reply could not be encoded or decoded (or was too large)."""


@_code(-6)
class UnimplementedError(ZooKeeperError):
    """The server does not implement the operation."""


@_code(-7)
class OperationTimeoutError(ZooKeeperError):
    """The operation timed out."""


@_code(-8)
class BadArgumentsError(ZooKeeperError, ValueError):
    """Invalid arguments: a malformed path, a TTL out of range, a reserved znode. Also a
    ValueError, which is what kazoo raises for a malformed path."""


@_code(-12)
class UnknownSessionError(ZooKeeperError):
    """The server does not know the session."""


@_code(-13)
class NewConfigNoQuorumError(ZooKeeperError):
    """A reconfiguration's new ensemble has no quorum."""


@_code(-14)
class ReconfigInProcessError(ZooKeeperError):
    """Another reconfiguration is in progress."""


@_code(-100)
class APIError(ZooKeeperError):
    """The base of ZooKeeper's API error range."""


@_code(-101)
class NoNodeError(ZooKeeperError):
    """The znode does not exist."""


@_code(-102)
class NoAuthError(ZooKeeperError):
    """The session's identities lack the permission the znode's ACL demands."""


@_code(-103)
class BadVersionError(ZooKeeperError):
    """The expected version does not match the znode's."""


@_code(-108)
class NoChildrenForEphemeralsError(ZooKeeperError):
    """Ephemeral znodes cannot have children."""


@_code(-110)
class NodeExistsError(ZooKeeperError):
    """The znode already exists."""


@_code(-111)
class NotEmptyError(ZooKeeperError):
    """The znode has children."""


@_code(-112)
class SessionExpiredError(ZooKeeperError):
    """The session expired (or was closed); open a new client."""


@_code(-113)
class InvalidCallbackError(ZooKeeperError):
    """An invalid callback was given."""


@_code(-114)
class InvalidACLError(ZooKeeperError):
    """The ACL is empty or names an unknown scheme or a malformed id."""


@_code(-115)
class AuthFailedError(ZooKeeperError):
    """Authentication failed; the client answers every later call with this error."""


@_code(-118)
class SessionMovedError(ZooKeeperError):
    """The session moved to another server."""


@_code(-119)
class NotReadOnlyCallError(ZooKeeperError):
    """A write was sent to a read-only server."""


@_code(-120)
class EphemeralOnLocalSessionError(ZooKeeperError):
    """An ephemeral was requested on a local session."""


@_code(-121)
class NoWatcherError(ZooKeeperError):
    """The watch to remove or check does not exist."""


@_code(-122)
class RequestTimeoutError(ZooKeeperError):
    """The request timed out."""


@_code(-123)
class ReconfigDisabledError(ZooKeeperError):
    """Reconfiguration is disabled."""


@_code(-124)
class SessionClosedRequireSaslError(ZooKeeperError):
    """The session was closed because SASL authentication is required."""


@_code(-125)
class QuotaExceededError(ZooKeeperError):
    """A quota or limit would be exceeded."""


@_code(-127)
class ThrottledOpError(ZooKeeperError):
    """The server throttled the operation."""


class ConnectionClosedError(SessionExpiredError):
    """The client was stopped or closed: call ``start()`` again or open a new one."""


def error_for_code(code: int, path: Optional[str] = None,
                   message: Optional[str] = None) -> ZooKeeperError:
    """The exception for ZooKeeper error ``code`` (a plain ZooKeeperError for unknown codes);
    ``message`` says more than the code (why no server could be reached)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        error = ZooKeeperError(message or f"ZooKeeper error {code}", path)
        error.code = code
        return error
    return cls(message, path)


def _from_native(code: int, path: Optional[str], results: Optional[List[Any]],
                 detail: Optional[str] = None) -> ZooKeeperError:
    """Builds the exception for a native error (called by ``zookeeper._native``)."""
    error = error_for_code(code, path, detail)
    if results is not None:
        from zookeeper._types import _op_results
        error.results = _op_results(results)
    return error
