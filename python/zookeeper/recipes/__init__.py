"""Coordination recipes over :class:`zookeeper.ZooKeeper`: locks, semaphores, leader election
and Curator's leader latch, barriers, queues, counters, group membership and a subtree cache
(kazoo's TreeCache).

They use only the public client API, so they behave the same over TCP (our server or Apache
ZooKeeper) and in process (:class:`zookeeper.ZooClient`), and they use kazoo's (and for
:class:`LeaderLatch`, Curator's) znode layouts, so processes using those libraries can take
part. Every blocking call takes a timeout::

    from zookeeper import ZooKeeper
    from zookeeper.recipes import Lock, LeaderLatch

    zk = ZooKeeper("127.0.0.1:2181")
    with Lock(zk, "/locks/report", "worker-1"):
        ...                                   # one holder at a time

    latch = LeaderLatch(zk, "/services/scheduler", "host-a")
    latch.add_listener(lambda leader: print("leader" if leader else "follower"))
    latch.start()
"""

from zookeeper.recipes._support import CancelledError, LockTimeout
from zookeeper.recipes.barrier import Barrier, DoubleBarrier
from zookeeper.recipes.cache import NodeData, TreeCache, TreeEvent
from zookeeper.recipes.counter import Counter
from zookeeper.recipes.election import LeaderElection
from zookeeper.recipes.latch import LeaderLatch
from zookeeper.recipes.lock import Lock, ReadLock, Semaphore, WriteLock
from zookeeper.recipes.party import Party, ShallowParty
from zookeeper.recipes.queue import LockingQueue, Queue

__all__ = [
    "Barrier",
    "CancelledError",
    "Counter",
    "DoubleBarrier",
    "LeaderElection",
    "LeaderLatch",
    "Lock",
    "LockTimeout",
    "LockingQueue",
    "NodeData",
    "Party",
    "Queue",
    "ReadLock",
    "Semaphore",
    "ShallowParty",
    "TreeCache",
    "TreeEvent",
    "WriteLock",
]
