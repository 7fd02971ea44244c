"""Guards against the issue's user examples breaking: each runs as written (imports and the
server address adjusted), on every backend where it connects by address."""

import json
import queue
import time

import pytest

from zookeeper import CreateMode, NodeExistsError, ZooClient, ZooKeeper, ZooServer


def test_example_1_json_config_from_redis_node(backend):
    setup = backend.client()
    setup.create("/redis", json.dumps({"host": "127.0.0.1", "port": 6379}).encode())
    hosts = backend.hosts
    # As written, with the address in place of 'localhost:2181':
    zk = ZooKeeper(hosts, 3000, None)
    node = zk.get('/redis')
    redis_info = json.loads(node.decode('utf-8'))
    assert redis_info == {"host": "127.0.0.1", "port": 6379}
    zk.close()


def test_example_2_embedded_server_and_client(capsys):
    zoo_server = ZooServer()
    zoo_server.start()
    zoo_client = ZooClient(zoo_server)
    zoo_client.ensure_path("/redis_config")
    zoo_client.set("/redis_config", b'{"eviction_policy": "LRU", "ttl": 3600}')
    print(zoo_client.get("/redis_config"))
    assert capsys.readouterr().out == "b'{\"eviction_policy\": \"LRU\", \"ttl\": 3600}'\n"
    zoo_server.stop()


def test_example_3_lock_with_version_from_get_data(backend):
    zk = backend.client()
    lock_path = '/my_lock'

    def acquire_lock():
        zk.create(lock_path, b'', ZooKeeper.EPHEMERAL)
        zk.set_data(lock_path, b'', version=zk.get_data(lock_path, watch=True))

    def release_lock():
        zk.delete(lock_path, zk.get_data(lock_path, watch=True))

    acquire_lock()
    assert zk.get(lock_path).stat.version == 1
    release_lock()
    assert zk.exists(lock_path) is None

    acquire_lock()
    other = backend.client()
    with pytest.raises(NodeExistsError):
        other.create(lock_path, b'', ZooKeeper.EPHEMERAL)
    zk.close()  # the holder's session ends: its lock goes with it
    assert other.exists(lock_path) is None
    other.create(lock_path, b'', ZooKeeper.EPHEMERAL)


def test_example_4_callbacks_run_in_order(backend):
    order = queue.Queue()

    def lock_acquired(path, state):
        print('Lock acquired')
        order.put(("acquired", path, state))

    def lock_released(path, state):
        print('Lock released')
        order.put(("released", path, state))

    zk = ZooKeeper(backend.hosts)
    try:
        zk.start()
        zk.create('/lock', b'', CreateMode.EPHEMERAL)
        zk.get('/lock', callback=lock_acquired)
        zk.delete('/lock', callback=lock_released)
        first = order.get(timeout=10)
        second = order.get(timeout=10)
    finally:
        zk.close()
    assert first[:2] == ("acquired", "/lock") and first[2] == b""
    assert first[2].stat.version == 0
    assert second == ("released", "/lock", True)


def test_callback_receives_the_exception(backend):
    zk = backend.client()
    results = queue.Queue()
    zk.get("/missing", callback=lambda path, result: results.put((path, result)))
    path, result = results.get(timeout=10)
    from zookeeper import NoNodeError
    assert path == "/missing" and isinstance(result, NoNodeError)
    zk.create("/a/b/c", makepath=True, callback=lambda path, result: results.put(result))
    assert results.get(timeout=10) == "/a/b/c"
    zk.delete("/a", recursive=True, callback=lambda path, result: results.put(result))
    assert results.get(timeout=10) is True
    assert zk.exists("/a") is None
    time.sleep(0)
