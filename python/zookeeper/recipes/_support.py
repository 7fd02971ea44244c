"""What every recipe shares: the exceptions the recipes raise, bounded retries on connection
loss, deadlines, and reading a connection state whatever its representation.

Recipes use only the public :class:`zookeeper.ZooKeeper` API, so they work the same over TCP
and in process; this module is the one place that knows which names they take from it.
"""

from __future__ import annotations

import random
import re
import threading
import time
from typing import TYPE_CHECKING, Callable, Optional, Tuple, TypeVar

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
    "create_protected",
    "retry",
    "sequence_of",
    "split_sequence",
    "state_name",
]

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

T = TypeVar("T")

# A connection-loss retry waits at most this long in total, then lets the error through: the
# client itself already waits up to the session timeout for a server before answering
# ConnectionLoss, so more patience here only hides a dead ensemble.
RETRY_TOTAL_S_MAX = 10.0
RETRY_SLEEP_S_MIN = 0.05
RETRY_SLEEP_S_MAX = 1.0

# ZooKeeper appends the parent's cversion as "%010d": ten digits, or a minus sign and nine
# digits once the counter has wrapped (the rare eleven-character form reads as positive).
_SEQUENCE_SUFFIX = re.compile(r"(\d{10}|-\d{9})$")


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


def create_protected(
    client: ZooKeeper, parent_path: str, name_prefix: str, data: bytes, mode: int
) -> str:
    """Creates the sequential znode ``parent_path/name_prefix<sequence>``; its path.

    ``name_prefix`` must be unique to the caller (it holds a uuid). A create whose reply was
    lost to a connection loss may still have happened; retrying blindly would leave a second
    sequential node that blocks every later contender while the session lives (Curator's
    "protected" create). So after a loss this looks for a child carrying the prefix first.
    """
    parent = "" if parent_path == "/" else parent_path
    deadline = time.monotonic() + RETRY_TOTAL_S_MAX
    sleep_s = RETRY_SLEEP_S_MIN
    while True:
        try:
            return str(client.create(parent + "/" + name_prefix, data, mode))
        except (ConnectionLossError, OperationTimeoutError):
            if time.monotonic() + sleep_s > deadline:
                raise
            time.sleep(sleep_s * (0.5 + random.random()))
            sleep_s = min(sleep_s * 2, RETRY_SLEEP_S_MAX)
            try:
                for child in client.get_children(parent_path):
                    if child.startswith(name_prefix):
                        return parent + "/" + child
            except (ConnectionLossError, OperationTimeoutError):
                pass


def sequence_of(node_name: str) -> Optional[int]:
    """The sequence number a sequential znode's name ends with, or ``None`` if it has none."""
    parts = split_sequence(node_name)
    return None if parts is None else parts[1]


def split_sequence(node_name: str) -> Optional[Tuple[str, int]]:
    """A sequential znode's name split into (the name it was created with, sequence number);
    ``None`` for a name without the ten-digit suffix ZooKeeper appends."""
    match = _SEQUENCE_SUFFIX.search(node_name)
    if match is None:
        return None
    return node_name[: match.start()], int(match.group(1))


def state_name(state: object) -> str:
    """A connection state as an upper-case name: ``"CONNECTED"``, ``"SUSPENDED"``, ``"LOST"``...

    Accepts an enum member, a kazoo-style string constant or anything whose ``str`` ends in the
    state's name, so a recipe compares names and never depends on the representation.
    """
    name = getattr(state, "name", None)
    if not isinstance(name, str):
        name = str(state)
    return name.rsplit(".", 1)[-1].upper()
