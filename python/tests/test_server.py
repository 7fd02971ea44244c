"""Guards against the embedded server losing data across restarts, or listening where it
should not: ZooServer's port, address, data_dir and lifecycle."""

import socket
import time

import pytest

from zookeeper import ConnectionLossError, ZooClient, ZooKeeper, ZooServer


def test_in_process_server_does_not_listen():
    with ZooServer() as server:
        assert server.address is None and server.running
        assert ZooClient(server).create("/x") == "/x"
    assert not server.running


def test_port_zero_picks_a_free_port_and_serves_tcp(tmp_path):
    with ZooServer(port=0, data_dir=tmp_path) as server:
        host, port = server.address.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        with socket.create_connection((host, int(port)), timeout=5):
            pass
        with ZooKeeper(server.address, 10000) as remote:
            remote.create("/remote", b"over tcp")
        assert server.client().get("/remote") == b"over tcp"


def test_data_dir_survives_restart_and_stopping_ends_no_session(tmp_path):
    """A stop is not an expiry: the session that owns /temp lives on in the data directory
    (its ephemeral with it) until it expires; its in-process client, which cannot follow the
    server to the restart, is disconnected and its calls raise ConnectionLossError."""
    server = ZooServer(data_dir=str(tmp_path), tick_ms=100).start()
    old = server.client(timeout=1000)
    old.create("/durable", b"kept")
    old.create("/temp", ephemeral=True)
    owner = old.client_id[0]
    server.stop()
    assert old.state == "SUSPENDED" and not old.connected
    with pytest.raises(ConnectionLossError):
        old.get("/durable")
    server.start()
    zk = server.client()
    assert zk.get("/durable") == b"kept"
    assert zk.exists("/temp").ephemeralOwner == owner
    deadline = time.monotonic() + 10
    while zk.exists("/temp") is not None:
        assert time.monotonic() < deadline, "the abandoned session never expired"
        time.sleep(0.05)
    server.stop()
