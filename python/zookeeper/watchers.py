"""DataWatch and ChildrenWatch: call a function with a znode's data or children now and after
every change, re-arming the one-shot watch each time (kazoo's recipes, same semantics)."""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable, List, Optional, TYPE_CHECKING

from zookeeper._types import ConnectionState, Stat, WatchedEvent
from zookeeper.exceptions import ConnectionClosedError, NoNodeError, SessionExpiredError

if TYPE_CHECKING:
    from zookeeper._client import ZooKeeper

__all__ = ["DataWatch", "ChildrenWatch"]


def _accepts_three(func: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


class DataWatch:
    """Calls ``func(data, stat)`` (or ``func(data, stat, event)`` when it takes three
    arguments) with the znode's data now and after every change; ``(None, None)`` while the
    znode does not exist, ``(None, stat)`` while its data is null (as kazoo's). ``func`` returning False stops the watch. Use as a decorator::

        @zk.DataWatch("/config")
        def changed(data, stat):
            ...
    """

    def __init__(self, client: "ZooKeeper", path: str,
                 func: Optional[Callable[..., Any]] = None) -> None:
        """Watches ``path`` on ``client``; starts now if ``func`` is given."""
        self._client = client
        self._path = path
        self._func: Optional[Callable[..., Any]] = None
        self._three = False
        self._stopped = False
        self._lock = threading.RLock()
        self._version: Optional[int] = None
        self._ever_called = False
        if func is not None:
            self(func)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Starts watching with ``func``; returns it (so it works as a decorator)."""
        if self._func is not None:
            raise ValueError("a function is already associated with this DataWatch")
        self._func = func
        self._three = _accepts_three(func)
        self._client.add_listener(self._session_watcher)
        self._get_data()
        return func

    def _call(self, data: Optional[bytes], stat: Optional[Stat],
              event: Optional[WatchedEvent]) -> None:
        self._ever_called = True
        func = self._func
        assert func is not None
        result = func(data, stat, event) if self._three else func(data, stat)
        if result is False:
            self._stopped = True
            self._client.remove_listener(self._session_watcher)

    def _get_data(self, event: Optional[WatchedEvent] = None) -> None:
        with self._lock:
            if self._stopped:
                return
            try:
                while True:
                    try:
                        read = self._client.get(self._path, self._watcher)
                        data: Optional[bytes] = None if read.is_null else read
                        stat: Optional[Stat] = read.stat
                        break
                    except NoNodeError:
                        data = None
                        stat = self._client.exists(self._path, self._watcher)
                        if stat is None:
                            break
                        # Created between the two reads: read it again.
            except (ConnectionClosedError, SessionExpiredError):
                return
            version = None if stat is None else stat.mzxid
            if version != self._version or not self._ever_called:
                self._version = version
                self._call(data, stat, event)

    def _watcher(self, event: WatchedEvent) -> None:
        if event.type == -1:
            return  # a state change: the listener re-reads once connected
        self._get_data(event)

    def _session_watcher(self, state: str) -> None:
        if state == ConnectionState.CONNECTED:
            self._get_data()


class ChildrenWatch:
    """Calls ``func(children)`` (or ``func(children, event)`` with ``send_event=True``) with
    the znode's children now and after every change. ``func`` returning False stops the watch;
    so does the znode's deletion. Use as a decorator::

        @zk.ChildrenWatch("/workers")
        def workers(children):
            ...
    """

    def __init__(self, client: "ZooKeeper", path: str,
                 func: Optional[Callable[..., Any]] = None, allow_session_lost: bool = True,
                 send_event: bool = False) -> None:
        """Watches ``path``'s children on ``client``; starts now if ``func`` is given."""
        self._client = client
        self._path = path
        self._func: Optional[Callable[..., Any]] = None
        self._send_event = send_event
        self._allow_session_lost = allow_session_lost
        self._stopped = False
        self._lock = threading.RLock()
        self._prior_children: Optional[List[str]] = None
        self._watch_established = False
        if func is not None:
            self(func)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Starts watching with ``func``; returns it (so it works as a decorator)."""
        if self._func is not None:
            raise ValueError("a function is already associated with this ChildrenWatch")
        self._func = func
        if self._allow_session_lost:
            self._client.add_listener(self._session_watcher)
        self._get_children()
        return func

    def _get_children(self, event: Optional[WatchedEvent] = None) -> None:
        with self._lock:
            if self._stopped:
                return
            try:
                children = self._client.get_children(self._path, self._watcher)
            except NoNodeError:
                self._stop()
                return
            except (ConnectionClosedError, SessionExpiredError):
                return
            if not self._watch_established:
                self._watch_established = True
                if self._prior_children is not None and self._prior_children == children:
                    return  # reconnected, nothing changed meanwhile
            self._prior_children = children
            func = self._func
            assert func is not None
            result = func(children, event) if self._send_event else func(children)
            if result is False:
                self._stop()

    def _stop(self) -> None:
        self._stopped = True
        self._client.remove_listener(self._session_watcher)

    def _watcher(self, event: WatchedEvent) -> None:
        if event.type == -1:
            return
        self._get_children(event)

    def _session_watcher(self, state: str) -> None:
        if state in (ConnectionState.LOST, ConnectionState.SUSPENDED):
            self._watch_established = False
        elif state == ConnectionState.CONNECTED and not self._watch_established \
                and not self._stopped:
            self._get_children()
