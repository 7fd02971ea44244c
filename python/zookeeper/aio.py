"""The ZooKeeper client for asyncio: the same operations as ``zookeeper.ZooKeeper``, awaitable.

::

    from zookeeper.aio import AsyncZooKeeper

    async with AsyncZooKeeper("127.0.0.1:2181") as zk:
        await zk.create("/app", b"v1")
        data = await zk.get("/app", watch=on_change)   # on_change may be a coroutine function

Nothing blocks the event loop: requests complete on the client's dispatcher thread, which hands
results to the loop. Watch callbacks and the default watcher run on the loop (coroutine
functions are scheduled as tasks); connection listeners run on the dispatcher thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from zookeeper import _steps
from zookeeper._cache import ReadCache
from zookeeper._client import Transaction
from zookeeper._session import (InProcessServer, Session, Steps, Watch, WatchFn, _watch_caller,
                                tls_options)
from zookeeper._steps import check_data, check_mode, check_path, check_version
from zookeeper._types import ACL, AclArg, ClientInfo, CreateMode, Data, Stat, WatcherType

__all__ = ["AsyncZooKeeper", "AsyncTransaction"]


class AsyncZooKeeper(Session):
    """A ZooKeeper client whose operations are coroutines. ``await start()`` (or
    ``async with``) opens the session; arguments are as for :class:`zookeeper.ZooKeeper`."""

    PERSISTENT = CreateMode.PERSISTENT
    EPHEMERAL = CreateMode.EPHEMERAL
    PERSISTENT_SEQUENTIAL = CreateMode.PERSISTENT_SEQUENTIAL
    EPHEMERAL_SEQUENTIAL = CreateMode.EPHEMERAL_SEQUENTIAL
    CONTAINER = CreateMode.CONTAINER
    PERSISTENT_WITH_TTL = CreateMode.PERSISTENT_WITH_TTL
    PERSISTENT_SEQUENTIAL_WITH_TTL = CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL

    def __init__(self, hosts: Union[str, InProcessServer] = "127.0.0.1:2181",
                 timeout: float = 10000, watcher: Optional[WatchFn] = None, *,
                 read_only: bool = False,
                 auth_data: Optional[Sequence[Tuple[str, Union[str, bytes]]]] = None,
                 cache: Union[None, int, ReadCache] = None, use_ssl: bool = False,
                 certfile: Optional[str] = None, keyfile: Optional[str] = None,
                 ca: Optional[str] = None, verify_certs: bool = True,
                 keyfile_password: Optional[str] = None) -> None:
        """Configures the client; ``await start()`` connects (``cache``: as ZooKeeper's).
        TLS as kazoo spells it: ``use_ssl=True`` with ``ca`` (PEM CA certificates the server's
        certificate must chain to; the host connected to must be named in it), and
        ``certfile``/``keyfile`` for servers that ask for a client certificate (its subject is
        the ``x509`` ACL id). ``verify_certs=False`` skips checking the server (tests only).
        ``keyfile_password`` is refused: encrypted keys are not read."""
        tls = tls_options(use_ssl, certfile, keyfile, ca, verify_certs, keyfile_password)
        super().__init__(hosts, timeout, watcher, read_only, auth_data, cache, tls)
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    async def start(self, timeout: Optional[float] = None) -> None:
        """Opens a session unless one is open (connecting in a worker thread); ``timeout``
        as ``ZooKeeper.start``."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(None, self._open, timeout)

    async def stop(self) -> None:
        """Closes the session."""
        await asyncio.get_running_loop().run_in_executor(None, self._close)

    async def close(self) -> None:
        """Same as ``stop()``."""
        await self.stop()

    async def __aenter__(self) -> "AsyncZooKeeper":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    def _call_user(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            fn(*args)
        elif asyncio.iscoroutinefunction(fn):
            asyncio.run_coroutine_threadsafe(fn(*args), loop)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _watch_caller(self, fn: WatchFn) -> Callable[[int, int, str], None]:
        return _watch_caller(lambda event: self._call_user(fn, event))

    async def _await(self, steps: Steps) -> Any:
        loop = asyncio.get_running_loop()
        self._loop = self._loop or loop
        future = loop.create_future()

        def settle(result: Any, error: Optional[BaseException]) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def finish(result: Any, error: Optional[BaseException]) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(settle, result, error)

        self._run_async(steps, finish)
        return await future

    async def create(self, path: str, value: Optional[bytes] = b"", mode: Optional[int] = None,
                     acl: AclArg = None, *, makepath: bool = False, ttl: Optional[int] = None,
                     ephemeral: bool = False, sequence: bool = False,
                     include_data: bool = False) -> Any:
        """As ``ZooKeeper.create``."""
        path = check_path(path)
        value = check_data(value)
        create_mode, ttl_ms = check_mode(mode, ephemeral, sequence, ttl)
        return await self._await(_steps.create(path, value, create_mode, acl, makepath, ttl_ms,
                                               include_data))

    async def get(self, path: str, watch: Watch = None) -> Data:
        """As ``ZooKeeper.get``."""
        path = check_path(path)
        return await self._await(_steps.get(path, self._native_watcher(watch)))

    async def get_data(self, path: str, watch: Watch = None) -> Data:
        """As ``ZooKeeper.get_data``."""
        return await self.get(path, watch)

    async def exists(self, path: str, watch: Watch = None) -> Optional[Stat]:
        """As ``ZooKeeper.exists``."""
        path = check_path(path)
        return await self._await(_steps.exists(path, self._native_watcher(watch)))

    async def set(self, path: str, value: Optional[bytes], version: Union[int, Stat, Data] = -1) -> Stat:
        """As ``ZooKeeper.set``."""
        path = check_path(path)
        return await self._await(_steps.set_data(path, check_data(value),
                                                 check_version(version)))

    async def set_data(self, path: str, value: Optional[bytes],
                       version: Union[int, Stat, Data] = -1) -> Stat:
        """As ``ZooKeeper.set_data``."""
        return await self.set(path, value, version)

    async def delete(self, path: str, version: Union[int, Stat, Data] = -1,
                     recursive: bool = False) -> bool:
        """As ``ZooKeeper.delete``."""
        path = check_path(path)
        return await self._await(_steps.delete(path, check_version(version), bool(recursive)))

    async def get_children(self, path: str, watch: Watch = None,
                           include_data: bool = False) -> Any:
        """As ``ZooKeeper.get_children``."""
        path = check_path(path)
        return await self._await(_steps.get_children(path, self._native_watcher(watch),
                                                     bool(include_data)))

    async def get_acls(self, path: str) -> Tuple[List[ACL], Stat]:
        """As ``ZooKeeper.get_acls``."""
        return await self._await(_steps.get_acls(check_path(path)))

    async def set_acls(self, path: str, acls: Sequence[ACL],
                       version: Union[int, Stat, Data] = -1) -> Stat:
        """As ``ZooKeeper.set_acls``."""
        return await self._await(_steps.set_acls(check_path(path), acls,
                                                 _steps.check_acl_version(version)))

    async def ensure_path(self, path: str, acl: AclArg = None) -> bool:
        """As ``ZooKeeper.ensure_path``."""
        return await self._await(_steps.ensure_path(check_path(path), acl))

    async def sync(self, path: str) -> str:
        """As ``ZooKeeper.sync``."""
        return await self._await(_steps.sync(check_path(path)))

    async def add_auth(self, scheme: str, credential: Union[str, bytes]) -> bool:
        """As ``ZooKeeper.add_auth``."""
        return await self._await(_steps.add_auth(scheme, credential))

    def transaction(self) -> "AsyncTransaction":
        """A transaction; ``await transaction.commit()``."""
        return AsyncTransaction(self)

    async def multi_read(self, reads: Iterable[Tuple[str, str]]) -> List[Any]:
        """As ``ZooKeeper.multi_read``."""
        return await self._await(_steps.multi_read(reads))

    async def add_watch(self, path: str, callback: WatchFn, recursive: bool = False) -> None:
        """As ``ZooKeeper.add_watch``; ``callback`` runs on the loop."""
        path = check_path(path)
        if not callable(callback):
            raise TypeError("callback must be callable")
        watcher = self._native_watcher(callback)
        await self._await(_steps.simple(("add_watch", path, 1 if recursive else 0), watcher))

    async def remove_watches(self, path: str, watcher: Watch = None,
                             watcher_type: int = WatcherType.ANY) -> bool:
        """As ``ZooKeeper.remove_watches``."""
        path = check_path(path)
        native = None
        if watcher is not None:
            native = self._known_watcher(watcher)
            if native is None:
                from zookeeper.exceptions import NoWatcherError
                raise NoWatcherError(None, path)
        code = int(WatcherType(watcher_type))
        await self._await(_steps.simple(("remove_watches", path, code), native))
        return True

    async def get_ephemerals(self, prefix: str = "/") -> List[str]:
        """As ``ZooKeeper.get_ephemerals``."""
        prefix = check_path(prefix, "prefix")
        return await self._await(_steps.simple(("get_ephemerals", prefix)))

    async def get_all_children_number(self, path: str = "/") -> int:
        """As ``ZooKeeper.get_all_children_number``."""
        return await self._await(_steps.simple(("get_all_children_number", check_path(path))))

    async def whoami(self) -> List[ClientInfo]:
        """As ``ZooKeeper.whoami``."""
        return await self._await(_steps.whoami())


class AsyncTransaction(Transaction):
    """A transaction of an AsyncZooKeeper: ``await commit()``."""

    async def commit(self) -> List[Any]:  # type: ignore[override]
        """As ``Transaction.commit``."""
        client = self.client
        assert isinstance(client, AsyncZooKeeper)
        return await client._await(self._steps())

    def __enter__(self) -> "AsyncTransaction":
        raise TypeError("use `async with` and `await commit()` with AsyncTransaction")

    async def __aenter__(self) -> "AsyncTransaction":
        return self

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            await self.commit()
