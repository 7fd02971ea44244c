"""Guards against wire-level divergence from ZooKeeper 3.8 that a real client (kazoo) would hit: Stat fields, create modes, watch event order, session expiry, multi results, digest ACLs, recipes."""

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
)
from kazoo.protocol.states import EventType
from kazoo.security import make_digest_acl

from conftest import CLIENT_SERVERS, SERVERS
from kazoo_requests import create_container, create_ttl


@pytest.fixture(params=CLIENT_SERVERS)
def address(request):
    """Both single servers, and a 3-member ensemble of ours: kazoo must not tell them apart."""
    return request.getfixturevalue(request.param)


WAIT_S = 10.0


def now_ms():
    return int(time.time() * 1000)


def wait_for(predicate, what, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


# ---------------------------------------------------------------------------------------------
# CRUD and Stat


def test_create_get_set_delete_with_exact_stat(client, root):
    before = now_ms()
    path, stat = client.create(f"{root}/a", b"hello", include_data=True)
    after = now_ms()
    assert path == f"{root}/a"
    assert stat.czxid == stat.mzxid == stat.pzxid
    assert stat.ctime == stat.mtime
    assert before - 1000 <= stat.ctime <= after + 1000
    assert (stat.version, stat.cversion, stat.aversion) == (0, 0, 0)
    assert stat.ephemeralOwner == 0
    assert (stat.dataLength, stat.numChildren) == (5, 0)

    data, got = client.get(f"{root}/a")
    assert data == b"hello"
    assert got == stat
    assert client.exists(f"{root}/a") == stat

    parent = client.exists(root)
    assert (parent.cversion, parent.numChildren) == (1, 1)
    assert parent.pzxid == stat.czxid
    assert parent.mzxid < stat.czxid

    changed = client.set(f"{root}/a", b"bye!!!!", version=0)
    assert changed.czxid == stat.czxid
    assert changed.mzxid > stat.mzxid
    assert changed.pzxid == stat.pzxid  # pzxid moves with children, not data
    assert changed.ctime == stat.ctime
    assert changed.mtime >= stat.mtime
    assert (changed.version, changed.cversion, changed.dataLength) == (1, 0, 7)
    assert client.get(f"{root}/a") == (b"bye!!!!", changed)

    with pytest.raises(BadVersionError):
        client.set(f"{root}/a", b"x", version=0)
    with pytest.raises(BadVersionError):
        client.delete(f"{root}/a", version=5)
    with pytest.raises(NodeExistsError):
        client.create(f"{root}/a")
    with pytest.raises(NoNodeError):
        client.create(f"{root}/missing/child")
    with pytest.raises(NoNodeError):
        client.get(f"{root}/missing")
    assert client.exists(f"{root}/missing") is None
    with pytest.raises(NoNodeError):
        client.set(f"{root}/missing", b"")
    with pytest.raises(NotEmptyError):
        client.delete(root)
    # Failed writes leave the node untouched.
    assert client.get(f"{root}/a") == (b"bye!!!!", changed)

    # A versioned set with -1 matches any version.
    again = client.set(f"{root}/a", b"", version=-1)
    assert (again.version, again.dataLength) == (2, 0)

    client.delete(f"{root}/a", version=2)
    with pytest.raises(NoNodeError):
        client.get(f"{root}/a")
    parent_after = client.exists(root)
    assert (parent_after.cversion, parent_after.numChildren) == (2, 0)
    assert parent_after.pzxid > parent.pzxid
    assert parent_after.mzxid == parent.mzxid  # children do not change the parent's data
    with pytest.raises(NoNodeError):
        client.delete(f"{root}/a")


def test_empty_and_none_data_and_large_data(client, root):
    client.create(f"{root}/empty")
    assert client.get(f"{root}/empty")[0] == b""
    blob = bytes(range(256)) * 4000  # 1,024,000 bytes, under jute.maxbuffer
    stat = client.set(f"{root}/empty", blob)
    assert stat.dataLength == len(blob)
    assert client.get(f"{root}/empty")[0] == blob


def test_get_children_lists_names_and_stat(client, root):
    for name in ["b", "a", "c"]:
        client.create(f"{root}/{name}", name.encode())
    assert sorted(client.get_children(root)) == ["a", "b", "c"]
    children, stat = client.get_children(root, include_data=True)
    assert sorted(children) == ["a", "b", "c"]
    assert (stat.numChildren, stat.cversion) == (3, 3)
    assert client.get_children(f"{root}/a") == []
    with pytest.raises(NoNodeError):
        client.get_children(f"{root}/zzz")


def test_zxids_grow_with_each_write(client, root):
    zxids = []
    for index in range(5):
        _, stat = client.create(f"{root}/n{index}", include_data=True)
        zxids.append(stat.czxid)
    assert zxids == sorted(set(zxids))


# ---------------------------------------------------------------------------------------------
# Create modes


def test_ephemeral_owner_and_no_children(client, new_client, root):
    _, stat = client.create(f"{root}/eph", b"e", ephemeral=True, include_data=True)
    assert stat.ephemeralOwner == client.client_id[0]
    assert stat.ephemeralOwner != 0
    with pytest.raises(NoChildrenForEphemeralsError):
        client.create(f"{root}/eph/child")
    observer = new_client()
    assert observer.exists(f"{root}/eph").ephemeralOwner == client.client_id[0]
    # A clean close of the session removes its ephemerals at once.
    client.stop()
    # Another session reads another's changes in order only after a sync (on an ensemble it
    # may sit on a member that has not applied them yet); so below, too.
    observer.sync(f"{root}/eph")
    assert observer.exists(f"{root}/eph") is None


def test_sequential_names_follow_parent_cversion(client, root):
    client.create(f"{root}/plain")
    first = client.create(f"{root}/n-", sequence=True)
    # The suffix counts the children ever created under the parent: one was, before it.
    assert first == f"{root}/n-0000000001"
    second = client.create(f"{root}/n-", sequence=True)
    assert second == f"{root}/n-0000000002"
    client.delete(second)
    # The client-visible cversion counts deletes too (2 x creates - children = 2 x 3 - 2)...
    assert client.exists(root).cversion == 4
    # ...but the suffix counts creates only, so a delete does not make the next one skip.
    third = client.create(f"{root}/n-", sequence=True)
    assert third == f"{root}/n-0000000003"
    # A different prefix shares the same counter.
    assert client.create(f"{root}/other", sequence=True) == f"{root}/other0000000004"
    eph = client.create(f"{root}/e-", ephemeral=True, sequence=True)
    assert eph == f"{root}/e-0000000005"
    assert client.exists(eph).ephemeralOwner == client.client_id[0]
    # A sequential child under a fresh parent starts at zero.
    client.create(f"{root}/p")
    assert client.create(f"{root}/p/", sequence=True) == f"{root}/p/0000000000"


def test_container_create_and_stat(client, root):
    path, stat = create_container(client, f"{root}/box", b"c")
    assert path == f"{root}/box"
    assert stat.ephemeralOwner == 0  # stored as a marker, shown to clients as 0
    assert (stat.version, stat.dataLength, stat.numChildren) == (0, 1, 0)
    client.create(f"{root}/box/item", b"i")
    assert client.get_children(f"{root}/box") == ["item"]
    with pytest.raises(NodeExistsError):
        create_container(client, f"{root}/box")
    with pytest.raises(NoNodeError):
        create_container(client, f"{root}/nope/box")


def test_ttl_create_and_stat(client, root):
    path, stat = create_ttl(client, f"{root}/ttl", 60_000, b"t")
    assert path == f"{root}/ttl"
    assert stat.ephemeralOwner == 0
    assert (stat.version, stat.dataLength) == (0, 1)
    assert client.get(f"{root}/ttl")[0] == b"t"
    seq_path, _ = create_ttl(client, f"{root}/ttlseq-", 60_000, sequential=True)
    assert seq_path == f"{root}/ttlseq-0000000001"
    # TTL must be positive.
    with pytest.raises(BadArgumentsError):
        create_ttl(client, f"{root}/bad", 0)
    with pytest.raises(BadArgumentsError):
        create_ttl(client, f"{root}/bad", -5)
    assert client.exists(f"{root}/bad") is None


# ---------------------------------------------------------------------------------------------
# Watches


def test_one_shot_watches_fire_once_with_exact_events(client, new_client, root):
    writer = new_client()
    node = f"{root}/w"
    events = []
    lock = threading.Condition()

    def record(event):
        with lock:
            events.append((event.type, event.path))
            lock.notify_all()

    def wait_count(count):
        with lock:
            assert lock.wait_for(lambda: len(events) >= count, timeout=WAIT_S), events

    assert client.exists(node, watch=record) is None
    writer.create(node, b"1")
    wait_count(1)
    client.get(node, watch=record)
    client.get_children(root, watch=record)
    writer.set(node, b"2")
    wait_count(2)
    writer.set(node, b"3")  # the data watch was used up: no event
    writer.create(f"{node}-sibling")
    wait_count(3)
    client.get(node, watch=record)
    client.get_children(node, watch=record)
    writer.delete(node)
    wait_count(5)
    time.sleep(0.3)  # nothing else may arrive
    assert events[:3] == [
        (EventType.CREATED, node),
        (EventType.CHANGED, node),
        (EventType.CHILD, root),
    ]
    # Deleting a node fires both its data and its child watch with DELETED.
    assert events[3:] == [(EventType.DELETED, node), (EventType.DELETED, node)]


def test_data_watch_sequence(client, new_client, root):
    writer = new_client()
    node = f"{root}/dw"
    writer.create(node, b"a")
    seen = []
    cond = threading.Condition()
    client.sync(node)  # the writer's create, in this session's view

    @client.DataWatch(node)
    def watcher(data, stat, event):
        with cond:
            seen.append((data, stat.version if stat else None,
                         event.type if event else None))
            cond.notify_all()

    def wait_count(count):
        with cond:
            assert cond.wait_for(lambda: len(seen) >= count, timeout=WAIT_S), seen

    wait_count(1)
    writer.set(node, b"b")
    wait_count(2)
    writer.delete(node)
    wait_count(3)
    writer.create(node, b"c")
    wait_count(4)
    time.sleep(0.3)
    assert seen == [
        (b"a", 0, None),
        (b"b", 1, EventType.CHANGED),
        (None, None, EventType.DELETED),
        (b"c", 0, EventType.CREATED),
    ]


def test_children_watch_sequence(client, new_client, root):
    writer = new_client()
    seen = []
    cond = threading.Condition()

    @client.ChildrenWatch(root)
    def watcher(children):
        with cond:
            seen.append(sorted(children))
            cond.notify_all()

    def wait_count(count):
        with cond:
            assert cond.wait_for(lambda: len(seen) >= count, timeout=WAIT_S), seen

    wait_count(1)
    writer.create(f"{root}/a")
    wait_count(2)
    writer.create(f"{root}/b")
    wait_count(3)
    writer.set(f"{root}/a", b"data changes are not child changes")
    writer.delete(f"{root}/a")
    wait_count(4)
    time.sleep(0.3)
    assert seen == [[], ["a"], ["a", "b"], ["b"]]


# ---------------------------------------------------------------------------------------------
# Sessions

HOLDER = textwrap.dedent("""
    import sys, time
    from kazoo.client import KazooClient
    client = KazooClient(hosts=sys.argv[1], timeout=4.0)
    client.start(timeout=10)
    client.create(sys.argv[2], b"held", ephemeral=True)
    print(client.client_id[0], flush=True)
    time.sleep(120)
""")


def test_ephemeral_vanishes_when_session_expires(client, address, root):
    """A client that dies without closing loses its ephemerals after its timeout, not before."""
    node = f"{root}/held"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, address, node],
                              stdout=subprocess.PIPE, text=True)
    try:
        session_id = int(holder.stdout.readline())
        client.sync(node)  # the holder's create, in this session's view
        assert client.exists(node).ephemeralOwner == session_id
        deleted = threading.Event()

        def on_event(event):
            if event.type == EventType.DELETED:
                deleted.set()

        assert client.exists(node, watch=on_event) is not None
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=WAIT_S)
        killed_at = time.monotonic()
        # The dropped connection alone must not end the session: a client may reconnect.
        time.sleep(1.0)
        assert client.exists(node) is not None, "session ended on disconnect, before its timeout"
        assert deleted.wait(timeout=25.0), "ephemeral not removed after session timeout"
        assert time.monotonic() - killed_at >= 2.0
        assert client.exists(node) is None
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=WAIT_S)


# Single servers only: on an ensemble the victim's own reconnect moves the session back to
# its member, and the thief's close is then refused SessionMoved, as in a ZooKeeper ensemble
# (tested there by core/tests/ensemble.rs a_connection_left_behind_by_its_session_cannot_write).
@pytest.mark.parametrize("address", SERVERS, indirect=True)
def test_session_takeover_by_id_and_password_then_close(client, address, new_client, root):
    """kazoo's expiry trick: a second connection with the same (id, password) takes the session
    over; closing it ends the session and the first client finds it expired."""
    victim = new_client()
    states = []
    victim.add_listener(states.append)
    node = f"{root}/victim"
    victim.create(node, ephemeral=True)
    session_id, password = victim.client_id

    thief = KazooClient(hosts=address, client_id=(session_id, password), timeout=10.0)
    thief.start(timeout=WAIT_S)
    try:
        assert thief.client_id[0] == session_id
        # The thief sees the victim's ephemeral as its own.
        assert thief.exists(node).ephemeralOwner == session_id
    finally:
        thief.stop()
        thief.close()
    assert client.exists(node) is None
    wait_for(lambda: KazooState.LOST in states, "victim to see its session LOST")
    # kazoo answers SessionExpired until it has opened a new session, which it starts at once
    # (sooner on an ensemble, where the victim's member learns of the close by replication).
    try:
        victim.get("/")
    except SessionExpiredError:
        pass
    wait_for(lambda: victim.connected and victim.client_id[0] != session_id,
             "victim to open a new session")


def test_wrong_password_cannot_take_over_session(client, address, root):
    node = f"{root}/kept"
    client.create(node, ephemeral=True)
    session_id, password = client.client_id
    bad = bytes(b ^ 0xFF for b in password)
    intruder = KazooClient(hosts=address, client_id=(session_id, bad), timeout=10.0)
    try:
        # The server answers a wrong password as an expired session; kazoo then starts afresh.
        intruder.start(timeout=WAIT_S)
        assert intruder.client_id[0] != session_id
    finally:
        intruder.stop()
        intruder.close()
    # The real owner is unaffected.
    assert client.exists(node).ephemeralOwner == session_id
    assert client.get_children(root) == ["kept"]


# ---------------------------------------------------------------------------------------------
# Transactions (multi)


def test_transaction_commit_results(client, root):
    client.create(f"{root}/existing", b"old")
    txn = client.transaction()
    txn.create(f"{root}/new", b"n")
    txn.set_data(f"{root}/existing", b"new", version=0)
    txn.check(f"{root}/existing", 1)
    txn.delete(f"{root}/new")
    txn.create(f"{root}/seq-", sequence=True)
    results = txn.commit()
    assert results[0] == f"{root}/new"
    assert results[1].version == 1 and results[1].dataLength == 3
    assert results[2:4] == [True, True]
    assert results[4] == f"{root}/seq-0000000002"
    # All ops of one multi share one zxid.
    assert client.exists(f"{root}/existing").mzxid == results[1].mzxid
    assert client.exists(f"{root}/seq-0000000002").czxid == results[1].mzxid


def test_failing_transaction_rolls_back_and_reports_each_op(client, root):
    client.create(f"{root}/existing", b"old")
    before = client.get(f"{root}/existing")
    txn = client.transaction()
    txn.create(f"{root}/would-be", b"x")
    txn.set_data(f"{root}/existing", b"changed")
    txn.create(f"{root}/existing")  # fails: NodeExists
    txn.delete(f"{root}/existing")
    results = txn.commit()
    assert [type(result) for result in results] == [
        RolledBackError, RolledBackError, NodeExistsError, RuntimeInconsistency]
    assert client.exists(f"{root}/would-be") is None
    assert client.get(f"{root}/existing") == before

    txn = client.transaction()
    txn.check(f"{root}/existing", 7)
    txn.create(f"{root}/x")
    results = txn.commit()
    assert [type(result) for result in results] == [BadVersionError, RuntimeInconsistency]
    assert client.exists(f"{root}/x") is None


# ---------------------------------------------------------------------------------------------
# Digest ACLs


def test_digest_acl_enforced_and_masked(client, new_client, root):
    node = f"{root}/secret"
    owner_acl = make_digest_acl("alice", "pw", all=True)
    reader_acl = make_digest_acl("bob", "pw2", read=True)
    client.add_auth("digest", "alice:pw")
    client.create(node, b"s", acl=[owner_acl, reader_acl])
    assert client.get(node)[0] == b"s"

    stranger = new_client()
    with pytest.raises(NoAuthError):
        stranger.get(node)
    with pytest.raises(NoAuthError):
        stranger.set(node, b"x")
    with pytest.raises(NoAuthError):
        stranger.get_children(node)
    with pytest.raises(NoAuthError):
        stranger.create(f"{node}/child")
    with pytest.raises(NoAuthError):
        stranger.get_acls(node)
    stranger.add_auth("digest", "bob:pw2")
    assert stranger.get(node)[0] == b"s"
    with pytest.raises(NoAuthError):
        stranger.set(node, b"x")
    # bob has READ but not ADMIN: digests come back masked.
    acls, stat = stranger.get_acls(node)
    assert sorted((acl.perms, acl.id.scheme, acl.id.id) for acl in acls) == [
        (1, "digest", "bob:x"), (31, "digest", "alice:x")]
    assert stat.aversion == 0

    # alice has ADMIN: she sees the digests as stored.
    acls, _ = client.get_acls(node)
    assert sorted((acl.perms, acl.id.id) for acl in acls) == [
        (1, reader_acl.id.id), (31, owner_acl.id.id)]

    # Wrong password: the auth is accepted but grants nothing.
    third = new_client()
    third.add_auth("digest", "alice:wrong")
    with pytest.raises(NoAuthError):
        third.get(node)

    # Deleting needs DELETE on the parent, which is open.
    stat = client.set_acls(node, [owner_acl])
    assert stat.aversion == 1
    stranger.sync(node)
    with pytest.raises(NoAuthError):
        stranger.get(node)
    stranger.delete(node)
    client.sync(node)
    assert client.exists(node) is None


def test_exists_on_a_node_the_client_cannot_read(request, client, new_client, root):
    """exists on an existing znode needs READ in ZooKeeper 3.9 (FinalRequestProcessor checks it),
    which our server follows; Debian's 3.8.0 checks no ACL there and answers the Stat."""
    node = f"{root}/secret"
    client.add_auth("digest", "alice:pw")
    client.create(node, b"s", acl=[make_digest_acl("alice", "pw", all=True)])
    stranger = new_client()
    with pytest.raises(NoAuthError):
        stranger.get(node)
    if request.node.callspec.params["address"] != "reference_server":
        with pytest.raises(NoAuthError):
            stranger.exists(node)
        with pytest.raises(NoAuthError):
            stranger.exists(node, watch=lambda event: None)
    else:
        stat = stranger.exists(node)
        assert stat is not None and stat.dataLength == 1
        # The exists watch is left, but its event is filtered by READ (CVE-2024-23944, which
        # Debian's 3.8.0 carries): a session that cannot read the node does not hear of it.
        fired = threading.Event()
        stranger.exists(node, watch=lambda event: fired.set())
        client.delete(node)
        assert not fired.wait(0.5)
    assert client.exists(f"{root}/missing") is None
    # On a missing znode exists needs no permission on either server.
    if client.exists(node):
        client.delete(node)
    stranger.sync(node)
    assert stranger.exists(node) is None
