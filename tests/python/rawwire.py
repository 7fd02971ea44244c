"""The ZooKeeper client protocol by hand, for tests that need bytes no client library sends."""

import socket
import struct
import time

WAIT_S = 5.0
OP_EXISTS = 3
OP_GET_DATA = 4


def frame(body):
    return struct.pack(">i", len(body)) + body


def connect_request(timeout_ms=10_000, session_id=0, password=b"\0" * 16, last_zxid_seen=0):
    return (struct.pack(">iqiq", 0, last_zxid_seen, timeout_ms, session_id)
            + struct.pack(">i", len(password)) + password + struct.pack(">?", False))


def jute_string(text):
    data = text.encode()
    return struct.pack(">i", len(data)) + data


def exists_request(xid, path):
    return struct.pack(">ii", xid, OP_EXISTS) + jute_string(path) + b"\0"


def open_socket(address):
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {count} bytes")
        data += chunk
    return data


def read_frame(sock):
    (length,) = struct.unpack(">i", read_exactly(sock, 4))
    return read_exactly(sock, length)


def handshake(address, last_zxid_seen=0):
    """Opens a connection with a fresh session; returns (socket, session id)."""
    sock = open_socket(address)
    sock.sendall(frame(connect_request(last_zxid_seen=last_zxid_seen)))
    body = read_frame(sock)
    _protocol, timeout_ms, session_id = struct.unpack_from(">iiq", body)
    assert timeout_ms > 0 and session_id != 0, body.hex()
    return sock, session_id


def read_until_closed(sock, timeout_s=WAIT_S):
    """Returns (bytes received, closed?) once the peer closes or timeout_s passes."""
    sock.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def reply_headers(data):
    """Splits framed replies into (xid, zxid, err) headers."""
    headers = []
    while len(data) >= 4:
        (length,) = struct.unpack_from(">i", data)
        body = data[4:4 + length]
        if len(body) < 16:
            break
        headers.append(struct.unpack_from(">iqi", body))
        data = data[4 + length:]
    return headers




def get_data_request(xid, path, watch=False):
    return struct.pack(">ii", xid, OP_GET_DATA) + jute_string(path) + struct.pack(">?", watch)
