"""Runs one generated sequence against one server and records every reply and watch event.

Recording is raw (kazoo objects, server session ids, zxids, times); ``normalise`` then maps what
legitimately differs between two correct servers onto what must be equal, and ``compare``
finds the first difference. Nothing is dropped: every Stat field, every result, every error
type and every watch event takes part.

Watch events are recorded from the wire, before kazoo's client-side watcher tables, so a
duplicate or spurious event is seen even when kazoo would swallow it. Each event is tagged with
how many requests its session had completed when it arrived. That tag is deterministic: an
event caused by step k reaches its session after that session's last reply before step k
(ZooKeeper answers requests in order) and before its first reply after step k (a session sees
a watch event before any later reply: the ordering guarantee of ZooKeeper watches).
"""

import time

from kazoo.client import KazooClient
from kazoo.exceptions import EXCEPTIONS, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.serialization import Watch
from kazoo.security import OPEN_ACL_UNSAFE

from . import generator, wire
# Server and its settings live in servers.py; they are re-exported for the test files.
from .servers import (CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_S, SESSION_TIMEOUT_S,  # noqa: F401
                      SUPER_DIGEST_PROPERTY, Server)

# Spacing between one write's reply and the next write of the same sequence on the same
# server, so distinct writes get distinct millisecond times on both servers and ctime/mtime
# ranks mean something. 2.2 ms of monotonic time always crosses a millisecond boundary.
WRITE_SPACING_S = 0.0022

WRITE_KINDS = {"create", "set", "delete", "multi", "set_acls", "close", "delete_container",
               "check", "reconfig"}
RESOLVED_WRITE_ACTIONS = {"set", "delete"}

_MODE_FLAGS = {
    "persistent": wire.FLAG_PERSISTENT,
    "ephemeral": wire.FLAG_EPHEMERAL,
    "persistent_sequential": wire.FLAG_SEQUENTIAL,
    "ephemeral_sequential": wire.FLAG_EPHEMERAL | wire.FLAG_SEQUENTIAL,
    "container": wire.FLAG_CONTAINER,
    "ttl": wire.FLAG_PERSISTENT_WITH_TTL,
    "ttl_sequential": wire.FLAG_PERSISTENT_SEQUENTIAL_WITH_TTL,
}


class _Session:
    def __init__(self, index, client, session_id):
        self.index = index
        self.client = client
        self.session_id = session_id
        self.requests = 0
        self.request_steps = []  # step index of each completed request, in order
        self.request_kinds = []  # "op", "close" or "before-close" (a barrier), in order
        self.events = []  # (requests completed at arrival, type, state, path) or state changes


class Trace:
    """What one server answered to one sequence, raw."""

    def __init__(self):
        self.steps = []  # (label, result)
        self.sessions = []  # _Session, by index
        self.session_ids = {}  # server session id -> session index
        self.aborted = None  # why the run stopped early, if it did


def _ok(value):
    return ("ok", value)


def _error(exception):
    return ("error", type(exception).__name__)


def _acl_as_compared(acls):
    """The ACL as tuples, each run of adjacent digest entries with equal perms sorted.

    An "auth" entry expands into one entry per identity the creating session holds. ZooKeeper
    takes those from the connection's auth-info *set* (ServerCnxn.authInfo is a Set, so hash
    order); ours keeps add_auth order. Both are orders of the same set, so such a run (which is
    adjacent, with equal perms) is compared sorted. All other ACL order is compared as is.
    """
    entries = [(acl.perms, acl.id.scheme, acl.id.id) for acl in acls]
    result = []
    run = []
    for entry in entries:
        if run and (entry[1] != "digest" or entry[0] != run[0][0]):
            result.extend(sorted(run))
            run = []
        if entry[1] == "digest":
            run.append(entry)
        else:
            result.append(entry)
    result.extend(sorted(run))
    return result


def _noop_watch(event):
    """Watch callbacks do nothing: events are recorded from the wire (see the module doc)."""


class SequenceRun:
    """Executes one sequence's operations on one server, in order, from one thread."""

    def __init__(self, server, root, operations):
        self.server = server
        self.root = root
        self.operations = operations
        self.trace = Trace()
        self.slots = {}  # slot -> _Session (current session of that slot)
        self.last_write_done = 0.0
        self.step = 0
        # Container znodes of this run, from the server's own answers (a reaper never runs).
        self.containers = set()

    # -- sessions -----------------------------------------------------------------------------

    def _open(self, slot):
        client = KazooClient(hosts=self.server.address, timeout=SESSION_TIMEOUT_S)
        index = len(self.trace.sessions)
        session = _Session(index, client, None)
        connection = client._connection
        original = connection._read_watch_event

        def record_watch_event(buffer, offset):
            watch, _ = Watch.deserialize(buffer, offset)
            session.events.append((session.requests, watch.type, watch.state, watch.path))
            return original(buffer, offset)

        connection._read_watch_event = record_watch_event
        client.start(timeout=CONNECT_TIMEOUT_S)

        def record_state(state):
            session.events.append((session.requests, "state", str(state), None))

        client.add_listener(record_state)
        session.session_id = client.client_id[0]
        self.trace.sessions.append(session)
        self.trace.session_ids[session.session_id] = index
        self.slots[slot] = session
        return session

    def _close_all(self):
        for session in self.slots.values():
            try:
                session.client.stop()
                session.client.close()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        self.slots = {}

    def _count(self, session, kind="op"):
        session.requests += 1
        session.request_steps.append(self.step)
        session.request_kinds.append(kind)

    def _barrier(self, kind):
        """One counted request on every open session, in slot order.

        Its reply comes after every watch event the server sent that session before it, so
        events caused by a session close fall between the barriers around that close.
        """
        for slot in sorted(self.slots):
            session = self.slots[slot]
            try:
                session.client.exists_async(self.root).get(timeout=REQUEST_TIMEOUT_S)
            except KazooTimeoutError:
                raise
            except Exception:  # noqa: BLE001 - a barrier's reply is not compared
                pass
            self._count(session, kind)

    def _call(self, session, async_result):
        """Waits for one request's reply; counts it as the session's next request."""
        try:
            return _ok(async_result.get(timeout=REQUEST_TIMEOUT_S))
        except KazooTimeoutError:
            raise
        except Exception as exception:  # noqa: BLE001 - every error type is a result
            return _error(exception)
        finally:
            self._count(session)

    def _raw(self, session, request):
        async_result = session.client.handler.async_result()
        session.client._call(request, async_result)
        return self._call(session, async_result)

    # -- operations ---------------------------------------------------------------------------

    def _pace(self, is_write):
        if not is_write:
            return
        wait = self.last_write_done + WRITE_SPACING_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def run(self):
        trace = self.trace
        try:
            try:
                self.server.admin.create_async(self.root, b"root", OPEN_ACL_UNSAFE).get(
                    timeout=REQUEST_TIMEOUT_S)
            except Exception as exception:  # noqa: BLE001
                trace.aborted = f"cannot create the sequence root: {exception!r}"
                return trace
            self.last_write_done = time.monotonic()
            for self.step, operation in enumerate(self.operations):
                is_write = operation["kind"] in WRITE_KINDS or (
                    operation["kind"] == "resolved"
                    and operation["action"] in RESOLVED_WRITE_ACTIONS)
                self._pace(is_write)
                try:
                    result = self._execute(operation)
                except KazooTimeoutError:
                    trace.steps.append((operation["kind"], ("error", "Timeout")))
                    trace.aborted = f"step {self.step} timed out after {REQUEST_TIMEOUT_S} s"
                    return trace
                if is_write:
                    self.last_write_done = time.monotonic()
                self._track_containers(operation, result)
                trace.steps.append((operation["kind"], result))
            self.step = len(self.operations)
            trace.steps.append(("final-tree", self._dump_tree()))
        except Exception as exception:  # noqa: BLE001 - a harness failure is reported, not hidden
            trace.aborted = f"step {self.step} raised {exception!r}"
        finally:
            self._close_all()
            self._delete_tree()
        return trace

    def _execute(self, operation):
        kind = operation["kind"]
        slot = operation["slot"]
        if kind == "open":
            session = self._open(slot)
            return _ok(("session", session.index))
        session = self.slots[slot]
        client = session.client
        if kind == "close":
            # See normalise: the events one close causes are compared as a set.
            previous = self.operations[self.step - 1] if self.step > 0 else None
            if previous is None or previous["kind"] != "close":
                self._barrier("before-close")
            client.stop()
            client.close()
            self._count(session, "close")
            del self.slots[slot]
            following = (self.operations[self.step + 1]
                         if self.step + 1 < len(self.operations) else None)
            self._barrier("before-close" if following is not None
                          and following["kind"] == "close" else "after-close")
            return _ok("closed")
        if kind == "create":
            return self._create(session, operation)
        if kind == "set":
            return self._call(session, client.set_async(
                operation["path"], operation["data"], operation["version"]))
        if kind == "delete":
            return self._call(session, client.delete_async(operation["path"],
                                                           operation["version"]))
        if kind == "get":
            return self._get(session, operation["path"], operation["watch"])
        if kind == "exists":
            return self._call(session, client.exists_async(
                operation["path"], watch=_noop_watch if operation["watch"] else None))
        if kind == "children":
            return self._children(session, operation["path"], operation["watch"],
                                  operation["include_data"])
        if kind == "multi":
            return self._multi(session, operation["operations"])
        if kind == "get_acls":
            return self._get_acls(session, operation["path"])
        if kind == "set_acls":
            return self._raw(session, wire.RawSetAcl(
                operation["path"], generator.acl_to_wire(operation["acl"]),
                operation["version"]))
        if kind == "add_auth":
            user = operation["user"]
            return self._call(session, client.add_auth_async(
                "digest", f"{user}:{generator.PASSWORDS[user]}"))
        if kind == "sync":
            return self._call(session, client.sync_async(operation["path"]))
        if kind == "resolved":
            return self._resolved(session, operation)
        return self._rare(session, operation)

    def _get(self, session, path, watch):
        result = self._call(session, session.client.get_async(
            path, watch=_noop_watch if watch else None))
        if result[0] == "ok":
            data, stat = result[1]
            return _ok((data, stat))
        return result

    def _children(self, session, path, watch, include_data):
        result = self._call(session, session.client.get_children_async(
            path, watch=_noop_watch if watch else None, include_data=include_data))
        if result[0] != "ok":
            return result
        # ZooKeeper returns children in hash-set order, ours sorted: compare the sets.
        if include_data:
            children, stat = result[1]
            return _ok((sorted(children), stat))
        return _ok(sorted(result[1]))

    def _get_acls(self, session, path):
        result = self._call(session, session.client.get_acls_async(path))
        if result[0] != "ok":
            return result
        acls, stat = result[1]
        return _ok((_acl_as_compared(acls), stat))

    def _create(self, session, operation):
        mode = operation["mode"]
        flags = _MODE_FLAGS[mode]
        acls = generator.acl_to_wire(operation["acl"])
        path, data = operation["path"], operation["data"]
        if mode == "container":
            request = wire.RawCreate(wire.OPCODE_CREATE_CONTAINER,
                                     wire.create_record(path, data, acls, flags))
        elif mode.startswith("ttl"):
            request = wire.RawCreate(wire.OPCODE_CREATE_TTL, wire.create_ttl_record(
                path, data, acls, flags, operation["ttl"]))
        else:
            opcode = wire.OPCODE_CREATE2 if operation["include_data"] else wire.OPCODE_CREATE
            request = wire.RawCreate(opcode, wire.create_record(path, data, acls, flags))
        return self._raw(session, request)

    def _multi(self, session, operations):
        records = []
        for operation in operations:
            kind = operation["kind"]
            path = operation["path"]
            if kind == "create":
                mode = operation["mode"]
                flags = _MODE_FLAGS[mode]
                acls = generator.acl_to_wire(operation["acl"])
                if mode == "container":
                    records.append((wire.OPCODE_CREATE_CONTAINER, wire.create_record(
                        path, operation["data"], acls, flags)))
                elif mode.startswith("ttl"):
                    records.append((wire.OPCODE_CREATE_TTL, wire.create_ttl_record(
                        path, operation["data"], acls, flags, operation["ttl"])))
                else:
                    opcode = (wire.OPCODE_CREATE2 if operation["opcode"] == "create2"
                              else wire.OPCODE_CREATE)
                    records.append((opcode, wire.create_record(
                        path, operation["data"], acls, flags)))
            elif kind == "delete":
                records.append((wire.OPCODE_DELETE, bytes(
                    wire.write_text(path) + wire.int_struct.pack(operation["version"]))))
            elif kind == "set":
                records.append((wire.OPCODE_SET_DATA, bytes(
                    wire.write_text(path) + wire.write_buffer(operation["data"])
                    + wire.int_struct.pack(operation["version"]))))
            else:
                records.append((wire.OPCODE_CHECK, bytes(
                    wire.write_text(path) + wire.int_struct.pack(operation["version"]))))
        results = self._raw(session, wire.RawMulti(records))
        return _as_plain_creates(results, records)

    def _resolved(self, session, operation):
        parent = operation["parent"]
        try:
            names = sorted(self.server.admin.get_children_async(parent).get(
                timeout=REQUEST_TIMEOUT_S))
        except NoNodeError:
            return _ok(("resolved", None, "parent missing"))
        if not names:
            return _ok(("resolved", None, "no children"))
        name = names[operation["index"] % len(names)]
        path = f"{parent}/{name}"
        action = operation["action"]
        client = session.client
        if action == "get":
            result = self._get(session, path, operation["watch"])
        elif action == "set":
            result = self._call(session, client.set_async(path, operation["data"],
                                                          operation["version"]))
        elif action == "delete":
            result = self._call(session, client.delete_async(path, operation["version"]))
        elif action == "children":
            result = self._children(session, path, operation["watch"], False)
        else:
            result = self._get_acls(session, path)
        return _ok(("resolved", name, result))

    # -- opcodes kazoo does not send -------------------------------------------------------

    def _rare(self, session, operation):
        kind = operation["kind"]
        if kind == "check":
            if self.server.is_3_8:
                return self._check_as_3_9(session, operation["path"], operation["version"])
            return self._raw(session, wire.RawCheck(operation["path"], operation["version"]))
        if kind == "delete_container":
            if self.server.is_3_8:
                return self._delete_container_as_3_9(session, operation["path"])
            return self._raw(session, wire.RawDeleteContainer(operation["path"]))
        if kind == "reconfig":
            return self._raw(session, wire.RawReconfig(
                operation["joining"], operation["leaving"], operation["new_members"],
                operation["config_id"]))
        if kind == "sasl":
            return self._raw(session, wire.RawSasl(b""))
        if kind == "who_am_i":
            # ZooKeeper lists a connection's auth-info set (hash order), ours in the order
            # identities came: compare the sets.
            result = self._raw(session, wire.RawWhoAmI())
            return _ok(sorted(result[1])) if result[0] == "ok" else result
        if kind == "get_ephemerals":
            result = self._raw(session, wire.RawPathQuery(wire.OPCODE_GET_EPHEMERALS,
                                                          operation["prefix"]))
            # ZooKeeper answers a hash set's order, ours sorted: compare the sets.
            return _ok(sorted(result[1])) if result[0] == "ok" else result
        if kind == "all_children_number":
            return self._raw(session, wire.RawPathQuery(wire.OPCODE_GET_ALL_CHILDREN_NUMBER,
                                                        operation["path"]))
        if kind == "multi_read":
            return self._raw(session, wire.RawMultiRead(operation["reads"]))
        if kind == "add_watch":
            return self._raw(session, wire.RawAddWatch(operation["path"],
                                                       1 if operation["recursive"] else 0))
        if kind in ("check_watches", "remove_watches"):
            opcode = (wire.OPCODE_CHECK_WATCHES if kind == "check_watches"
                      else wire.OPCODE_REMOVE_WATCHES)
            return self._raw(session, wire.RawWatches(opcode, operation["path"],
                                                      operation["watcher_type"]))
        if kind == "set_watches":
            # Relative to the last zxid this session saw: each server's own numbering of the
            # same point in the sequence.
            return self._raw(session, wire.RawSetWatches(
                wire.OPCODE_SET_WATCHES, session.client.last_zxid, operation["data"],
                operation["exist"], operation["child"], [], []))
        if kind == "set_watches2":
            persistent, recursive = [], []
            (recursive if operation["recursive"] else persistent).append(operation["path"])
            return self._raw(session, wire.RawSetWatches(
                wire.OPCODE_SET_WATCHES2, session.client.last_zxid, [], [], [], persistent,
                recursive))
        raise ValueError(f"unknown operation kind {kind!r}")

    def _check_as_3_9(self, session, path, version):
        """3.9's standalone check on 3.8.0, which runs the check but cannot send its Stat (a
        NullPointerException on the reply, fixed in 3.9): the same check inside a multi, then,
        if it passed, the Stat it answers. Both are the reference server's own answers."""
        client = session.client
        try:
            async_result = client.handler.async_result()
            client._call(wire.RawMulti([(wire.OPCODE_CHECK, bytes(
                wire.write_text(path) + wire.int_struct.pack(version)))]), async_result)
            results = async_result.get(timeout=REQUEST_TIMEOUT_S)
            failed = [result[1] for result in results if result[0] == "error"]
            if failed:
                return ("error", EXCEPTIONS[failed[0]].__name__)
            return _ok(client.exists_async(path).get(timeout=REQUEST_TIMEOUT_S))
        except KazooTimeoutError:
            raise
        except Exception as exception:  # noqa: BLE001 - every error type is a result
            return _error(exception)
        finally:
            self._count(session)

    def _delete_container_as_3_9(self, session, path):
        """3.9's answer to a client's deleteContainer, worked out on 3.8.0 (which cannot decode
        the request and answers BadArguments for any znode): an empty container is deleted
        (with no ACL check, as 3.9 does: the super user deletes it), one with children is
        NotEmpty, a missing znode NoNode; any other znode keeps 3.8.0's BadArguments, which is
        ours too. The deletion is the reference's own, so its events and Stats follow from it.
        The session always makes one round trip, as it would with the real request: its last
        zxid (which setWatches sends) and the events it has heard then match the other server's."""
        superuser = self.server.superuser
        if path not in self.containers:
            if self._exists(path):
                return self._raw(session, wire.RawDeleteContainer(path))
            result = ("error", "NoNodeError")
        else:
            try:
                if superuser.get_children_async(path).get(timeout=REQUEST_TIMEOUT_S):
                    result = ("error", "NotEmptyError")
                else:
                    superuser.delete_async(path).get(timeout=REQUEST_TIMEOUT_S)
                    result = _ok(None)
            except KazooTimeoutError:
                raise
            except Exception as exception:  # noqa: BLE001
                result = _error(exception)
        # The session hears the deletion's events before the answer it would get.
        session.client.exists_async(self.root).get(timeout=REQUEST_TIMEOUT_S)
        self._count(session)
        return result

    def _exists(self, path):
        return self.server.admin.exists_async(path).get(timeout=REQUEST_TIMEOUT_S) is not None

    def _track_containers(self, operation, result):
        """Keeps `containers` as the server's answers say: containers created, znodes deleted."""
        kind = operation["kind"]
        if result[0] != "ok":
            return
        if kind == "create" and operation["mode"] == "container":
            self.containers.add(operation["path"])
        elif kind in ("delete", "delete_container"):
            self.containers.discard(operation["path"])
        elif kind == "resolved" and operation["action"] == "delete":
            name, inner = result[1][1], result[1][2]
            if name is not None and inner[0] == "ok":
                self.containers.discard(f"{operation['parent']}/{name}")
        elif kind == "multi" and isinstance(result[1], list) and not any(
                isinstance(item, tuple) and item[0] == "error" for item in result[1]):
            for inner in operation["operations"]:
                if inner["kind"] == "create" and inner["mode"] == "container":
                    self.containers.add(inner["path"])
                elif inner["kind"] == "delete":
                    self.containers.discard(inner["path"])

    # -- the harness session's work --------------------------------------------------------

    def _dump_tree(self):
        """Every znode under the root with data, Stat, ACL and children, as the harness sees it."""
        admin = self.server.admin
        nodes = []

        def visit(path):
            try:
                data, stat = admin.get_async(path).get(timeout=REQUEST_TIMEOUT_S)
                acls, _ = admin.get_acls_async(path).get(timeout=REQUEST_TIMEOUT_S)
                children = sorted(admin.get_children_async(path).get(timeout=REQUEST_TIMEOUT_S))
            except NoNodeError:
                nodes.append((path, "NoNode"))
                return
            nodes.append((path, data, stat, _acl_as_compared(acls), children))
            for child in children:
                visit(f"{path}/{child}")

        visit(self.root)
        return _ok(nodes)

    def _delete_tree(self):
        """Deletes the sequence's root: opens each ACL (the harness holds every identity, and
        every generated ACL gives one of them ADMIN), then deletes bottom-up."""
        admin = self.server.admin

        def remove(path):
            try:
                admin.set_acls_async(path, OPEN_ACL_UNSAFE).get(timeout=REQUEST_TIMEOUT_S)
                for child in admin.get_children_async(path).get(timeout=REQUEST_TIMEOUT_S):
                    remove(f"{path}/{child}")
                admin.delete_async(path).get(timeout=REQUEST_TIMEOUT_S)
            except NoNodeError:
                pass

        try:
            remove(self.root)
        except Exception:  # noqa: BLE001 - a leftover root costs nothing; servers are per run
            pass


# -- normalisation --------------------------------------------------------------------------


def _as_plain_creates(results, records):
    """Reports a create2 inside a multi as a plain create (its path only).

    A documented 3.8.0-vs-3.9 difference, normalised rather than ignored: ZooKeeper 3.8.0 decodes
    a create2 inside a multi as a plain create and answers its path only (ZOOKEEPER-4026); 3.9,
    and ours, answer create2's path and Stat. The path is still compared.
    """
    status, value = results
    if status != "ok" or not isinstance(value, list):
        return results
    normalised = []
    for index, result in enumerate(value):
        opcode = records[index][0] if index < len(records) else None
        if (opcode == wire.OPCODE_CREATE2 and isinstance(result, tuple)
                and result[0] == f"create{wire.OPCODE_CREATE2}"):
            result = ("create", result[1][0])
        normalised.append(result)
    return (status, normalised)
