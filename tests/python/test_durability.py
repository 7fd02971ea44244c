"""Guards against a server that loses acknowledged writes or sessions when killed with SIGKILL,
or that starts on (and so may damage) a data directory it cannot read correctly.

Every test runs our release binary (env ``ZKRS_BIN``) on its own temporary data directory and
restarts it on the same directory, so these tests own their processes instead of using the
shared ``zk_server`` fixture. Every wait is bounded and every process is killed in ``finally``.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadVersionError, KazooException
from kazoo.protocol.states import EventType
from kazoo.retry import KazooRetry

from conftest import ZKRS_BIN_DEFAULT, free_port, is_serving

BINARY = os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)
START_TIMEOUT_S = 20.0
WAIT_S = 10.0
LOG_MAGIC = b"ZKRSLOG\0"


@pytest.fixture(scope="module", autouse=True)
def _binary_built():
    if not os.path.exists(BINARY):
        pytest.fail(f"zookeeper-rs binary not built at {BINARY} (set ZKRS_BIN or run "
                    "cargo build --release -p zookeeper-core)")


class Server:
    """Our binary on a fixed port and data directory, restartable; its output is appended to
    ``server.log`` in the scratch directory so the log of every run survives for diagnosis."""

    def __init__(self, scratch, config_lines):
        self.scratch = scratch
        self.data_dir = os.path.join(scratch, "data")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.config_path = os.path.join(scratch, "zoo.cfg")
        with open(self.config_path, "w") as config:
            config.write("".join(line + "\n" for line in config_lines))
        self.log_path = os.path.join(scratch, "server.log")
        self.process = None

    def start(self):
        """Starts the server; returns the seconds until ``srvr`` says it serves."""
        assert self.process is None or self.process.poll() is not None
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(b"\n===== start =====\n")
            log.flush()
            self.process = subprocess.Popen(
                [BINARY, "--port", str(self.port), "--data-dir", self.data_dir,
                 "--config", self.config_path],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.scratch)
        deadline = started + START_TIMEOUT_S
        while not is_serving(self.port):
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode} while "
                                     f"starting; log:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server not serving within {START_TIMEOUT_S} s; "
                                     f"log:\n{self.log_tail()}")
            time.sleep(0.02)
        return time.monotonic() - started

    def kill9(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=WAIT_S)

    def stop(self):
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log_tail(self, chars=4000):
        try:
            with open(self.log_path, "rb") as log:
                return log.read().decode("utf-8", "replace")[-chars:]
        except OSError:
            return "<no log>"


@pytest.fixture
def scratch():
    directory = tempfile.mkdtemp(prefix="zk-durability-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def server_factory(scratch):
    servers = []

    def make(config_lines):
        server = Server(scratch, config_lines)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill9()


def connect(address, timeout=10.0):
    client = KazooClient(hosts=address, timeout=timeout,
                         connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5))
    client.start(timeout=WAIT_S)
    return client


def close_quietly(client):
    try:
        client.stop()
        client.close()
    except Exception:  # noqa: BLE001 - best effort clean-up of a client of a dead server
        pass


# ---------------------------------------------------------------------------------------------
# kill -9 while writing

WRITERS = 3
WRITE_PHASE_S = 3.0
CYCLES = 3


class Writer(threading.Thread):
    """Alternates sequential creates with versioned setData on its own counter, recording what
    the server acknowledged, until told to stop or its connection fails (the kill)."""

    def __init__(self, index, address, counter_version, acked_creates, stop):
        super().__init__(daemon=True)
        self.index = index
        self.counter = f"/dur/c{index}"
        self.version = counter_version
        self.acked_creates = acked_creates  # shared list; list.append is atomic
        self.acked_sets = 0
        self.stop_event = stop
        self.client = connect(address)
        self.error = None

    def run(self):
        try:
            while not self.stop_event.is_set():
                path = self.client.create(f"/dur/seq/w{self.index}-", b"x", sequence=True)
                self.acked_creates.append(path)
                stat = self.client.set(self.counter, str(self.version + 1).encode(),
                                       version=self.version)
                assert stat.version == self.version + 1, (stat, self.version)
                self.version = stat.version
                self.acked_sets += 1
        except BadVersionError as error:  # never expected: only this thread writes its counter
            self.error = error
        except KazooException:
            pass  # the server was killed: this request was in flight


def test_acknowledged_writes_survive_kill_9(server_factory):
    """kill -9 during a write storm, three times on one data directory: every acknowledged
    create and every acknowledged counter version must be there after each restart."""
    server = server_factory(["tickTime=2000", "snapCount=500", "4lw.commands.whitelist=*"])
    acked_creates = []
    acked_versions = {i: 0 for i in range(WRITERS)}
    total_sets = 0
    restart_times = []
    server.start()
    setup = connect(server.address)
    setup.ensure_path("/dur/seq")
    for i in range(WRITERS):
        setup.create(f"/dur/c{i}", b"0")
    close_quietly(setup)

    for cycle in range(1, CYCLES + 1):
        # Each cycle starts from the counters' current versions: a set in flight at the last
        # kill may have been applied.
        reader = connect(server.address)
        versions = {i: reader.get(f"/dur/c{i}")[1].version for i in range(WRITERS)}
        close_quietly(reader)
        stop = threading.Event()
        writers = [Writer(i, server.address, versions[i], acked_creates, stop)
                   for i in range(WRITERS)]
        for writer in writers:
            writer.start()
        time.sleep(WRITE_PHASE_S)
        server.kill9()  # the writers are mid-request: they loop without pause
        stop.set()
        # A request sent after the kill waits for a reconnect that cannot come before the
        # restart: stopping the client ends it (as ConnectionClosedError, a KazooException).
        for writer in writers:
            close_quietly(writer.client)
        for writer in writers:
            writer.join(timeout=WAIT_S)
            assert not writer.is_alive(), "a writer hung after the kill"
            assert writer.error is None, writer.error
            acked_versions[writer.index] = writer.version
            total_sets += writer.acked_sets

        restart_times.append(server.start())
        checker = connect(server.address)
        try:
            found = set(checker.get_children("/dur/seq"))
            missing = [p for p in acked_creates if p.rsplit("/", 1)[1] not in found]
            assert not missing, (f"cycle {cycle}: {len(missing)} acknowledged creates lost, "
                                 f"e.g. {missing[:5]}; log:\n{server.log_tail()}")
            for i in range(WRITERS):
                data, stat = checker.get(f"/dur/c{i}")
                assert stat.version >= acked_versions[i], (
                    f"cycle {cycle}: /dur/c{i} at version {stat.version}, but version "
                    f"{acked_versions[i]} was acknowledged; log:\n{server.log_tail()}")
                assert data == str(stat.version).encode(), (i, data, stat.version)
        finally:
            close_quietly(checker)
        print(f"cycle {cycle}: acknowledged creates {len(acked_creates)}, acknowledged sets "
              f"{total_sets}, creates found {len(found)}, counter versions acknowledged "
              f"{acked_versions}; restart took {restart_times[-1] * 1000:.0f} ms")

    snapshots = [n for n in os.listdir(server.data_dir) if n.startswith("snapshot.")]
    print(f"data dir after {CYCLES} cycles: {sorted(os.listdir(server.data_dir))}")
    print(f"restart until srvr answers: "
          f"{', '.join(f'{t * 1000:.0f} ms' for t in restart_times)}")
    assert snapshots, "snapCount=500 but no snapshot was written"
    assert len(acked_creates) > 100, "too few writes to mean anything"


# ---------------------------------------------------------------------------------------------
# Sessions across kill -9

HOLDER = textwrap.dedent("""
    import sys, time
    from kazoo.client import KazooClient
    client = KazooClient(hosts=sys.argv[1], timeout=2.0)
    client.start(timeout=10)
    client.create(sys.argv[2], b"held", ephemeral=True)
    print(client.client_id[0], flush=True)
    time.sleep(120)
""")


def kill_and_restart_under_a_live_session(server):
    """A client with an ephemeral, the server killed and restarted under it; returns the
    client, its session id, the states it went through (still recording) and the restart time.
    """
    server.start()
    client = connect(server.address, timeout=10.0)
    session_id = client.client_id[0]
    client.create("/mine", b"e", ephemeral=True)
    states = []
    client.add_listener(states.append)
    server.kill9()
    restart = server.start()
    return client, session_id, states, restart


def wait_connected(client, states):
    deadline = time.monotonic() + WAIT_S
    while client.state != KazooState.CONNECTED:
        assert time.monotonic() < deadline, f"client never reconnected; states {states}"
        time.sleep(0.02)


def test_a_live_session_survives_kill_9_and_keeps_its_ephemeral(server_factory):
    """A client whose session has not timed out reconnects after the restart with its id and
    password, and still owns its ephemeral."""
    server = server_factory(["tickTime=500", "4lw.commands.whitelist=*"])
    client, session_id, states, restart = kill_and_restart_under_a_live_session(server)
    try:
        wait_connected(client, states)
        # client.retry: a reconnect may be cut short (see the next test); the session must
        # survive that too.
        stat = client.retry(client.exists, "/mine")
        assert KazooState.LOST not in states, f"session lost; states {states}"
        assert client.client_id[0] == session_id
        assert stat is not None, f"ephemeral lost; log:\n{server.log_tail()}"
        assert stat.ephemeralOwner == session_id
        client.retry(client.create, "/after", b"the resumed session still writes")
        print(f"session 0x{session_id:x} resumed; restart took {restart * 1000:.0f} ms; "
              f"states {states}")
    finally:
        close_quietly(client)


def test_a_resumed_session_is_not_dropped_right_after_reconnecting(server_factory):
    """After the restart the client reconnects once and stays connected: SUSPENDED, then
    CONNECTED, and nothing more while it idles for a second."""
    server = server_factory(["tickTime=500", "4lw.commands.whitelist=*"])
    client, session_id, states, _ = kill_and_restart_under_a_live_session(server)
    try:
        wait_connected(client, states)
        time.sleep(1.0)
        assert states == [KazooState.SUSPENDED, KazooState.CONNECTED], (
            f"states {states}; log:\n{server.log_tail()}")
    finally:
        close_quietly(client)


def test_a_dead_clients_session_expires_after_restart(server_factory):
    """The client died with the server: after the restart its session gets one timeout to come
    back, then expires and its ephemeral goes."""
    server = server_factory(["tickTime=500", "4lw.commands.whitelist=*"])
    server.start()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, server.address, "/held"],
                              stdout=subprocess.PIPE, text=True)
    observer = None
    try:
        session_id = int(holder.stdout.readline())
        holder.send_signal(signal.SIGKILL)  # no close: the session stays open
        holder.wait(timeout=WAIT_S)
        server.kill9()
        server.start()
        served_at = time.monotonic()
        observer = connect(server.address)
        deleted = threading.Event()

        def on_event(event):
            if event.type == EventType.DELETED:
                deleted.set()

        stat = observer.exists("/held", watch=on_event)
        assert stat is not None, "the session ended at the restart, before its timeout"
        assert stat.ephemeralOwner == session_id
        assert deleted.wait(timeout=15.0), (
            f"ephemeral of the dead session never removed; log:\n{server.log_tail()}")
        gone_after = time.monotonic() - served_at
        assert observer.exists("/held") is None
        # Timeout 2 s; the server checks expiry once per tick (0.5 s).
        assert gone_after >= 1.4, f"expired {gone_after:.2f} s after restart, before its timeout"
        print(f"dead session 0x{session_id:x} expired {gone_after:.2f} s after the restart")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=WAIT_S)
        if observer is not None:
            close_quietly(observer)


# ---------------------------------------------------------------------------------------------
# Data directories the server must refuse


def snapshot_of(directory):
    """Every file under ``directory`` with its bytes, to prove a refused start touched nothing."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, directory)] = handle.read()
    return files


def refused(data_dir, cwd):
    result = subprocess.run([BINARY, "--port", str(free_port()), "--data-dir", data_dir],
                            cwd=cwd, capture_output=True, text=True, timeout=WAIT_S)
    assert result.returncode != 0, f"started on a bad data dir; stderr:\n{result.stderr}"
    return result.stderr


def test_a_log_from_a_newer_format_is_refused_untouched(scratch):
    data_dir = os.path.join(scratch, "data")
    os.mkdir(data_dir)
    with open(os.path.join(data_dir, "log.0000000000000001"), "wb") as log:
        log.write(LOG_MAGIC + (99).to_bytes(4, "big") + b"\x00" * 64)
    before = snapshot_of(data_dir)
    stderr = refused(data_dir, scratch)
    line = last_line(stderr)
    assert "log.0000000000000001" in line, stderr
    assert "newer" in line and "version 99" in line, stderr
    assert snapshot_of(data_dir) == before


def test_a_foreign_log_file_is_refused_untouched(scratch):
    data_dir = os.path.join(scratch, "data")
    os.mkdir(data_dir)
    with open(os.path.join(data_dir, "log.notahexname"), "wb") as log:
        log.write(b"someone else's file\n")
    before = snapshot_of(data_dir)
    stderr = refused(data_dir, scratch)
    assert "log.notahexname" in last_line(stderr), stderr
    assert snapshot_of(data_dir) == before


def fill_and_stop(server, nodes=300):
    """Starts ``server``, writes ``nodes`` znodes in two halves with a pause after each (the
    server snapshots on its tick once snapCount Txns have applied), stops it with SIGTERM;
    returns the snapshot file names."""
    server.start()
    client = connect(server.address)
    try:
        client.ensure_path("/fill")
        for i in range(nodes):
            client.create(f"/fill/n{i:04}", str(i).encode())
            if i in (nodes // 2, nodes - 1):
                time.sleep(0.6)
    finally:
        close_quietly(client)
        server.stop()
    return sorted(n for n in os.listdir(server.data_dir) if n.startswith("snapshot."))


def corrupt(path):
    """Flips one byte of the payload (past the 32-byte header) so the checksum fails."""
    with open(path, "r+b") as handle:
        handle.seek(40)
        byte = handle.read(1)
        handle.seek(40)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_a_damaged_snapshot_the_log_covers_is_passed_over(server_factory):
    """The newest snapshot is damaged but the log still holds everything: start, lose nothing."""
    server = server_factory(["tickTime=200", "snapCount=100", "4lw.commands.whitelist=*"])
    snapshots = fill_and_stop(server)
    assert len(snapshots) >= 2, os.listdir(server.data_dir)
    corrupt(os.path.join(server.data_dir, snapshots[-1]))
    server.start()
    client = connect(server.address)
    try:
        assert len(client.get_children("/fill")) == 300
        assert client.get("/fill/n0299")[0] == b"299"
    finally:
        close_quietly(client)
    assert "damaged snapshot" in server.log_tail(), server.log_tail()


def test_a_damaged_snapshot_the_log_no_longer_covers_is_refused_untouched(server_factory):
    """Every snapshot damaged and no log to rebuild from: refuse, naming the snapshot, rather
    than start empty and silently drop the committed data."""
    server = server_factory(["tickTime=200", "snapCount=100", "4lw.commands.whitelist=*"])
    snapshots = fill_and_stop(server)
    assert snapshots, os.listdir(server.data_dir)
    for name in os.listdir(server.data_dir):
        if name.startswith("log."):
            os.remove(os.path.join(server.data_dir, name))
    for name in snapshots:
        corrupt(os.path.join(server.data_dir, name))
    before = snapshot_of(server.data_dir)
    stderr = refused(server.data_dir, server.scratch)
    assert any(name in last_line(stderr) for name in snapshots), stderr
    assert "corrupt" in last_line(stderr), stderr
    assert snapshot_of(server.data_dir) == before


def last_line(stderr):
    lines = stderr.strip().splitlines()
    assert lines, "refused without a message"
    return lines[-1]


def test_a_data_dir_that_cannot_be_created_is_refused(scratch):
    # /proc refuses new entries even to root, unlike a chmod-ed directory.
    stderr = refused("/proc/zkrs-test", scratch)
    assert "cannot use the data directory" in last_line(stderr), stderr
    assert "/proc/zkrs-test" in stderr, stderr  # at least the start-up line names it
    assert not os.path.exists("/proc/zkrs-test")


def test_a_data_dir_that_is_a_file_is_refused_untouched(scratch):
    path = os.path.join(scratch, "not-a-dir")
    with open(path, "wb") as handle:
        handle.write(b"a regular file")
    stderr = refused(path, scratch)
    assert "cannot use the data directory" in last_line(stderr), stderr
    with open(path, "rb") as handle:
        assert handle.read() == b"a regular file"


def test_the_error_line_names_the_directory_it_could_not_create(scratch):
    stderr = refused("/proc/zkrs-test", scratch)
    assert "/proc/zkrs-test" in last_line(stderr), stderr
