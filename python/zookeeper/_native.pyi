"""Type stubs of the native module (see python/src/lib.rs): request tuples in, plain values out."""

from typing import Any, Callable, Optional, Tuple

from typing_extensions import final

__all__ = ["NativeClient", "NativeWatcher", "NativeServer", "__version__"]

__version__: str

@final
class NativeWatcher:
    """A Python callable ``(event_type, state, path)`` as a native watcher."""

    def __new__(cls, callback: Callable[[int, int, str], Any]) -> "NativeWatcher": ...
    @property
    def handle_count(self) -> int: ...

@final
class NativeClient:
    """A session on a ZooKeeper server."""

    @staticmethod
    def connect(hosts: str, timeout_ms: int, watcher: Optional[NativeWatcher] = None,
                read_only: bool = False) -> "NativeClient": ...
    def submit(self, request: Tuple[Any, ...], watcher: Optional[NativeWatcher] = None) -> Any: ...
    def submit_async(self, request: Tuple[Any, ...], watcher: Optional[NativeWatcher],
                     done: Callable[[Any, Optional[BaseException]], Any]) -> None: ...
    def close(self) -> None: ...
    @property
    def session_id(self) -> int: ...
    @property
    def session_password(self) -> bytes: ...
    @property
    def session_timeout_ms(self) -> int: ...
    @property
    def state(self) -> int: ...
    @property
    def is_in_process(self) -> bool: ...
    @property
    def default_watcher(self) -> Optional[NativeWatcher]: ...
    def set_attached(self, attached: bool) -> None: ...

@final
class NativeServer:
    """A running embedded server."""

    def __new__(cls, tick_ms: int = 2000, data_dir: Optional[str] = None,
                port: Optional[int] = None, host: str = ...,
                session_timeout_ms_min: Optional[int] = None,
                session_timeout_ms_max: Optional[int] = None, force_sync: bool = True,
                super_digest: Optional[str] = None,
                connections_per_ip_max: int = 60) -> "NativeServer": ...
    @property
    def address(self) -> Optional[str]: ...
    @property
    def running(self) -> bool: ...
    def connect(self, timeout_ms: int, watcher: Optional[NativeWatcher] = None,
                ip: str = ...) -> NativeClient: ...
    def stop(self) -> None: ...
