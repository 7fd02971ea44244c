"""Guards TreeCache against drifting from kazoo's TreeCache, the behaviour it promises: the same
changes must leave both mirrors equal to the server's subtree, with the same sequence of event
types (and the same nodes per step), whichever way ours watches; and against listeners that
miss the initial load or a removal's children-first order."""

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache as KazooTreeCache

from zookeeper import ZooKeeper
from zookeeper.recipes import NodeData, TreeCache, TreeEvent

WAIT_S = 10.0


class Recorder:
    """Every event a listener heard, as (type, path)."""

    def __init__(self) -> None:
        self.events: List[Tuple[int, str]] = []
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        data = event.event_data
        with self.lock:
            self.events.append((event.event_type, "" if data is None else data.path))

    def count(self) -> int:
        with self.lock:
            return len(self.events)

    def wait_for(self, count: int) -> List[Tuple[int, str]]:
        deadline = time.monotonic() + WAIT_S
        while self.count() < count:
            assert time.monotonic() < deadline, f"{self.count()} events, not {count}: {self.events}"
            time.sleep(0.01)
        with self.lock:
            return list(self.events[:count])


def truth(zk: ZooKeeper, root: str) -> Dict[str, Tuple[Optional[bytes], int]]:
    found: Dict[str, Tuple[Optional[bytes], int]] = {}
    pending = [root]
    while pending:
        path = pending.pop()
        stat = zk.exists(path)
        if stat is None:
            continue
        data = zk.get(path)
        found[path] = (None if data is None else bytes(data), data.stat.mzxid)
        pending.extend(f"{path}/{name}" for name in zk.get_children(path))
    return found


def mirror(get_data: Callable[[str], Any], get_children: Callable[[str], Any],
           root: str) -> Dict[str, Tuple[Optional[bytes], int]]:
    found: Dict[str, Tuple[Optional[bytes], int]] = {}
    pending = [root]
    while pending:
        path = pending.pop()
        node = get_data(path)
        if node is None:
            continue
        found[path] = (node.data, node.stat.mzxid)
        pending.extend(f"{path}/{name}" for name in (get_children(path) or ()))
    return found


# Each step: a change, and how many events it brings.
STEPS: List[Tuple[str, Callable[[ZooKeeper], Any], int]] = [
    ("add a child", lambda zk: zk.create("/tree/b", b"b"), 1),
    ("change data", lambda zk: zk.set("/tree/a/x", b"x2"), 1),
    ("add a grandchild", lambda zk: zk.create("/tree/b/y", b""), 1),
    ("remove a leaf", lambda zk: zk.delete("/tree/a/x"), 1),
    ("remove a subtree", lambda zk: zk.delete("/tree/b", recursive=True), 2),
    ("change the root", lambda zk: zk.set("/tree", b"root2"), 1),
    ("remove the root", lambda zk: zk.delete("/tree", recursive=True), 2),
    ("create the root again", lambda zk: zk.create("/tree", b"again"), 1),
]


@pytest.mark.parametrize("per_node_watches", [False, True])
def test_the_same_changes_give_kazoos_events_and_final_state(tcp_backend: Any,
                                                            per_node_watches: bool) -> None:
    writer = tcp_backend.client()
    writer.create("/tree", b"root")
    writer.create("/tree/a", b"a")
    writer.create("/tree/a/x", b"x")
    kazoo = KazooClient(hosts=tcp_backend.hosts, timeout=10)
    kazoo.start(timeout=10)
    theirs, ours = Recorder(), Recorder()
    kazoo_cache = KazooTreeCache(kazoo, "/tree")
    kazoo_cache.listen(theirs)
    cache = TreeCache(tcp_backend.client(), "/tree", per_node_watches=per_node_watches)
    cache.listen(ours)
    try:
        kazoo_cache.start()
        cache.start()
        expected = 4  # three nodes added, then initialized
        for name, change, events in [("start", lambda zk: None, 0)] + STEPS:
            change(writer)
            expected += events
            got_theirs, got_ours = theirs.wait_for(expected), ours.wait_for(expected)
            assert [kind for kind, _ in got_ours] == [kind for kind, _ in got_theirs], name
            # The order of one step's removals is children first in both; the order of the
            # initial load's additions is kazoo's reply order, so compare those as sets.
            assert sorted(got_ours) == sorted(got_theirs), name
        time.sleep(0.2)
        assert ours.count() == theirs.count() == expected
        assert ours.events[-1] == (TreeEvent.NODE_ADDED, "/tree")
        assert [kind for kind, _ in ours.events[:4]] == [TreeEvent.NODE_ADDED] * 3 + [
            TreeEvent.INITIALIZED]
        removed = ours.events[8:10]
        assert removed == [(TreeEvent.NODE_REMOVED, "/tree/b/y"),
                           (TreeEvent.NODE_REMOVED, "/tree/b")]
        server = truth(writer, "/tree")
        assert mirror(cache.get_data, cache.get_children, "/tree") == server
        assert mirror(kazoo_cache.get_data, kazoo_cache.get_children, "/tree") == server
        assert cache.get_children("/tree") == frozenset() and cache.get_children("/no") is None
        assert cache.get_data("/tree") == NodeData("/tree", b"again", writer.get("/tree").stat)
        assert cache.uses_per_node_watches == per_node_watches
    finally:
        cache.close()
        kazoo_cache.close()
        kazoo.stop()
        kazoo.close()


def test_a_tree_cache_in_process_and_its_bad_arguments(backend: Any) -> None:
    zk = backend.client()
    zk.create("/t/a", b"1", makepath=True)
    recorder = Recorder()
    cache = TreeCache(zk, "/t")
    cache.listen(recorder)
    cache.start()
    assert recorder.wait_for(3)[-1] == (TreeEvent.INITIALIZED, "")
    assert cache.initialized
    with pytest.raises(RuntimeError):
        cache.start()
    cache.close()
    zk.set("/t/a", b"2")
    time.sleep(0.1)
    assert recorder.count() == 3, "nothing after close"
    with pytest.raises(ValueError):
        TreeCache(zk, "relative")
    with pytest.raises(TypeError):
        TreeCache(zk, "/t", per_node_watches=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.listen("not callable")  # type: ignore[arg-type]
