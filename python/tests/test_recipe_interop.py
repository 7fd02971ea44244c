"""Guards the claim that our recipes keep kazoo's znode layout: a kazoo process and ours
contending for one Lock or Counter must exclude and see each other."""

from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout as KazooLockTimeout
from kazoo.recipe.counter import Counter as KazooCounter
from kazoo.recipe.lock import Lock as KazooLock

from zookeeper.recipes import Counter, Lock, LockTimeout


def kazoo_client(hosts: str) -> KazooClient:
    client = KazooClient(hosts=hosts, timeout=10)
    client.start(timeout=10)
    return client


def test_a_lock_excludes_kazoo_and_kazoo_excludes_it(tcp_backend: Any) -> None:
    kazoo = kazoo_client(tcp_backend.hosts)
    try:
        theirs = KazooLock(kazoo, "/interop-lock", "kazoo")
        ours = Lock(tcp_backend.client(), "/interop-lock", "ours")
        assert theirs.acquire(timeout=5)
        with pytest.raises(LockTimeout):  # as kazoo's acquire does on a timeout
            ours.acquire(timeout=0.5)
        assert sorted(ours.contenders()) == ["kazoo"]
        theirs.release()
        assert ours.acquire(timeout=5)
        with pytest.raises(KazooLockTimeout):
            theirs.acquire(timeout=0.5)
        assert theirs.contenders() == ["ours"]
        ours.release()
        assert theirs.acquire(timeout=5)
        theirs.release()
    finally:
        kazoo.stop()
        kazoo.close()


def test_a_counter_adds_up_with_kazoos(tcp_backend: Any) -> None:
    kazoo = kazoo_client(tcp_backend.hosts)
    try:
        theirs = KazooCounter(kazoo, "/interop-counter")
        ours = Counter(tcp_backend.client(), "/interop-counter")
        theirs += 5
        ours += 3
        theirs -= 1
        assert ours.value == 7 and theirs.value == 7
    finally:
        kazoo.stop()
        kazoo.close()
