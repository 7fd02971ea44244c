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
