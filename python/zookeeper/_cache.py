"""The read cache's settings (``ZooKeeper(cache=ReadCache(...))`` or ``cache=N``) and counters."""

from typing import NamedTuple, Optional, Tuple, Union

#: What the native client takes: (entries_max, bytes_max, ttl_ms, serve_stale_while_disconnected).
NativeCache = Tuple[int, int, Optional[int], bool]


def _positive(name: str, value: object, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a number of {unit}, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of {unit}")
    return value


class ReadCache:
    """A watch-coherent LRU cache of plain reads: ``get``, ``exists`` (present and absent) and
    ``get_children``. An answer is kept while the watch its read left on the server lives, and
    dropped as soon as the client hears of a change to the znode (never later than the reply
    of any call made after the change), or of the client's own write to it or to a child.

    ``entries_max`` answers (a znode's data, existence and children count one each) and
    ``bytes_max`` bytes (data and child names) at most; ``ttl_ms`` bounds how long an answer
    is served after it was read (None: while its watch lives).
    ``serve_stale_while_disconnected=True`` keeps answering from the cache while the client is
    disconnected (entries younger than ``ttl_ms``) instead of dropping it: this is *outside*
    ZooKeeper's guarantees, as such answers may be older than changes the server made since.
    """

    __slots__ = ("entries_max", "bytes_max", "ttl_ms", "serve_stale_while_disconnected")

    entries_max: int
    bytes_max: int
    ttl_ms: Optional[int]
    serve_stale_while_disconnected: bool

    def __init__(self, entries_max: int = 4096, bytes_max: int = 64 << 20,
                 ttl_ms: Optional[int] = None,
                 serve_stale_while_disconnected: bool = False) -> None:
        self.entries_max = _positive("entries_max", entries_max, "answers")
        self.bytes_max = _positive("bytes_max", bytes_max, "bytes")
        self.ttl_ms = None if ttl_ms is None else _positive("ttl_ms", ttl_ms, "milliseconds")
        if not isinstance(serve_stale_while_disconnected, bool):
            raise TypeError(f"serve_stale_while_disconnected must be a bool, not "
                            f"{type(serve_stale_while_disconnected).__name__}")
        self.serve_stale_while_disconnected = serve_stale_while_disconnected

    def __repr__(self) -> str:
        return (f"ReadCache(entries_max={self.entries_max}, bytes_max={self.bytes_max}, "
                f"ttl_ms={self.ttl_ms}, serve_stale_while_disconnected="
                f"{self.serve_stale_while_disconnected})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReadCache) and self._native() == other._native()

    def __hash__(self) -> int:
        return hash(self._native())

    def _native(self) -> NativeCache:
        return (self.entries_max, self.bytes_max, self.ttl_ms,
                self.serve_stale_while_disconnected)


def _read_cache(cache: Union[None, int, ReadCache]) -> Optional[ReadCache]:
    """``cache=`` as a ReadCache: N is ``ReadCache(entries_max=N)``."""
    if cache is None or isinstance(cache, ReadCache):
        return cache
    if isinstance(cache, bool) or not isinstance(cache, int):
        raise TypeError(f"cache must be a ReadCache, a number of entries or None, not "
                        f"{type(cache).__name__}")
    if cache <= 0:
        raise ValueError("cache must be a positive number of entries")
    return ReadCache(entries_max=cache)


class ReadStats(NamedTuple):
    """Hits and misses of one kind of read."""

    #: Reads answered from the cache.
    hits: int
    #: Reads that went to the server.
    misses: int


class CacheStats(NamedTuple):
    """The read cache's counters (``ZooKeeper(cache=...)``)."""

    #: Reads answered from the cache, all kinds.
    hits: int
    #: Reads that went to the server, all kinds.
    misses: int
    #: Entries dropped because their znode changed, a watch was removed or the connection moved.
    invalidations: int
    #: Entries dropped to stay within ``entries_max`` and ``bytes_max``.
    evictions: int
    #: Answers cached now.
    entries: int
    #: Bytes cached now (data and child names).
    bytes: int
    #: Entries dropped because they outlived ``ttl_ms``.
    expirations: int
    #: Server-side watches of evicted entries removed from the server.
    watches_released: int
    #: ``get``.
    data: ReadStats
    #: ``exists``.
    exists: ReadStats
    #: ``get_children``.
    children: ReadStats
