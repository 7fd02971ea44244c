"""A long-lived leader latch in the style of Apache Curator's ``LeaderLatch``.

Every participant keeps an ephemeral sequential znode under the latch path; the one with the
lowest sequence number is the leader. Each other participant watches only its predecessor, so
a leader's departure wakes one participant, not all of them.

Leadership follows the session, as in Curator: when the connection is suspended or the session
is lost the latch gives up leadership at once (listeners hear ``False``), and when the client is
connected again (after ``start()`` opened a new session) it rejoins with a fresh znode. Like
Curator it does not poll: a poll would also keep alive a session the server should expire.

One worker thread per started latch makes every ZooKeeper call and every listener call, so
watch callbacks and connection listeners only hand it work and never block the client's
dispatcher thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

from zookeeper.recipes._support import (
    ConnectionClosedError,
    CreateMode,
    NoNodeError,
    SessionExpiredError,
    ZooKeeperError,
    create_protected,
    retry,
    split_sequence,
    state_name,
)

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

__all__ = ["LeaderLatch"]

logger = logging.getLogger(__name__)

# The longest pause between attempts after a failed check.
ERROR_BACKOFF_S_MAX = 2.0
# How long close() waits for the worker to delete the znode.
CLOSE_WAIT_S_MAX = 15.0

_LATCH_NAME = "latch-"

# Work for the worker thread, strongest first: a stronger one pending makes weaker ones moot.
_CLOSE, _RESET, _LOST, _CHECK = 0, 1, 2, 3


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
        self.path = path.rstrip("/") or "/"
        #: This participant's identifier (Curator's ``getId()``).
        self.id = str(identifier or "")
        # Curator's protected-node naming, so Curator participants sort with ours.
        self._prefix = f"_c_{uuid.uuid4()}-{_LATCH_NAME}"
        self._condition = threading.Condition()
        self._leader = False
        self._state = "LATENT"
        self._listeners: List[Callable[[bool], None]] = []
        self._node_path: Optional[str] = None
        self._work: queue.Queue[int] = queue.Queue()
        self._notify_on_close = False
        self._connection_lost = False
        self._worker: Optional[threading.Thread] = None

    @property
    def identifier(self) -> str:
        """The same as :attr:`id`."""
        return self.id

    @property
    def state(self) -> str:
        """``"LATENT"``, ``"STARTED"`` or ``"CLOSED"``."""
        return self._state

    @property
    def our_path(self) -> Optional[str]:
        """The path of this participant's znode while it has one."""
        return self._node_path

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        """Calls ``listener(True)`` each time this participant becomes leader and
        ``listener(False)`` each time it stops being leader. Listeners run on the latch's
        worker thread, one at a time; an exception in one is logged and ignored."""
        with self._condition:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[bool], None]) -> None:
        """Stops calling ``listener``; unknown listeners are ignored."""
        with self._condition:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def start(self) -> None:
        """Joins the election in the background; returns at once.

        Raises RuntimeError when already started or closed.
        """
        with self._condition:
            if self._state != "LATENT":
                raise RuntimeError(f"LeaderLatch at {self.path} cannot be started: it is "
                                   f"{self._state}")
            self._state = "STARTED"
        self.client.add_listener(self._on_connection_state)
        self._worker = threading.Thread(
            target=self._run, name=f"LeaderLatch {self.path}", daemon=True
        )
        self._worker.start()
        self._work.put(_RESET)

    def close(self, notify_leader: bool = False) -> None:
        """Leaves the election: deletes this participant's znode, so another one takes over.

        Listeners hear ``False`` only with ``notify_leader=True`` (Curator's
        ``CloseMode.NOTIFY_LEADER``; the default is its ``SILENT``). Waits up to
        ``CLOSE_WAIT_S_MAX`` seconds for the znode's deletion. Closing twice is a no-op.
        """
        with self._condition:
            if self._state == "CLOSED":
                return
            started = self._state == "STARTED"
            self._state = "CLOSED"
            self._notify_on_close = notify_leader
            self._condition.notify_all()
        if not started:
            return
        try:
            self.client.remove_listener(self._on_connection_state)
        except (KeyError, ValueError):
            pass
        self._work.put(_CLOSE)
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(CLOSE_WAIT_S_MAX)

    def has_leadership(self) -> bool:
        """True while started and leader."""
        with self._condition:
            return self._state == "STARTED" and self._leader

    def await_leadership(self, timeout: Optional[float] = None) -> bool:
        """Waits until this participant is leader, up to ``timeout`` seconds (``None``:
        forever); True when it is. Returns False at once when the latch is not started."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._state == "STARTED" and not self._leader:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._condition.wait(remaining)
            return self._state == "STARTED" and self._leader

    def participants(self) -> List[str]:
        """The identifiers of all participants, the leader first."""
        identifiers = []
        for name in self._ordered_children():
            try:
                identifiers.append(bytes(retry(self.client.get, self._child(name)))
                                   .decode("utf-8"))
            except NoNodeError:
                pass
        return identifiers

    def leader(self) -> Optional[str]:
        """The leader's identifier, or ``None`` when there are no participants."""
        participants = self.participants()
        return participants[0] if participants else None

    # The rest runs on the worker thread, or hands it work.

    def _child(self, name: str) -> str:
        return ("" if self.path == "/" else self.path) + "/" + name

    def _ordered_children(self) -> List[str]:
        try:
            children = retry(self.client.get_children, self.path)
        except NoNodeError:
            return []
        latches: List[Tuple[int, str]] = []
        for name in children:
            parts = split_sequence(name)
            if parts is not None and parts[0].endswith(_LATCH_NAME):
                latches.append((parts[1], name))
        return [name for _, name in sorted(latches)]

    def _on_connection_state(self, state: object) -> None:
        name = state_name(state)
        if name in ("SUSPENDED", "LOST", "EXPIRED", "CLOSED"):
            self._connection_lost = True
            self._work.put(_LOST)
        elif name in ("CONNECTED", "CONNECTED_RO"):
            if self._connection_lost:
                self._connection_lost = False
                self._work.put(_RESET)

    def _on_watch(self, event: object) -> None:
        self._work.put(_CHECK)

    def _next_work(self, wait_s: Optional[float]) -> int:
        try:
            work = self._work.get(timeout=wait_s)
        except queue.Empty:
            return _CHECK
        while True:
            try:
                work = min(work, self._work.get_nowait())
            except queue.Empty:
                return work

    def _run(self) -> None:
        backoff_s = 0.0
        retry_work: Optional[int] = None
        while True:
            work = self._next_work(backoff_s if retry_work is not None else None)
            if retry_work is not None:
                work = min(work, retry_work)
                retry_work = None
            if work == _CLOSE or self._state == "CLOSED":
                self._finish()
                return
            try:
                if work == _LOST:
                    self._set_leader(False)
                elif work == _RESET:
                    self._reset()
                    self._check()
                else:
                    self._check()
                backoff_s = 0.0
            except ZooKeeperError as error:
                # Without a connection nobody can vouch for our leadership.
                self._set_leader(False)
                if isinstance(error, (SessionExpiredError, ConnectionClosedError)):
                    # No retry can revive this session: rejoin when the client reports a
                    # new one (start() reconnects it).
                    self._connection_lost = True
                    self._node_path = None
                    continue
                backoff_s = min(max(backoff_s * 2, 0.1), ERROR_BACKOFF_S_MAX)
                retry_work = _CHECK
                logger.debug("LeaderLatch %s: %r; retrying in %.1f s", self.path, error,
                             backoff_s)

    def _reset(self) -> None:
        self._set_leader(False)
        self._delete_node()
        retry(self.client.ensure_path, self.path)
        self._node_path = create_protected(
            self.client, self.path, self._prefix, self.id.encode("utf-8"),
            CreateMode.EPHEMERAL_SEQUENTIAL,
        )

    def _check(self) -> None:
        if self._node_path is None:
            self._reset()
        # A predecessor that is already gone sends us round again; the bound only guards
        # against a pathological churn, and the periodic check picks up from there.
        for _ in range(100):
            assert self._node_path is not None
            ordered = self._ordered_children()
            ours = self._node_path.rsplit("/", 1)[-1]
            if ours not in ordered:
                # Our session ended and the client opened a new one: rejoin at the back.
                self._node_path = None
                self._reset()
                continue
            index = ordered.index(ours)
            if index == 0:
                self._set_leader(True)
                return
            self._set_leader(False)
            if retry(self.client.exists, self._child(ordered[index - 1]),
                     watch=self._on_watch) is not None:
                return

    def _delete_node(self) -> None:
        if self._node_path is None:
            return
        try:
            retry(self.client.delete, self._node_path)
        except NoNodeError:
            pass
        self._node_path = None

    def _finish(self) -> None:
        try:
            self._delete_node()
        except ZooKeeperError as error:
            logger.debug("LeaderLatch %s: could not delete %s on close: %r", self.path,
                         self._node_path, error)
        with self._condition:
            was_leader, self._leader = self._leader, False
            self._condition.notify_all()
        if was_leader and self._notify_on_close:
            self._call_listeners(False)

    def _set_leader(self, leader: bool) -> None:
        with self._condition:
            if self._leader == leader or (leader and self._state != "STARTED"):
                return
            self._leader = leader
            self._condition.notify_all()
        self._call_listeners(leader)

    def _call_listeners(self, leader: bool) -> None:
        with self._condition:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(leader)
            except Exception:  # a listener's bug must not stop the latch
                logger.exception("LeaderLatch %s: listener %r failed", self.path, listener)
