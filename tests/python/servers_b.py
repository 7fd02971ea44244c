"""Guards against tests that leak server processes or hang: stand-in fixtures until conftest.py lands.

Same fixture names as conftest.py (`zk_server`, `reference_server`), so test files switch to
conftest's by dropping their `from servers_b import ...` line.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_S_MAX = 30.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ruok(port, process, deadline_s=STARTUP_S_MAX):
    """Polls until the server answers ruok with imok; fails if the process dies first."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"ruok")
                if sock.recv(16) == b"imok":
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not answer ruok within {deadline_s}s")


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def write_zoo_cfg(directory, port):
    config = directory / "zoo.cfg"
    config.write_text(
        "tickTime=2000\n"
        f"dataDir={directory / 'data'}\n"
        f"clientPort={port}\n"
        "clientPortAddress=127.0.0.1\n"
        "4lw.commands.whitelist=*\n"
        "admin.enableServer=false\n"
    )
    (directory / "data").mkdir(exist_ok=True)
    return config


@pytest.fixture(scope="session")
def zk_server():
    binary = Path(os.environ.get("ZKRS_BIN", REPO_ROOT / "target/release/zookeeper-rs"))
    if not binary.exists():
        pytest.skip(f"our server binary {binary} is not built")
    directory = Path(tempfile.mkdtemp(prefix="zkrs-"))
    port = free_port()
    config = write_zoo_cfg(directory, port)
    log = open(directory / "server.log", "wb")
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--data-dir", str(directory / "data"),
         "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ruok(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def reference_server():
    if shutil.which("java") is None or not Path("/usr/share/java/zookeeper.jar").exists():
        pytest.skip("Apache ZooKeeper (Debian zookeeper package) is not installed")
    directory = Path(tempfile.mkdtemp(prefix="zkref-"))
    port = free_port()
    config = write_zoo_cfg(directory, port)
    log = open(directory / "server.log", "wb")
    process = subprocess.Popen(
        ["java", "-Dzookeeper.extendedTypesEnabled=true",
         "-Dzookeeper.root.logger=WARN,CONSOLE",
         "-cp", "/etc/zookeeper/conf:/usr/share/java/*",
         "org.apache.zookeeper.server.ZooKeeperServerMain", str(config)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ruok(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)
