"""Guards ``cache=`` against serving data older than what the client was told: another client's
change, the client's own write, a deletion; and against bad bounds being accepted silently."""

import threading
from typing import Any

import pytest

from zookeeper import CacheStats, EventType, NoNodeError, ZooKeeper


def test_repeated_reads_come_from_the_cache(backend: Any) -> None:
    zk = backend.client(cache=10)
    zk.create("/c", b"v1")
    first = zk.get("/c")
    for _ in range(5):
        again = zk.get("/c")
        assert again == b"v1" and again.stat == first.stat
    stats = zk.cache_stats
    assert isinstance(stats, CacheStats)
    assert (stats.hits, stats.misses, stats.entries, stats.bytes) == (5, 1, 1, 2)


def test_another_clients_change_is_seen_after_any_later_reply(backend: Any) -> None:
    zk = backend.client(cache=10)
    other = backend.client()
    zk.create("/c", b"v1")
    assert zk.get("/c") == b"v1"
    stat = other.set("/c", b"v2")
    zk.sync("/c")  # its reply follows the change's notification
    data = zk.get("/c")
    assert data == b"v2" and data.stat == stat
    other.delete("/c")
    zk.sync("/")
    with pytest.raises(NoNodeError):
        zk.get("/c")


def test_the_clients_own_writes_are_read_back(backend: Any) -> None:
    zk = backend.client(cache=10)
    zk.create("/own", b"0")
    for round in range(1, 10):
        zk.get("/own")
        stat = zk.set("/own", str(round).encode())
        data = zk.get("/own")
        assert data == str(round).encode() and data.stat == stat


def test_a_watched_get_still_sets_the_users_watch(backend: Any) -> None:
    zk = backend.client(cache=10)
    zk.create("/w", b"a")
    zk.get("/w")
    events: list = []
    fired = threading.Event()
    zk.get("/w", watch=lambda event: (events.append(event), fired.set()))
    zk.set("/w", b"b")
    assert fired.wait(10)
    assert [(event.type, event.path) for event in events] == [(EventType.CHANGED, "/w")]


def test_bad_cache_bounds_are_refused() -> None:
    for bad, error in ((True, TypeError), ("10", TypeError), (1.5, TypeError), (0, ValueError),
                       (-1, ValueError)):
        with pytest.raises(error):
            ZooKeeper("127.0.0.1:1", 1000, cache=bad, connect=False)
    assert ZooKeeper("127.0.0.1:1", 1000, connect=False).cache_stats is None
