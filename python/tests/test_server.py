"""Guards against the embedded server losing data across restarts, or listening where it
should not: ZooServer's port, address, data_dir and lifecycle."""

import socket

from zookeeper import ZooClient, ZooKeeper, ZooServer


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


def test_data_dir_survives_restart(tmp_path):
    server = ZooServer(data_dir=str(tmp_path)).start()
    zk = server.client()
    zk.create("/durable", b"kept")
    zk.create("/temp", ephemeral=True)
    server.stop()
    server.start()
    zk = server.client()
    assert zk.get("/durable") == b"kept"
    assert zk.exists("/temp") is None
    server.stop()
