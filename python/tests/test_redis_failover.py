"""Guards against a failover that elects no new primary, publishes a stale one, loses a
replicated write, or leaves redis-server processes behind: examples/redis_failover.py runs
end to end with real redis-server processes (Debian's redis-server)."""

import importlib.util
import os
import subprocess
import sys

import pytest

from recipe_harness import REPO_ROOT, SESSION_TIMEOUT_MS, run_backend

EXAMPLE = os.path.join(REPO_ROOT, "examples", "redis_failover.py")
SCRIPT_TIMEOUT_S = 60


def load_example():
    spec = importlib.util.spec_from_file_location("redis_failover", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def redis_server_pids():
    result = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True)
    return set(result.stdout.split())


@pytest.fixture(scope="module")
def example():
    return load_example()


@pytest.mark.parametrize("backend_name", ["embedded", "tcp", "apache"])
def test_failover_moves_clients_to_the_new_primary(example, backend_name):
    before = redis_server_pids()
    with run_backend(backend_name) as backend:
        lines = []
        result = example.run_demo(lambda: backend.connect(SESSION_TIMEOUT_MS), 3,
                                  log=lines.append)
        try:
            members = backend.connect().get_children(example.MEMBERS_PATH)
        finally:
            backend.close_clients()
    assert result["first_primary"] != result["second_primary"]
    # The killed primary's supervisor ended its session, so the new primary came well
    # before the session timeout would have expired it.
    assert result["failover_s"] < SESSION_TIMEOUT_MS / 1000 + 5, lines
    assert result["before"] == b"written-to-first-primary", "a replicated write was lost"
    assert result["after"] == b"written-to-second-primary"
    assert result["second_role"] == "master"
    assert members == [], "every supervisor left when the cluster stopped"
    assert redis_server_pids() <= before, "redis-server processes left behind"


def test_script_runs_with_an_embedded_server():
    before = redis_server_pids()
    completed = subprocess.run(
        [sys.executable, EXAMPLE], capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "FAILOVER OK"
    assert redis_server_pids() <= before


def test_script_with_zk_hosts():
    before = redis_server_pids()
    with run_backend("tcp") as backend:
        completed = subprocess.run(
            [sys.executable, EXAMPLE, "--zk", backend.hosts, "--redis-count", "2"],
            capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "FAILOVER OK"
    assert redis_server_pids() <= before
