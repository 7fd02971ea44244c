"""Guards against a graceful restart ending sessions: a server stopped with SIGTERM or SIGINT
and started again on the same data directory must let its clients resume their sessions by id
and password, with their ephemerals and the watches they set before the restart, exactly as
Apache ZooKeeper 3.8 does (checked in the same run). A rolling restart must not release every
lock or move every leader.

Each case runs a kazoo client and our Python package's client (the Rust TCP client beneath it)
against our binary and against Apache ZooKeeper; core/tests/restart.rs runs the Rust client
against the binary. Every wait is bounded; every process is killed in ``finally``.
"""

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.retry import KazooRetry

from conftest import ZKRS_BIN_DEFAULT, ZOOKEEPER_CLASSPATH, free_port, is_serving

BINARY = os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)
START_TIMEOUT_S = 30.0
WAIT_S = 15.0
SESSION_TIMEOUT_S = 20.0


class RestartableServer:
    """Our binary or Apache ZooKeeper on a fixed port and data directory, stopped by a signal
    and started again on the same directory."""

    def __init__(self, kind, scratch):
        self.kind = kind
        self.scratch = scratch
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.data_dir = os.path.join(scratch, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.config_path = os.path.join(scratch, "zoo.cfg")
        with open(self.config_path, "w") as config:
            config.write("tickTime=2000\n4lw.commands.whitelist=*\n")
            if kind == "reference":
                config.write(f"dataDir={self.data_dir}\nclientPort={self.port}\n"
                             "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n")
        self.log_path = os.path.join(scratch, "server.log")
        self.process = None

    def command(self):
        if self.kind == "ours":
            return [BINARY, "--port", str(self.port), "--data-dir", self.data_dir,
                    "--config", self.config_path]
        return ["java", "-Dzookeeper.root.logger=INFO,CONSOLE", "-Xmx256m",
                "-cp", ZOOKEEPER_CLASSPATH,
                "org.apache.zookeeper.server.ZooKeeperServerMain", self.config_path]

    def start(self):
        with open(self.log_path, "ab") as log:
            log.write(b"\n===== start =====\n")
            log.flush()
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.scratch)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not is_serving(self.port):
            assert self.process.poll() is None, f"exited while starting:\n{self.log_tail()}"
            assert time.monotonic() < deadline, f"not serving in time:\n{self.log_tail()}"
            time.sleep(0.05)

    def stop(self, signal_number):
        """Stops the server with ``signal_number``; returns its exit code."""
        self.process.send_signal(signal_number)
        return self.process.wait(timeout=WAIT_S)

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)

    def log_tail(self, chars=4000):
        try:
            with open(self.log_path, "rb") as log:
                return log.read().decode("utf-8", "replace")[-chars:]
        except OSError:
            return "<no log>"


@pytest.fixture(params=["ours", "reference"])
def restartable(request):
    if request.param == "ours" and not os.path.exists(BINARY):
        pytest.fail(f"zookeeper-rs binary not built at {BINARY}")
    scratch = tempfile.mkdtemp(prefix=f"zk-restart-{request.param}-")
    server = RestartableServer(request.param, scratch)
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(scratch, ignore_errors=True)


class KazooSide:
    """The sequence's client side with kazoo."""

    def __init__(self, address):
        self.events = queue.Queue()
        self.client = KazooClient(
            hosts=address, timeout=SESSION_TIMEOUT_S,
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5))
        self.client.start(timeout=WAIT_S)

    def session_id(self):
        return self.client.client_id[0]

    def prepare(self):
        self.client.create("/restart-eph", b"mine", ephemeral=True)
        self.client.create("/restart-watched", b"before")
        # kazoo drops its one-shot watches when the connection is lost (it tells them with a
        # NONE event); its users watch through DataWatch, which sets its watch again.
        self.client.DataWatch("/restart-watched", lambda data, stat: self.events.put(data))

    def reconnected(self):
        deadline = time.monotonic() + WAIT_S
        while self.client.state != KazooState.CONNECTED:
            assert time.monotonic() < deadline, "kazoo never reconnected"
            time.sleep(0.02)
        return self.client.retry(self.client.exists, "/restart-eph")

    def fired(self):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.events.get(timeout=WAIT_S) == b"after":
                return True
        return False

    def close(self):
        try:
            self.client.stop()
            self.client.close()
        except Exception:  # noqa: BLE001 - best effort
            pass


class PackageSide:
    """The sequence's client side with our Python package (our Rust TCP client beneath)."""

    def __init__(self, address):
        from zookeeper import ZooKeeper
        self.events = queue.Queue()
        self.client = ZooKeeper(address, int(SESSION_TIMEOUT_S * 1000))

    def session_id(self):
        return self.client.client_id[0]

    def prepare(self):
        from zookeeper import CreateMode
        self.client.create("/restart-eph", b"mine", CreateMode.EPHEMERAL)
        self.client.create("/restart-watched", b"before")
        self.client.get("/restart-watched", watch=self.events.put)

    def reconnected(self):
        # Calls made while reconnecting wait for the session to be resumed.
        return self.client.exists("/restart-eph")

    def fired(self):
        from zookeeper import EventType
        # A watcher hears the connection go and come back, as ZooKeeper's clients tell it.
        event = self.events.get(timeout=WAIT_S)
        while event.type == EventType.NONE:
            event = self.events.get(timeout=WAIT_S)
        return (event.type, event.path) == (EventType.CHANGED, "/restart-watched")

    def close(self):
        self.client.close()


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("side", [KazooSide, PackageSide], ids=["kazoo", "package"])
def test_a_graceful_restart_keeps_sessions_ephemerals_and_watches(restartable, signal_number,
                                                                  side):
    restartable.start()
    client = side(restartable.address)
    try:
        session_id = client.session_id()
        client.prepare()
        code = restartable.stop(signal_number)
        if restartable.kind == "ours":
            assert code == 0, f"exit code {code}:\n{restartable.log_tail()}"
        restartable.start()
        stat = client.reconnected()
        assert client.session_id() == session_id, "the session did not survive the restart"
        assert stat is not None, f"the ephemeral is gone:\n{restartable.log_tail()}"
        assert stat.ephemeralOwner == session_id
        writer = KazooClient(hosts=restartable.address, timeout=10.0)
        writer.start(timeout=WAIT_S)
        try:
            writer.set("/restart-watched", b"after")
        finally:
            writer.stop()
            writer.close()
        assert client.fired(), "the watch set before the restart did not fire"
    finally:
        client.close()


def test_writes_in_flight_at_sigterm_are_durable_or_never_acknowledged():
    """SIGTERM in the middle of a write storm: every write the server acknowledged is there
    after the restart (a write it had not answered may be there or not)."""
    import threading

    if not os.path.exists(BINARY):
        pytest.fail(f"zookeeper-rs binary not built at {BINARY}")
    scratch = tempfile.mkdtemp(prefix="zk-restart-storm-")
    server = RestartableServer("ours", scratch)
    clients = []
    try:
        server.start()
        acknowledged = []
        stop = threading.Event()

        def write(index):
            client = KazooClient(hosts=server.address, timeout=SESSION_TIMEOUT_S,
                                 connection_retry=KazooRetry(max_tries=0))
            client.start(timeout=WAIT_S)
            clients.append(client)
            client.ensure_path("/storm")
            try:
                while not stop.is_set():
                    acknowledged.append(client.create(f"/storm/w{index}-", b"x", sequence=True))
            except Exception:  # noqa: BLE001 - the server went away mid-request
                pass

        writers = [threading.Thread(target=write, args=(index,), daemon=True)
                   for index in range(4)]
        for writer in writers:
            writer.start()
        time.sleep(1.0)
        assert server.stop(signal.SIGTERM) == 0, server.log_tail()
        stop.set()
        for writer in writers:
            writer.join(timeout=WAIT_S)
        assert len(acknowledged) > 100, "the storm wrote too little to mean anything"
        server.start()
        reader = KazooClient(hosts=server.address, timeout=10.0)
        reader.start(timeout=WAIT_S)
        clients.append(reader)
        present = set(reader.get_children("/storm"))
        missing = [path for path in acknowledged if path.rsplit("/", 1)[1] not in present]
        assert missing == [], f"{len(missing)} acknowledged creates lost, e.g. {missing[:3]}"
        print(f"{len(acknowledged)} acknowledged creates, all present after SIGTERM and restart")
    finally:
        for client in clients:
            try:
                client.stop()
                client.close()
            except Exception:  # noqa: BLE001 - best effort
                pass
        server.kill()
        shutil.rmtree(scratch, ignore_errors=True)
