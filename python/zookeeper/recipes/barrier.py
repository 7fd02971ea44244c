"""Barriers: :class:`Barrier` holds everyone until it is removed; :class:`DoubleBarrier`
starts and ends a task together across ``num_clients`` participants (kazoo's recipes, with a
bounded wait on every blocking call)."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Optional

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

__all__ = ["Barrier", "DoubleBarrier"]


class Barrier:
    """A barrier that is in place while its znode exists.

    Example::

        barrier = Barrier(zk, "/barriers/deploy")
        barrier.create()         # coordinator
        barrier.wait(timeout=30) # workers block here...
        barrier.remove()         # ...until the coordinator lifts it
    """

    def __init__(self, client: ZooKeeper, path: str) -> None:
        """A barrier at ``path``; nothing is created before :meth:`create`."""
        self.client = client
        self.path = path

    def create(self) -> None:
        """Puts the barrier in place (no-op when it already is)."""
        retry(self.client.ensure_path, self.path)

    def remove(self) -> bool:
        """Lifts the barrier; False when it was not in place."""
        try:
            retry(self.client.delete, self.path)
            return True
        except NoNodeError:
            return False

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the barrier is lifted, up to ``timeout`` seconds (``None``: forever);
        True when it was lifted (or never in place)."""
        deadline = Deadline(timeout)
        changed = threading.Event()

        def on_event(event: object) -> None:
            changed.set()

        while True:
            changed.clear()
            if retry(self.client.exists, self.path, watch=on_event) is None:
                return True
            # Any event (deleted, data changed, a connection change) means: look again.
            if not deadline.wait(changed):
                return False


class DoubleBarrier:
    """Blocks on :meth:`enter` until ``num_clients`` participants have entered, and on
    :meth:`leave` until all of them have left.

    Each participant is an ephemeral znode, so one whose session ends has left. Example::

        barrier = DoubleBarrier(zk, "/barriers/job-7", num_clients=3)
        barrier.enter()
        compute()
        barrier.leave()
    """

    def __init__(
        self,
        client: ZooKeeper,
        path: str,
        num_clients: int,
        identifier: Optional[str] = None,
    ) -> None:
        """A participant of the barrier at ``path`` for ``num_clients`` participants;
        ``identifier`` (default host name and process id) is stored in its znode."""
        if not isinstance(num_clients, int) or num_clients < 1:
            raise ValueError(f"num_clients must be an int >= 1, got {num_clients!r}")
        self.client = client
        self.path = path.rstrip("/") or "/"
        self.num_clients = num_clients
        self._identifier = identifier or f"{socket.getfqdn()}-{os.getpid()}"
        #: True between a successful enter() and leave().
        self.participating = False
        self.node_name = uuid.uuid4().hex
        self.create_path = self.path + "/" + self.node_name
        self._ready_path = self.path + "/ready"

    def enter(self, timeout: Optional[float] = None) -> bool:
        """Enters and blocks until ``num_clients`` participants are in, up to ``timeout``
        seconds (``None``: forever). True when all are in; on a timeout or error this
        participant leaves again and False is returned (errors are raised)."""
        deadline = Deadline(timeout)
        try:
            entered = self._inner_enter(deadline)
        except ZooKeeperError:
            self._best_effort_cleanup()
            self.participating = False
            raise
        if not entered:
            self._best_effort_cleanup()
        self.participating = entered
        return entered

    def _inner_enter(self, deadline: Deadline) -> bool:
        retry(self.client.ensure_path, self.path)
        try:
            retry(self.client.create, self.create_path, self._identifier.encode("utf-8"),
                  CreateMode.EPHEMERAL)
        except NodeExistsError:
            pass
        ready = threading.Event()

        def on_event(event: object) -> None:
            ready.set()

        while True:
            ready.clear()
            if retry(self.client.exists, self._ready_path, watch=on_event) is not None:
                return True
            participants = [c for c in retry(self.client.get_children, self.path)
                            if c != "ready"]
            if len(participants) >= self.num_clients:
                try:
                    retry(self.client.create, self._ready_path, b"", CreateMode.PERSISTENT)
                except NodeExistsError:
                    pass
                return True
            if not deadline.wait(ready):
                return False

    def leave(self, timeout: Optional[float] = None) -> bool:
        """Leaves and blocks until every participant has left, up to ``timeout`` seconds
        (``None``: forever); True when all have left."""
        deadline = Deadline(timeout)
        try:
            left = self._inner_leave(deadline)
        except ZooKeeperError:
            self._best_effort_cleanup()
            raise
        finally:
            self.participating = False
        return left

    def _inner_leave(self, deadline: Deadline) -> bool:
        try:
            retry(self.client.delete, self._ready_path)
        except NoNodeError:
            pass
        changed = threading.Event()

        def on_event(event: object) -> None:
            changed.set()

        while True:
            changed.clear()
            children = sorted(c for c in retry(self.client.get_children, self.path)
                              if c != "ready")
            if not children:
                return True
            if children == [self.node_name]:
                self._delete_own()
                return True
            if self.node_name == children[0]:
                # The lowest waits for the highest to go, then looks again.
                watched = children[-1]
            else:
                # Everyone else leaves now and waits for the lowest, who leaves last.
                self._delete_own()
                watched = children[0]
            if retry(self.client.exists, self.path + "/" + watched, watch=on_event) is None:
                continue
            if not deadline.wait(changed):
                return False

    def _delete_own(self) -> None:
        try:
            retry(self.client.delete, self.create_path)
        except NoNodeError:
            pass

    def _best_effort_cleanup(self) -> None:
        try:
            self._delete_own()
        except ZooKeeperError:
            pass
