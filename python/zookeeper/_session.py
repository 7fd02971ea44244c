"""The session under both clients: opening it, its connection state and listeners, the cache
that makes one Python callable one watcher, and the drivers that run an operation's steps
blocking, with a completion callback, or (for ``zookeeper.aio``) as an awaitable."""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import (Any, Callable, Dict, Generator, List, Optional, Sequence, Tuple,
                    Union)

from zookeeper import _native
from zookeeper._cache import CacheStats, ReadCache, ReadStats, _read_cache
from zookeeper._types import (ConnectionState, EventType, KeeperState, WatchedEvent)
from zookeeper.exceptions import ConnectionClosedError, ZooKeeperError

#: A request for the native client and the watcher it leaves (None for no watch).
Request = Tuple[Tuple[Any, ...], Optional[_native.NativeWatcher]]
#: An operation as a generator: it yields requests, receives their answers (or has their
#: exceptions thrown in), and returns the operation's result.
Steps = Generator[Request, Any, Any]
WatchFn = Callable[[WatchedEvent], Any]
Listener = Callable[[str], Any]
Watch = Union[None, bool, WatchFn]

#: How many cached watchers a session keeps before it forgets those no watch holds anymore.
_WATCHER_CACHE_SWEEP_MIN = 64


def _event(event_type: int, state: int, path: str) -> WatchedEvent:
    try:
        typed_event: Any = EventType(event_type)
    except ValueError:
        typed_event = event_type
    try:
        typed_state: Any = KeeperState(state)
    except ValueError:
        typed_state = state
    return WatchedEvent(typed_event, typed_state, path)


def _watch_caller(fn: WatchFn) -> Callable[[int, int, str], None]:
    def call(event_type: int, state: int, path: str) -> None:
        fn(_event(event_type, state, path))
    return call


_STATE_FOR_EVENT = {
    KeeperState.SyncConnected: ConnectionState.CONNECTED,
    KeeperState.ConnectedReadOnly: ConnectionState.CONNECTED_RO,
    KeeperState.Disconnected: ConnectionState.SUSPENDED,
    KeeperState.Expired: ConnectionState.LOST,
    KeeperState.Closed: ConnectionState.LOST,
    KeeperState.AuthFailed: ConnectionState.LOST,
}


def _on_session_event(session_ref: "weakref.ref[Session]", event_type: int, state: int,
                      path: str) -> None:
    # Holds the session weakly: the native client keeps this callback alive, and a strong
    # reference would keep an unclosed, forgotten client from ever being collected.
    session = session_ref()
    if session is not None:
        session._session_event(_event(event_type, state, path))


def _close_quietly(native: _native.NativeClient) -> None:
    try:
        native.close()
    except ZooKeeperError:
        pass


#: Largest session timeout a client can ask for (ZooKeeper's is a signed 32-bit int).
_TIMEOUT_MS_MAX = 2**31 - 1

#: Sessions opened and not yet closed, closed at interpreter exit.
_open_sessions: "weakref.WeakSet[Session]" = weakref.WeakSet()
#: Embedded servers running, stopped at interpreter exit (registered by zookeeper.server).
_running_servers: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _at_exit() -> None:
    """Closes every session and stops every embedded server while Python still runs, then
    stops native threads from calling into Python: the interpreter's finalization must not
    meet a watcher or completion halfway."""
    for session in list(_open_sessions):
        try:
            session._close()
        except Exception:  # noqa: BLE001 - exit goes on whatever a session does
            pass
    for server in list(_running_servers):
        try:
            server.stop()
        except Exception:  # noqa: BLE001
            pass
    _native.shutdown()


# Registered after weakref's own exit hook, so it runs before the finalizers.
atexit.register(_at_exit)


class InProcessServer:
    """A server a client reaches without TCP: a :class:`zookeeper.ZooServer`, or one member of
    a :class:`zookeeper.ZooEnsemble`. Pass one as ``hosts``; not used directly."""

    def _connect(self, timeout_ms: int, watcher: _native.NativeWatcher,
                 cache: Optional[ReadCache] = None) -> _native.NativeClient:
        """Opens an in-process session (the subclass knows where)."""
        raise NotImplementedError


#: TLS as the native client takes it: (ca, certfile, keyfile, verify_certs).
TlsOptions = Tuple[Optional[str], Optional[str], Optional[str], bool]


def tls_options(use_ssl: bool, certfile: Optional[str], keyfile: Optional[str],
                ca: Optional[str], verify_certs: bool,
                keyfile_password: Optional[str]) -> Optional[TlsOptions]:
    """Checks kazoo's TLS arguments; None for plain TCP. Files are PEM; they are read (and any
    problem with them reported) when the session opens."""
    if not isinstance(use_ssl, bool):
        raise TypeError(f"use_ssl must be True or False, not {type(use_ssl).__name__}")
    if not isinstance(verify_certs, bool):
        raise TypeError(f"verify_certs must be True or False, not {type(verify_certs).__name__}")
    files = {"certfile": certfile, "keyfile": keyfile, "ca": ca}
    for name, value in files.items():
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name} must be a path, not {type(value).__name__}")
    if not use_ssl:
        given = [name for name, value in files.items() if value is not None]
        if given:
            # Certificates given but not used would connect in the clear without a word.
            raise ValueError(f"{', '.join(given)} given without use_ssl=True")
        return None
    if keyfile_password is not None:
        raise ValueError("encrypted private keys are not read: decrypt the key with "
                         "`openssl pkey -in key.pem -out plain-key.pem` and drop keyfile_password")
    if keyfile is not None and certfile is None:
        raise ValueError("keyfile needs certfile")
    if verify_certs and ca is None:
        raise ValueError("verifying the server's certificate needs ca (a PEM file of CA "
                         "certificates), or verify_certs=False")
    path = lambda value: None if value is None else os.fspath(value)  # noqa: E731
    return (path(ca), path(certfile), path(keyfile), verify_certs)


class Session:
    """What ZooKeeper and AsyncZooKeeper share; not used directly."""

    hosts: Union[str, InProcessServer]
    timeout: float

    def __init__(self, hosts: Union[str, InProcessServer], timeout: float,
                 watcher: Optional[WatchFn], read_only: bool,
                 auth_data: Optional[Sequence[Tuple[str, Union[str, bytes]]]],
                 cache: Union[None, int, ReadCache] = None,
                 tls: Optional[TlsOptions] = None) -> None:
        if not isinstance(hosts, (str, InProcessServer)):
            raise TypeError(f"hosts must be a connect string, a ZooServer or a ZooEnsemble "
                            f"member, not {type(hosts).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of milliseconds, not "
                            f"{type(timeout).__name__}")
        if not 0 < timeout <= _TIMEOUT_MS_MAX:
            raise ValueError(f"timeout must be in 1..{_TIMEOUT_MS_MAX} milliseconds")
        if watcher is not None and not callable(watcher):
            raise TypeError("watcher must be callable")
        if tls is not None and isinstance(hosts, InProcessServer):
            raise ValueError("use_ssl is for servers reached over TCP, not in-process ones")
        self.hosts = hosts
        self.timeout = timeout
        self._tls = tls
        self._cache = _read_cache(cache)
        self._watcher = watcher
        self._read_only = bool(read_only)
        self._auth_data = list(auth_data or [])
        for entry in self._auth_data:
            if not (isinstance(entry, tuple) and len(entry) == 2):
                raise TypeError("auth_data must be a list of (scheme, credential) pairs")
        self._native: Optional[_native.NativeClient] = None
        #: The session the recipes work through (zookeeper.recipes): each new session is put
        #: in it, so a LeaderLatch follows the client to its next session.
        self._slot = _native.NativeSessionSlot()
        self._lock = threading.RLock()
        self._state = ConnectionState.LOST
        self._listeners: List[Listener] = []
        self._watchers: Dict[Any, _native.NativeWatcher] = {}
        self._watchers_sweep_at = _WATCHER_CACHE_SWEEP_MIN
        self._finalizer: Optional[weakref.finalize] = None

    # -- opening and closing -------------------------------------------------------------------

    def _open(self, timeout_s: Optional[float] = None) -> None:
        """Opens a session unless one is open; blocks until it is (Ctrl-C interrupts), over TCP
        at most ``timeout_s`` seconds (default: the session timeout)."""
        connect_timeout_ms = None
        if timeout_s is not None:
            if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)):
                raise TypeError(f"timeout must be a number of seconds, not "
                                f"{type(timeout_s).__name__}")
            if not 0 < timeout_s <= _TIMEOUT_MS_MAX / 1000:
                raise ValueError("timeout must be a positive number of seconds")
            connect_timeout_ms = max(1, int(timeout_s * 1000))
        with self._lock:
            if self._native is not None and self._native.state not in (2, 3):
                return
            session_ref = weakref.ref(self)
            default = _native.NativeWatcher(
                lambda event_type, state, path: _on_session_event(
                    session_ref, event_type, state, path))
            timeout_ms = int(self.timeout)
            if isinstance(self.hosts, InProcessServer):
                native = self.hosts._connect(timeout_ms, default, self._cache)
            else:
                cache = None if self._cache is None else self._cache._native()
                native = _native.NativeClient.connect(self.hosts, timeout_ms, default,
                                                      self._read_only, cache,
                                                      connect_timeout_ms, self._tls)
            self._native = native
            self._slot.set(native)
            # Closes the session at exit or when the client is collected, so its ephemerals
            # go at once rather than after the session timeout.
            self._finalizer = weakref.finalize(self, _close_quietly, native)
            _open_sessions.add(self)
            self._set_state(ConnectionState.CONNECTED)
        for scheme, credential in self._auth_data:
            self._run_sync(self._add_auth_steps(scheme, credential))

    def _close(self) -> None:
        with self._lock:
            native, self._native = self._native, None
            finalizer, self._finalizer = self._finalizer, None
            if native is not None:
                self._slot.set(None)
        if finalizer is not None:
            finalizer.detach()
        if native is not None:
            # Best effort, as kazoo's stop: a session the client cannot reach or that already
            # ended is closed either way (the server expires it).
            _close_quietly(native)
            self._set_state(ConnectionState.LOST)

    def _live(self) -> _native.NativeClient:
        native = self._native
        if native is None:
            raise ConnectionClosedError("the client is closed; call start() to reconnect")
        return native

    # -- state and listeners -------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The connection as listeners see it: CONNECTED, CONNECTED_RO, SUSPENDED or LOST."""
        native = self._native
        if native is None:
            return ConnectionState.LOST
        if native.state == 4:
            return ConnectionState.SUSPENDED
        if native.state in (1, 2, 3):
            return ConnectionState.LOST
        return self._state if self._state != ConnectionState.LOST else ConnectionState.CONNECTED

    @property
    def connected(self) -> bool:
        """True while the session is connected (kazoo's ``connected``)."""
        return self.state in (ConnectionState.CONNECTED, ConnectionState.CONNECTED_RO)

    @property
    def client_id(self) -> Optional[Tuple[int, bytes]]:
        """``(session_id, password)`` of the open session, None when closed."""
        native = self._native
        return None if native is None else (native.session_id, native.session_password)

    @property
    def cache_stats(self) -> Optional[CacheStats]:
        """What the read cache (``cache=``) did so far; None when it is off or closed."""
        native = self._native
        stats = None if native is None else native.cache_stats
        if stats is None:
            return None
        (hits, misses, invalidations, evictions, entries, size, expirations, released, data,
         exists, children) = stats
        return CacheStats(hits, misses, invalidations, evictions, entries, size, expirations,
                          released, ReadStats(*data), ReadStats(*exists), ReadStats(*children))

    @property
    def session_timeout(self) -> int:
        """The session timeout the server granted, in milliseconds (0 when closed)."""
        native = self._native
        return 0 if native is None else native.session_timeout_ms

    def add_listener(self, listener: Listener) -> None:
        """Calls ``listener(state)`` on every connection state change, on the dispatcher thread.
        A listener that returns True is removed (as in kazoo)."""
        if not callable(listener):
            raise TypeError("listener must be callable")
        with self._lock:
            if listener not in self._listeners:
                self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stops calling ``listener``; does nothing if it was not added."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _set_state(self, state: str) -> None:
        with self._lock:
            if state == self._state:
                return
            self._state = state
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                if listener(state) is True:
                    self.remove_listener(listener)
            except Exception:  # a listener's failure must not stop the others
                import traceback
                traceback.print_exc()

    def _session_event(self, event: WatchedEvent) -> None:
        if event.type == EventType.NONE:
            state = _STATE_FOR_EVENT.get(event.state)  # type: ignore[call-overload]
            if state is not None:
                self._set_state(state)
        if self._watcher is not None:
            self._call_user(self._watcher, event)

    def _call_user(self, fn: Callable[..., Any], *args: Any) -> None:
        """Runs a user callback on the dispatcher thread (AsyncZooKeeper moves it to its loop)."""
        fn(*args)

    # -- watchers ------------------------------------------------------------------------------

    def _native_watcher(self, watch: Watch) -> Optional[_native.NativeWatcher]:
        """The native watcher for ``watch=``: None, True (the default watcher) or a callable.
        The same callable maps to the same watcher, so it fires once per event however often
        it was registered, and ``remove_watches`` finds it."""
        if watch is None or watch is False:
            return None
        if watch is True:
            return self._live().default_watcher
        if not callable(watch):
            raise TypeError(f"watch must be a callable or True, not {type(watch).__name__}")
        try:
            hash(watch)
        except TypeError:
            return _native.NativeWatcher(self._watch_caller(watch))
        with self._lock:
            native = self._watchers.get(watch)
            if native is None:
                if len(self._watchers) >= self._watchers_sweep_at:
                    self._watchers = {fn: w for fn, w in self._watchers.items()
                                      if w.handle_count > 1}
                    self._watchers_sweep_at = max(_WATCHER_CACHE_SWEEP_MIN,
                                                  2 * len(self._watchers))
                native = _native.NativeWatcher(self._watch_caller(watch))
                self._watchers[watch] = native
            return native

    def _known_watcher(self, watch: Watch) -> Optional[_native.NativeWatcher]:
        """The native watcher already standing for ``watch``, for remove_watches."""
        if watch is None or watch is True:
            return self._native_watcher(watch)
        with self._lock:
            return self._watchers.get(watch)

    def _watch_caller(self, fn: WatchFn) -> Callable[[int, int, str], None]:
        return _watch_caller(fn)

    # -- drivers -------------------------------------------------------------------------------

    def _run_sync(self, steps: Steps) -> Any:
        """Runs ``steps``, each request blocking (GIL released) until answered."""
        native = self._live()
        try:
            request = next(steps)
            while True:
                op, watcher = request
                try:
                    value = native.submit(op, watcher)
                except ZooKeeperError as error:
                    request = steps.throw(error)
                else:
                    request = steps.send(value)
        except StopIteration as stop:
            return stop.value

    def _run_async(self, steps: Steps, finish: Callable[[Any, Optional[BaseException]], None]
                   ) -> None:
        """Runs ``steps`` with each answer advancing it on the dispatcher thread; calls
        ``finish(result, None)`` or ``finish(None, exception)`` there at the end. A closed
        client has no dispatcher: ``finish`` then hears ConnectionClosedError on a thread of
        its own, so the call still returns first (as kazoo's async calls fail)."""
        try:
            native = self._live()
        except ConnectionClosedError as closed:
            threading.Thread(target=finish, args=(None, closed), name="zk-closed",
                             daemon=True).start()
            return

        def advance(value: Any, error: Optional[BaseException]) -> None:
            try:
                request = steps.throw(error) if error is not None else steps.send(value)
                op, watcher = request
                native.submit_async(op, watcher, advance)
            except StopIteration as stop:
                finish(stop.value, None)
            except Exception as failure:
                finish(None, failure)

        advance(None, None)

    def _add_auth_steps(self, scheme: str, credential: Union[str, bytes]) -> Steps:
        from zookeeper._steps import add_auth
        return add_auth(scheme, credential)
