"""Guards against bad arguments crashing the interpreter or reaching the server: each raises a
clear TypeError, ValueError or ZooKeeperError subclass (a recipe timeout too long to represent
panicked in the native module)."""

import queue
import time

import pytest

from zookeeper import (BadArgumentsError, ConnectionClosedError, ZooKeeper, ZooKeeperError,
                       ZooServer)
from zookeeper.recipes import Lock, Semaphore


@pytest.fixture
def client():
    with ZooServer() as server:
        zk = server.client()
        zk.create("/n", b"")
        yield zk
        zk.close()


@pytest.mark.parametrize("call", [
    lambda zk: zk.create(b"/bytes-path"),
    lambda zk: zk.create(None),
    lambda zk: zk.create("/s", "str value"),
    lambda zk: zk.create("/s", 12),
    lambda zk: zk.create("/s", b"", "PERSISTENT"),
    lambda zk: zk.create("/s", b"", acl="world:anyone"),
    lambda zk: zk.create("/s", b"", acl=[("x",)]),
    lambda zk: zk.create("/s", ttl="10"),
    lambda zk: zk.get(42),
    lambda zk: zk.get("/n", watch=5),
    lambda zk: zk.set("/n", "text"),
    lambda zk: zk.set("/n", b"", version="1"),
    lambda zk: zk.set("/n", b"", version=1.5),
    lambda zk: zk.delete("/n", version=None),
    lambda zk: zk.get("/n", callback=7),
    lambda zk: zk.add_watch("/n", None),
    lambda zk: zk.add_auth(1, "x"),
    lambda zk: zk.multi_read(["/n"]),
    lambda zk: zk.add_listener("not callable"),
])
def test_wrong_types_raise_type_error(client, call):
    with pytest.raises(TypeError):
        call(client)


@pytest.mark.parametrize("call", [
    lambda zk: zk.create("/s", b"", 99),
    lambda zk: zk.create("/s", b"", ZooKeeper.PERSISTENT_WITH_TTL),
    lambda zk: zk.create("/s", b"", ZooKeeper.EPHEMERAL, ttl=100),
    lambda zk: zk.create("/s", ttl=0),
    lambda zk: zk.set("/n", b"", version=2 ** 40),
    lambda zk: zk.multi_read([("get_acl", "/n")]),
    lambda zk: zk.remove_watches("/n", watcher_type=42),
])
def test_bad_values_raise_value_error(client, call):
    with pytest.raises(ValueError):
        call(client)


@pytest.mark.parametrize("path", ["", "relative", "/a/", "/a//b", "/a/../b", "/nul\x00",
                                  "/surrogate\ud800"])
def test_invalid_paths_raise_bad_arguments(client, path):
    with pytest.raises(BadArgumentsError):
        client.get(path)
    with pytest.raises(ValueError):
        client.create(path)


def test_closed_client_raises_zookeeper_error(client):
    client.close()
    client.close()  # idempotent
    with pytest.raises(ConnectionClosedError) as error:
        client.get("/n")
    assert isinstance(error.value, ZooKeeperError) and error.value.code == -112
    # With callback= the failure goes to the callback, as kazoo's async calls fail.
    heard = queue.Queue()
    assert client.get("/n", callback=lambda path, result: heard.put((path, result))) is None
    path, result = heard.get(timeout=10)
    assert path == "/n" and isinstance(result, ConnectionClosedError)


def test_constructor_arguments():
    with pytest.raises(TypeError):
        ZooKeeper(12345)
    with pytest.raises(ValueError):
        ZooKeeper("127.0.0.1:1", timeout=0)
    with pytest.raises(TypeError):
        ZooKeeper("127.0.0.1:1", timeout="10")
    with pytest.raises(TypeError):
        ZooServer(port="2181")
    with pytest.raises(ValueError):
        ZooServer(port=70000)


def test_stopped_server_refuses_clients():
    server = ZooServer()
    with pytest.raises(ZooKeeperError):
        server.client()
    server.start()
    zk = server.client()
    server.stop()
    with pytest.raises(ZooKeeperError):
        zk.get("/")


@pytest.mark.parametrize("hosts", ["", "::::", "host:notaport", "host:70000", "host/bad/chroot/"])
def test_malformed_connect_strings_fail_at_once(hosts):
    started = time.monotonic()
    with pytest.raises(ValueError):
        ZooKeeper(hosts, timeout=30000)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("timeout", [1e20, float("inf"), float("nan")])
def test_recipe_timeouts_out_of_range_raise_value_error(client, timeout):
    lock = Lock(client, "/locks/x")
    with pytest.raises(ValueError, match="timeout must be >= 0 seconds"):
        lock.acquire(timeout=timeout)
    with pytest.raises(ValueError, match="timeout must be >= 0 seconds"):
        Semaphore(client, "/pool").acquire(timeout=timeout)
