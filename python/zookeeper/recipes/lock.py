"""Distributed locks: :class:`Lock`, the :class:`ReadLock`/:class:`WriteLock` pair and
:class:`Semaphore`, with kazoo's semantics and node names (so kazoo and zookeeper-rs
processes can share a lock).

A contender creates an ephemeral sequential znode under the lock path and holds the lock when
no contender it must exclude has a lower sequence number; otherwise it watches the nearest such
predecessor only (no herd effect) and checks again when that one goes. The znodes are
ephemeral, so a holder whose session ends (closed, expired, process killed) releases the lock.

Watch a client's connection state: once it reports LOST, a lock held through it is gone.
"""

from __future__ import annotations

import threading
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, AbstractSet, List, Optional, Sequence, Type

from zookeeper.recipes._support import (
    CancelledError,
    CreateMode,
    Deadline,
    LockTimeout,
    NodeExistsError,
    NoNodeError,
    ZooKeeperError,
    create_protected,
    retry,
    sequence_of,
    split_sequence,
)

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

__all__ = ["Lock", "ReadLock", "Semaphore", "WriteLock"]


class _NodeVanished(Exception):
    """Our contender znode is gone (its session ended): create a new one and start over."""



def _identifiers(client: ZooKeeper, paths: List[str]) -> List[str]:
    """The identifiers stored in the contenders' znodes, in order; vanished ones are skipped."""
    identifiers = []
    for path in paths:
        try:
            identifiers.append(bytes(retry(client.get, path)).decode("utf-8"))
        except NoNodeError:
            pass
    return identifiers

class Lock:
    """An exclusive, non-reentrant distributed lock (kazoo's ``Lock``).

    Example::

        lock = Lock(zk, "/locks/orders", "worker-1")
        with lock:            # blocks until acquired
            ...               # only one holder at a time across all clients

    For shared reads see :class:`ReadLock` and :class:`WriteLock`.
    """

    # The node name after the contender's uuid, before the sequence number.
    _NODE_NAME = "__lock__"
    # Node names that exclude this contender when present at a lower sequence number.
    _EXCLUDE_NAMES: Sequence[str] = ("__lock__",)

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
        self.path = path.rstrip("/") or "/"
        self.data = str(identifier or "").encode("utf-8")
        self._exclude_names = frozenset(self._EXCLUDE_NAMES) | frozenset(extra_lock_patterns)
        # Curator's trick, as kazoo does it: a uuid in the node name lets a retried create find
        # the node a lost reply had already created.
        self.prefix = uuid.uuid4().hex + self._NODE_NAME
        self.create_path = self._child_path(self.prefix)
        #: The name (not path) of this contender's znode while it has one.
        self.node: Optional[str] = None
        #: True while this contender holds the lock.
        self.is_acquired = False
        self.cancelled = False
        self._wake = threading.Event()
        self._acquire_serializer = threading.Lock()

    def _child_path(self, name: str) -> str:
        return ("" if self.path == "/" else self.path) + "/" + name

    def cancel(self) -> None:
        """Makes a pending :meth:`acquire` raise :class:`CancelledError`."""
        self.cancelled = True
        self._wake.set()

    def acquire(
        self, blocking: bool = True, timeout: Optional[float] = None, ephemeral: bool = True
    ) -> bool:
        """Acquires the lock; True when held.

        ``blocking=False`` returns False at once when another contender holds it. A blocking
        call waits up to ``timeout`` seconds (``None``: forever) and raises
        :class:`LockTimeout` when that passes, or :class:`CancelledError` after
        :meth:`cancel`. ``ephemeral=False`` makes the contender's znode persistent: the lock
        then outlives the session and only :meth:`release` frees it.
        """
        deadline = Deadline(timeout)
        remaining_s = deadline.remaining_s()
        if not self._acquire_serializer.acquire(
            blocking, -1 if remaining_s is None or not blocking else remaining_s
        ):
            return False
        already_acquired = self.is_acquired
        try:
            try:
                gotten = self._acquire_until(blocking, deadline, ephemeral)
            except (ZooKeeperError, _NodeVanished):
                if not already_acquired:
                    self._best_effort_cleanup()
                self.cancelled = False
                raise
            if gotten:
                self.is_acquired = True
            elif not already_acquired:
                self._best_effort_cleanup()
            return gotten
        finally:
            self._acquire_serializer.release()

    def _acquire_until(self, blocking: bool, deadline: Deadline, ephemeral: bool) -> bool:
        if self.is_acquired:
            # Not reentrant: a second acquire on a held Lock waits like kazoo's, for cancel()
            # or the timeout, and then reports failure.
            if blocking:
                self._wake.clear()
                deadline.wait(self._wake)
                if self.cancelled:
                    raise CancelledError(f"acquire of {self.path} was cancelled")
            return False
        self.client.add_listener(self._on_state_change)
        try:
            while True:
                try:
                    return self._contend(blocking, deadline, ephemeral)
                except _NodeVanished:
                    # Our session ended under us; a client that opened a new one gets a
                    # fresh place in line.
                    self.node = None
                    if deadline.expired():
                        raise LockTimeout(f"failed to acquire lock on {self.path} within "
                                          f"{deadline.timeout_s} s")
        finally:
            self._remove_listener()

    def _contend(self, blocking: bool, deadline: Deadline, ephemeral: bool) -> bool:
        retry(self.client.ensure_path, self.path)
        node = self.node
        if node is None:
            mode = CreateMode.EPHEMERAL_SEQUENTIAL if ephemeral else \
                CreateMode.PERSISTENT_SEQUENTIAL
            created = create_protected(self.client, self.path, self.prefix, self.data, mode)
            node = created.rsplit("/", 1)[-1]
        self.node = node
        while True:
            self._wake.clear()
            if self.cancelled:
                raise CancelledError(f"acquire of {self.path} was cancelled")
            predecessor = self._predecessor(node)
            if predecessor is None:
                return True
            if not blocking:
                return False
            if retry(self.client.exists, self._child_path(predecessor),
                     watch=self._on_predecessor_event) is None:
                continue
            if not deadline.wait(self._wake):
                raise LockTimeout(f"failed to acquire lock on {self.path} within "
                                  f"{deadline.timeout_s} s")

    def _on_predecessor_event(self, event: object) -> None:
        self._wake.set()

    def _on_state_change(self, state: object) -> None:
        # Any state change may mean our znode is gone: look again.
        self._wake.set()

    def _remove_listener(self) -> None:
        try:
            self.client.remove_listener(self._on_state_change)
        except (KeyError, ValueError):
            pass

    def _predecessor(self, node: str) -> Optional[str]:
        """The nearest contender before ``node`` that excludes us, or None when we hold it."""
        our_sequence = sequence_of(node)
        found_self = False
        best: Optional[str] = None
        best_sequence = 0
        for child in retry(self.client.get_children, self.path):
            if child == node:
                found_self = True
                continue
            sequence = self._contender_sequence(child, self._exclude_names)
            if sequence is None or our_sequence is None or sequence >= our_sequence:
                continue
            if best is None or sequence > best_sequence:
                best, best_sequence = child, sequence
        if not found_self:
            raise _NodeVanished()
        return best

    @staticmethod
    def _contender_sequence(child: str, names: AbstractSet[str]) -> Optional[int]:
        """The sequence number of ``child`` if it is a contender named one of ``names``."""
        parts = split_sequence(child)
        if parts is None:
            return None
        stem, sequence = parts
        return sequence if any(stem.endswith(name) for name in names) else None

    def _find_node(self) -> Optional[str]:
        for child in retry(self.client.get_children, self.path):
            if child.startswith(self.prefix):
                return child
        return None

    def _best_effort_cleanup(self) -> None:
        try:
            node = self.node or self._find_node()
            if node:
                self.client.delete(self._child_path(node))
        except ZooKeeperError:
            pass
        self.node = None

    def release(self) -> bool:
        """Releases the lock; False when this contender did not hold it."""
        if not self.is_acquired:
            return False
        if self.node is not None:
            try:
                retry(self.client.delete, self._child_path(self.node))
            except NoNodeError:
                pass
        self.is_acquired = False
        self.node = None
        return True

    def contenders(self) -> List[str]:
        """The identifiers of every contender (holders first, then in line), in order.

        A contender created without an identifier appears as ``""``.
        """
        retry(self.client.ensure_path, self.path)
        names = self._exclude_names | {self._NODE_NAME}
        ordered = []
        for child in retry(self.client.get_children, self.path):
            sequence = self._contender_sequence(child, names)
            if sequence is not None:
                ordered.append((sequence, child))
        return _identifiers(self.client, [self._child_path(child) for _, child in sorted(ordered)])

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

    _NODE_NAME = "__lock__"
    _EXCLUDE_NAMES = ("__lock__", "__rlock__")


class ReadLock(Lock):
    """The shared side of a shared lock: any number of readers hold it together, but not
    while a writer that came earlier holds or waits for it."""

    _NODE_NAME = "__rlock__"
    _EXCLUDE_NAMES = ("__lock__",)


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
        if not isinstance(max_leases, int) or max_leases < 1:
            raise ValueError(f"max_leases must be an int >= 1, got {max_leases!r}")
        self.client = client
        self.path = path.rstrip("/") or "/"
        self.data = str(identifier or "").encode("utf-8")
        self.max_leases = max_leases
        self.create_path = self.path + "/" + uuid.uuid4().hex
        self.lock_path = self.path + "-__lock__"
        #: True while this client holds a lease.
        self.is_acquired = False
        self.cancelled = False
        self._assured_path = False
        self._wake = threading.Event()

    def _ensure_path(self) -> None:
        try:
            retry(self.client.create, self.path, str(self.max_leases).encode("utf-8"),
                  makepath=True)
        except NodeExistsError:
            stored = bytes(retry(self.client.get, self.path))
            try:
                leases = int(stored.decode("utf-8"))
            except ValueError:
                pass  # non-numeric data: the node is used for something else too
            else:
                if leases != self.max_leases:
                    raise ValueError(f"inconsistent max leases: {leases} stored at {self.path},"
                                     f" {self.max_leases} expected")
        self._assured_path = True

    def cancel(self) -> None:
        """Makes a pending :meth:`acquire` raise :class:`CancelledError`."""
        self.cancelled = True
        self._wake.set()

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Acquires a lease; True when held.

        ``blocking=False`` returns False at once when all leases are taken. A blocking call
        waits up to ``timeout`` seconds (``None``: forever), then raises :class:`LockTimeout`.
        """
        self.cancelled = False
        deadline = Deadline(timeout)
        try:
            self.is_acquired = self._inner_acquire(blocking, deadline)
        except ZooKeeperError:
            self._best_effort_cleanup()
            self.cancelled = False
            raise
        return self.is_acquired

    def _inner_acquire(self, blocking: bool, deadline: Deadline) -> bool:
        if not self._assured_path:
            self._ensure_path()
        if retry(self.client.exists, self.create_path) is not None:
            return True
        lock = Lock(self.client, self.lock_path, self.data.decode("utf-8"))
        if not lock.acquire(blocking=blocking, timeout=deadline.remaining_s()):
            return False
        try:
            while True:
                self._wake.clear()
                if self.cancelled:
                    raise CancelledError(f"acquire of semaphore {self.path} was cancelled")
                children = retry(self.client.get_children, self.path,
                                 watch=self._on_leases_changed)
                if len(children) < self.max_leases:
                    try:
                        retry(self.client.create, self.create_path, self.data,
                              CreateMode.EPHEMERAL)
                    except NodeExistsError:
                        pass  # a retried create whose first reply was lost
                    return True
                if not blocking:
                    return False
                if not deadline.wait(self._wake):
                    raise LockTimeout(f"failed to acquire semaphore on {self.path} within "
                                      f"{deadline.timeout_s} s")
        finally:
            lock.release()

    def _on_leases_changed(self, event: object) -> None:
        self._wake.set()

    def _best_effort_cleanup(self) -> None:
        try:
            self.client.delete(self.create_path)
        except ZooKeeperError:
            pass

    def release(self) -> bool:
        """Releases the lease; False when this client held none."""
        if not self.is_acquired:
            return False
        try:
            retry(self.client.delete, self.create_path)
        except NoNodeError:
            pass
        self.is_acquired = False
        return True

    def lease_holders(self) -> List[str]:
        """The identifiers of the current lease holders, unordered."""
        if retry(self.client.exists, self.path) is None:
            return []
        children = retry(self.client.get_children, self.path)
        return _identifiers(self.client, [self.path + "/" + child for child in children])

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
