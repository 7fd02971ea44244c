"""What every recipe shares: the exceptions the recipes raise, bounded retries on connection
loss, deadlines, and the session slot through which the Rust recipes (Lock, ReadLock,
WriteLock, Semaphore, LeaderElection, LeaderLatch) reach a client.

The Python recipes (barriers, queues, counters, parties) use only the public
:class:`zookeeper.ZooKeeper` API, so they work the same over TCP and in process; this module is
the one place that knows which names they take from it.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Callable, Optional, TypeVar

from zookeeper import _native
from zookeeper import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLossError,
    CreateMode,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    SessionExpiredError,
    ZooKeeperError,
)

__all__ = [
    "BadVersionError",
    "CancelledError",
    "ConnectionClosedError",
    "ConnectionLossError",
    "CreateMode",
    "Deadline",
    "LockTimeout",
    "NodeExistsError",
    "NoNodeError",
    "NotEmptyError",
    "SessionExpiredError",
    "ZooKeeperError",
    "retry",
    "session_slot",
]

T = TypeVar("T")

# A connection-loss retry waits at most this long in total, then lets the error through: the
# client itself already waits up to the session timeout for a server before answering
# ConnectionLoss, so more patience here only hides a dead ensemble.
RETRY_TOTAL_S_MAX = 10.0
RETRY_SLEEP_S_MIN = 0.05
RETRY_SLEEP_S_MAX = 1.0


class LockTimeout(ZooKeeperError):
    """A lock or semaphore was not acquired within the requested timeout (kazoo's name)."""


class CancelledError(ZooKeeperError):
    """A pending acquire or election was cancelled with ``cancel()`` (kazoo's name)."""


def retry(func: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Calls ``func(*args, **kwargs)``, retrying on connection loss and operation timeout.

    Retries back off from 50 ms to 1 s with jitter and stop after ``RETRY_TOTAL_S_MAX``
    seconds, when the last error is raised. Every other error (including session expiry,
    which no retry can cure) is raised at once.
    """
    deadline = time.monotonic() + RETRY_TOTAL_S_MAX
    sleep_s = RETRY_SLEEP_S_MIN
    while True:
        try:
            return func(*args, **kwargs)
        except (ConnectionLossError, OperationTimeoutError):
            if time.monotonic() + sleep_s > deadline:
                raise
            time.sleep(sleep_s * (0.5 + random.random()))
            sleep_s = min(sleep_s * 2, RETRY_SLEEP_S_MAX)


class Deadline:
    """A point in time a blocking call must return by; ``None`` means no limit."""

    def __init__(self, timeout_s: Optional[float]) -> None:
        if timeout_s is not None and timeout_s < 0:
            raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout_s!r}")
        self.timeout_s = timeout_s
        self._end = None if timeout_s is None else time.monotonic() + timeout_s

    def remaining_s(self) -> Optional[float]:
        """Seconds left (never negative), or ``None`` when there is no limit."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self._end is not None and time.monotonic() >= self._end

    def wait(self, event: threading.Event) -> bool:
        """Waits for ``event`` until the deadline; True if it was set."""
        return event.wait(self.remaining_s())


def session_slot(client: object) -> _native.NativeSessionSlot:
    """The session slot the Rust recipes work through for ``client`` (a ``ZooKeeper`` or
    ``ZooClient``): it holds the client's current session, and its next one after ``start()``.
    """
    slot = getattr(client, "_slot", None)
    if not isinstance(slot, _native.NativeSessionSlot):
        raise TypeError(f"recipes need a zookeeper.ZooKeeper client, not {type(client).__name__}")
    return slot
