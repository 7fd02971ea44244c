"""Guards ``cache=`` against serving answers (data, existence, children) older than what the
client was told: another client's change, the client's own write (to the znode or a child), a
deletion; async reads that skip the cache, entries that outlive ``ttl_ms``; and against bad
settings being accepted silently."""

import asyncio
import threading
import time
from typing import Any

import pytest

from zookeeper import CacheStats, EventType, NoNodeError, ReadCache, ReadStats, ZooKeeper
from zookeeper.aio import AsyncZooKeeper


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


def test_exists_and_children_are_cached_too_and_counted_per_kind(backend: Any) -> None:
    zk = backend.client(cache=ReadCache(entries_max=100, bytes_max=1 << 20))
    other = backend.client()
    assert zk.exists("/e") is None and zk.exists("/e") is None
    other.create("/e", b"x")
    zk.sync("/")
    stat = zk.exists("/e")
    assert stat is not None and zk.exists("/e") == stat
    assert zk.get_children("/e") == [] and zk.get_children("/e") == []
    other.create("/e/k")
    zk.sync("/")
    assert zk.get_children("/e") == ["k"]
    # The child change moved /e's Stat, which exists answers with too.
    changed = zk.exists("/e")
    assert changed is not None and changed.numChildren == 1
    stats = zk.cache_stats
    assert stats is not None
    assert stats.exists == ReadStats(hits=2, misses=3)
    assert stats.children == ReadStats(hits=1, misses=2)
    assert stats.data == ReadStats(hits=0, misses=0)
    assert (stats.hits, stats.misses) == (3, 5)


def test_the_clients_own_create_is_seen_in_its_parents_cached_answers(backend: Any) -> None:
    zk = backend.client(cache=10)
    zk.create("/parent")
    before = zk.get("/parent").stat
    assert zk.get("/parent").stat == before
    zk.create("/parent/child")
    after = zk.get("/parent").stat
    assert after.numChildren == 1 and after.pzxid > before.pzxid


def test_callbacks_and_asyncio_are_answered_from_the_cache(backend: Any) -> None:
    zk = backend.client(cache=10)
    zk.create("/a", b"v")
    for _ in range(2):
        done = threading.Event()
        results: list = []
        zk.get("/a", callback=lambda path, result: (results.append(result), done.set()))
        assert done.wait(10)
        assert results[0] == b"v"
    stats = zk.cache_stats
    assert stats is not None and stats.data == ReadStats(hits=1, misses=1)


def test_an_entry_lives_at_most_ttl_ms(backend: Any) -> None:
    zk = backend.client(cache=ReadCache(entries_max=10, ttl_ms=300))
    zk.create("/t", b"v")
    zk.get("/t")
    zk.get("/t")
    time.sleep(0.4)
    zk.get("/t")
    stats = zk.cache_stats
    assert stats is not None
    assert (stats.data, stats.expirations) == (ReadStats(hits=1, misses=2), 1)


def test_read_cache_settings_are_checked() -> None:
    assert ReadCache() == ReadCache(4096, 64 << 20, None, False)
    assert repr(ReadCache(entries_max=5)) == (
        "ReadCache(entries_max=5, bytes_max=67108864, ttl_ms=None, "
        "serve_stale_while_disconnected=False)")
    for keywords, error in (({"entries_max": 0}, ValueError), ({"bytes_max": -1}, ValueError),
                            ({"ttl_ms": 0}, ValueError), ({"ttl_ms": 1.5}, TypeError),
                            ({"entries_max": True}, TypeError),
                            ({"serve_stale_while_disconnected": 1}, TypeError)):
        with pytest.raises(error):
            ReadCache(**keywords)


def test_asyncio_reads_are_answered_from_the_cache(backend: Any) -> None:
    async def main() -> Any:
        async with AsyncZooKeeper(backend.hosts, cache=ReadCache(entries_max=10)) as zk:
            await zk.create("/aio", b"v")
            for _ in range(3):
                assert await zk.get("/aio") == b"v"
                assert await zk.get_children("/aio") == []
            stats = zk.cache_stats
            assert stats is not None
            await zk.delete("/aio")
            return stats.data, stats.children

    assert asyncio.run(main()) == (ReadStats(hits=2, misses=1), ReadStats(hits=2, misses=1))


def test_stale_reads_while_disconnected_only_when_asked_for() -> None:
    from zookeeper import ConnectionLossError, ZooEnsemble
    from zookeeper.ensemble import EnsembleMember

    with ZooEnsemble(3) as ensemble:
        leader = ensemble.wait_for_leader()
        member = (leader + 1) % 3
        writer = ensemble.client(leader)
        writer.create("/s", b"old")
        for stale in (False, True):
            zk = ZooKeeper(EnsembleMember(ensemble, member), 10000,
                           cache=ReadCache(serve_stale_while_disconnected=stale))
            zk.sync("/s")
            assert zk.get("/s") == b"old"
            ensemble.isolate(member)
            deadline = time.monotonic() + 10
            while zk.state != "SUSPENDED":  # until the client knows it is cut off
                assert time.monotonic() < deadline
                time.sleep(0.01)
            writer.set("/s", b"new")
            if stale:
                assert zk.get("/s") == b"old", "served stale, as asked"
            else:
                with pytest.raises(ConnectionLossError):
                    zk.get("/s")
            ensemble.heal()
            deadline = time.monotonic() + 10
            while True:  # fresh again once connected: the cache was dropped
                assert time.monotonic() < deadline
                try:
                    if zk.get("/s") == b"new":
                        break
                except ConnectionLossError:
                    pass
                time.sleep(0.01)
            zk.stop()
            writer.set("/s", b"old")
