"""A long-lived leader latch in the style of Apache Curator's ``LeaderLatch``.

The logic is the Rust client's (``zookeeper_core::client::recipes::LeaderLatch``), shared with
C; this class keeps the Python API over it. Every participant keeps an ephemeral sequential
znode under the latch path (Curator's ``_c_<uuid>-latch-<sequence>`` names); the one with the
lowest sequence number is the leader. Each other participant watches only its predecessor, so a
leader's departure wakes one participant, not all of them.

Leadership follows the session, as in Curator: when the connection is suspended or the session
is lost the latch gives up leadership at once (listeners hear ``False``), and when the client is
connected again (after ``start()`` opened a new session) it rejoins with a fresh znode. Like
Curator it does not poll: a poll would also keep alive a session the server should expire.

One worker thread per started latch makes every ZooKeeper call and every listener call, so
watch callbacks never block the client's dispatcher thread.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Callable, List, Optional

from zookeeper import _native
from zookeeper.recipes._support import Deadline, session_slot

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

__all__ = ["LeaderLatch"]

logger = logging.getLogger(__name__)


def _on_change(latch_ref: "weakref.ref[LeaderLatch]", leader: bool) -> None:
    # Holds the latch weakly: the native latch keeps this callback, and a strong reference
    # would be a cycle through native code that the garbage collector cannot see.
    latch = latch_ref()
    if latch is not None:
        latch._call_listeners(leader)


class LeaderLatch:
    """Elects one leader among the participants on ``path`` and keeps it until it leaves.

    Example::

        latch = LeaderLatch(zk, "/redis/master", "redis-a")
        latch.add_listener(lambda leader: print("leader" if leader else "follower"))
        latch.start()
        if latch.await_leadership(timeout=10):
            ...
        latch.close()

    States: ``"LATENT"`` before :meth:`start`, ``"STARTED"``, ``"CLOSED"`` after
    :meth:`close`; a closed latch cannot be started again (create a new one).
    """

    def __init__(self, client: ZooKeeper, path: str, identifier: Optional[str] = None) -> None:
        """Prepares a participant at ``path``; ``identifier`` is stored in its znode and listed
        by :meth:`participants`. Nothing is created before :meth:`start`."""
        self.client = client
        #: This participant's identifier (Curator's ``getId()``).
        self.id = str(identifier or "")
        self._listeners: List[Callable[[bool], None]] = []
        self._listeners_lock = threading.Lock()
        latch_ref = weakref.ref(self)
        self._native = _native.NativeLeaderLatch(
            session_slot(client), path, self.id,
            lambda leader: _on_change(latch_ref, leader))
        self.path = path.rstrip("/") or "/"

    @property
    def identifier(self) -> str:
        """The same as :attr:`id`."""
        return self.id

    @property
    def state(self) -> str:
        """``"LATENT"``, ``"STARTED"`` or ``"CLOSED"``."""
        return self._native.state

    @property
    def our_path(self) -> Optional[str]:
        """The path of this participant's znode while it has one."""
        return self._native.our_path

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        """Calls ``listener(True)`` each time this participant becomes leader and
        ``listener(False)`` each time it stops being leader. Listeners run on the latch's
        worker thread, one at a time; an exception in one is logged and ignored."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[bool], None]) -> None:
        """Stops calling ``listener``; unknown listeners are ignored."""
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def start(self) -> None:
        """Joins the election in the background; returns at once.

        Raises RuntimeError when already started or closed.
        """
        self._native.start()

    def close(self, notify_leader: bool = False) -> None:
        """Leaves the election: deletes this participant's znode, so another one takes over.

        Listeners hear ``False`` only with ``notify_leader=True`` (Curator's
        ``CloseMode.NOTIFY_LEADER``; the default is its ``SILENT``). Waits up to 15 seconds
        for the znode's deletion. Closing twice is a no-op.
        """
        self._native.close(bool(notify_leader))

    def has_leadership(self) -> bool:
        """True while started and leader."""
        return self._native.has_leadership()

    def await_leadership(self, timeout: Optional[float] = None) -> bool:
        """Waits until this participant is leader, up to ``timeout`` seconds (``None``:
        forever); True when it is. Returns False at once when the latch is not started."""
        return self._native.await_leadership(Deadline(timeout).timeout_s)

    def participants(self) -> List[str]:
        """The identifiers of all participants, the leader first."""
        return self._native.participants()

    def leader(self) -> Optional[str]:
        """The leader's identifier, or ``None`` when there are no participants."""
        participants = self.participants()
        return participants[0] if participants else None

    def _call_listeners(self, leader: bool) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(leader)
            except Exception:  # a listener's bug must not stop the latch
                logger.exception("LeaderLatch %s: listener %r failed", self.path, listener)
