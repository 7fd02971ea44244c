"""Guards against quotas that differ from ZooKeeper 3.8's with zookeeper.enforceQuota=true:
zkCli.sh's setquota, listquota and delquota, the stats znode the server keeps, soft limits that
only log and hard limits that refuse with QuotaExceeded, compared line by line with Apache
ZooKeeper running the same script."""

import contextlib
import os
import shutil
import subprocess
import uuid

import pytest
from conftest import run_our_server, run_reference_server
from kazoo.client import KazooClient
from kazoo.exceptions import QuotaExceededError
from test_metrics import server_with_metrics
from test_zkcli import ZKCLI, ZKCLI_TIMEOUT_S, normalise

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSION = os.path.join(TESTS_DIR, "zkcli", "quota_session.txt")


@contextlib.contextmanager
def enforcing(kind):
    if kind == "ours":
        with run_our_server(config_lines=["tickTime=2000", "enforceQuota=true"]) as address:
            yield address
    else:
        with run_reference_server(jvm_args=["-Dzookeeper.enforceQuota=true"]) as address:
            yield address


@pytest.fixture(scope="module")
def servers():
    if not os.path.exists(ZKCLI) or shutil.which("java") is None:
        pytest.fail("needs zkCli.sh from Debian's zookeeper package (scripts/test-all.sh installs it)")
    with enforcing("ours") as ours, enforcing("reference") as reference:
        yield {"ours": ours, "reference": reference}


def run_script(address):
    with open(SESSION) as script:
        commands = "".join(line for line in script if not line.startswith("#"))
    result = subprocess.run([ZKCLI, "-server", address], input=commands,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=ZKCLI_TIMEOUT_S)
    assert result.returncode == 0, result.stdout
    return result.stdout


def test_zkcli_quota_commands_answer_as_zookeeper_does(servers):
    ours_raw = run_script(servers["ours"])
    reference_raw = run_script(servers["reference"])
    ours, reference = normalise(ours_raw), normalise(reference_raw)
    assert ours == reference, f"ours:\n{ours_raw}\nreference:\n{reference_raw}"
    lines = ours[0]
    # The script's facts, so agreeing on a wrong answer would still fail.
    assert "Output stat for /quota/soft count=2,bytes=3" in lines
    # Past the soft limits: created, and counted.
    assert "Output stat for /quota/soft count=3,bytes=7" in lines
    assert "Output quota for /quota/hard count=-1,bytes=-1=;byteHardLimit=6;countHardLimit=3" \
        in lines
    assert lines.count("Quota has exceeded : /quota/hard/c") == 2
    assert "Quota has exceeded : /quota/hard/b" in lines
    assert "Output stat for /quota/hard count=3,bytes=1" in lines
    assert "quota for /quota/hard does not exist." in lines
    # A quota on /zookeeper counts its whole subtree, the quota znodes included.
    assert "[Warning]: the count quota you create is less than the existing count:11" in lines

@pytest.mark.parametrize("kind", ["ours", "reference"])
def test_a_hard_limit_refuses_creates_in_a_multi_and_a_soft_one_does_not(servers, kind):
    client = KazooClient(hosts=servers[kind], timeout=10.0)
    client.start(timeout=10.0)
    try:
        root = f"/multi-{uuid.uuid4().hex[:8]}"
        client.create(root)
        client.create(f"/zookeeper/quota{root}", makepath=True)
        client.create(f"/zookeeper/quota{root}/zookeeper_limits",
                      b"count=1,bytes=-1=;countHardLimit=2")
        client.create(f"/zookeeper/quota{root}/zookeeper_stats", b"count=0,bytes=0")
        assert client.get(f"/zookeeper/quota{root}/zookeeper_stats")[0] == b"count=1,bytes=0"
        # Past the soft limit (1): allowed, only logged.
        client.create(f"{root}/a")
        transaction = client.transaction()
        transaction.create(f"{root}/b")
        transaction.create(f"{root}/c")
        results = transaction.commit()
        assert isinstance(results[0], QuotaExceededError), results
        with pytest.raises(QuotaExceededError):
            client.create(f"{root}/d")
        assert client.get(f"/zookeeper/quota{root}/zookeeper_stats")[0] == b"count=2,bytes=0"
        assert client.get_children(root) == ["a"]
    finally:
        client.stop()
        client.close()


def test_limits_passed_are_logged_and_not_enforced_by_default():
    """Without enforceQuota (ZooKeeper's default) every write passes; each one past a limit
    leaves one line in the log, in ZooKeeper's words. Where a hard limit is set, ZooKeeper
    checks it and not the soft one."""
    with server_with_metrics() as (address, _, log_path):
        client = KazooClient(hosts=address, timeout=10.0)
        client.start(timeout=10.0)
        try:
            for path, limits in [("/hard", b"count=2,bytes=-1=;countHardLimit=3"),
                                 ("/soft", b"count=1,bytes=-1")]:
                client.create(path)
                client.create(f"/zookeeper/quota{path}", makepath=True)
                client.create(f"/zookeeper/quota{path}/zookeeper_limits", limits)
                client.create(f"/zookeeper/quota{path}/zookeeper_stats", b"count=0,bytes=0")
            for name in "abc":
                client.create(f"/hard/{name}")
            client.create("/soft/a")
            assert client.get_children("/hard") == ["a", "b", "c"]
            assert client.get("/zookeeper/quota/hard/zookeeper_stats")[0] == b"count=4,bytes=0"
        finally:
            client.stop()
            client.close()
        with open(log_path, "rb") as log:
            logged = [line.split("Quota exceeded: ", 1)[1]
                      for line in log.read().decode().splitlines() if "Quota exceeded: " in line]
        assert logged == ["/hard [current count=4, hardCountLimit=3]",
                          "/soft [current count=2, softCountLimit=1]"], logged
