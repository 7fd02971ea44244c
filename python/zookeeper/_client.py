"""The blocking ZooKeeper client: every operation, raising typed exceptions, or with
``callback=`` asynchronous, its ``callback(path, result)`` run on the dispatcher thread."""

from __future__ import annotations

import functools
from typing import (Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union,
                    TYPE_CHECKING)

from zookeeper import _steps
from zookeeper._cache import ReadCache
from zookeeper._session import InProcessServer, Session, Steps, Watch, WatchFn, tls_options
from zookeeper._steps import check_data, check_mode, check_path, check_version
from zookeeper._types import (ACL, AclArg, ClientInfo, CreateMode, Data, Stat, WatcherType)

if TYPE_CHECKING:
    from zookeeper.watchers import ChildrenWatch, DataWatch

Callback = Callable[[str, Any], Any]


class ZooKeeper(Session):
    """A ZooKeeper client: one session on a server, opened by the constructor.

    ``hosts`` is a connect string (``"host:port,host:port/chroot"``), a :class:`ZooServer` or
    a :class:`ZooEnsemble` member (then the session is in process, without TCP). ``timeout`` is the session timeout in
    milliseconds. ``watcher(event)`` is the default watcher: it hears every connection state
    change and the events of watches set with ``watch=True``. ``auth_data`` is a list of
    ``(scheme, credential)`` added after connecting. ``cache=ReadCache(...)`` (or ``cache=N``,
    ``ReadCache(entries_max=N)``) keeps plain ``get``, ``exists`` and ``get_children`` answers
    in a watch-coherent LRU cache: a cached answer is given without the server, and dropped as
    soon as the client hears of a change to its znode (never later than the reply of any call
    made after the change) or makes one itself, so reads are never older than what the client
    has seen; ``cache_stats`` counts hits and misses per kind of read. Closed clients raise
    ``ConnectionClosedError``; ``start()`` reconnects with a new session.
    """

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
                 keyfile_password: Optional[str] = None, connect: bool = True) -> None:
        """Opens the session (unless ``connect=False``; then ``start()`` opens it).
        TLS as kazoo spells it: ``use_ssl=True`` with ``ca`` (PEM CA certificates the server's
        certificate must chain to; the host connected to must be named in it), and
        ``certfile``/``keyfile`` for servers that ask for a client certificate (its subject is
        the ``x509`` ACL id). ``verify_certs=False`` skips checking the server (tests only).
        ``keyfile_password`` is refused: encrypted keys are not read."""
        tls = tls_options(use_ssl, certfile, keyfile, ca, verify_certs, keyfile_password)
        super().__init__(hosts, timeout, watcher, read_only, auth_data, cache, tls)
        if connect:
            self._open()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, timeout: Optional[float] = None) -> None:
        """Opens a session unless one is open (idempotent; after ``stop()`` a new session).
        ``timeout`` is how many seconds to wait for a server, as kazoo's ``start(timeout)``
        (default: the session timeout); past it, ConnectionLossError."""
        self._open(timeout)

    def stop(self) -> None:
        """Closes the session: its ephemerals are deleted, its watchers hear Closed."""
        self._close()

    def close(self) -> None:
        """Same as ``stop()``."""
        self._close()

    def __enter__(self) -> "ZooKeeper":
        self._open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._close()

    def _run(self, steps: Steps, callback: Optional[Callback], path: str) -> Any:
        if callback is None:
            return self._run_sync(steps)
        if not callable(callback):
            raise TypeError("callback must be callable")

        def finish(result: Any, error: Optional[BaseException]) -> None:
            callback(path, error if error is not None else result)

        self._run_async(steps, finish)
        return None

    # -- operations ----------------------------------------------------------------------------

    def create(self, path: str, value: Optional[bytes] = b"", mode: Optional[int] = None,
               acl: AclArg = None, *, makepath: bool = False, ttl: Optional[int] = None,
               ephemeral: bool = False, sequence: bool = False, include_data: bool = False,
               callback: Optional[Callback] = None) -> Any:
        """Creates a znode; returns its path (with the sequence suffix), or ``(path, Stat)``
        with ``include_data``. ``mode`` is a CreateMode (or kazoo's ``ephemeral``/``sequence``
        flags); ``ttl`` in milliseconds makes a persistent znode a TTL znode; ``makepath``
        creates missing parents; ``acl`` defaults to OPEN_ACL_UNSAFE."""
        path = check_path(path)
        value = check_data(value)
        create_mode, ttl_ms = check_mode(mode, ephemeral, sequence, ttl)
        steps = _steps.create(path, value, create_mode, acl, makepath, ttl_ms, include_data)
        return self._run(steps, callback, path)

    def get(self, path: str, watch: Watch = None, callback: Optional[Callback] = None) -> Data:
        """The znode's data as bytes carrying ``.stat``. ``watch`` (a callable, or True for the
        default watcher) fires once on the znode's deletion or data change."""
        path = check_path(path)
        return self._run(_steps.get(path, self._native_watcher(watch)), callback, path)

    def get_data(self, path: str, watch: Watch = None,
                 callback: Optional[Callback] = None) -> Data:
        """Same as ``get``."""
        return self.get(path, watch, callback)

    def exists(self, path: str, watch: Watch = None,
               callback: Optional[Callback] = None) -> Optional[Stat]:
        """The znode's Stat, None when it does not exist. ``watch`` fires once on its creation,
        deletion or data change."""
        path = check_path(path)
        return self._run(_steps.exists(path, self._native_watcher(watch)), callback, path)

    def set(self, path: str, value: Optional[bytes], version: Union[int, Stat, Data] = -1,
            callback: Optional[Callback] = None) -> Stat:
        """Replaces the znode's data if its version is ``version`` (-1: any; a Stat or data
        read with ``get`` stand for their version); returns the new Stat."""
        path = check_path(path)
        steps = _steps.set_data(path, check_data(value), check_version(version))
        return self._run(steps, callback, path)

    def set_data(self, path: str, value: Optional[bytes], version: Union[int, Stat, Data] = -1,
                 callback: Optional[Callback] = None) -> Stat:
        """Same as ``set``."""
        return self.set(path, value, version, callback)

    def delete(self, path: str, version: Union[int, Stat, Data] = -1, recursive: bool = False,
               callback: Optional[Callback] = None) -> bool:
        """Deletes the znode if its version is ``version`` (-1: any); with ``recursive``, its
        descendants first (a missing znode is then not an error). Returns True."""
        path = check_path(path)
        steps = _steps.delete(path, check_version(version), bool(recursive))
        return self._run(steps, callback, path)

    def get_children(self, path: str, watch: Watch = None, include_data: bool = False,
                     callback: Optional[Callback] = None) -> Any:
        """The children's names, sorted; ``(names, Stat)`` with ``include_data``. ``watch``
        fires once when a child is created or deleted, or the znode is deleted."""
        path = check_path(path)
        steps = _steps.get_children(path, self._native_watcher(watch), bool(include_data))
        return self._run(steps, callback, path)

    def get_acls(self, path: str, callback: Optional[Callback] = None
                 ) -> Tuple[List[ACL], Stat]:
        """The znode's ACL and Stat."""
        path = check_path(path)
        return self._run(_steps.get_acls(path), callback, path)

    def set_acls(self, path: str, acls: Sequence[ACL], version: Union[int, Stat, Data] = -1,
                 callback: Optional[Callback] = None) -> Stat:
        """Replaces the znode's ACL if its ACL version is ``version`` (-1: any)."""
        path = check_path(path)
        steps = _steps.set_acls(path, acls, _steps.check_acl_version(version))
        return self._run(steps, callback, path)

    def ensure_path(self, path: str, acl: AclArg = None,
                    callback: Optional[Callback] = None) -> bool:
        """Creates ``path`` and missing ancestors (persistent, empty); returns True."""
        path = check_path(path)
        return self._run(_steps.ensure_path(path, acl), callback, path)

    def sync(self, path: str, callback: Optional[Callback] = None) -> str:
        """Waits until the server has applied every change committed before the call."""
        path = check_path(path)
        return self._run(_steps.sync(path), callback, path)

    def add_auth(self, scheme: str, credential: Union[str, bytes],
                 callback: Optional[Callback] = None) -> bool:
        """Adds an identity (``"digest"``, ``"user:password"``). A failure is AuthFailedError,
        and then every later call fails the same way, as in ZooKeeper's clients."""
        return self._run(_steps.add_auth(scheme, credential), callback, "")

    def transaction(self) -> "Transaction":
        """A transaction: queue create/delete/set_data/check, then ``commit()`` them atomically."""
        return Transaction(self)

    def multi_read(self, reads: Iterable[Tuple[str, str]],
                   callback: Optional[Callback] = None) -> List[Any]:
        """Reads several znodes in one request: ``reads`` are ``("get_data", path)`` or
        ``("get_children", path)``; each result is Data, a list of names, or the exception."""
        return self._run(_steps.multi_read(reads), callback, "")

    def add_watch(self, path: str, callback: WatchFn, recursive: bool = False) -> None:
        """Leaves a persistent watch: ``callback(event)`` for every change of the znode (its
        data, existence, children), or with ``recursive`` of it and every descendant (data and
        existence), until ``remove_watches``."""
        path = check_path(path)
        if not callable(callback):
            raise TypeError("callback must be callable")
        watcher = self._native_watcher(callback)
        self._run(_steps.simple(("add_watch", path, 1 if recursive else 0), watcher), None, path)

    def remove_watches(self, path: str, watcher: Watch = None,
                       watcher_type: int = WatcherType.ANY,
                       callback: Optional[Callback] = None) -> bool:
        """Removes the watches of ``watcher_type`` on ``path`` (only ``watcher``'s when given);
        each removed watcher hears a *WATCH_REMOVED event. NoWatcherError when none matched."""
        path = check_path(path)
        code = int(WatcherType(watcher_type))
        native = None
        if watcher is not None:
            native = self._known_watcher(watcher)
            if native is None:
                from zookeeper.exceptions import NoWatcherError
                raise NoWatcherError(None, path)
        self._run(_steps.simple(("remove_watches", path, code), native), callback, path)
        return True

    def get_ephemerals(self, prefix: str = "/", callback: Optional[Callback] = None
                       ) -> List[str]:
        """The session's ephemeral znodes under ``prefix``, sorted."""
        prefix = check_path(prefix, "prefix")
        return self._run(_steps.simple(("get_ephemerals", prefix)), callback, prefix)

    def get_all_children_number(self, path: str = "/",
                                callback: Optional[Callback] = None) -> int:
        """The number of descendants of the znode."""
        path = check_path(path)
        return self._run(_steps.simple(("get_all_children_number", path)), callback, path)

    def whoami(self, callback: Optional[Callback] = None) -> List[ClientInfo]:
        """The session's authenticated identities."""
        return self._run(_steps.whoami(), callback, "")

    # -- kazoo-style watch helpers -------------------------------------------------------------

    @property
    def DataWatch(self) -> Callable[..., "DataWatch"]:
        """``@zk.DataWatch(path)``: a :class:`zookeeper.DataWatch` on this client."""
        from zookeeper.watchers import DataWatch
        return functools.partial(DataWatch, self)

    @property
    def ChildrenWatch(self) -> Callable[..., "ChildrenWatch"]:
        """``@zk.ChildrenWatch(path)``: a :class:`zookeeper.ChildrenWatch` on this client."""
        from zookeeper.watchers import ChildrenWatch
        return functools.partial(ChildrenWatch, self)

    def __repr__(self) -> str:
        native = self._native
        session = "closed" if native is None else f"session 0x{native.session_id:x}"
        return f"<ZooKeeper {self.hosts!r} {session} {self.state}>"


class Transaction:
    """Ops committed atomically by ``commit()`` (kazoo's TransactionRequest); as a context
    manager, it commits on a clean exit."""

    def __init__(self, client: Session) -> None:
        """An empty transaction on ``client``."""
        self.client = client
        self.operations: List[Tuple[Any, ...]] = []
        self.committed = False

    def _add(self, op: Tuple[Any, ...]) -> None:
        if self.committed:
            raise ValueError("the transaction is already committed")
        self.operations.append(op)

    def create(self, path: str, value: Optional[bytes] = b"", mode: Optional[int] = None,
               acl: AclArg = None, *, ttl: Optional[int] = None, ephemeral: bool = False,
               sequence: bool = False) -> None:
        """Queues a create (arguments as ``ZooKeeper.create``, without makepath)."""
        from zookeeper._types import _acl_to_native
        create_mode, ttl_ms = check_mode(mode, ephemeral, sequence, ttl)
        self._add(("create", check_path(path), check_data(value), _acl_to_native(acl),
                   int(create_mode), ttl_ms))

    def delete(self, path: str, version: Union[int, Stat, Data] = -1) -> None:
        """Queues a delete."""
        self._add(("delete", check_path(path), check_version(version)))

    def set_data(self, path: str, value: Optional[bytes], version: Union[int, Stat, Data] = -1) -> None:
        """Queues a data change."""
        self._add(("set_data", check_path(path), check_data(value), check_version(version)))

    def check(self, path: str, version: Union[int, Stat, Data]) -> None:
        """Queues a check that the znode's data version is ``version``."""
        self._add(("check", check_path(path), check_version(version)))

    def _steps(self) -> Steps:
        self._add(("noop",))  # refuses a second commit before anything is sent
        self.operations.pop()
        self.committed = True
        return _steps.multi(list(self.operations))

    def commit(self, callback: Optional[Callback] = None) -> List[Any]:
        """Commits every queued op or none. Returns one result per op (the created path, True
        for delete and check, the Stat for set_data); when the transaction failed, each is an
        exception instead (the failing op's own, RolledBackError for the others)."""
        client = self.client
        if not isinstance(client, ZooKeeper):
            raise TypeError("use await transaction.commit() with AsyncZooKeeper")
        return client._run(self._steps(), callback, "")

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.commit()
