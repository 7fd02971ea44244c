"""Servers, clients and worker processes for the recipe tests, with every wait bounded and
every process reaped.

A backend is one place to run recipes against: ``embedded`` (a ZooServer in this process,
threads use in-process clients, processes reach it over its TCP port), ``tcp`` (the
zookeeper-rs binary) and ``apache`` (Apache ZooKeeper 3.8 from the Debian package).
"""

from __future__ import annotations

import pytest
import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from typing import Callable, Iterator, List, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipe_worker.py")
# The shortest session both servers grant: Apache's minimum is two ticks of 2000 ms.
SESSION_TIMEOUT_MS = 4000
# How long past the session timeout a server may take to expire a session and tell watchers.
EXPIRY_SLACK_S = 6.0
WORKER_WAIT_S = 30.0


class Backend:
    """A running server: ``connect()`` opens a client; ``hosts`` is its TCP connect string."""

    def __init__(self, name: str, hosts: Optional[str], connect: Callable[..., object]):
        self.name = name
        self.hosts = hosts
        self._connect = connect
        self._clients: List[object] = []

    def connect(self, timeout_ms: int = SESSION_TIMEOUT_MS):
        client = self._connect(timeout_ms)
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()


@contextlib.contextmanager
def run_backend(name: str) -> Iterator[Backend]:
    """Runs the named backend for one test: ``embedded`` is a fresh ZooServer listening on a
    free port; ``tcp`` and ``apache`` are conftest's shared server processes, each test in
    its own chroot so it starts from an empty tree."""
    from zookeeper import ZooClient, ZooKeeper, ZooServer

    if name == "embedded":
        # Short ticks: the server notices an expired session sooner after its timeout.
        server = ZooServer(port=0, tick_ms=500).start()
        try:
            yield Backend(name, server.address,
                          lambda timeout_ms: ZooClient(server, timeout_ms))
        finally:
            server.stop()
        return
    from conftest import _process

    address = _process(name).address
    hosts = f"{address}/recipes-{uuid.uuid4().hex[:12]}"
    with ZooKeeper(address, 10000) as setup:
        setup.create(hosts[len(address):])
    backend = Backend(name, hosts, lambda timeout_ms: ZooKeeper(hosts, timeout_ms))
    try:
        yield backend
    finally:
        backend.close_clients()



#: Every recipe test runs on each of these.
RECIPE_BACKENDS = ["embedded", "tcp", "apache"]


@pytest.fixture(params=RECIPE_BACKENDS)
def recipe_backend(request):
    """A server for one test; its clients are closed after it."""
    with run_backend(request.param) as running:
        yield running
        running.close_clients()


def unique_path(prefix: str = "/recipes") -> str:
    """A fresh znode path, so tests sharing a server never see each other's nodes."""
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Polls ``predicate`` every 20 ms until true; fails naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Worker:
    """One recipe_worker.py process; its stdout lines arrive on ``lines``."""

    def __init__(self, hosts: str, role: str, *args: str, script: Optional[str] = None):
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   RECIPE_SESSION_TIMEOUT_MS=str(SESSION_TIMEOUT_MS))
        command = ([sys.executable, "-c", script] if script is not None
                   else [sys.executable, WORKER, hosts, role, *args])
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, text=True)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.seen: List[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, wanted: str, timeout_s: float = WORKER_WAIT_S) -> None:
        """Waits for the line ``wanted``; fails with the worker's stderr after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                exited = self.process.poll() is not None and self.lines.empty()
                if exited and not self._reader.is_alive():
                    raise AssertionError(f"worker exited ({self.process.returncode}) without "
                                         f"saying {wanted!r}; it said {self.seen}; stderr: "
                                         f"{self.stderr_tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"worker did not say {wanted!r} within {timeout_s} s;"
                                         f" it said {self.seen}; stderr: {self.stderr_tail()}")
                continue
            self.seen.append(line)
            if line == wanted:
                return

    def said(self, wanted: str) -> bool:
        """True if the worker has said ``wanted`` so far (without waiting)."""
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return wanted in self.seen

    def stderr_tail(self) -> str:
        if self.process.poll() is None:
            return "<still running>"
        assert self.process.stderr is not None
        return self.process.stderr.read()[-3000:]

    def finish(self, timeout_s: float = WORKER_WAIT_S) -> int:
        """Closes stdin (the worker's cue to stop) and waits for it to exit."""
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL: the worker's session ends only when the server expires it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WORKER_WAIT_S)


@contextlib.contextmanager
def workers() -> Iterator[List[Worker]]:
    """A list to put Workers in; every one still running at the end is killed."""
    started: List[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            with contextlib.suppress(Exception):
                worker.kill()
