"""Guards against tests that talk to the wrong server, hang on a dead one, or leak its process.

Shared fixtures for the black-box wire tests:

- ``zk_server`` (session-scoped): our binary (env ``ZKRS_BIN``, default
  ``<repo>/target/release/zookeeper-rs``) on a free port in a temporary data dir; yields
  ``"127.0.0.1:PORT"``.
- ``reference_server`` (session-scoped): Apache ZooKeeper 3.8 from the Debian package, started
  with ``-Dzookeeper.extendedTypesEnabled=true`` (TTL nodes); yields ``"127.0.0.1:PORT"``.

Both processes are killed at the end of the session even when tests fail. Every wait is bounded.
Other test files may add fixtures at the END of this file.
"""

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
from kazoo.client import KazooClient

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZKRS_BIN_DEFAULT = os.path.join(REPO_ROOT, "target", "release", "zookeeper-rs")
ZOOKEEPER_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/*"
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 10.0


# Ports handed out by `free_port`: below the kernel's ephemeral range (32768-60999 on Linux),
# so an outgoing connection of this or another process cannot take one between the choice and
# the server's bind (an ensemble member once failed with "Address already in use" on a peer
# port), and never the same port twice in one test run (the kernel's bind to port 0 may hand a
# just-released port out again).
_PORT_RANGE = range(20000, 32768)
_ports_handed_out = set()


def free_port():
    """Returns a TCP port on 127.0.0.1 that nothing listens on right now and that this run has
    not handed out before. The caller binds it soon after; see `_PORT_RANGE` for why the
    choice cannot be taken in between by an outgoing connection."""
    for _ in range(1000):
        port = random.choice(_PORT_RANGE)
        if port in _ports_handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORT_RANGE} after 1000 tries")


def is_serving(port):
    """True when the server on ``port`` answers ``srvr`` as a server that serves requests.

    ``srvr`` is the one four-letter word every ZooKeeper answers whatever its whitelist, and
    unlike ``ruok`` it says "not currently serving requests" until the server really does.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"srvr")
            sock.settimeout(1.0)
            answer = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            return b"Zookeeper version" in answer and b"not currently serving" not in answer
    except OSError:
        return False


def _wait_until_up(process, port, what, log_path):
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {process.returncode} before accepting connections; "
                f"log: {_tail(log_path)}"
            )
        if is_serving(port):
            return
        time.sleep(0.1)
    _kill(process)
    raise RuntimeError(f"{what} did not accept connections on port {port} within "
                       f"{SERVER_START_TIMEOUT_S} s; log: {_tail(log_path)}")


def _tail(log_path, bytes_max=4000):
    try:
        with open(log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - bytes_max))
            return log.read().decode("utf-8", "replace")
    except OSError:
        return "<no log>"


def _kill(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)


@contextlib.contextmanager
def run_reference_server(jvm_args=()):
    """Starts one Apache ZooKeeper 3.8 standalone server; yields its address; kills it after.

    ``jvm_args`` adds ``-D`` properties (for example a longer container reaper interval).
    The transaction log is not fsynced (``zookeeper.forceSync=no``): these servers hold only
    test data, and an fsync per write would make every write cost a millisecond or more.
    """
    data_dir = tempfile.mkdtemp(prefix="zk-reference-")
    port = free_port()
    config_path = os.path.join(data_dir, "zoo.cfg")
    with open(config_path, "w") as config:
        config.write(
            "tickTime=2000\n"
            f"dataDir={data_dir}/data\n"
            f"clientPort={port}\n"
            "clientPortAddress=127.0.0.1\n"
            "4lw.commands.whitelist=*\n"
            "admin.enableServer=false\n"
            "maxClientCnxns=0\n"
        )
    log_path = os.path.join(data_dir, "server.log")
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [
            "java",
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Dzookeeper.forceSync=no",
            "-Dzookeeper.root.logger=WARN,CONSOLE",
            *jvm_args,
            "-Xmx256m",
            "-cp", ZOOKEEPER_CLASSPATH,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            config_path,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=data_dir,
    )
    try:
        _wait_until_up(process, port, "Apache ZooKeeper", log_path)
        yield f"127.0.0.1:{port}"
    finally:
        _kill(process)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def run_our_server(binary=None, extra_args=(), config_lines=None):
    """Starts our zookeeper-rs binary; yields its address; kills it after.

    ``config_lines``, when given, are written to a zoo.cfg passed with ``--config``.
    Skips the calling test when the binary has not been built.
    """
    binary = binary or os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)
    if not os.path.exists(binary):
        # A missing binary is a failure, not a skip: a skipped real component hides breakage.
        pytest.fail(f"zookeeper-rs binary not built at {binary} (set ZKRS_BIN or run "
                    "cargo build --release -p zookeeper-core)")
    data_dir = tempfile.mkdtemp(prefix="zk-ours-")
    port = free_port()
    os.mkdir(os.path.join(data_dir, "data"))
    if config_lines is not None:
        config_path = os.path.join(data_dir, "zoo.cfg")
        with open(config_path, "w") as config:
            config.write("".join(line + "\n" for line in config_lines))
        extra_args = (*extra_args, "--config", config_path)
    log_path = os.path.join(data_dir, "server.log")
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--data-dir", os.path.join(data_dir, "data"),
         *extra_args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=data_dir,
    )
    try:
        _wait_until_up(process, port, "zookeeper-rs", log_path)
        yield f"127.0.0.1:{port}"
    finally:
        _kill(process)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def zk_server():
    """Address ``"127.0.0.1:PORT"`` of our server, shared by the whole test session."""
    # The same four-letter-word whitelist as the reference server's zoo.cfg.
    with run_our_server(config_lines=["tickTime=2000", "4lw.commands.whitelist=*"]) as address:
        yield address


@pytest.fixture(scope="session")
def reference_server():
    """Address ``"127.0.0.1:PORT"`` of Apache ZooKeeper 3.8, shared by the whole test session."""
    with run_reference_server() as address:
        yield address


# ---------------------------------------------------------------------------------------------
# Fixtures that run a test against both servers, with kazoo clients cleaned up after it.

SERVERS = ["zk_server", "reference_server"]
# Servers for tests that speak only through a ZooKeeper client (which takes a connect string):
# these run against a 3-member ensemble of ours too.
CLIENT_SERVERS = SERVERS + ["ensemble_server"]
CLIENT_START_TIMEOUT_S = 10.0


@pytest.fixture(scope="session")
def ensemble_server():
    """Connect string of a 3-member ensemble of our binary, shared by the whole session:
    clients written for ZooKeeper must work against an ensemble unchanged."""
    from process_ensemble import ProcessEnsemble

    with ProcessEnsemble("ours", 3) as ensemble:
        yield ensemble.hosts


@pytest.fixture(params=SERVERS)
def address(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def new_client(address):
    """Factory of started kazoo clients; every one is stopped and closed after the test."""
    clients = []

    def make(**options):
        options.setdefault("timeout", 10.0)
        client = KazooClient(hosts=address, **options)
        clients.append(client)
        client.start(timeout=CLIENT_START_TIMEOUT_S)
        return client

    yield make
    for client in clients:
        try:
            client.stop()
            client.close()
        except Exception:
            pass


@pytest.fixture
def client(new_client):
    return new_client()


@pytest.fixture
def root(client):
    """A fresh parent znode per test, so tests on one session-scoped server do not see each other."""
    path = f"/kz-{uuid.uuid4().hex[:12]}"
    client.create(path)
    return path
