"""Guards against one client hurting the others (per-IP and global connection limits, a client
that never reads its replies or notifications), against replies out of request order, and
against the reconnect rules: a client ahead of the server is refused, setWatches fires what a
client missed, a failed auth ends the connection."""

import struct
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError

from conftest import run_our_server
from rawwire import (WAIT_S, connect_request, frame, get_data_request, handshake, jute_string,
                     open_socket,
                     read_frame, read_until_closed, reply_headers)



def kazoo(address):
    client = KazooClient(hosts=address, timeout=10.0)
    client.start(timeout=WAIT_S * 2)
    return client


@pytest.fixture(scope="module")
def limited_server():
    """Ours with maxClientCnxns=4 per IP."""
    with run_our_server(config_lines=["tickTime=2000", "maxClientCnxns=4"]) as address:
        yield address


def test_connections_per_ip_are_limited(limited_server):
    sockets = [handshake(limited_server)[0] for _ in range(4)]
    try:
        # The fifth connection from the same address is closed without a handshake answer.
        extra = open_socket(limited_server)
        extra.sendall(frame(connect_request()))
        assert read_until_closed(extra) == (b"", True)
        extra.close()
        # Freeing one makes room again.
        sockets.pop().close()
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                sockets.append(handshake(limited_server)[0])
                break
            except (ConnectionError, OSError, struct.error):
                assert time.monotonic() < deadline, "a freed slot never became usable"
                time.sleep(0.05)
    finally:
        for sock in sockets:
            sock.close()


def test_pipelined_requests_are_answered_in_order(address):
    client = kazoo(address)
    try:
        client.ensure_path("/pipeline")
        sock, _ = handshake(address)
        with sock:
            sock.sendall(b"".join(frame(get_data_request(xid, "/pipeline")) for xid in range(1, 201)))
            xids = [struct.unpack_from(">i", read_frame(sock))[0] for _ in range(200)]
        assert xids == list(range(1, 201))
    finally:
        client.stop()
        client.close()


def test_a_client_that_never_reads_stalls_no_one(address):
    """A client pipelines thousands of reads and never reads a reply; others are unaffected."""
    client = kazoo(address)
    hog, _ = handshake(address)
    try:
        client.create("/hog-data", b"x" * 4096)
        request = frame(get_data_request(1, "/hog-data", watch=True))
        hog.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 3
        # Fill the hog's socket buffers in both directions until the kernel refuses more.
        while time.monotonic() < deadline:
            try:
                sent += hog.send(request * 64)
            except BlockingIOError:
                break
        assert sent > 0
        other = kazoo(address)
        try:
            start = time.monotonic()
            for index in range(50):
                other.set("/hog-data", b"y" * index)
                assert other.get("/hog-data")[0] == b"y" * index
            assert time.monotonic() - start < 10
        finally:
            other.stop()
            other.close()
    finally:
        hog.close()
        client.delete("/hog-data")
        client.stop()
        client.close()


def test_a_client_ahead_of_the_server_is_refused(address):
    sock = open_socket(address)
    with sock:
        sock.sendall(frame(connect_request(last_zxid_seen=1 << 40)))
        assert read_until_closed(sock) == (b"", True)
    # Everyone else is still served.
    client = kazoo(address)
    client.stop()
    client.close()


def test_set_watches_fires_what_a_reconnecting_client_missed(address):
    """The Java and C clients re-send their watches with their last zxid on reconnect."""
    client = kazoo(address)
    try:
        client.ensure_path("/missed")
        client.ensure_path("/missed/changed")
        client.ensure_path("/missed/deleted")
        last_zxid = client.exists("/missed").last_modified_transaction_id
        client.set("/missed/changed", b"new")
        client.delete("/missed/deleted")
        zxid = max(client.exists("/missed/changed").mzxid, client.exists("/missed").pzxid)
        sock, _ = handshake(address)
        with sock:
            def strings(paths):
                return struct.pack(">i", len(paths)) + b"".join(
                    struct.pack(">i", len(p)) + p.encode() for p in paths)
            body = (struct.pack(">iiq", -8, 101, last_zxid)
                    + strings(["/missed/changed", "/missed/deleted"])
                    + strings(["/missed/appears"]) + strings(["/missed"]))
            sock.sendall(frame(body))
            replies = [read_frame(sock) for _ in range(4)]
        events = []
        for reply in replies[:3]:
            xid, _zxid, err, event_type, state, length = struct.unpack_from(">iqiiii", reply)
            assert (xid, err, state) == (-1, 0, 3)
            events.append((event_type, reply[28:28 + length].decode()))
        # NodeDataChanged(3) and NodeDeleted(2) for the data watches, NodeChildrenChanged(4)
        # for the child watch; the missing /missed/appears stays watched.
        assert sorted(events) == [(2, "/missed/deleted"), (3, "/missed/changed"),
                                  (4, "/missed")]
        xid, reply_zxid, err = struct.unpack_from(">iqi", replies[3])
        assert (xid, err) == (-8, 0) and reply_zxid >= zxid
    finally:
        client.delete("/missed", recursive=True)
        client.stop()
        client.close()


def test_failed_auth_ends_the_connection(address):
    sock, _ = handshake(address)
    with sock:
        scheme, auth = b"nosuchscheme", b"x"
        sock.sendall(frame(struct.pack(">iii", -4, 100, 0) + struct.pack(">i", len(scheme))
                           + scheme + struct.pack(">i", len(auth)) + auth))
        data, closed = read_until_closed(sock)
        assert closed
        assert [(xid, err) for xid, _zxid, err in reply_headers(data)] == [(-4, -115)]
    client = kazoo(address)
    try:
        with pytest.raises(AuthFailedError):
            client.add_auth("nosuchscheme", "x")
    finally:
        client.stop()
        client.close()


def test_a_multi_read_cannot_balloon_the_server(zk_server):
    """A 57 KB multiRead asking 3,000 times for a 1 MB znode would need 3 GB: ours refuses it
    (MarshallingError) and keeps serving. Run against ours only: ZooKeeper builds the reply."""
    client = kazoo(zk_server)
    try:
        client.create("/big-read", b"\1" * 1_000_000)
        sock, _ = handshake(zk_server)
        with sock:
            one = struct.pack(">i?i", 4, False, -1) + jute_string("/big-read") + b"\0"
            body = struct.pack(">ii", 1, 22) + one * 3000 + struct.pack(">i?i", -1, True, -1)
            sock.sendall(frame(body))
            xid, _zxid, err = struct.unpack_from(">iqi", read_frame(sock))
            assert (xid, err) == (1, -5)
        assert len(client.get("/big-read")[0]) == 1_000_000
    finally:
        client.delete("/big-read")
        client.stop()
        client.close()


def test_set_watches2_re_registers_persistent_watches(address):
    """Java clients since 3.6 send setWatches2, which also carries persistent and recursive
    watches: they are re-registered and fire on later changes."""
    client = kazoo(address)
    try:
        client.ensure_path("/persist")
        client.ensure_path("/deep")
        last_zxid = client.exists("/deep").mzxid
        sock, _ = handshake(address)
        with sock:
            def strings(paths):
                return struct.pack(">i", len(paths)) + b"".join(
                    struct.pack(">i", len(p)) + p.encode() for p in paths)
            body = (struct.pack(">iiq", -8, 105, last_zxid) + strings([]) + strings([])
                    + strings([]) + strings(["/persist"]) + strings(["/deep"]))
            sock.sendall(frame(body))
            xid, _zxid, err = struct.unpack_from(">iqi", read_frame(sock))
            assert (xid, err) == (-8, 0)
            client.create("/persist/child")
            client.set("/persist", b"x")
            client.create("/deep/a")
            client.create("/deep/a/b")
            events = []
            for _ in range(4):
                reply = read_frame(sock)
                xid, _zxid, err, event_type, state, length = struct.unpack_from(">iqiiii", reply)
                assert (xid, err, state) == (-1, 0, 3)
                events.append((event_type, reply[28:28 + length].decode()))
        # Persistent: the znode's own children and data; recursive: every descendant created.
        assert events == [(4, "/persist"), (3, "/persist"), (1, "/deep/a"), (1, "/deep/a/b")]
    finally:
        client.delete("/persist", recursive=True)
        client.delete("/deep", recursive=True)
        client.stop()
        client.close()


@pytest.mark.parametrize("requested_ms, granted_ms", [(1_000, 4_000), (10_000, 10_000),
                                                      (100_000, 40_000)])
def test_session_timeout_is_negotiated_into_two_to_twenty_ticks(address, requested_ms, granted_ms):
    sock = open_socket(address)
    with sock:
        sock.sendall(frame(connect_request(timeout_ms=requested_ms)))
        _protocol, timeout_ms, session_id = struct.unpack_from(">iiq", read_frame(sock))
    assert (timeout_ms, session_id != 0) == (granted_ms, True)
