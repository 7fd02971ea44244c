"""A ZooKeeper client by hand over TLS, for x509 tests that need what kazoo will not do: send a
null ACL id (kazoo writes "" as null), resume a session on a new connection with another
certificate, and not re-send its auth there."""

import socket
import ssl
import struct

from rawwire import frame, jute_string, read_frame

OP_CREATE = 1
OP_DELETE = 2
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_SET_ACL = 7
OP_MULTI = 14
OP_WHO_AM_I = 107
OP_AUTH = 100
XID_AUTH = -4
PERMS_ALL = 31


def jute_string_or_null(text):
    """A jute string; None is null (length -1), as kazoo writes every empty string."""
    return struct.pack(">i", -1) if text is None else jute_string(text)


def acl_bytes(acl):
    """A jute ACL vector of (perms, scheme, id) entries; a scheme or id of None is written
    as null."""
    body = struct.pack(">i", len(acl))
    for perms, scheme, identity in acl:
        body += (struct.pack(">i", perms) + jute_string_or_null(scheme)
                 + jute_string_or_null(identity))
    return body


class TlsConnection:
    """One TLS connection speaking the client protocol: a new session, or a resumed one."""

    def __init__(self, port, certs, client="client", session=None):
        context = ssl.create_default_context(cafile=certs["ca"])
        if client:
            context.load_cert_chain(certs[f"{client}-cert"], certs[f"{client}-key"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        session_id, password = session or (0, b"\0" * 16)
        self.sock.sendall(frame(struct.pack(">iqiq", 0, 0, 10_000, session_id)
                                + struct.pack(">i", 16) + password + b"\0"))
        body = read_frame(self.sock)
        _protocol, timeout_ms, session_id, length = struct.unpack_from(">iiqi", body)
        assert timeout_ms > 0, "session refused"
        self.session = (session_id, body[20:20 + length])
        self.xid = 0

    def close_socket(self):
        """Drops the connection without closing the session."""
        self.sock.close()

    def call(self, op, body, xid=None):
        """Sends one request; returns (error code, reply body)."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.sock.sendall(frame(struct.pack(">ii", xid, op) + body))
        reply = read_frame(self.sock)
        reply_xid, _zxid, error = struct.unpack_from(">iqi", reply)
        assert reply_xid == xid, (reply_xid, xid)
        return error, reply[16:]

    def add_auth(self, scheme, credential):
        return self.call(OP_AUTH, struct.pack(">i", 0) + jute_string(scheme)
                         + struct.pack(">i", len(credential)) + credential, xid=XID_AUTH)[0]

    def create(self, path, acl, data=b""):
        return self.call(OP_CREATE, jute_string(path) + struct.pack(">i", len(data)) + data
                         + acl_bytes(acl) + struct.pack(">i", 0))[0]

    def multi_create(self, creates):
        """A multi of creates, each (path, acl); returns (error code, reply body)."""
        body = b""
        for path, acl in creates:
            body += (struct.pack(">i?i", OP_CREATE, False, -1) + jute_string(path)
                     + struct.pack(">i", 0) + acl_bytes(acl) + struct.pack(">i", 0))
        return self.call(OP_MULTI, body + struct.pack(">i?i", -1, True, -1))

    def set_acl(self, path, acl):
        return self.call(OP_SET_ACL, jute_string(path) + acl_bytes(acl) + struct.pack(">i", -1))[0]

    def get_data(self, path):
        """(error code, the znode's data or None)."""
        error, body = self.call(OP_GET_DATA, jute_string(path) + b"\0")
        if error:
            return error, None
        (length,) = struct.unpack_from(">i", body)
        return error, body[4:4 + max(length, 0)]

    def set_data(self, path, data):
        return self.call(OP_SET_DATA, jute_string(path) + struct.pack(">i", len(data)) + data
                         + struct.pack(">i", -1))[0]

    def delete(self, path):
        return self.call(OP_DELETE, jute_string(path) + struct.pack(">i", -1))[0]

    def who_am_i(self):
        """The session's identities as whoAmI reports them: [(scheme, user)]."""
        error, body = self.call(OP_WHO_AM_I, b"")
        assert error == 0, error
        (count,) = struct.unpack_from(">i", body)
        offset, infos = 4, []
        for _ in range(count):
            fields = []
            for _field in range(2):
                (length,) = struct.unpack_from(">i", body, offset)
                offset += 4
                fields.append(body[offset:offset + max(length, 0)].decode() if length >= 0
                              else None)
                offset += max(length, 0)
            infos.append(tuple(fields))
        return infos
