"""Distributed locks: :class:`Lock`, the :class:`ReadLock`/:class:`WriteLock` pair and
:class:`Semaphore`, with kazoo's semantics and node names (so kazoo and zookeeper-rs
processes can share a lock).

The logic is the Rust client's (``zookeeper_core::client::recipes``), which C programs use too;
these classes keep kazoo's Python API over it. A contender creates an ephemeral sequential
znode under the lock path and holds the lock when no contender it must exclude has a lower
sequence number; otherwise it watches the nearest such predecessor only (no herd effect). The
znodes are ephemeral, so a holder whose session ends (closed, expired, process killed)
releases the lock.

Watch a client's connection state: once it reports LOST, a lock held through it is gone.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, List, Optional, Sequence, Type

from zookeeper import _native
from zookeeper.recipes._support import Deadline, session_slot

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

__all__ = ["Lock", "ReadLock", "Semaphore", "WriteLock"]


def _timeout_s(timeout: Optional[float]) -> Optional[float]:
    """Checks a timeout as kazoo does (>= 0 seconds, or None for no limit)."""
    return Deadline(timeout).timeout_s


class Lock:
    """An exclusive, non-reentrant distributed lock (kazoo's ``Lock``).

    Example::

        lock = Lock(zk, "/locks/orders", "worker-1")
        with lock:            # blocks until acquired
            ...               # only one holder at a time across all clients

    For shared reads see :class:`ReadLock` and :class:`WriteLock`.
    """

    # Which side of a lock this class takes (see zookeeper_core's LockKind).
    _KIND = "exclusive"

    def __init__(
        self,
        client: ZooKeeper,
        path: str,
        identifier: Optional[str] = None,
        extra_lock_patterns: Sequence[str] = (),
    ) -> None:
        """Prepares a contender for the lock at ``path``; nothing is created before ``acquire``.

        ``identifier`` is stored in the contender's znode and listed by :meth:`contenders`.
        ``extra_lock_patterns`` names other node names (of other implementations) that also
        exclude this contender.
        """
        self.client = client
        self.data = str(identifier or "").encode("utf-8")
        self._native = _native.NativeLock(session_slot(client), path, self.data.decode("utf-8"),
                                          self._KIND, list(extra_lock_patterns))
        self.path = self._native.path
        self.prefix = self._native.prefix
        self.create_path = self._native.create_path

    @property
    def node(self) -> Optional[str]:
        """The name (not path) of this contender's znode while it has one."""
        return self._native.node

    @property
    def is_acquired(self) -> bool:
        """True while this contender holds the lock (false once its session ended)."""
        return self._native.is_acquired

    @property
    def cancelled(self) -> bool:
        """True after :meth:`cancel` until the cancelled acquire has raised."""
        return self._native.cancelled

    def cancel(self) -> None:
        """Makes a pending (or the next) :meth:`acquire` raise :class:`CancelledError`."""
        self._native.cancel()

    def acquire(
        self, blocking: bool = True, timeout: Optional[float] = None, ephemeral: bool = True
    ) -> bool:
        """Acquires the lock; True when held.

        ``blocking=False`` returns False at once when another contender holds it. A blocking
        call waits up to ``timeout`` seconds (``None``: forever) and raises
        :class:`LockTimeout` when that passes, or :class:`CancelledError` after
        :meth:`cancel`. ``ephemeral=False`` makes the contender's znode persistent: the lock
        then outlives the session and only :meth:`release` frees it. Connection loss is
        retried within ``timeout``; a non-blocking call tries once. A blocking call inside a
        watcher or callback of this lock's own client raises :class:`RuntimeError` at once:
        the event that would end its wait runs on the same thread, after it.
        """
        return self._native.acquire(bool(blocking), _timeout_s(timeout), bool(ephemeral))

    def release(self) -> bool:
        """Releases the lock; False when this contender did not hold it (a lock lost with its
        session included: its znode went with the session)."""
        return self._native.release()

    def contenders(self) -> List[str]:
        """The identifiers of every contender (holders first, then in line), in order.

        A contender created without an identifier appears as ``""``.
        """
        return self._native.contenders()

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.release()


class WriteLock(Lock):
    """The exclusive side of a shared lock: excludes every reader and writer before it.

    A :class:`WriteLock` and :class:`ReadLock` on the same path coordinate with each other.
    """

    _KIND = "write"


class ReadLock(Lock):
    """The shared side of a shared lock: any number of readers hold it together, but not
    while a writer that came earlier holds or waits for it."""

    _KIND = "read"


class Semaphore:
    """A distributed semaphore with ``max_leases`` leases (kazoo's ``Semaphore``).

    Example::

        semaphore = Semaphore(zk, "/pools/db", "worker-1", max_leases=4)
        with semaphore:      # at most four holders at once
            ...

    The lease count is stored in the semaphore's znode; every user must pass the same
    ``max_leases`` (a mismatch raises ValueError on acquire). Only the contender holding the
    internal lock watches the leases, so waiting contenders cause no herd effect.
    """

    def __init__(
        self,
        client: ZooKeeper,
        path: str,
        identifier: Optional[str] = None,
        max_leases: int = 1,
    ) -> None:
        """Prepares a semaphore client at ``path``; nothing is created before ``acquire``."""
        if isinstance(max_leases, bool) or not isinstance(max_leases, int) or max_leases < 1:
            raise ValueError(f"max_leases must be an int >= 1, got {max_leases!r}")
        self.client = client
        self.data = str(identifier or "").encode("utf-8")
        self.max_leases = max_leases
        self._native = _native.NativeSemaphore(session_slot(client), path,
                                               self.data.decode("utf-8"), max_leases)
        self.path = self._native.path
        self.create_path = self._native.create_path
        self.lock_path = self._native.lock_path

    @property
    def is_acquired(self) -> bool:
        """True while this client holds a lease."""
        return self._native.is_acquired

    @property
    def cancelled(self) -> bool:
        """True after :meth:`cancel` until the cancelled acquire has raised."""
        return self._native.cancelled

    def cancel(self) -> None:
        """Makes a pending (or the next) :meth:`acquire` raise :class:`CancelledError`, also
        one waiting for another contender to finish looking at the leases."""
        self._native.cancel()

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Acquires a lease; True when held.

        ``blocking=False`` returns False at once when all leases are taken. A blocking call
        waits up to ``timeout`` seconds (``None``: forever), then raises :class:`LockTimeout`.
        """
        return self._native.acquire(bool(blocking), _timeout_s(timeout))

    def release(self) -> bool:
        """Releases the lease; False when this client held none."""
        return self._native.release()

    def lease_holders(self) -> List[str]:
        """The identifiers of the current lease holders, unordered."""
        return self._native.lease_holders()

    def __enter__(self) -> Semaphore:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.release()
