"""A subtree cache with kazoo's ``TreeCache`` API (``kazoo.recipe.cache``).

The logic is the Rust client's (``zookeeper_core::client::recipes::TreeCache``), shared with
C: one persistent-recursive watch on the root keeps the mirror current (ZooKeeper 3.6 and
later; per-node watches as kazoo's against older servers, or with ``per_node_watches=True``),
and after a reconnect or a new session (``start()`` on the client after an expiry) the whole
subtree is read again and listeners hear the difference. Listeners run on the cache's worker
thread, one event at a time, in order::

    cache = TreeCache(zk, "/services")
    cache.listen(lambda event: print(event.event_type, event.event_data))
    cache.start()
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, FrozenSet, List, NamedTuple, Optional, Tuple

from zookeeper import _native
from zookeeper._types import Stat
from zookeeper.recipes._support import session_slot

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

__all__ = ["NodeData", "TreeCache", "TreeEvent"]

logger = logging.getLogger(__name__)


class NodeData(NamedTuple):
    """A mirrored znode: its path, data (None for null data) and Stat."""

    path: str
    data: Optional[bytes]
    stat: Stat


class _TreeEventFields(NamedTuple):
    event_type: int
    event_data: Optional[NodeData]


class TreeEvent(_TreeEventFields):
    """What a listener hears: the type (kazoo's numbers) and the node, for node events."""

    __slots__ = ()

    NODE_ADDED = 0
    NODE_UPDATED = 1
    NODE_REMOVED = 2
    CONNECTION_SUSPENDED = 3
    CONNECTION_RECONNECTED = 4
    CONNECTION_LOST = 5
    INITIALIZED = 6


def _node(native: Optional[Tuple[str, Optional[bytes], Tuple[int, ...]]]) -> Optional[NodeData]:
    if native is None:
        return None
    path, data, stat = native
    return NodeData(path, data, Stat(*stat))


def _on_event(cache_ref: "weakref.ref[TreeCache]", kind: int, node: Any) -> None:
    # Holds the cache weakly: the native cache keeps this callback.
    cache = cache_ref()
    if cache is not None:
        cache._publish(TreeEvent(kind, _node(node)))


class TreeCache:
    """Mirrors the subtree under ``path`` (kazoo's ``TreeCache(client, path)``)."""

    def __init__(self, client: ZooKeeper, path: str, per_node_watches: bool = False) -> None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path must be an absolute znode path, not {path!r}")
        if not isinstance(per_node_watches, bool):
            raise TypeError("per_node_watches must be a bool")
        self.client = client
        self.path = path.rstrip("/") or "/"
        self._listeners: List[Callable[[TreeEvent], Any]] = []
        self._lock = threading.Lock()
        self._started = False
        cache_ref = weakref.ref(self)
        self._native = _native.NativeTreeCache(
            session_slot(client), self.path, per_node_watches,
            lambda kind, node: _on_event(cache_ref, kind, node))

    def start(self) -> None:
        """Starts mirroring in the background; listeners hear ``INITIALIZED`` once loaded.
        Raises ``RuntimeError`` when started before."""
        with self._lock:
            if self._started:
                raise RuntimeError("a tree cache starts once")
            self._started = True
        self._native.start()

    def close(self) -> None:
        """Stops mirroring and removes the cache's watches; listeners hear nothing more."""
        self._native.close()

    def listen(self, listener: Callable[[TreeEvent], Any]) -> None:
        """Adds ``listener(event)``, called on the cache's worker thread."""
        if not callable(listener):
            raise TypeError("listener must be callable")
        with self._lock:
            self._listeners.append(listener)

    def get_data(self, path: str, default: Optional[NodeData] = None) -> Optional[NodeData]:
        """The mirrored znode at ``path``, or ``default``."""
        found = _node(self._native.get_data(path))
        return default if found is None else found

    def get_children(self, path: str,
                     default: Optional[FrozenSet[str]] = None) -> Optional[FrozenSet[str]]:
        """The names of the mirrored children of ``path``, or ``default`` when it is not
        mirrored."""
        children = self._native.get_children(path)
        return default if children is None else frozenset(children)

    @property
    def initialized(self) -> bool:
        """True once the first load is complete (and until the session is lost)."""
        return self._native.is_initialized

    @property
    def uses_per_node_watches(self) -> bool:
        """True when the cache watches every znode (asked for, or a server before 3.6)."""
        return self._native.uses_per_node_watches

    def _publish(self, event: TreeEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - one listener must not silence the others
                logger.exception("a TreeCache listener failed")
