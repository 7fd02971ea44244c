"""Guards against the opcodes kazoo and the C client rarely send drifting from ZooKeeper:
getAllChildrenNumber, getEphemerals, whoAmI, addWatch (persistent and recursive, with their
notifications), checkWatches, removeWatches and multiRead, compared reply for reply with Apache
ZooKeeper 3.8 (zxids aside, which each server numbers its own way)."""

import struct
import uuid

from rawwire import frame, handshake, jute_string, read_frame

OP_CREATE, OP_SET_DATA, OP_DELETE = 1, 5, 2
OP_CHECK_WATCHES, OP_REMOVE_WATCHES = 17, 18
OP_MULTI_READ = 22
OP_GET_EPHEMERALS, OP_GET_ALL_CHILDREN_NUMBER = 103, 104
OP_ADD_WATCH, OP_WHO_AM_I = 106, 107
OPEN_ACL = struct.pack(">ii", 1, 31) + jute_string("world") + jute_string("anyone")


class Session:
    """A raw session that sends one request at a time and keeps notifications apart."""

    def __init__(self, address):
        self.sock, self.session_id = handshake(address)
        self.xid = 0
        self.events = []

    def call(self, opcode, body=b""):
        self.xid += 1
        self.sock.sendall(frame(struct.pack(">ii", self.xid, opcode) + body))
        while True:
            reply = read_frame(self.sock)
            xid, _zxid, err = struct.unpack_from(">iqi", reply)
            if xid == -1:
                event_type, state, length = struct.unpack_from(">iii", reply, 16)
                self.events.append((event_type, state, reply[28:28 + length].decode()))
                continue
            assert xid == self.xid
            return err, reply[16:]

    def create(self, path, data=b"", flags=0):
        body = jute_string(path) + struct.pack(">i", len(data)) + data + OPEN_ACL
        return self.call(OP_CREATE, body + struct.pack(">i", flags))

    def close(self):
        self.sock.close()


def strings(body):
    (count,) = struct.unpack_from(">i", body)
    offset, names = 4, []
    for _ in range(count):
        (length,) = struct.unpack_from(">i", body, offset)
        names.append(body[offset + 4:offset + 4 + length].decode())
        offset += 4 + length
    return names, body[offset:]


def script(address, root):
    """Runs the same requests on a server; returns every observable answer."""
    owner, other = Session(address), Session(address)
    try:
        seen = []
        assert owner.create(root)[0] == 0
        assert owner.create(root + "/a")[0] == 0
        assert owner.create(root + "/a/b")[0] == 0
        assert owner.create(root + "/e1", flags=1)[0] == 0
        assert owner.create(root + "/e2", flags=1)[0] == 0

        err, body = owner.call(OP_GET_ALL_CHILDREN_NUMBER, jute_string(root))
        seen.append(("getAllChildrenNumber", err, struct.unpack(">i", body)))
        err, body = owner.call(OP_GET_ALL_CHILDREN_NUMBER, jute_string(root + "/missing"))
        seen.append(("getAllChildrenNumber missing", err, body))
        err, body = owner.call(OP_GET_EPHEMERALS, jute_string(root))
        seen.append(("getEphemerals", err, sorted(strings(body)[0])))
        err, body = other.call(OP_GET_EPHEMERALS, jute_string(root))
        seen.append(("getEphemerals other", err, strings(body)[0]))
        err, body = owner.call(OP_WHO_AM_I)
        (count,) = struct.unpack_from(">i", body)
        seen.append(("whoAmI count", err, count))

        # Persistent watch on the root, recursive watch on /a; then changes below them.
        seen.append(("addWatch persistent", *other.call(OP_ADD_WATCH, jute_string(root) + struct.pack(">i", 0))))
        seen.append(("addWatch recursive", *other.call(OP_ADD_WATCH, jute_string(root + "/a") + struct.pack(">i", 1))))
        for watcher_type in (1, 2, 3, 4, 5):
            seen.append((f"checkWatches root {watcher_type}",
                         other.call(OP_CHECK_WATCHES, jute_string(root) + struct.pack(">i", watcher_type))[0]))
        owner.create(root + "/a/b/c")
        owner.call(OP_SET_DATA, jute_string(root + "/a") + struct.pack(">i", 1) + b"x" + struct.pack(">i", -1))
        owner.create(root + "/f")
        owner.call(OP_DELETE, jute_string(root + "/f") + struct.pack(">i", -1))
        other.call(OP_WHO_AM_I)  # a round trip, so every notification has arrived
        seen.append(("events", other.events))
        seen.append(("removeWatches persistent", other.call(OP_REMOVE_WATCHES, jute_string(root) + struct.pack(">i", 4))[0]))
        seen.append(("removeWatches again", other.call(OP_REMOVE_WATCHES, jute_string(root) + struct.pack(">i", 4))[0]))
        seen.append(("removeWatches recursive", other.call(OP_REMOVE_WATCHES, jute_string(root + "/a") + struct.pack(">i", 5))[0]))

        reads = (struct.pack(">i?i", 4, False, -1) + jute_string(root + "/a") + b"\0"
                 + struct.pack(">i?i", 8, False, -1) + jute_string(root + "/a") + b"\0"
                 + struct.pack(">i?i", 4, False, -1) + jute_string(root + "/missing") + b"\0"
                 + struct.pack(">i?i", -1, True, -1))
        err, body = owner.call(OP_MULTI_READ, reads)
        op_type, done, op_err = struct.unpack_from(">i?i", body)
        (length,) = struct.unpack_from(">i", body, 9)
        first = (op_type, done, op_err, body[13:13 + length])
        offset = 13 + length + 68
        second_header = struct.unpack_from(">i?i", body, offset)
        children, rest = strings(body[offset + 9:])
        third = struct.unpack_from(">i?ii", rest)
        end = struct.unpack_from(">i?i", rest, 13)
        seen.append(("multiRead", err, first, second_header, children, third, end))
        return seen
    finally:
        owner.close()
        other.close()


# checkWatches and removeWatches changed in ZooKeeper 3.9 (ZOOKEEPER-4466, -4472): they gained
# the Persistent (4) and PersistentRecursive (5) watcher types, which 3.8.0 cannot decode
# (MarshallingError, -5), and Children/Data now mean one-shot watches only, where 3.8.0 matched a
# persistent watch too. Ours follows 3.9; each server is held to its own version's answers.
WATCH_CHECKS_3_9 = {
    "checkWatches root 1": -121, "checkWatches root 2": -121, "checkWatches root 3": 0,
    "checkWatches root 4": 0, "checkWatches root 5": -121, "removeWatches persistent": 0,
    "removeWatches again": -121, "removeWatches recursive": 0,
}
WATCH_CHECKS_3_8 = {
    "checkWatches root 1": 0, "checkWatches root 2": 0, "checkWatches root 3": 0,
    "checkWatches root 4": -5, "checkWatches root 5": -5, "removeWatches persistent": -5,
    "removeWatches again": -5, "removeWatches recursive": -5,
}


def test_rare_opcodes_answer_as_zookeeper(zk_server, reference_server):
    root = "/rare-" + uuid.uuid4().hex[:8]
    ours, theirs = script(zk_server, root), script(reference_server, root)
    assert [entry[0] for entry in ours] == [entry[0] for entry in theirs]
    for mine, reference in zip(ours, theirs):
        if mine[0] in WATCH_CHECKS_3_9:
            assert mine == (mine[0], WATCH_CHECKS_3_9[mine[0]])
            assert reference == (reference[0], WATCH_CHECKS_3_8[reference[0]])
        else:
            assert mine == reference
