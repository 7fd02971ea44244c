"""Guards against losing or changing data when moving from Apache ZooKeeper to us and back:
every znode kind, ACL kind, Stat field and open session written by Apache ZooKeeper 3.8 must
read back identically from our server after `zookeeper-rs import`, a client must resume its
session by id and password across the switch, and Apache must load `zookeeper-rs export`'s
snapshot with zero differences. Also: compressed (gzip, snappy) snapshots older than the log
tail, and a torn log tail (refused with file and offset, or cut with --stop-at-last-valid).

Every wait is bounded; every process is killed in ``finally``.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.retry import KazooRetry
from kazoo.security import ACL, Id, make_digest_acl

from conftest import ZKRS_BIN_DEFAULT, ZOOKEEPER_CLASSPATH, free_port, is_serving
from kazoo_requests import create_container, create_ttl

BINARY = os.path.abspath(os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT))
START_TIMEOUT_S = 30.0
WAIT_S = 15.0
SESSION_TIMEOUT_S = 30.0
# How long a client that held its session may take to come back to a restarted server: kazoo
# gives one connection attempt up to session timeout / hosts, and an attempt that reached the
# server while it was still starting may use all of that (one run in five under the full suite
# waited past 15 s).
RECONNECT_WAIT_S = SESSION_TIMEOUT_S
# Our server writes /zookeeper/config itself (its membership), as each ZooKeeper member does.
NOT_COMPARED = {"/zookeeper/config"}


class Server:
    """Apache ZooKeeper or our binary on a given port and data directory, stopped by SIGTERM."""

    def __init__(self, kind, scratch, data_dir, port, jvm_args=(), config_lines=()):
        self.kind = kind
        self.data_dir = data_dir
        self.port = port
        self.scratch = scratch
        self.config_path = os.path.join(scratch, f"{kind}-{os.path.basename(data_dir)}.cfg")
        with open(self.config_path, "w") as config:
            config.write("tickTime=2000\n4lw.commands.whitelist=*\n")
            for line in config_lines:
                config.write(line + "\n")
            if kind == "reference":
                config.write(f"dataDir={data_dir}\nclientPort={port}\n"
                             "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n")
        self.jvm_args = jvm_args
        self.log_path = os.path.join(scratch, f"{kind}.log")
        self.process = None

    def start(self):
        if self.kind == "ours":
            command = [BINARY, "--port", str(self.port), "--data-dir", self.data_dir,
                       "--config", self.config_path]
        else:
            command = ["java", "-Dzookeeper.extendedTypesEnabled=true",
                       "-Dzookeeper.forceSync=no", *self.jvm_args, "-Xmx256m",
                       "-cp", ZOOKEEPER_CLASSPATH,
                       "org.apache.zookeeper.server.ZooKeeperServerMain", self.config_path]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.scratch)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not is_serving(self.port):
            assert self.process.poll() is None, f"exited while starting:\n{self.log_tail()}"
            assert time.monotonic() < deadline, f"not serving in time:\n{self.log_tail()}"
            time.sleep(0.05)
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=WAIT_S)

    def log_tail(self, chars=4000):
        try:
            with open(self.log_path, "rb") as log:
                return log.read().decode("utf-8", "replace")[-chars:]
        except OSError:
            return "<no log>"


def run_tool(*args, expect_ok=True):
    result = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=120)
    if expect_ok:
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def connect(port, **options):
    client = KazooClient(hosts=f"127.0.0.1:{port}", timeout=SESSION_TIMEOUT_S,
                         connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5),
                         **options)
    client.start(timeout=WAIT_S)
    return client


DUMP_AUTH = [("digest", "user:secret"), ("digest", "owner:pw")]


def dump(port):
    """Every znode's data, Stat, ACL and children, read by a fresh kazoo session (closed
    after, so it leaves no ephemerals behind), as both digest users the workload names."""
    client = connect(port, auth_data=DUMP_AUTH)
    try:
        return dump_with(client)
    finally:
        client.stop()
        client.close()


def dump_with(client):
    """What `dump` reads, through a client already connected with `DUMP_AUTH`."""
    tree = {}
    pending = ["/"]
    while pending:
        path = pending.pop()
        data, stat = client.get(path)
        acl, _ = client.get_acls(path)
        children = sorted(client.get_children(path))
        if path not in NOT_COMPARED:
            tree[path] = (data, tuple(stat), sorted((a.perms, a.id.scheme, a.id.id)
                                                    for a in acl), children)
        pending.extend((path.rstrip("/") + "/" + child) for child in children)
    return tree


def differences(expected, actual):
    lines = []
    for path in sorted(set(expected) | set(actual)):
        if expected.get(path) != actual.get(path):
            lines.append(f"{path}: expected {expected.get(path)} got {actual.get(path)}")
    return lines


def workload(client):
    """Every znode kind, every ACL kind, Stat changes, a multi and a failed multi."""
    client.create("/app", b"root of the app")
    client.create("/app/null", None)
    client.create("/app/empty", b"")
    client.create("/app/big", b"x" * 100_000)
    first_sequential = client.create("/app/seq-", b"s", sequence=True)
    client.create("/app/seq-", b"s", sequence=True)
    client.create("/app/eph", b"mine", ephemeral=True)
    client.create("/app/ephseq-", b"e", ephemeral=True, sequence=True)
    create_container(client, "/app/container", b"c")
    client.create("/app/container/child", b"keeps the container")
    create_ttl(client, "/app/ttl", 3_600_000, b"t")
    client.create("/app/digest", b"d", acl=[make_digest_acl("user", "secret", all=True)])
    client.create("/app/ip", b"i", acl=[ACL(31, Id("ip", "127.0.0.1"))])
    client.create("/app/readonly", b"r", acl=[ACL(1, Id("world", "anyone"))])
    client.add_auth("digest", "owner:pw")
    client.create("/app/auth", b"a", acl=[ACL(31, Id("auth", ""))])
    for version in range(3):
        client.set("/app", f"v{version}".encode())
    client.set_acls("/app/empty", [ACL(15, Id("world", "anyone"))])
    client.create("/app/gone", b"")
    client.delete("/app/gone")
    transaction = client.transaction()
    transaction.create("/app/multi", b"m")
    transaction.set_data("/app/empty", b"now set")
    transaction.check("/app", 3)
    transaction.delete(first_sequential)
    assert all(not isinstance(result, Exception) for result in transaction.commit())
    failed = client.transaction()
    failed.create("/app/never", b"")
    failed.check("/app", 99)
    assert any(isinstance(result, Exception) for result in failed.commit())


@pytest.fixture
def scratch():
    if not os.path.exists(BINARY):
        pytest.fail(f"zookeeper-rs binary not built at {BINARY}")
    directory = tempfile.mkdtemp(prefix="zk-migrate-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_round_trip_apache_to_ours_and_back(scratch):
    port = free_port()
    zookeeper_dir = os.path.join(scratch, "zk")
    ours_dir = os.path.join(scratch, "ours")
    back_dir = os.path.join(scratch, "back")
    servers = []
    holder = None
    try:
        apache = Server("reference", scratch, zookeeper_dir, port).start()
        servers.append(apache)
        holder = connect(port)
        workload(holder)
        session_id, password = holder.client_id
        expected = dump(port)
        assert expected["/app/eph"][1][7] == session_id
        apache.stop()

        source_files = {name: os.path.getmtime(os.path.join(zookeeper_dir, "version-2", name))
                        for name in os.listdir(os.path.join(zookeeper_dir, "version-2"))}
        result = run_tool("import", "--from", zookeeper_dir, "--to", ours_dir)
        assert "znodes" in result.stdout and "sessions" in result.stdout, result.stdout
        after = {name: os.path.getmtime(os.path.join(zookeeper_dir, "version-2", name))
                 for name in os.listdir(os.path.join(zookeeper_dir, "version-2"))}
        assert after == source_files, "import changed its source"
        refused = run_tool("import", "--from", zookeeper_dir, "--to", ours_dir, expect_ok=False)
        assert refused.returncode != 0 and "not empty" in refused.stderr

        ours = Server("ours", scratch, ours_dir, port).start()
        servers.append(ours)
        # The client that held the session reconnects with its id and password.
        deadline = time.monotonic() + RECONNECT_WAIT_S
        while holder.state != KazooState.CONNECTED or not holder.connected:
            assert time.monotonic() < deadline, f"never reconnected:\n{ours.log_tail()}"
            time.sleep(0.05)
        assert holder.client_id == (session_id, password)
        assert holder.retry(holder.exists, "/app/eph") is not None
        assert differences(expected, dump(port)) == []
        ours.stop()

        run_tool("export", "--from", ours_dir, "--to", back_dir)
        apache_again = Server("reference", scratch, back_dir, port).start()
        servers.append(apache_again)
        assert differences(expected, dump(port)) == []
        deadline = time.monotonic() + RECONNECT_WAIT_S
        while holder.state != KazooState.CONNECTED or not holder.connected:
            assert time.monotonic() < deadline, f"never reconnected to Apache:\n{apache_again.log_tail()}"
            time.sleep(0.05)
        assert holder.retry(holder.exists, "/app/eph") is not None
        assert holder.client_id[0] == session_id
    finally:
        if holder is not None:
            holder.stop()
            holder.close()
        for server in servers:
            server.stop()


# The largest snapCount for which `write_with_frequent_snapshots` makes sure the log runs past
# the newest snapshot.
SNAP_COUNT_FREQUENT_MAX = 100


def write_with_frequent_snapshots(scratch, port, zookeeper_dir, compression, snap_count=8):
    """Runs Apache with a snapshot every few writes in `compression`; returns its dump."""
    apache = Server("reference", scratch, zookeeper_dir, port,
                    jvm_args=[f"-Dzookeeper.snapshot.compression.method={compression}"],
                    config_lines=[f"snapCount={snap_count}"])
    apache.start()
    try:
        client = connect(port)
        try:
            workload(client)
            for index in range(40):
                client.create(f"/bulk-{index}", str(index).encode())
        finally:
            client.stop()
            client.close()
        # Apache rolls its snapshot interval: after a snapshot at zxid S the next comes after
        # more than snapCount / 2 Txns, the exact count drawn at random. So the last Txn could
        # be a snapshot's. The dumping session writes on until the newest snapshot is one or
        # two writes old, reads the tree and closes: its closeSession is the only Txn after,
        # too soon for another snapshot. (A fresh dump session would add a createSession and
        # a closeSession, enough to reach one.) It owns no ephemerals, so its close changes
        # nothing it read.
        reader = connect(port, auth_data=DUMP_AUTH)
        try:
            # Only with frequent snapshots: with snapCount out of reach there is none to pass.
            version_dir = os.path.join(zookeeper_dir, "version-2")
            for index in range(4 * snap_count if snap_count <= SNAP_COUNT_FREQUENT_MAX else 0):
                path = reader.create(f"/tail-{index}", b"t")
                zxid = reader.exists(path).czxid
                time.sleep(0.3)  # Apache writes a snapshot on a thread of its own
                newest = max((int(name.split(".")[1], 16) for name in os.listdir(version_dir)
                              if name.startswith("snapshot.")), default=0)
                if 1 <= zxid - newest <= 2:
                    break
            return dump_with(reader)
        finally:
            reader.stop()
            reader.close()
    finally:
        apache.stop()


@pytest.mark.parametrize("compression", ["gz", "snappy"])
def test_compressed_snapshots_older_than_the_log_tail(scratch, compression):
    port = free_port()
    zookeeper_dir = os.path.join(scratch, "zk")
    expected = write_with_frequent_snapshots(scratch, port, zookeeper_dir, compression)
    names = os.listdir(os.path.join(zookeeper_dir, "version-2"))
    suffix = ".gz" if compression == "gz" else ".snappy"
    snapshots = [int(name.split(".")[1], 16) for name in names if name.endswith(suffix)]
    assert len(snapshots) >= 2, names
    ours_dir = os.path.join(scratch, "ours")
    result = run_tool("import", "--from", zookeeper_dir, "--to", ours_dir)
    last_zxid = int(result.stdout.split("last zxid ")[1].split()[0].rstrip(","), 16)
    assert max(snapshots) < last_zxid, "the newest snapshot should be older than the log tail"
    ours = Server("ours", scratch, ours_dir, port).start()
    try:
        assert differences(expected, dump(port)) == []
    finally:
        ours.stop()


def test_a_torn_log_tail_is_refused_or_cut(scratch):
    port = free_port()
    zookeeper_dir = os.path.join(scratch, "zk")
    # One snapshot (at the start) and one log, so the torn record is one the import needs.
    write_with_frequent_snapshots(scratch, port, zookeeper_dir, "checked", snap_count=100_000)
    whole = run_tool("import", "--from", zookeeper_dir, "--to", os.path.join(scratch, "whole"))
    whole_zxid = int(whole.stdout.split("last zxid ")[1].split()[0].rstrip(","), 16)

    logs = sorted((int(name.split(".")[1], 16), name)
                  for name in os.listdir(os.path.join(zookeeper_dir, "version-2"))
                  if name.startswith("log."))
    last_log = os.path.join(zookeeper_dir, "version-2", logs[-1][1])
    with open(last_log, "rb") as log:
        content = log.read()
    written = len(content.rstrip(b"\0"))
    # Cut the last record's end ('B' and a few entry bytes): a write torn by a crash.
    with open(last_log, "r+b") as log:
        log.truncate(written - 6)

    refused = run_tool("import", "--from", zookeeper_dir, "--to", os.path.join(scratch, "a"),
                       expect_ok=False)
    assert refused.returncode != 0
    assert logs[-1][1] in refused.stderr and "damaged at byte" in refused.stderr, refused.stderr

    cut = run_tool("import", "--from", zookeeper_dir, "--to", os.path.join(scratch, "b"),
                   "--stop-at-last-valid")
    assert "stopped at the last valid transaction" in cut.stderr, cut.stderr
    cut_zxid = int(cut.stdout.split("last zxid ")[1].split()[0].rstrip(","), 16)
    assert cut_zxid == whole_zxid - 1
    ours = Server("ours", scratch, os.path.join(scratch, "b"), port).start()
    ours.stop()


def test_an_ensemble_starts_on_the_same_import_on_every_member(scratch):
    from process_ensemble import ProcessEnsemble

    port = free_port()
    zookeeper_dir = os.path.join(scratch, "zk")
    expected = write_with_frequent_snapshots(scratch, port, zookeeper_dir, "checked")
    ensemble = ProcessEnsemble("ours", 3)
    try:
        for member in range(1, 4):
            data_dir = os.path.join(ensemble._directory(member), "data")
            # The import writes only into an empty directory; myid follows it.
            os.remove(os.path.join(data_dir, "myid"))
            run_tool("import", "--from", zookeeper_dir, "--to", data_dir)
            with open(os.path.join(data_dir, "myid"), "w") as myid:
                myid.write(f"{member}\n")
        with ensemble:
            leader = ensemble.leader()
            follower = next(member for member in range(1, 4) if member != leader)
            port = int(ensemble.host(follower).split(":")[1])
            assert differences(expected, dump(port)) == []
            client = connect(port)
            try:
                client.create("/after-import", b"replicated")
            finally:
                client.stop()
                client.close()
            port = int(ensemble.host(leader).split(":")[1])
            client = connect(port)
            try:
                client.sync("/after-import")
                assert client.get("/after-import")[0] == b"replicated"
            finally:
                client.stop()
                client.close()
    finally:
        ensemble.close()
