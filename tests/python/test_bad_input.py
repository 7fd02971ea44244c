"""Guards against a client port that crashes, hangs or corrupts data on malformed input (garbage, truncated or oversize frames, unknown opcodes, out-of-order handshakes), and against four-letter words that answer differently from ZooKeeper 3.8."""

import os
import random
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import pytest
from kazoo.client import KazooClient

from rawwire import (WAIT_S, connect_request, exists_request, frame, handshake, jute_string,
                     open_socket, read_frame, read_until_closed, reply_headers)

from conftest import SERVERS
# ZooKeeper rejects a frame longer than jute.maxbuffer (1,048,575) + jute.maxbuffer.extrasize
# (1,024) before reading it: 1,049,600 is the smallest length it refuses.
FRAME_BYTES_MAX = 1_048_575 + 1_024
OP_UNKNOWN = 99
ERR_UNIMPLEMENTED = -6


# ---------------------------------------------------------------------------------------------
# Fixtures: a server with a known subtree, and a check that it is intact


@pytest.fixture
def seeded(address):
    """Creates a small subtree; yields (address, snapshot); checks after the test that the
    server still serves new clients and the subtree is unchanged."""
    root = f"/bad-input-{uuid.uuid4().hex[:12]}"
    client = KazooClient(hosts=address, timeout=10.0)
    client.start(timeout=WAIT_S * 2)
    try:
        client.create(root, b"root-data")
        for index in range(3):
            client.create(f"{root}/child-{index}", bytes([index]) * 100)
        snapshot = read_subtree(client, root)
    finally:
        client.stop()
        client.close()
    yield address, root, snapshot
    assert_server_intact(address, root, snapshot)


def read_subtree(client, root):
    snapshot = {root: client.get(root)}
    for name in sorted(client.get_children(root)):
        snapshot[f"{root}/{name}"] = client.get(f"{root}/{name}")
    return snapshot


def assert_server_intact(address, root, snapshot):
    client = KazooClient(hosts=address, timeout=10.0)
    client.start(timeout=WAIT_S * 2)
    try:
        assert read_subtree(client, root) == snapshot
        # Writes still work too (beside the subtree, which must stay as it was).
        client.create(f"{root}-probe", b"x")
        client.delete(f"{root}-probe")
    finally:
        client.stop()
        client.close()


# ---------------------------------------------------------------------------------------------
# Malformed input


def test_garbage_frame_before_handshake_closes_silently(seeded):
    address, _, _ = seeded
    garbage = bytes(random.Random(7).randrange(256) for _ in range(60))
    with open_socket(address) as sock:
        sock.sendall(frame(garbage))
        assert read_until_closed(sock) == (b"", True)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_unframed_garbage_stream(seeded, seed):
    """Random bytes from the first byte on: the length prefix itself is garbage."""
    address, _, _ = seeded
    garbage = bytes(random.Random(seed).randrange(256) for _ in range(4096))
    with open_socket(address) as sock:
        try:
            sock.sendall(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, _closed = read_until_closed(sock, timeout_s=1.0)
        assert data == b""  # nothing in it is a ConnectRequest worth answering


def test_garbage_frame_after_handshake(seeded):
    address, _, _ = seeded
    sock, _ = handshake(address)
    with sock:
        garbage = bytes(random.Random(11).randrange(256) for _ in range(60))
        sock.sendall(frame(garbage))
        data, closed = read_until_closed(sock)
        # ZooKeeper reads the first 8 bytes as xid and type, answers Unimplemented, and closes.
        for _xid, _zxid, err in reply_headers(data):
            assert err != 0
        assert closed


def test_truncated_frame_held_open_blocks_no_one(seeded):
    """A client that sends half a frame and stalls must not stall the server for others."""
    address, root, snapshot = seeded
    before_handshake = open_socket(address)
    before_handshake.sendall(frame(connect_request())[:20])
    after_handshake, _ = handshake(address)
    after_handshake.sendall(frame(exists_request(1, root))[:9])
    try:
        assert_server_intact(address, root, snapshot)
    finally:
        before_handshake.close()
        after_handshake.close()


def test_truncated_frame_then_close(seeded):
    address, _, _ = seeded
    with open_socket(address) as sock:
        sock.sendall(struct.pack(">i", 100) + b"abc")
    sock, _ = handshake(address)
    with sock:
        sock.sendall(struct.pack(">i", 100) + b"abc")


@pytest.mark.parametrize("after_handshake", [False, True], ids=["before-handshake", "after-handshake"])
@pytest.mark.parametrize("length", [-1, -2**31, FRAME_BYTES_MAX + 1, 2**31 - 1],
                         ids=["minus-1", "int-min", "maxbuffer-plus-1", "int-max"])
def test_bad_length_prefix_closes_connection(seeded, length, after_handshake):
    address, _, _ = seeded
    if after_handshake:
        sock, _ = handshake(address)
    else:
        sock = open_socket(address)
    with sock:
        sock.sendall(struct.pack(">i", length))
        # Closed at once, without waiting for (or allocating) the announced body.
        assert read_until_closed(sock) == (b"", True)


def test_length_at_the_limit_is_accepted(seeded):
    """The largest frame ZooKeeper reads: a setData of ~1 MiB within maxbuffer + extrasize."""
    address, root, _ = seeded
    client = KazooClient(hosts=address, timeout=10.0)
    client.start(timeout=WAIT_S * 2)
    try:
        client.create(f"{root}-big", b"\1" * 1_048_000)
        assert len(client.get(f"{root}-big")[0]) == 1_048_000
        client.delete(f"{root}-big")
    finally:
        client.stop()
        client.close()


def test_unknown_opcode_answers_unimplemented(seeded):
    address, root, _ = seeded
    sock, _ = handshake(address)
    with sock:
        sock.sendall(frame(struct.pack(">ii", 7, OP_UNKNOWN) + jute_string(root)))
        data, _closed = read_until_closed(sock, timeout_s=2.0)
        headers = reply_headers(data)
        assert headers, f"no reply to an unknown opcode; got {data!r}"
        xid, _zxid, err = headers[0]
        assert (xid, err) == (7, ERR_UNIMPLEMENTED)


def test_unknown_opcode_then_closes(seeded):
    """ZooKeeper 3.8 closes the connection after answering an opcode it does not know
    (and puts zxid -1 in that reply header)."""
    address, root, _ = seeded
    sock, session_id = handshake(address)
    with sock:
        sock.sendall(frame(struct.pack(">ii", 7, OP_UNKNOWN) + jute_string(root)))
        data, closed = read_until_closed(sock)
        assert closed, f"connection left open after {reply_headers(data)}"


def test_request_before_handshake_closes_silently(seeded):
    address, root, _ = seeded
    with open_socket(address) as sock:
        sock.sendall(frame(exists_request(1, root)))
        assert read_until_closed(sock) == (b"", True)


def test_second_connect_request_is_refused(seeded):
    address, root, _ = seeded
    sock, session_id = handshake(address)
    with sock:
        sock.sendall(frame(connect_request()))
        data, closed = read_until_closed(sock)
        # ZooKeeper parses it as a request (xid 0, opcode 0) and answers Unimplemented, then
        # closes. What must not happen is a second ConnectResponse or a second session.
        headers = reply_headers(data)
        assert all(err != 0 for _xid, _zxid, err in headers), data.hex()
        assert closed


def test_valid_request_after_handshake_still_works(seeded):
    """The control case for the raw helpers: a well-formed exists gets a well-formed reply."""
    address, root, snapshot = seeded
    sock, _ = handshake(address)
    with sock:
        sock.sendall(frame(exists_request(5, root)))
        body = read_frame(sock)
        xid, zxid, err = struct.unpack_from(">iqi", body)
        assert (xid, err) == (5, 0)
        stat = struct.unpack_from(">qqqqiiiqiiq", body, 16)
        czxid, _mzxid, _ctime, _mtime, version, _cversion, _aversion, _owner, data_length, \
            children, _pzxid = stat
        assert (version, data_length, children) == (0, len(snapshot[root][0]), 3)
        assert zxid >= czxid


# ---------------------------------------------------------------------------------------------
# Four-letter words


def four_letter(address, word):
    with open_socket(address) as sock:
        sock.sendall(word.encode())
        data, closed = read_until_closed(sock)
    assert closed, f"{word}: connection left open"
    return data.decode()


@pytest.mark.parametrize("server", SERVERS)
def test_ruok(request, server):
    assert four_letter(request.getfixturevalue(server), "ruok") == "imok"


@pytest.mark.parametrize("word", ["srvr", "stat"])
@pytest.mark.parametrize("server", SERVERS)
def test_srvr_and_stat(request, server, word):
    text = four_letter(request.getfixturevalue(server), word)
    assert text.startswith("Zookeeper version: "), text
    assert "\nMode: standalone\n" in text
    assert re.search(r"^Node count: \d+$", text, re.MULTILINE), text
    assert re.search(r"^Zxid: 0x[0-9a-f]+$", text, re.MULTILINE), text
    assert re.search(r"^Latency min/avg/max: \S+/\S+/\S+$", text, re.MULTILINE), text
    if word == "stat":
        assert "\nClients:\n" in text


@pytest.mark.parametrize("server", SERVERS)
def test_node_count_counts_znodes(request, server):
    address = request.getfixturevalue(server)

    def node_count():
        return int(re.search(r"^Node count: (\d+)$", four_letter(address, "srvr"),
                             re.MULTILINE).group(1))

    client = KazooClient(hosts=address, timeout=10.0)
    client.start(timeout=WAIT_S * 2)
    try:
        before = node_count()
        root = f"/count-{uuid.uuid4().hex[:12]}"
        client.create(root)
        client.create(f"{root}/a")
        assert node_count() == before + 2
        client.delete(f"{root}/a")
        client.delete(root)
        assert node_count() == before
    finally:
        client.stop()
        client.close()


# A server whose zoo.cfg whitelists only ruok and srvr.

def start_with_whitelist(kind, directory, port):
    config = os.path.join(directory, "zoo.cfg")
    os.mkdir(os.path.join(directory, "data"))
    with open(config, "w") as out:
        out.write("tickTime=2000\n"
                  f"dataDir={directory}/data\n"
                  f"clientPort={port}\n"
                  "clientPortAddress=127.0.0.1\n"
                  "4lw.commands.whitelist=ruok, srvr\n"
                  "admin.enableServer=false\n")
    log = open(os.path.join(directory, "server.log"), "wb")
    if kind == "reference":
        command = ["java", "-Dzookeeper.root.logger=WARN,CONSOLE", "-Xmx256m",
                   "-cp", "/etc/zookeeper/conf:/usr/share/java/*",
                   "org.apache.zookeeper.server.ZooKeeperServerMain", config]
    else:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        binary = os.environ.get("ZKRS_BIN", os.path.join(repo, "target", "release", "zookeeper-rs"))
        if not os.path.exists(binary):
            pytest.fail(f"zookeeper-rs binary not built at {binary}")
        command = [binary, "--port", str(port), "--data-dir", os.path.join(directory, "data"),
                   "--config", config]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=directory), log


@pytest.fixture(scope="module", params=["ours", "reference"])
def whitelisted_server(request):
    if request.param == "reference" and shutil.which("java") is None:
        pytest.fail("needs java and Debian's zookeeper package (scripts/test-all.sh installs it)")
    directory = tempfile.mkdtemp(prefix=f"zk-whitelist-{request.param}-")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process, log = start_with_whitelist(request.param, directory, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"{request.param} server exited: {process.returncode}"
            try:
                # ZooKeeper answers ruok before it serves: wait for srvr.
                if four_letter(f"127.0.0.1:{port}", "srvr").startswith("Zookeeper version: "):
                    break
            except (OSError, AssertionError):
                pass
            assert time.monotonic() < deadline, "whitelisted server did not start"
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("word", ["stat", "mntr", "envi", "conf", "cons", "dump", "wchs"])
def test_word_not_in_whitelist(whitelisted_server, word):
    assert (four_letter(whitelisted_server, word)
            == f"{word} is not executed because it is not in the whitelist.\n")


def test_whitelisted_words_still_answer(whitelisted_server):
    assert four_letter(whitelisted_server, "ruok") == "imok"
    assert four_letter(whitelisted_server, "srvr").startswith("Zookeeper version: ")


def test_unknown_word_is_read_as_a_length_and_closed(whitelisted_server):
    """'xyzw' is no command: its bytes are a length prefix of 2 GB, refused at once."""
    assert four_letter(whitelisted_server, "xyzw") == ""
