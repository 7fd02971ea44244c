"""Redis failover with zookeeper-rs: a LeaderLatch picks the primary among real redis-server
processes, publishes it in a znode, and clients follow it through a DataWatch.

Run it (needs Debian's ``redis-server`` on PATH and the ``zookeeper`` package installed)::

    python examples/redis_failover.py                      # embedded ZooKeeper server
    python examples/redis_failover.py --zk 127.0.0.1:2181  # any ZooKeeper ensemble

It starts three redis-server processes on free ports, each with a supervisor that:

- registers an ephemeral znode ``/redis/members/<name>`` holding ``{"host", "port"}``;
- runs a :class:`~zookeeper.recipes.LeaderLatch` on ``/redis/leader``: the leader makes its
  redis the primary (``REPLICAOF NO ONE``) and publishes ``{"host", "port"}`` in
  ``/redis/primary``; the others make theirs replicas of the published primary;
- pings its redis and, once it is dead, ends its ZooKeeper session, so its membership and
  its place in the latch go at once.

A client writes to whatever ``/redis/primary`` names. The demo writes, kills the primary's
redis-server, and writes again on the new primary; it prints ``FAILOVER OK`` at the end.

Everything also works as a library (the test imports it): :class:`RedisProcess`,
:class:`Supervisor`, :class:`FailoverClient` and :func:`run_demo`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

from zookeeper import CreateMode, DataWatch, NodeExistsError, NoNodeError, ZooKeeper, ZooServer
from zookeeper import ZooKeeperError
from zookeeper.recipes import LeaderLatch

MEMBERS_PATH = "/redis/members"
LEADER_PATH = "/redis/leader"
PRIMARY_PATH = "/redis/primary"

SESSION_TIMEOUT_MS = 4000
REDIS_START_S_MAX = 10.0
REDIS_STOP_S_MAX = 5.0
SOCKET_TIMEOUT_S = 2.0
HEALTH_INTERVAL_S = 0.1
# A redis that fails this many pings in a row is dead to its supervisor.
HEALTH_FAILURES_MAX = 3

Address = Tuple[str, int]


class RedisError(Exception):
    """An error reply from redis (``-ERR ...``, ``-READONLY ...``)."""


class Resp:
    """A minimal RESP2 client: one connection, one command at a time."""

    def __init__(self, host: str, port: int, timeout_s: float = SOCKET_TIMEOUT_S) -> None:
        """Connects to redis at ``host:port``; raises OSError when nothing listens."""
        self.address = (host, port)
        self._socket = socket.create_connection(self.address, timeout=timeout_s)
        self._reader = self._socket.makefile("rb")

    def command(self, *args: Any) -> Any:
        """Sends one command; returns its reply (bytes, int, list or None) or raises
        RedisError for an error reply and OSError when the connection fails."""
        parts = [str(arg).encode() if not isinstance(arg, bytes) else arg for arg in args]
        request = b"*%d\r\n" % len(parts) + b"".join(
            b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
        self._socket.sendall(request)
        return self._read_reply()

    def _read_reply(self) -> Any:
        line = self._reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("redis closed the connection")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body
        if kind == b"-":
            raise RedisError(body.decode("utf-8", "replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            length = int(body)
            if length < 0:
                return None
            data = self._reader.read(length + 2)
            return data[:-2]
        if kind == b"*":
            count = int(body)
            return None if count < 0 else [self._read_reply() for _ in range(count)]
        raise ConnectionError(f"unexpected RESP reply {line!r}")

    def close(self) -> None:
        """Closes the connection."""
        with contextlib.suppress(OSError):
            self._reader.close()
            self._socket.close()


def free_port() -> int:
    """A TCP port nothing listens on right now (released before returning)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """One redis-server on 127.0.0.1 with no persistence, in its own temporary directory."""

    def __init__(self, name: str, port: Optional[int] = None) -> None:
        """Starts redis-server and waits until it answers PING."""
        self.name = name
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._dir = tempfile.mkdtemp(prefix=f"redis-{name}-")
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", self.host, "--save", "",
             "--appendonly", "no", "--dir", self._dir, "--daemonize", "no",
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + REDIS_START_S_MAX
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server {name} did not start on port {self.port}")
            time.sleep(0.05)

    @property
    def address(self) -> Address:
        """``(host, port)``."""
        return (self.host, self.port)

    def ping(self) -> bool:
        """True when redis answers PING."""
        try:
            connection = Resp(self.host, self.port, timeout_s=0.5)
        except OSError:
            return False
        try:
            return connection.command("PING") == b"PONG"
        except (OSError, RedisError):
            return False
        finally:
            connection.close()

    def command(self, *args: Any) -> Any:
        """Runs one command on a fresh connection."""
        connection = Resp(self.host, self.port)
        try:
            return connection.command(*args)
        finally:
            connection.close()

    def role(self) -> str:
        """``"master"`` or ``"slave"`` (redis's own words)."""
        return bytes(self.command("ROLE")[0]).decode()

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def kill(self) -> None:
        """Kills the process (SIGKILL) and removes its directory."""
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=REDIS_STOP_S_MAX)
        shutil.rmtree(self._dir, ignore_errors=True)


def _encode_address(address: Address) -> bytes:
    return json.dumps({"host": address[0], "port": address[1]}).encode()


def _decode_address(data: Optional[bytes]) -> Optional[Address]:
    if not data:
        return None
    try:
        info = json.loads(bytes(data).decode("utf-8"))
        return (str(info["host"]), int(info["port"]))
    except (ValueError, KeyError, TypeError):
        return None


class Supervisor:
    """Watches over one redis-server: membership, leader latch, role, health.

    One thread reconciles the redis's role with what ZooKeeper says whenever something
    changes (leadership, the published primary, a health tick), so there is a single place
    where redis is told what to be.
    """

    def __init__(self, connect: Callable[[], ZooKeeper], redis: RedisProcess) -> None:
        """Opens a ZooKeeper session with ``connect()`` for ``redis``; :meth:`start` runs it."""
        self.redis = redis
        self.name = redis.name
        self.zk = connect()
        self.latch = LeaderLatch(self.zk, LEADER_PATH, self.name)
        self._published: Optional[Address] = None
        self._replica_of: Optional[Address] = None
        self._wake: "queue.Queue[str]" = queue.Queue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"supervisor {self.name}",
                                        daemon=True)

    def start(self) -> "Supervisor":
        """Registers the member, joins the latch and starts reconciling."""
        self.zk.ensure_path(MEMBERS_PATH)
        self.zk.create(f"{MEMBERS_PATH}/{self.name}", _encode_address(self.redis.address),
                       CreateMode.EPHEMERAL)
        self.latch.add_listener(lambda leader: self._wake.put("leadership"))
        DataWatch(self.zk, PRIMARY_PATH, self._on_primary)
        self.latch.start()
        self._thread.start()
        return self

    def _on_primary(self, data: Optional[bytes], stat: Any) -> Optional[bool]:
        self._published = _decode_address(data)
        self._wake.put("primary")
        return False if self._stopped.is_set() else None

    @property
    def is_primary(self) -> bool:
        """True while this supervisor's redis is the published primary."""
        return self.latch.has_leadership() and self._published == self.redis.address

    def _run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            with contextlib.suppress(queue.Empty):
                self._wake.get(timeout=HEALTH_INTERVAL_S)
            if self._stopped.is_set():
                return
            if not self.redis.alive() or not self.redis.ping():
                failures += 1
                if failures >= HEALTH_FAILURES_MAX or not self.redis.alive():
                    # Our redis is gone: give up our session so another member takes over
                    # now, rather than after the session timeout.
                    self._shutdown()
                    return
                continue
            failures = 0
            try:
                self._reconcile()
            except (OSError, RedisError, ZooKeeperError):
                pass  # the next change or tick tries again

    def _reconcile(self) -> None:
        if self.latch.has_leadership():
            if self._replica_of is not None or self.redis.role() != "master":
                self.redis.command("REPLICAOF", "NO", "ONE")
                self._replica_of = None
            if self._published != self.redis.address:
                data = _encode_address(self.redis.address)
                try:
                    self.zk.set(PRIMARY_PATH, data)
                except NoNodeError:
                    with contextlib.suppress(NodeExistsError):
                        self.zk.create(PRIMARY_PATH, data, CreateMode.PERSISTENT, makepath=True)
                    self.zk.set(PRIMARY_PATH, data)
        elif self._published is not None and self._published != self.redis.address:
            if self._replica_of != self._published:
                host, port = self._published
                self.redis.command("REPLICAOF", host, port)
                self._replica_of = self._published

    def _shutdown(self) -> None:
        self._stopped.set()
        with contextlib.suppress(ZooKeeperError):
            self.latch.close()
        with contextlib.suppress(ZooKeeperError):
            self.zk.close()

    def stop(self) -> None:
        """Leaves ZooKeeper and stops reconciling (the redis process is left alone)."""
        self._shutdown()
        self._wake.put("stop")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(REDIS_STOP_S_MAX)


class FailoverClient:
    """A redis client that always talks to the primary named in ``/redis/primary``."""

    def __init__(self, zk: ZooKeeper) -> None:
        """Follows the primary through a DataWatch on ``zk``."""
        self.zk = zk
        self._changed = threading.Condition()
        self.primary: Optional[Address] = None
        self._connection: Optional[Resp] = None
        DataWatch(zk, PRIMARY_PATH, self._on_primary)

    def _on_primary(self, data: Optional[bytes], stat: Any) -> None:
        with self._changed:
            self.primary = _decode_address(data)
            self._changed.notify_all()

    def wait_for_primary(self, timeout_s: float, other_than: Optional[Address] = None
                         ) -> Address:
        """Waits until a primary (other than ``other_than``) is published; returns it."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self.primary is None or self.primary == other_than:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no new redis primary within {timeout_s} s")
                self._changed.wait(remaining)
            return self.primary

    def command(self, *args: Any, timeout_s: float = 20.0) -> Any:
        """Runs a command on the current primary, retrying across a failover until
        ``timeout_s`` passes (then the last error is raised)."""
        deadline = time.monotonic() + timeout_s
        while True:
            primary = self.wait_for_primary(max(0.0, deadline - time.monotonic()))
            try:
                if self._connection is None or self._connection.address != primary:
                    self._disconnect()
                    self._connection = Resp(*primary)
                return self._connection.command(*args)
            except (OSError, RedisError) as error:
                # A dead primary (OSError) or one demoted to replica (READONLY): wait for
                # the next one to be published.
                self._disconnect()
                if time.monotonic() > deadline:
                    raise
                if isinstance(error, RedisError) and not str(error).startswith("READONLY"):
                    raise
                time.sleep(0.05)

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def close(self) -> None:
        """Closes the redis connection (the ZooKeeper client is the caller's)."""
        self._disconnect()


@contextlib.contextmanager
def cluster(connect: Callable[[], ZooKeeper], count: int = 3
            ) -> Iterator[Tuple[List[RedisProcess], List[Supervisor]]]:
    """Starts ``count`` redis-servers with their supervisors; stops and kills them after."""
    redises: List[RedisProcess] = []
    supervisors: List[Supervisor] = []
    try:
        for index in range(count):
            redises.append(RedisProcess(f"redis-{index}"))
        for redis in redises:
            supervisors.append(Supervisor(connect, redis).start())
        yield redises, supervisors
    finally:
        for supervisor in supervisors:
            with contextlib.suppress(Exception):
                supervisor.stop()
        for redis in redises:
            redis.kill()


def run_demo(connect: Callable[[], ZooKeeper], count: int = 3,
             log: Callable[[str], None] = print) -> dict:
    """Writes through a failover: returns what happened (the test checks it).

    Keys: ``first_primary``, ``second_primary`` (``(host, port)``), ``failover_s`` (from the
    kill to the new primary's publication), ``before`` / ``after`` (values read back on the
    new primary).
    """
    client_zk = connect()
    try:
        with cluster(connect, count) as (redises, supervisors):
            client = FailoverClient(client_zk)
            first = client.wait_for_primary(20.0)
            log(f"primary is {first[0]}:{first[1]}")
            client.command("SET", "before", "written-to-first-primary")
            # Wait until every replica has the write, so failover cannot lose it.
            wait_for_replicas(client, count - 1)
            by_address = {r.address: r for r in redises}
            killed_at = time.monotonic()
            log(f"killing the primary's redis-server (pid {by_address[first].process.pid})")
            by_address[first].kill()
            second = client.wait_for_primary(SESSION_TIMEOUT_MS / 1000 + 10.0, other_than=first)
            failover_s = time.monotonic() - killed_at
            log(f"new primary is {second[0]}:{second[1]} after {failover_s:.2f} s")
            client.command("SET", "after", "written-to-second-primary")
            result = {
                "first_primary": first,
                "second_primary": second,
                "failover_s": failover_s,
                "before": client.command("GET", "before"),
                "after": client.command("GET", "after"),
                "second_role": by_address[second].role(),
            }
            client.close()
            return result
    finally:
        client_zk.close()


def wait_for_replicas(client: FailoverClient, replicas: int, timeout_s: float = 20.0) -> None:
    """Waits until ``replicas`` replicas are attached and acknowledged every write so far."""
    deadline = time.monotonic() + timeout_s
    while client.command("WAIT", replicas, 500) < replicas:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {replicas} replicas caught up in {timeout_s} s")


def main(argv: Optional[List[str]] = None) -> int:
    """The command line: run the demo and print ``FAILOVER OK`` when it worked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zk", help="ZooKeeper connect string (default: an embedded server)")
    parser.add_argument("--redis-count", type=int, default=3, help="redis-servers (>= 2)")
    args = parser.parse_args(argv)
    if args.redis_count < 2:
        parser.error("--redis-count must be at least 2 for a failover")
    server: Optional[ZooServer] = None
    if args.zk is None:
        server = ZooServer().start()
        connect: Callable[[], ZooKeeper] = lambda: server.client(SESSION_TIMEOUT_MS)  # noqa: E731
    else:
        connect = lambda: ZooKeeper(args.zk, SESSION_TIMEOUT_MS)  # noqa: E731
    try:
        result = run_demo(connect, args.redis_count)
    finally:
        if server is not None:
            server.stop()
    ok = (result["first_primary"] != result["second_primary"]
          and result["before"] == b"written-to-first-primary"
          and result["after"] == b"written-to-second-primary"
          and result["second_role"] == "master")
    print("FAILOVER OK" if ok else f"FAILOVER FAILED: {result}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
