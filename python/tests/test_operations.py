"""Guards against an operation that answers differently here than on Apache ZooKeeper: every
method of ZooKeeper, with exact Stats, results and error classes, on every backend."""

import pytest

from zookeeper import (ACL, BadArgumentsError, BadVersionError, ClientInfo, CreateMode, Data,
                       DataWatch, Id, InvalidACLError, NoAuthError, NodeExistsError, NoNodeError,
                       NullData,
                       NotEmptyError, NoWatcherError, RolledBackError, RuntimeInconsistency,
                       Stat, ZooDefs, ZooKeeper, make_digest_acl, NoChildrenForEphemeralsError)


def test_create_and_get_return_exact_stats(zk):
    assert zk.create("/node", b"hello") == "/node"
    data = zk.get("/node")
    assert isinstance(data, Data) and isinstance(data, bytes)
    assert data == b"hello"
    stat = data.stat
    assert isinstance(stat, Stat)
    assert (stat.version, stat.cversion, stat.aversion, stat.ephemeralOwner, stat.dataLength,
            stat.numChildren) == (0, 0, 0, 0, 5, 0)
    assert stat.czxid == stat.mzxid == stat.pzxid
    assert stat.ctime == stat.mtime
    assert stat.data_length == stat.dataLength == 5
    assert stat.owner_session_id is None
    assert zk.get_data("/node") == b"hello"


def test_null_data_reads_back_as_none_like_and_empty_as_empty(zk):
    """Null data (kazoo's ``create(path, None)``) is not empty data: it reads as ``NullData``,
    which equals None (kazoo's value), is falsy and still carries .stat."""
    zk.create("/null", None)
    zk.create("/empty", b"")
    null, empty = zk.get("/null"), zk.get("/empty")
    assert isinstance(null, NullData) and isinstance(null, Data)
    assert null == None and null != b"" and not null  # noqa: E711 (None-likeness is the point)
    assert null.value is None and null.is_null and null.stat.dataLength == 0
    assert bytes(null) == b"" and repr(null).startswith("NullData(stat=")
    assert type(empty) is Data and empty == b"" and empty != None  # noqa: E711
    assert empty.value == b"" and not empty.is_null and empty.stat.dataLength == 0
    assert zk.set("/empty", None, version=empty).version == 1
    assert zk.get("/empty") == None  # noqa: E711
    assert zk.set("/null", b"x", version=null).version == 1
    assert zk.get("/null") == b"x"
    with zk.transaction() as transaction:
        transaction.create("/t", None)
        transaction.set_data("/null", None)
    assert [zk.get("/t").value, zk.get("/null").value] == [None, None]
    assert [read.value for read in zk.multi_read([("get", "/t"), ("get", "/null")])] == [None, None]
    seen = []
    DataWatch(zk, "/t", lambda data, stat: seen.append((data, stat.version)))
    assert seen == [(None, 0)], "DataWatch passes None for null data, as kazoo's does"


def test_create_modes(zk):
    session_id = zk.client_id[0]
    assert zk.create("/e", b"", ZooKeeper.EPHEMERAL) == "/e"
    assert zk.exists("/e").ephemeralOwner == session_id
    assert zk.create("/s-", b"", CreateMode.PERSISTENT_SEQUENTIAL) == "/s-0000000001"
    assert zk.create("/s-", b"", ZooKeeper.EPHEMERAL_SEQUENTIAL) == "/s-0000000002"
    assert zk.create("/k", ephemeral=True, sequence=True) == "/k0000000003"
    assert zk.create("/c", b"", CreateMode.CONTAINER) == "/c"
    assert zk.create("/ttl", b"", CreateMode.PERSISTENT_WITH_TTL, ttl=60000) == "/ttl"
    assert zk.create("/ttl2", b"", ttl=60000) == "/ttl2"
    assert zk.exists("/ttl").ephemeralOwner == 0
    path, stat = zk.create("/d", b"xy", include_data=True)
    assert path == "/d" and stat.dataLength == 2 and stat.version == 0
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create("/e/child")


def test_create_errors_and_makepath(zk):
    zk.create("/a")
    with pytest.raises(NodeExistsError) as error:
        zk.create("/a")
    assert error.value.code == -110 and error.value.path == "/a"
    with pytest.raises(NoNodeError):
        zk.create("/x/y/z")
    assert zk.create("/x/y/z", b"deep", makepath=True) == "/x/y/z"
    assert zk.get("/x/y/z") == b"deep"
    assert zk.get("/x/y") == b""
    assert zk.ensure_path("/x/y/z") is True
    assert zk.ensure_path("/p/q/r") is True
    assert zk.exists("/p/q/r") is not None


def test_set_and_versions(zk):
    zk.create("/v", b"0")
    stat = zk.set("/v", b"1")
    assert stat.version == 1 and stat.dataLength == 1
    data = zk.get("/v")
    assert zk.set_data("/v", b"2", version=data).version == 2
    with pytest.raises(BadVersionError):
        zk.set("/v", b"3", version=data)
    with pytest.raises(BadVersionError):
        zk.set("/v", b"3", version=data.stat)
    assert zk.set("/v", b"3", version=2).version == 3
    with pytest.raises(NoNodeError):
        zk.set("/missing", b"")


def test_delete(zk):
    zk.create("/d", b"")
    with pytest.raises(BadVersionError):
        zk.delete("/d", version=5)
    assert zk.delete("/d", zk.get("/d")) is True
    assert zk.exists("/d") is None
    with pytest.raises(NoNodeError):
        zk.delete("/d")
    zk.create("/t/a/b", makepath=True)
    zk.create("/t/c")
    with pytest.raises(NotEmptyError):
        zk.delete("/t")
    assert zk.delete("/t", recursive=True) is True
    assert zk.exists("/t") is None
    assert zk.delete("/never", recursive=True) is True


def test_children(zk):
    zk.create("/p")
    for name in ["b", "a", "c"]:
        zk.create(f"/p/{name}")
    assert zk.get_children("/p") == ["a", "b", "c"]
    children, stat = zk.get_children("/p", include_data=True)
    assert children == ["a", "b", "c"] and stat.numChildren == 3 and stat.cversion == 3
    zk.delete("/p/a")
    assert zk.exists("/p").cversion == 4
    assert zk.get_all_children_number("/p") == 2
    with pytest.raises(NoNodeError):
        zk.get_children("/none")


def test_acls_and_auth(zk):
    acl = [make_digest_acl("user", "secret", all=True)]
    zk.create("/secured", b"s", acl=acl)
    with pytest.raises(NoAuthError):
        zk.get("/secured")
    zk.add_auth("digest", "user:secret")
    assert zk.get("/secured") == b"s"
    acls, stat = zk.get_acls("/secured")
    assert acls == acl and stat.aversion == 0
    assert zk.set_acls("/secured", ZooDefs.Ids.OPEN_ACL_UNSAFE).aversion == 1
    with pytest.raises(BadVersionError):
        zk.set_acls("/secured", ZooDefs.Ids.OPEN_ACL_UNSAFE, version=0)
    assert zk.get_acls("/secured")[0] == [ACL(31, Id("world", "anyone"))]
    with pytest.raises(InvalidACLError):
        zk.create("/bad-acl", acl=[ACL(31, Id("nosuchscheme", "x"))])
    infos = zk.whoami()
    assert ClientInfo("digest", "user") in infos


def test_transaction(zk):
    zk.create("/t", b"0")
    transaction = zk.transaction()
    transaction.create("/t/a", b"a")
    transaction.set_data("/t", b"1", version=0)
    transaction.check("/t", 1)
    transaction.delete("/t/a")
    results = transaction.commit()
    assert results[0] == "/t/a" and results[1].version == 1 and results[2:] == [True, True]
    with pytest.raises(ValueError):
        transaction.commit()
    failed = zk.transaction()
    failed.create("/t/b")
    failed.check("/t", 0)
    failed.create("/t/c")
    results = failed.commit()
    assert [type(result) for result in results] == [RolledBackError, BadVersionError,
                                                    RuntimeInconsistency]
    assert zk.get_children("/t") == []
    with zk.transaction() as implicit:
        implicit.create("/t/z")
    assert zk.get_children("/t") == ["z"]


def test_multi_read(zk):
    zk.create("/m", b"data")
    zk.create("/m/child")
    data, children, missing = zk.multi_read(
        [("get_data", "/m"), ("get_children", "/m"), ("get_data", "/none")])
    assert data == b"data" and data.stat.numChildren == 1
    assert children == ["child"]
    assert isinstance(missing, NoNodeError)


def test_sync_ephemerals_and_session_info(zk):
    assert zk.sync("/") == "/"
    zk.create("/e1", ephemeral=True)
    zk.create("/dir")
    zk.create("/dir/e2", ephemeral=True)
    assert sorted(zk.get_ephemerals()) == ["/dir/e2", "/e1"]  # Apache does not sort
    assert zk.get_ephemerals("/dir") == ["/dir/e2"]
    session_id, password = zk.client_id
    assert session_id != 0 and len(password) == 16
    assert zk.state == "CONNECTED" and zk.connected
    assert zk.session_timeout > 0


def test_persistent_watch_and_remove(backend, zk):
    import queue
    events = queue.Queue()
    zk.add_watch("/w", events.put, recursive=True)
    zk.create("/w")
    zk.create("/w/child")
    zk.set("/w/child", b"x")
    got = [events.get(timeout=10) for _ in range(3)]
    assert [(event.type.name, event.path) for event in got] == [
        ("CREATED", "/w"), ("CREATED", "/w/child"), ("CHANGED", "/w/child")]
    zk.remove_watches("/w", events.put)
    removed = events.get(timeout=10)
    assert removed.type.name == "PERSISTENT_WATCH_REMOVED" and removed.path == "/w"
    zk.set("/w/child", b"y")
    with pytest.raises(NoWatcherError):
        zk.remove_watches("/w")


def test_bad_path_is_bad_arguments_and_value_error(zk):
    for path in ["", "no-slash", "/trailing/", "//double", "/a/./b"]:
        with pytest.raises(BadArgumentsError) as error:
            zk.create(path)
        assert isinstance(error.value, ValueError) and error.value.code == -8
