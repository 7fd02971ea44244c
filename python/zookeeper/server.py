"""The embedded server: ZooKeeper's engine inside this process (no JVM), optionally serving
ZooKeeper's client protocol on a TCP port; and ZooClient, an in-process client of it."""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Tuple, Union

from zookeeper import _native
from zookeeper._cache import ReadCache
from zookeeper._client import ZooKeeper
from zookeeper._session import InProcessServer, WatchFn, _running_servers

__all__ = ["ZooServer", "ZooClient"]


class ZooServer(InProcessServer):
    """A ZooKeeper server in this process.

    ``port=None`` (the default) serves in-process clients only; ``port=0`` also listens on a
    free TCP port the system picks, any other port on that port; ``.address`` is then
    ``"host:port"``, a connect string for any ZooKeeper client. ``data_dir=None`` keeps
    everything in memory; a directory makes writes durable (a transaction log and snapshots)
    and is recovered on start. ``tick_ms`` is ZooKeeper's tickTime: session timeouts are
    clamped to 2..20 ticks unless ``session_timeout_ms_min``/``_max`` say otherwise.
    """

    def __init__(self, port: Optional[int] = None,
                 data_dir: Union[str, "os.PathLike[str]", None] = None, tick_ms: int = 2000, *,
                 host: str = "127.0.0.1", session_timeout_ms_min: Optional[int] = None,
                 session_timeout_ms_max: Optional[int] = None, force_sync: bool = True,
                 super_digest: Optional[str] = None, connections_per_ip_max: int = 60) -> None:
        """Configures the server; ``start()`` (or ``with``) runs it."""
        for name, value in (("port", port), ("tick_ms", tick_ms),
                            ("session_timeout_ms_min", session_timeout_ms_min),
                            ("session_timeout_ms_max", session_timeout_ms_max)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if port is not None and not 0 <= port <= 65535:
            raise ValueError("port must be in 0..65535")
        if not 0 < tick_ms <= 2**31 - 1:
            raise ValueError("tick_ms must be in 1..2147483647")
        self.port = port
        self.data_dir = None if data_dir is None else os.fspath(data_dir)
        self.tick_ms = tick_ms
        self._options = dict(host=host, session_timeout_ms_min=session_timeout_ms_min,
                             session_timeout_ms_max=session_timeout_ms_max,
                             force_sync=force_sync, super_digest=super_digest,
                             connections_per_ip_max=connections_per_ip_max)
        self._native: Optional[_native.NativeServer] = None

    def start(self) -> "ZooServer":
        """Starts the server (recovering ``data_dir``); does nothing if it runs. Returns self."""
        if self._native is None:
            self._native = _native.NativeServer(self.tick_ms, self.data_dir, self.port,
                                                **self._options)  # type: ignore[arg-type]
            _running_servers.add(self)
        return self

    def stop(self) -> None:
        """Stops serving. Sessions are not closed, as a ZooKeeper server's are not: with a
        ``data_dir`` they live on with their ephemerals, and TCP clients resume them once the
        server is started again (``start()`` recovers the directory); a session whose client
        does not come back expires after its timeout. In-process clients cannot follow the
        server: they become SUSPENDED and raise ConnectionLossError (in memory, where nothing
        outlives the server, they are LOST and raise SessionExpiredError)."""
        native, self._native = self._native, None
        if native is not None:
            native.stop()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._native is not None

    @property
    def address(self) -> Optional[str]:
        """``"host:port"`` while listening on TCP, else None."""
        return None if self._native is None else self._native.address

    def client(self, timeout: float = 30000, watcher: Optional[WatchFn] = None, *,
               auth_data: Optional[Sequence[Tuple[str, Union[str, bytes]]]] = None
               ) -> "ZooClient":
        """A new in-process client (same API as ZooKeeper)."""
        return ZooClient(self, timeout, watcher, auth_data=auth_data)

    def _connect(self, timeout_ms: int, watcher: _native.NativeWatcher,
                 cache: Optional[ReadCache] = None) -> _native.NativeClient:
        if self._native is None:
            from zookeeper.exceptions import ConnectionLossError
            raise ConnectionLossError("the ZooServer is not running; call start() first")
        return self._native.connect(timeout_ms, watcher,
                                    cache=None if cache is None else cache._native())

    def __enter__(self) -> "ZooServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.address or "in process"
        return f"<ZooServer {where} {'running' if self.running else 'stopped'}>"


class ZooClient(ZooKeeper):
    """An in-process client of a :class:`ZooServer` or of one member of a
    :class:`zookeeper.ZooEnsemble`: the ZooKeeper API without TCP."""

    def __init__(self, server: InProcessServer, timeout: float = 30000,
                 watcher: Optional[WatchFn] = None, *,
                 auth_data: Optional[Sequence[Tuple[str, Union[str, bytes]]]] = None,
                 cache: Union[None, int, ReadCache] = None) -> None:
        """Opens a session on ``server`` (``cache``: as ZooKeeper's)."""
        if not isinstance(server, InProcessServer):
            raise TypeError(f"server must be a ZooServer or a ZooEnsemble member, not "
                            f"{type(server).__name__}")
        super().__init__(server, timeout, watcher, auth_data=auth_data, cache=cache)

    def simulate_partition(self) -> None:
        """Cuts this client off so the server expires its session after its timeout (the
        in-process stand-in for a network partition)."""
        self._live().set_attached(False)
