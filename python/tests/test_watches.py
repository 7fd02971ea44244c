"""Guards against lost, duplicated or reordered watch events, and against DataWatch and
ChildrenWatch missing a change."""

import queue
import threading

from zookeeper import ChildrenWatch, DataWatch, EventType, KeeperState, WatchedEvent


def test_one_shot_watches_fire_once_in_order(backend):
    events = queue.Queue()
    zk = backend.client(watcher=lambda event: events.put(("default", event)))
    assert events.get(timeout=10) == ("default", WatchedEvent(EventType.NONE,
                                                              KeeperState.CONNECTED, ""))
    watch = lambda event: events.put(("watch", event))  # noqa: E731
    assert zk.exists("/n", watch=watch) is None
    zk.create("/n", b"1")
    zk.get("/n", watch=watch)
    zk.get("/n", watch=watch)  # the same callable: one watcher, one event
    zk.get_children("/n", watch=True)
    zk.create("/n/c")
    zk.set("/n", b"2")
    zk.set("/n", b"3")  # no watch left
    got = [events.get(timeout=10) for _ in range(3)]
    assert got == [
        ("watch", WatchedEvent(EventType.CREATED, KeeperState.CONNECTED, "/n")),
        ("default", WatchedEvent(EventType.CHILD, KeeperState.CONNECTED, "/n")),
        ("watch", WatchedEvent(EventType.CHANGED, KeeperState.CONNECTED, "/n")),
    ]
    zk.sync("/")
    assert events.empty()
    assert EventType.NodeCreated is EventType.CREATED


def test_close_tells_the_default_watcher_and_listeners(backend):
    events = queue.Queue()
    states = []
    zk = backend.client(watcher=events.put)
    zk.add_listener(states.append)
    events.get(timeout=10)
    zk.close()
    assert events.get(timeout=10).state == KeeperState.CLOSED
    assert zk.state == "LOST" and states == ["LOST"]


def test_data_watch(backend):
    zk = backend.client()
    calls = queue.Queue()

    @zk.DataWatch("/dw")
    def changed(data, stat):
        calls.put((data, None if stat is None else stat.version))

    assert calls.get(timeout=10) == (None, None)
    zk.create("/dw", b"a")
    assert calls.get(timeout=10) == (b"a", 0)
    zk.set("/dw", b"b")
    assert calls.get(timeout=10) == (b"b", 1)
    zk.delete("/dw")
    assert calls.get(timeout=10) == (None, None)

    stop_calls = queue.Queue()

    def once(data, stat, event):
        stop_calls.put((data, event))
        return False

    zk.create("/dw2", b"x")
    DataWatch(zk, "/dw2", once)
    assert stop_calls.get(timeout=10) == (b"x", None)
    zk.set("/dw2", b"y")
    zk.sync("/")
    assert stop_calls.empty()


def test_children_watch(backend):
    zk = backend.client()
    zk.create("/cw")
    calls = queue.Queue()
    ChildrenWatch(zk, "/cw", calls.put)
    assert calls.get(timeout=10) == []
    zk.create("/cw/a")
    assert calls.get(timeout=10) == ["a"]
    zk.create("/cw/b")
    assert calls.get(timeout=10) == ["a", "b"]
    zk.delete("/cw", recursive=True)
    # The deletion stops the watch (a read between the two deletes may still report a child).
    zk.create("/cw")
    zk.create("/cw/c")
    zk.sync("/")
    zk.get_children("/cw", watch=lambda event: None)  # a round trip behind the events
    leftovers = []
    while not calls.empty():
        leftovers.append(calls.get())
    assert all(children in (["a"], ["b"], []) for children in leftovers)


def test_watch_callback_reenters_the_client(backend):
    zk = backend.client()
    zk.create("/r", b"0")
    seen = queue.Queue()

    def reread(event):
        if event.type == EventType.NONE:
            return  # the client closing at the end of the test
        # Runs on the dispatcher thread and calls back into the client (and re-arms).
        data = zk.get(event.path, watch=reread)
        zk.exists("/r-other")
        seen.put(bytes(data))

    zk.get("/r", watch=reread)
    for value in (b"1", b"2", b"3"):
        zk.set("/r", value)
        assert seen.get(timeout=10) == value


def test_listener_removed_when_it_returns_true(backend):
    server_events = threading.Event()
    zk = backend.client()
    zk.add_listener(lambda state: True)
    zk.add_listener(lambda state: server_events.set())
    zk.close()
    assert server_events.wait(10)
