"""Distributed queues with priorities: :class:`Queue` (an entry is removed as it is taken)
and :class:`LockingQueue` (an entry is locked while processed and removed on ``consume``), as
in kazoo, sharing its znode layout."""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, List, Optional, Tuple

from zookeeper.recipes._support import (
    CreateMode,
    Deadline,
    NodeExistsError,
    NoNodeError,
    ZooKeeperError,
    retry,
)

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

__all__ = ["LockingQueue", "Queue"]

PRIORITY_MIN = 0
PRIORITY_MAX = 999


def _check_priority(priority: int) -> None:
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError("priority must be an int")
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(f"priority must be between {PRIORITY_MIN} and {PRIORITY_MAX}, "
                         f"got {priority}")


def _check_value(value: bytes) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"value must be bytes, got {type(value).__name__}")


class Queue:
    """A FIFO queue with priorities; lower priority numbers come out first.

    Consumption is not reliable: :meth:`get` removes the entry before the caller processes it,
    so a consumer that fails must put it back. See :class:`LockingQueue` for that.
    """

    #: Entry znode names start with this.
    prefix = "entry-"

    def __init__(self, client: ZooKeeper, path: str) -> None:
        """A queue at ``path`` (created on first use)."""
        self.client = client
        self.path = path
        self._ensured_path = False
        self._children: List[str] = []

    def _ensure_path(self) -> None:
        if not self._ensured_path:
            retry(self.client.ensure_path, self.path)
            self._ensured_path = True

    def __len__(self) -> int:
        """The number of entries."""
        self._ensure_path()
        return len(retry(self.client.get_children, self.path))

    def put(self, value: bytes, priority: int = 100) -> None:
        """Adds ``value`` with ``priority`` (0..999, lower first; equal ones in FIFO order)."""
        _check_value(value)
        _check_priority(priority)
        self._ensure_path()
        retry(self.client.create, f"{self.path}/{self.prefix}{priority:03d}-", value,
              CreateMode.PERSISTENT_SEQUENTIAL)

    def get(self) -> Optional[bytes]:
        """Removes and returns the first entry, or ``None`` when the queue is empty."""
        self._ensure_path()
        # Two passes: the cached listing may be stale, so an empty or raced-out cache gets
        # one fresh listing before the answer is "empty".
        for _ in range(2):
            if not self._children:
                self._children = sorted(retry(self.client.get_children, self.path))
            while self._children:
                name = self._children.pop(0)
                entry = self.path + "/" + name
                try:
                    data = retry(self.client.get, entry)
                    retry(self.client.delete, entry)
                except NoNodeError:
                    continue  # another consumer took it first
                return bytes(data)
        return None


class LockingQueue:
    """A queue whose entries are locked (with an ephemeral znode) while processed.

    :meth:`get` locks and returns the next entry; :meth:`consume` removes it when done, and
    :meth:`release` puts it back for others. If the consumer's session ends its lock goes
    and another consumer gets the entry.
    """

    lock = "/taken"
    entries = "/entries"
    entry = "entry"

    def __init__(self, client: ZooKeeper, path: str) -> None:
        """A queue at ``path`` (created on first use)."""
        self.client = client
        self.path = path
        #: The id written into this consumer's entry locks.
        self.id = uuid.uuid4().hex.encode()
        #: (entry name, value) of the entry this consumer holds, if any.
        self.processing_element: Optional[Tuple[str, bytes]] = None
        self._lock_path = self.path + self.lock
        self._entries_path = self.path + self.entries
        self._ensured_path = False

    def _ensure_paths(self) -> None:
        if not self._ensured_path:
            retry(self.client.ensure_path, self._lock_path)
            retry(self.client.ensure_path, self._entries_path)
            self._ensured_path = True

    def __len__(self) -> int:
        """The number of entries, locked ones included."""
        self._ensure_paths()
        return len(retry(self.client.get_children, self._entries_path))

    def _entry_prefix(self, priority: int) -> str:
        return f"{self._entries_path}/{self.entry}-{priority:03d}-"

    def put(self, value: bytes, priority: int = 100) -> None:
        """Adds ``value`` with ``priority`` (0..999, lower first)."""
        _check_value(value)
        _check_priority(priority)
        self._ensure_paths()
        retry(self.client.create, self._entry_prefix(priority), value,
              CreateMode.PERSISTENT_SEQUENTIAL)

    def put_all(self, values: List[bytes], priority: int = 100) -> None:
        """Adds all ``values`` atomically (in one transaction), in order."""
        if not isinstance(values, list):
            raise TypeError("values must be a list of bytes")
        for value in values:
            _check_value(value)
        _check_priority(priority)
        self._ensure_paths()
        transaction = self.client.transaction()
        for value in values:
            transaction.create(self._entry_prefix(priority), value,
                               CreateMode.PERSISTENT_SEQUENTIAL)
        _commit(transaction)

    def get(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """Locks and returns the next entry, waiting up to ``timeout`` seconds (``None``:
        forever) for one; ``None`` on timeout. An entry got earlier and neither consumed nor
        released is returned again."""
        self._ensure_paths()
        if self.processing_element is not None:
            return self.processing_element[1]
        deadline = Deadline(timeout)
        changed = threading.Event()

        def on_event(event: object) -> None:
            changed.set()

        while True:
            changed.clear()
            entries = retry(self.client.get_children, self._entries_path, watch=on_event)
            taken = set(retry(self.client.get_children, self._lock_path, watch=on_event))
            for name in sorted(entries):
                if name in taken:
                    continue
                value = self._take(name)
                if value is not None:
                    self.processing_element = (name, value)
                    return value
            if not deadline.wait(changed):
                return None

    def _take(self, name: str) -> Optional[bytes]:
        lock_path = f"{self._lock_path}/{name}"
        try:
            retry(self.client.create, lock_path, self.id, CreateMode.EPHEMERAL)
        except NodeExistsError:
            return None  # another consumer locked it first
        try:
            return bytes(retry(self.client.get, f"{self._entries_path}/{name}"))
        except NoNodeError:
            # Consumed between our listing and our lock.
            retry(self.client.delete, lock_path)
            return None

    def holds_lock(self) -> bool:
        """True when this consumer still holds the lock on its current entry."""
        if self.processing_element is None:
            return False
        lock_path = f"{self._lock_path}/{self.processing_element[0]}"
        retry(self.client.sync, lock_path)
        try:
            return bytes(retry(self.client.get, lock_path)) == self.id
        except NoNodeError:
            return False

    def consume(self) -> bool:
        """Removes the current entry from the queue; False when this consumer holds none."""
        if self.processing_element is None or not self.holds_lock():
            return False
        name = self.processing_element[0]
        transaction = self.client.transaction()
        transaction.delete(f"{self._entries_path}/{name}")
        transaction.delete(f"{self._lock_path}/{name}")
        _commit(transaction)
        self.processing_element = None
        return True

    def release(self) -> bool:
        """Unlocks the current entry without consuming it; False when this consumer holds
        none."""
        if self.processing_element is None or not self.holds_lock():
            return False
        retry(self.client.delete, f"{self._lock_path}/{self.processing_element[0]}")
        self.processing_element = None
        return True


def _commit(transaction: object) -> None:
    """Commits ``transaction``; raises the first failed operation's error if it failed."""
    results = transaction.commit()  # type: ignore[attr-defined]
    for result in results or ():
        if isinstance(result, BaseException):
            if isinstance(result, ZooKeeperError):
                raise result
            raise ZooKeeperError(f"transaction failed: {result!r}")
