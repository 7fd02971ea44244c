"""An in-process ZooKeeper ensemble for test suites: members that replicate over an in-memory
network and each serve ZooKeeper's client protocol on 127.0.0.1, to be killed, restarted,
partitioned and paused while clients (ours, kazoo, any other) fail over between them."""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple, Union

from zookeeper import _native
from zookeeper._cache import ReadCache
from zookeeper._session import InProcessServer, WatchFn, _running_servers
from zookeeper.server import ZooClient

__all__ = ["ZooEnsemble", "EnsembleMember"]


def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


class ZooEnsemble:
    """A ZooKeeper ensemble of ``size`` voting members (1 to 15) in this process, started by
    the constructor; ``stop()`` (or leaving a ``with`` block) stops every member.

    Members are indexed ``0`` to ``size - 1``. Each serves ZooKeeper's client protocol on a
    free port of 127.0.0.1 that it keeps across restarts: ``hosts`` is the connect string of
    all of them, for ``ZooKeeper(ensemble.hosts, timeout)``, kazoo, or any ZooKeeper client,
    which fails over between members as it would in production. ``client(i)`` opens an
    in-process session on member ``i`` instead. Members replicate with raft over an
    in-memory network; a member's data lives in memory and survives ``kill``/``restart``
    (what it made durable), not ``stop()``. Elections take about 100-200 ms.

    ``tick_ms`` is ZooKeeper's tickTime: session timeouts are clamped to 2..20 ticks unless
    ``session_timeout_ms_min``/``_max`` say otherwise; ``super_digest`` is
    DigestAuthenticationProvider.superDigest, as for :class:`ZooServer`.
    """

    def __init__(self, size: int = 3, *, tick_ms: int = 2000,
                 session_timeout_ms_min: Optional[int] = None,
                 session_timeout_ms_max: Optional[int] = None,
                 super_digest: Optional[str] = None) -> None:
        """Starts the ensemble (ValueError for a size outside 1..15 or an invalid setting)."""
        for name, value in (("size", size), ("tick_ms", tick_ms),
                            ("session_timeout_ms_min", session_timeout_ms_min),
                            ("session_timeout_ms_max", session_timeout_ms_max)):
            if value is not None:
                _check_int(name, value)
        if not 0 < tick_ms <= 2**31 - 1:
            raise ValueError("tick_ms must be in 1..2147483647")
        for name, value in (("session_timeout_ms_min", session_timeout_ms_min),
                            ("session_timeout_ms_max", session_timeout_ms_max)):
            if value is not None and not 0 <= value <= 2**32 - 1:
                raise ValueError(f"{name} must be in 0..4294967295")
        if super_digest is not None and not isinstance(super_digest, str):
            raise TypeError(f"super_digest must be a str, not {type(super_digest).__name__}")
        if not 1 <= size <= _native.ENSEMBLE_MEMBERS_MAX:
            raise ValueError(f"size must be 1 to {_native.ENSEMBLE_MEMBERS_MAX} members")
        self._native: Optional[_native.NativeEnsemble] = _native.NativeEnsemble(
            size, tick_ms, session_timeout_ms_min, session_timeout_ms_max, super_digest)
        self._size = size
        self._hosts = self._native.connect_string
        _running_servers.add(self)

    # -- where clients connect -----------------------------------------------------------------

    @property
    def size(self) -> int:
        """How many members the ensemble has, running or not."""
        return self._size

    @property
    def running(self) -> bool:
        """True until ``stop()``."""
        return self._native is not None

    @property
    def hosts(self) -> str:
        """Every member's ``127.0.0.1:port``, comma-separated: a connect string."""
        return self._hosts

    def client_address(self, member: int) -> str:
        """``"127.0.0.1:port"`` where ``member`` (0 to size - 1) serves TCP clients; the same
        port across restarts."""
        return self._live().client_address(self._member(member))

    def client(self, member: int, timeout: float = 30000, watcher: Optional[WatchFn] = None,
               *, auth_data: Optional[Sequence[Tuple[str, Union[str, bytes]]]] = None
               ) -> ZooClient:
        """A new in-process client (the ZooKeeper API, no TCP) on ``member`` (0 to size - 1).
        It waits up to ``timeout`` ms, the session timeout, for the member to serve (a member
        without its quorum, or paused, does not); ConnectionLossError for a member that is
        down or did not serve in time. When its member is killed the client is disconnected
        for good (it does not fail over: connect through ``hosts`` for that)."""
        return ZooClient(EnsembleMember(self, member), timeout, watcher, auth_data=auth_data)

    # -- faults ----------------------------------------------------------------------------------

    def kill(self, member: int) -> None:
        """Crashes ``member`` (0 to size - 1) as kill -9 would: its port closes, its clients
        are disconnected, its disk keeps only what it made durable. Nothing for a member
        that is down."""
        self._live().kill(self._member(member))

    def restart(self, member: int) -> None:
        """Starts ``member`` (0 to size - 1) again on its disk and its port (a running member
        is killed first); it rejoins as a follower and catches up. OSError if its port was
        taken meanwhile."""
        self._live().restart(self._member(member))

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Splits the members into groups that reach only each other (``[[0], [1, 2]]``); a
        member in no group reaches nobody. Replaces any earlier partition. A member named
        twice or out of range raises (ValueError, IndexError) and changes nothing. Clients
        still reach every running member."""
        if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence):
            raise TypeError(f"groups must be a list of lists of members, not "
                            f"{type(groups).__name__}")
        checked: List[List[int]] = []
        for group in groups:
            if isinstance(group, (str, bytes)) or not isinstance(group, Sequence):
                raise TypeError(f"each group must be a list of members, not "
                                f"{type(group).__name__}")
            checked.append([self._member(member) for member in group])
        self._live().partition(checked)

    def isolate(self, member: int) -> None:
        """Cuts ``member`` (0 to size - 1) off from every other member."""
        self._live().isolate(self._member(member))

    def heal(self) -> None:
        """Every member reaches every other again."""
        self._live().heal()

    def pause(self, member: int) -> None:
        """Stops ``member`` (0 to size - 1) as SIGSTOP would: it answers no peer and no client
        until ``resume``. Nothing for a member that is down."""
        self._live().pause(self._member(member))

    def resume(self, member: int) -> None:
        """Continues a paused member (0 to size - 1)."""
        self._live().resume(self._member(member))

    # -- leadership ------------------------------------------------------------------------------

    def leader(self) -> Optional[int]:
        """The member that leads and serves now, or None during an election."""
        return self._live().leader()

    def wait_for_leader(self, timeout_s: float = 10.0) -> int:
        """Waits until a member leads and serves, and returns it; TimeoutError when none did
        within ``timeout_s`` seconds (``math.inf``: without end). Ctrl-C interrupts it."""
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)):
            raise TypeError(f"timeout_s must be a number of seconds, not "
                            f"{type(timeout_s).__name__}")
        if math.isnan(timeout_s) or timeout_s < 0:
            raise ValueError("timeout_s must be a number of seconds, 0 or more")
        timeout_ms = None if math.isinf(timeout_s) else int(timeout_s * 1000)
        leader = self._live().wait_for_leader(timeout_ms)
        if leader is None:
            raise TimeoutError(f"no member of {self!r} led within {timeout_s} s")
        return leader

    # -- lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stops every member; their data is gone, and every later call but ``stop`` raises
        RuntimeError. Clients are disconnected. Idempotent."""
        native, self._native = self._native, None
        if native is not None:
            native.stop()

    def __enter__(self) -> "ZooEnsemble":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ZooEnsemble of {self._size} at {self._hosts} {state}>"

    def _live(self) -> _native.NativeEnsemble:
        native = self._native
        if native is None:
            raise RuntimeError("the ZooEnsemble is stopped")
        return native

    def _member(self, member: Any) -> int:
        _check_int("member", member)
        if not 0 <= member < self._size:
            raise IndexError(f"member {member} is out of range: this ensemble's members are "
                             f"0 to {self._size - 1}")
        return member

    def _connect(self, member: int, timeout_ms: int, watcher: _native.NativeWatcher,
                 cache: Optional[ReadCache]) -> _native.NativeClient:
        native = self._native
        if native is None:
            from zookeeper.exceptions import ConnectionLossError
            raise ConnectionLossError("the ZooEnsemble is stopped")
        return native.connect(member, timeout_ms, watcher,
                              cache=None if cache is None else cache._native())


class EnsembleMember(InProcessServer):
    """Member ``index`` of a :class:`ZooEnsemble` as the server of in-process clients:
    ``ZooKeeper(EnsembleMember(ensemble, 1))`` is ``ensemble.client(1)``. Like a ZooServer's
    in-process clients, a client of a killed member stays SUSPENDED (ConnectionLossError);
    after the member restarts, ``stop()`` then ``start()`` opens a new session there."""

    def __init__(self, ensemble: ZooEnsemble, index: int) -> None:
        """Names member ``index`` (0 to size - 1) of ``ensemble``."""
        if not isinstance(ensemble, ZooEnsemble):
            raise TypeError(f"ensemble must be a ZooEnsemble, not {type(ensemble).__name__}")
        self.ensemble = ensemble
        self.index = ensemble._member(index)

    def _connect(self, timeout_ms: int, watcher: _native.NativeWatcher,
                 cache: Optional[ReadCache] = None) -> _native.NativeClient:
        return self.ensemble._connect(self.index, timeout_ms, watcher, cache)

    def __repr__(self) -> str:
        return f"<member {self.index} of {self.ensemble!r}>"
