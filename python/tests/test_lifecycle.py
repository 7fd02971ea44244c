"""Guards the edges of a client's life: an interpreter that exits with live clients, servers,
watches and listeners (it once aborted now and then, a callback meeting finalization); close()
on an unreachable or failed session (it raised, and listeners never heard LOST); clients of a
stopped embedded server (they said CONNECTED); set_acls with a get() value (it used the data
version); makepath on a deep path (it recursed)."""

import os
import queue
import subprocess
import sys
import textwrap
import time

import pytest

from zookeeper import (ACL, BadVersionError, ConnectionLossError, EventType, KeeperState,
                       SessionExpiredError, ZooDefs, ZooKeeper, ZooServer)

EXIT_RUNS = 12

EXIT_SCRIPT = textwrap.dedent("""
    import sys
    from zookeeper import ZooKeeper, ZooServer
    server = ZooServer(port=0).start()
    clients = [server.client(), server.client(),
               ZooKeeper(server.address), ZooKeeper(server.address)]
    for index, client in enumerate(clients):
        client.ensure_path("/w")
        client.create(f"/w/e{index}-", b"", ZooKeeper.EPHEMERAL_SEQUENTIAL)
        client.get("/w", watch=lambda event: print("watch", event))
        client.add_watch("/", lambda event: print("recursive", event), recursive=True)
        client.add_listener(lambda state: print("state", state))
        client.get("/w", callback=lambda path, result: print("done", path))
    if sys.argv[1] == "busy":
        import threading
        def spin():
            try:
                while True:
                    clients[2].get("/w")
            except Exception:  # closed at exit: the thread just ends
                pass
        threading.Thread(target=spin, daemon=True).start()
    print("exiting", flush=True)
""")


@pytest.mark.parametrize("mode", ["idle", "busy"])
def test_the_interpreter_exits_cleanly_with_live_clients(mode, tmp_path):
    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT)
    for run in range(EXIT_RUNS):
        result = subprocess.run([sys.executable, str(script), mode], capture_output=True,
                                text=True, timeout=60, cwd=tmp_path)
        assert result.returncode == 0, (run, result.returncode, result.stderr[-2000:])
        assert "exiting" in result.stdout
        assert "Traceback" not in result.stderr, result.stderr[-2000:]


def test_close_of_an_unreachable_session_does_not_raise_and_tells_listeners():
    server = ZooServer(port=0).start()
    zk = ZooKeeper(server.address, 4000)
    states = queue.Queue()
    zk.add_listener(states.put)
    server.stop()
    assert states.get(timeout=10) == "SUSPENDED"
    zk.close()
    assert states.get(timeout=10) == "LOST"
    assert zk.state == "LOST"


def test_close_after_a_failed_auth_does_not_raise(backend):
    zk = backend.client()
    with pytest.raises(Exception):
        zk.add_auth("nosuchscheme", "x")
    zk.close()
    assert zk.state == "LOST"


def test_clients_of_a_stopped_embedded_server_are_lost():
    server = ZooServer().start()
    events = queue.Queue()
    states = queue.Queue()
    zk = server.client(watcher=events.put)
    zk.add_listener(states.put)
    assert events.get(timeout=10).state == KeeperState.CONNECTED
    server.stop()
    event = events.get(timeout=10)
    assert (event.type, event.state) == (EventType.NONE, KeeperState.EXPIRED_SESSION)
    assert states.get(timeout=10) == "LOST"
    assert zk.state == "LOST" and not zk.connected
    with pytest.raises(SessionExpiredError):
        zk.get("/")


def test_set_acls_takes_the_acl_version_from_a_get_value(backend):
    zk = backend.client()
    zk.create("/acl", b"a")
    zk.set("/acl", b"b")  # data version 1, ACL version 0
    data = zk.get("/acl")
    stat = zk.set_acls("/acl", ZooDefs.Ids.OPEN_ACL_UNSAFE, version=data)
    assert (stat.version, stat.aversion) == (1, 1)
    with pytest.raises(BadVersionError):
        zk.set_acls("/acl", [ACL(ZooDefs.Perms.ALL, ZooDefs.Ids.ANYONE_ID_UNSAFE)], version=data)


def test_makepath_creates_deep_paths_without_recursion(backend):
    depth = sys.getrecursionlimit() + 100
    path = "/deep" + "/d" * depth
    assert backend.client().create(path, b"leaf", makepath=True) == path
    assert backend.client().get(path) == b"leaf"


def test_out_of_range_timeouts_are_value_errors():
    for timeout in (0, -1, 1e30, 2**31):
        with pytest.raises(ValueError):
            ZooKeeper("127.0.0.1:1", timeout, connect=False)
    with pytest.raises(ValueError):
        ZooServer(tick_ms=2**40)


def test_start_waits_at_most_its_timeout_as_kazoos_does(backend):
    dead = ZooKeeper("127.0.0.1:1", 30000, connect=False)
    started = time.monotonic()
    with pytest.raises(ConnectionLossError):
        dead.start(timeout=0.5)
    assert time.monotonic() - started < 5
    with pytest.raises(TypeError):
        dead.start(timeout="1")
    with pytest.raises(ValueError):
        dead.start(timeout=0)
    live = ZooKeeper(backend.hosts, 10000, connect=False)
    backend.clients.append(live)
    live.start(timeout=10)
    assert live.connected
