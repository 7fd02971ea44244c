"""Guards against the asyncio client blocking the loop, losing results, or running watch
callbacks off the loop."""

import asyncio
import threading

import pytest

from zookeeper import BadVersionError, EventType, NoNodeError, RolledBackError
from zookeeper.aio import AsyncZooKeeper


def test_async_client(backend):
    async def main():
        loop_thread = threading.get_ident()
        events = asyncio.Queue()
        seen_threads = []

        def on_change(event):
            seen_threads.append(threading.get_ident())
            events.put_nowait(event)

        async with AsyncZooKeeper(backend.hosts) as zk:
            assert await zk.create("/a/b", b"1", makepath=True) == "/a/b"
            data = await zk.get("/a/b", watch=on_change)
            assert data == b"1" and data.stat.version == 0
            assert (await zk.set("/a/b", b"2", version=data)).version == 1
            event = await asyncio.wait_for(events.get(), 10)
            assert event.type == EventType.CHANGED and event.path == "/a/b"
            assert seen_threads == [loop_thread]
            with pytest.raises(BadVersionError):
                await zk.set("/a/b", b"3", version=data)
            with pytest.raises(NoNodeError):
                await zk.get("/nope")
            assert await zk.get_children("/a") == ["b"]
            assert await zk.exists("/nope") is None
            results = await asyncio.gather(*(zk.create(f"/a/c{i}") for i in range(20)))
            assert results == [f"/a/c{i}" for i in range(20)]
            async with zk.transaction() as transaction:
                transaction.create("/a/t")
            failed = zk.transaction()
            failed.create("/a/u")
            failed.check("/a/b", 0)
            assert isinstance((await failed.commit())[0], RolledBackError)
            assert await zk.delete("/a", recursive=True) is True
            assert await zk.exists("/a") is None
            assert await zk.sync("/") == "/"

    asyncio.run(main())


def test_async_coroutine_watch(backend):
    async def main():
        fired = asyncio.Event()

        async def watcher(event):
            fired.set()

        async with AsyncZooKeeper(backend.hosts) as zk:
            await zk.exists("/w", watch=watcher)
            await zk.create("/w")
            await asyncio.wait_for(fired.wait(), 10)

    asyncio.run(main())
