"""Requests kazoo 2.11 cannot send, or cannot decode faithfully, for the differential tester.

kazoo has no createContainer (19) or createTTL (21), and its multi decoder drops result kinds it
does not know (create2 results, unknown types) and loses their offsets. These classes follow
kazoo's request protocol (``type``, ``serialize()``, ``deserialize(bytes, offset)``) so they go
through ``KazooClient._call`` unchanged, and the multi decoder keeps every result with its type.
"""

from collections import namedtuple

from kazoo.protocol.serialization import (
    MultiHeader,
    int_struct,
    long_struct,
    read_string,
    stat_struct,
    write_buffer,
)
from kazoo.protocol.states import ZnodeStat

OPCODE_CREATE = 1
OPCODE_DELETE = 2
OPCODE_SET_DATA = 5
OPCODE_CHECK = 13
OPCODE_MULTI = 14
OPCODE_CREATE2 = 15
OPCODE_CREATE_CONTAINER = 19
OPCODE_CREATE_TTL = 21
OPCODE_ERROR = -1

FLAG_PERSISTENT = 0
FLAG_EPHEMERAL = 1
FLAG_SEQUENTIAL = 2
FLAG_CONTAINER = 4
FLAG_PERSISTENT_WITH_TTL = 5
FLAG_PERSISTENT_SEQUENTIAL_WITH_TTL = 6


OPCODE_SET_ACL = 7


def write_text(text):
    """A jute ustring. kazoo's write_string sends "" as null (-1), which no real client does
    and ZooKeeper rejects; an auth-scheme ACL's id is "" on the wire from the Java client."""
    encoded = text.encode("utf-8")
    return int_struct.pack(len(encoded)) + encoded


def _write_acls(acls):
    b = bytearray(int_struct.pack(len(acls)))
    for acl in acls:
        b.extend(int_struct.pack(acl.perms) + write_text(acl.id.scheme) + write_text(acl.id.id))
    return b


def create_record(path, data, acls, flags):
    """CreateRequest: the body of create, create2 and createContainer."""
    return bytes(write_text(path) + write_buffer(data) + _write_acls(acls)
                 + int_struct.pack(flags))


def create_ttl_record(path, data, acls, flags, ttl_ms):
    """CreateTTLRequest: CreateRequest followed by the TTL in milliseconds."""
    return create_record(path, data, acls, flags) + long_struct.pack(ttl_ms)


def _read_stat(buffer, offset):
    stat = ZnodeStat._make(stat_struct.unpack_from(buffer, offset))
    return stat, offset + stat_struct.size


class RawCreate(namedtuple("RawCreate", "type body")):
    """A create-family request with an explicit opcode.

    Answers the path for create (1), (path, stat) for create2, createContainer and createTTL.
    kazoo's own create would replace an empty ACL list with its default ACL; this sends it.
    """

    def serialize(self):
        return self.body

    def deserialize(self, buffer, offset):
        path, offset = read_string(buffer, offset)
        if self.type == OPCODE_CREATE:
            return path
        stat, offset = _read_stat(buffer, offset)
        return path, stat


class RawSetAcl(namedtuple("RawSetAcl", "path acls version")):
    """setACL with ids written as real clients write them (see ``write_text``); answers a Stat."""

    type = OPCODE_SET_ACL

    def serialize(self):
        return bytes(write_text(self.path) + _write_acls(self.acls)
                     + int_struct.pack(self.version))

    def deserialize(self, buffer, offset):
        return _read_stat(buffer, offset)[0]


class RawMulti(namedtuple("RawMulti", "operations")):
    """A multi of (opcode, body) pairs; answers a list of (result type, payload).

    Payloads: create -> path; create2/TTL/container -> (path, stat); setData -> stat;
    delete and check -> None; error -> the error code. A result type the decoder does not
    know ends the list with ("undecodable", type) rather than guessing its length.
    """

    type = OPCODE_MULTI

    def serialize(self):
        b = bytearray()
        for opcode, body in self.operations:
            b.extend(MultiHeader(opcode, False, -1).serialize())
            b.extend(body)
        b.extend(MultiHeader(-1, True, -1).serialize())
        return b

    @classmethod
    def deserialize(cls, buffer, offset):
        results = []
        while True:
            header, offset = MultiHeader.deserialize(buffer, offset)
            if header.done:
                return results
            if header.type == OPCODE_CREATE:
                path, offset = read_string(buffer, offset)
                results.append(("create", path))
            elif header.type in (OPCODE_CREATE2, OPCODE_CREATE_CONTAINER, OPCODE_CREATE_TTL):
                path, offset = read_string(buffer, offset)
                stat, offset = _read_stat(buffer, offset)
                results.append((f"create{header.type}", (path, stat)))
            elif header.type == OPCODE_DELETE:
                results.append(("delete", None))
            elif header.type == OPCODE_SET_DATA:
                stat, offset = _read_stat(buffer, offset)
                results.append(("setData", stat))
            elif header.type == OPCODE_CHECK:
                results.append(("check", None))
            elif header.type == OPCODE_ERROR:
                err = int_struct.unpack_from(buffer, offset)[0]
                offset += int_struct.size
                results.append(("error", err))
            else:
                results.append(("undecodable", header.type))
                return results


# -- rare opcodes -------------------------------------------------------------------------------

OPCODE_RECONFIG = 16
OPCODE_CHECK_WATCHES = 17
OPCODE_REMOVE_WATCHES = 18
OPCODE_DELETE_CONTAINER = 20
OPCODE_MULTI_READ = 22
OPCODE_GET_DATA = 4
OPCODE_GET_CHILDREN = 8
OPCODE_SASL = 102
OPCODE_GET_EPHEMERALS = 103
OPCODE_GET_ALL_CHILDREN_NUMBER = 104
OPCODE_SET_WATCHES = 101
OPCODE_SET_WATCHES2 = 105
OPCODE_ADD_WATCH = 106
OPCODE_WHO_AM_I = 107


def _write_strings(texts):
    b = bytearray(int_struct.pack(len(texts)))
    for text in texts:
        b.extend(write_text(text))
    return b


def _read_strings(buffer, offset):
    (count,) = int_struct.unpack_from(buffer, offset)
    offset += int_struct.size
    texts = []
    for _ in range(count):
        text, offset = read_string(buffer, offset)
        texts.append(text)
    return texts, offset


class RawCheck(namedtuple("RawCheck", "path version")):
    """A standalone check (CheckVersionRequest, opcode 13); answers the znode's Stat (3.9)."""

    type = OPCODE_CHECK

    def serialize(self):
        return bytes(write_text(self.path) + int_struct.pack(self.version))

    def deserialize(self, buffer, offset):
        return _read_stat(buffer, offset)[0]


class RawDeleteContainer(namedtuple("RawDeleteContainer", "path")):
    """deleteContainer (DeleteContainerRequest, opcode 20); answers nothing."""

    type = OPCODE_DELETE_CONTAINER

    def serialize(self):
        return bytes(write_text(self.path))

    def deserialize(self, buffer, offset):
        return None


class RawPathQuery(namedtuple("RawPathQuery", "type path")):
    """getEphemerals (103, answers a list of paths) or getAllChildrenNumber (104, an int)."""

    def serialize(self):
        return bytes(write_text(self.path))

    def deserialize(self, buffer, offset):
        if self.type == OPCODE_GET_ALL_CHILDREN_NUMBER:
            return int_struct.unpack_from(buffer, offset)[0]
        return _read_strings(buffer, offset)[0]


class RawWhoAmI:
    """whoAmI (107): the session's (scheme, user) pairs. (A plain class: kazoo takes a falsy
    request, such as an empty namedtuple, for no request at all.)"""

    type = OPCODE_WHO_AM_I

    def serialize(self):
        return b""

    def deserialize(self, buffer, offset):
        (count,) = int_struct.unpack_from(buffer, offset)
        offset += int_struct.size
        infos = []
        for _ in range(count):
            scheme, offset = read_string(buffer, offset)
            user, offset = read_string(buffer, offset)
            infos.append((scheme, user))
        return infos


class RawSasl(namedtuple("RawSasl", "token")):
    """A SASL token (102); answers the server's token (None: no SASL mechanism served)."""

    type = OPCODE_SASL

    def serialize(self):
        return bytes(write_buffer(self.token))

    def deserialize(self, buffer, offset):
        from kazoo.protocol.serialization import read_buffer
        return read_buffer(buffer, offset)[0]


class RawReconfig(namedtuple("RawReconfig", "joining leaving new_members config_id")):
    """reconfig (16); answers the new configuration's data and Stat."""

    type = OPCODE_RECONFIG

    def serialize(self):
        def text_or_null(text):
            return int_struct.pack(-1) if text is None else write_text(text)
        return bytes(text_or_null(self.joining) + text_or_null(self.leaving)
                     + text_or_null(self.new_members) + long_struct.pack(self.config_id))

    def deserialize(self, buffer, offset):
        from kazoo.protocol.serialization import read_buffer
        data, offset = read_buffer(buffer, offset)
        return data, _read_stat(buffer, offset)[0]


class RawAddWatch(namedtuple("RawAddWatch", "path mode")):
    """addWatch (106): mode 0 persistent, 1 persistent-recursive; answers ErrorResponse(0)."""

    type = OPCODE_ADD_WATCH

    def serialize(self):
        return bytes(write_text(self.path) + int_struct.pack(self.mode))

    def deserialize(self, buffer, offset):
        return int_struct.unpack_from(buffer, offset)[0]


class RawWatches(namedtuple("RawWatches", "type path watcher_type")):
    """checkWatches (17) or removeWatches (18) of a watcher type; answers nothing."""

    def serialize(self):
        return bytes(write_text(self.path) + int_struct.pack(self.watcher_type))

    def deserialize(self, buffer, offset):
        return None


class RawSetWatches(namedtuple("RawSetWatches",
                               "type relative data exist child persistent recursive")):
    """setWatches (101) or setWatches2 (105, with the persistent lists); answers nothing but
    fires at once the events the session missed since ``relative``."""

    def serialize(self):
        b = bytearray(long_struct.pack(self.relative))
        b.extend(_write_strings(self.data))
        b.extend(_write_strings(self.exist))
        b.extend(_write_strings(self.child))
        if self.type == OPCODE_SET_WATCHES2:
            b.extend(_write_strings(self.persistent))
            b.extend(_write_strings(self.recursive))
        return bytes(b)

    def deserialize(self, buffer, offset):
        return None


class RawMultiRead(namedtuple("RawMultiRead", "reads")):
    """multiRead (22) of ("get" | "children", path, watch); answers per read ("data", data,
    stat), ("children", names sorted: ZooKeeper answers hash-set order) or ("error", code)."""

    type = OPCODE_MULTI_READ

    def serialize(self):
        b = bytearray()
        for kind, path, watch in self.reads:
            opcode = OPCODE_GET_DATA if kind == "get" else OPCODE_GET_CHILDREN
            b.extend(MultiHeader(opcode, False, -1).serialize())
            b.extend(write_text(path) + (b"\x01" if watch else b"\x00"))
        b.extend(MultiHeader(-1, True, -1).serialize())
        return bytes(b)

    def deserialize(self, buffer, offset):
        from kazoo.protocol.serialization import read_buffer
        results = []
        while True:
            header, offset = MultiHeader.deserialize(buffer, offset)
            if header.done:
                return results
            if header.type == OPCODE_GET_DATA:
                data, offset = read_buffer(buffer, offset)
                stat, offset = _read_stat(buffer, offset)
                results.append(("data", data, stat))
            elif header.type == OPCODE_GET_CHILDREN:
                names, offset = _read_strings(buffer, offset)
                results.append(("children", sorted(names)))
            elif header.type == OPCODE_ERROR:
                results.append(("error", int_struct.unpack_from(buffer, offset)[0]))
                offset += int_struct.size
            else:
                results.append(("undecodable", header.type))
                return results
