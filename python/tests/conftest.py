"""Guards against tests that pass against one server and not another: every test that takes
``backend`` runs against the embedded server (in process), our server binary over TCP, and
Apache ZooKeeper 3.8 over TCP.

``backend.client(**kwargs)`` opens a ZooKeeper client on a fresh namespace (a chroot on the TCP
servers, a fresh server in process), so tests never see each other's znodes. On the TCP
backends ``backend.pause()``/``resume()`` SIGSTOP/SIGCONT the server process. The server
processes are started once per test session and always killed; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Any, Iterator, List, Optional

import pytest

from zookeeper import ZooKeeper, ZooServer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZKRS_BIN_DEFAULT = os.path.join(REPO_ROOT, "target", "release", "zookeeper-rs")
ZOOKEEPER_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/*"
SERVER_START_TIMEOUT_S = 30.0
TEST_TIMEOUT_S = 120


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    """A hung test dumps every thread's stack and ends the run instead of hanging CI."""
    faulthandler.dump_traceback_later(TEST_TIMEOUT_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"srvr")
            answer = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            return b"Zookeeper version" in answer and b"not currently serving" not in answer
    except OSError:
        return False


class ServerProcess:
    """A ZooKeeper server process on a free port; ``address`` is ``127.0.0.1:PORT``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.data_dir = tempfile.mkdtemp(prefix=f"zk-py-{kind}-")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        log_path = os.path.join(self.data_dir, "server.log")
        self.log = open(log_path, "wb")
        if kind == "tcp":
            binary = os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)
            if not os.path.exists(binary):
                pytest.fail(f"zookeeper-rs binary not built at {binary} (set ZKRS_BIN or run "
                            "cargo build --release -p zookeeper-core)")
            config = os.path.join(self.data_dir, "zoo.cfg")
            with open(config, "w") as file:
                file.write("tickTime=2000\n4lw.commands.whitelist=*\nmaxClientCnxns=0\n"
                           "forceSync=no\n")
            command = [binary, "--port", str(self.port), "--data-dir",
                       os.path.join(self.data_dir, "data"), "--config", config]
        else:
            config = os.path.join(self.data_dir, "zoo.cfg")
            with open(config, "w") as file:
                file.write(f"tickTime=2000\ndataDir={self.data_dir}/data\n"
                           f"clientPort={self.port}\nclientPortAddress=127.0.0.1\n"
                           "4lw.commands.whitelist=*\nadmin.enableServer=false\n"
                           "maxClientCnxns=0\n")
            command = ["java", "-Dzookeeper.extendedTypesEnabled=true",
                       "-Dzookeeper.forceSync=no", "-Dzookeeper.root.logger=WARN,CONSOLE",
                       "-Xmx256m", "-cp", ZOOKEEPER_CLASSPATH,
                       "org.apache.zookeeper.server.ZooKeeperServerMain", config]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=self.data_dir)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _is_serving(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                with open(log_path, "rb") as log:
                    tail = log.read()[-3000:].decode("utf-8", "replace")
                raise RuntimeError(f"{kind} server did not start: {tail}")
            time.sleep(0.1)

    def kill(self) -> None:
        """Stops the process (continuing it first if paused) and removes its data."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Backend:
    """Where a test's clients connect."""

    def __init__(self, kind: str, process: Optional[ServerProcess]) -> None:
        self.kind = kind
        self.process = process
        self.server: Optional[ZooServer] = None
        self.clients: List[ZooKeeper] = []
        if process is None:
            self.server = ZooServer(tick_ms=100).start()
            self.hosts: Any = self.server
        else:
            # A fresh chroot per test: tests never see each other's znodes.
            root = f"/test-{uuid.uuid4().hex[:12]}"
            with ZooKeeper(process.address, 10000) as setup:
                setup.create(root)
            self.hosts = process.address + root

    @property
    def is_tcp(self) -> bool:
        """True for the server processes."""
        return self.process is not None

    def client(self, timeout: float = 10000, **kwargs: Any) -> ZooKeeper:
        """A new client, closed at the end of the test."""
        client = ZooKeeper(self.hosts, timeout, **kwargs)
        self.clients.append(client)
        return client

    def pause(self) -> None:
        """SIGSTOPs the server process: connections stay open but nothing answers."""
        assert self.process is not None
        self.process.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONTs the server process."""
        assert self.process is not None
        self.process.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Closes the clients (and the embedded server)."""
        if self.process is not None:
            self.resume()
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.close()
        if self.server is not None:
            self.server.stop()


_processes: dict = {}


def _process(kind: str) -> ServerProcess:
    if kind not in _processes:
        _processes[kind] = ServerProcess(kind)
    return _processes[kind]


def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    """Kills the server processes however the run ended."""
    for process in _processes.values():
        process.kill()
    _processes.clear()


BACKENDS = ["embedded", "tcp", "apache"]


@pytest.fixture(params=BACKENDS)
def backend(request: Any) -> Iterator[Backend]:
    """The same test against every server."""
    kind = request.param
    result = Backend(kind, None if kind == "embedded" else _process(kind))
    try:
        yield result
    finally:
        result.close()


@pytest.fixture(params=["tcp", "apache"])
def tcp_backend(request: Any) -> Iterator[Backend]:
    """The TCP servers only (for tests that pause the server process)."""
    result = Backend(request.param, _process(request.param))
    try:
        yield result
    finally:
        result.close()


@pytest.fixture
def zk(backend: Backend) -> ZooKeeper:
    """A client on the backend."""
    return backend.client()


