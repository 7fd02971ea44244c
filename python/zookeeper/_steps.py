"""Every operation once, as checked arguments and a generator of native requests: the blocking,
callback and asyncio clients run the same steps (see ``_session.Session`` for the drivers)."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Tuple, Union

from zookeeper._session import Request, Steps
from zookeeper._types import (AclArg, ClientInfo, CreateMode, Data, Stat, _acl_from_native,
                              _acl_to_native, _data, _op_results)
from zookeeper.exceptions import (BadArgumentsError, NodeExistsError, NoNodeError,
                                  NotEmptyError, ZooKeeperError)
from zookeeper import _native

#: Largest TTL in milliseconds (40 bits, as ZooKeeper's EphemeralType).
TTL_MS_MAX = 0x00FF_FFFF_FFFF

Version = Union[int, Stat, Data]


def check_path(path: Any, name: str = "path") -> str:
    """A path must be a str; its form is checked natively (BadArgumentsError, a ValueError)."""
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a str, not {type(path).__name__}")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise BadArgumentsError(f"{name} is not valid Unicode", path) from None
    return path


def check_bytes(value: Any, name: str = "value") -> bytes:
    """A credential must be bytes-like (None reads as empty); a str is refused rather than
    guessed at."""
    if value is None:
        return b""
    return _bytes_like(value, name)


def check_data(value: Any) -> Optional[bytes]:
    """Znode data: bytes-like, or None for null data (which ZooKeeper keeps apart from empty
    and reads back as ``NullData``, as kazoo reads it back as None)."""
    if value is None:
        return None
    return _bytes_like(value, "value")


def _bytes_like(value: Any, name: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}"
                    + (" (encode it first)" if isinstance(value, str) else ""))


def check_version(version: Any) -> int:
    """An int, a Stat, or data read with ``get`` (its Stat's version)."""
    if isinstance(version, Data):
        return version.stat.version
    if isinstance(version, Stat):
        return version.version
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"version must be an int, a Stat or data read with get, not "
                        f"{type(version).__name__}")
    if not -(2 ** 31) <= version < 2 ** 31:
        raise ValueError("version must fit in 32 bits")
    return version


def check_acl_version(version: Any) -> int:
    """For set_acls: an int, or a Stat or data read with ``get`` (its Stat's ACL version)."""
    if isinstance(version, Data):
        version = version.stat
    if isinstance(version, Stat):
        return version.aversion
    return check_version(version)


def check_mode(mode: Any, ephemeral: bool, sequence: bool, ttl: Optional[int]
               ) -> Tuple[CreateMode, int]:
    """The create mode and TTL: ``mode`` (a CreateMode or its number) or kazoo's flags."""
    if mode is None:
        mode = CreateMode(int(bool(ephemeral)) | (2 if sequence else 0))
    elif isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"mode must be a CreateMode, not {type(mode).__name__}")
    else:
        try:
            mode = CreateMode(mode)
        except ValueError:
            raise ValueError(f"unknown create mode {mode}") from None
    if ttl is None:
        if mode.is_ttl:
            raise ValueError(f"{mode.name} needs ttl= (milliseconds)")
        return mode, -1
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise TypeError(f"ttl must be an int of milliseconds, not {type(ttl).__name__}")
    if mode == CreateMode.PERSISTENT:
        mode = CreateMode.PERSISTENT_WITH_TTL
    elif mode == CreateMode.PERSISTENT_SEQUENTIAL:
        mode = CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL
    elif not mode.is_ttl:
        raise ValueError(f"ttl is not valid for {mode.name} znodes")
    if not 0 < ttl <= TTL_MS_MAX:
        raise ValueError(f"ttl must be in 1..{TTL_MS_MAX} ms")
    return mode, ttl


def _parent(path: str) -> str:
    parent = path.rsplit("/", 1)[0]
    return parent or "/"


def _join(path: str, child: str) -> str:
    return f"{path.rstrip('/')}/{child}"


def make_parents(path: str, acl: List[Tuple[int, str, str]]) -> Steps:
    """Creates ``path`` and its missing ancestors as persistent znodes (existing ones stay).
    Iterative, so a deep path costs no Python recursion."""
    missing: List[str] = []
    while path != "/":
        try:
            yield ("create", path, b"", acl, 0, -1), None
        except NodeExistsError:
            break
        except NoNodeError:
            missing.append(path)
            path = _parent(path)
            continue
        break
    for ancestor in reversed(missing):
        try:
            yield ("create", ancestor, b"", acl, 0, -1), None
        except NodeExistsError:
            pass


def create(path: str, value: Optional[bytes], mode: CreateMode, acl: AclArg, makepath: bool,
           ttl_ms: int, include_data: bool) -> Steps:
    """Creates a znode, its parents first when ``makepath``."""
    native_acl = _acl_to_native(acl)
    request: Request = (("create", path, value, native_acl, int(mode), ttl_ms), None)
    try:
        created, stat = yield request
    except NoNodeError:
        if not makepath or path == "/":
            raise
        yield from make_parents(_parent(path), native_acl)
        created, stat = yield request
    return (created, Stat(*stat)) if include_data else created


def ensure_path(path: str, acl: AclArg) -> Steps:
    """Creates ``path`` and its ancestors unless they exist; returns True."""
    yield from make_parents(path, _acl_to_native(acl))
    return True


def get(path: str, watcher: Optional[_native.NativeWatcher]) -> Steps:
    """The znode's data with its Stat."""
    data, stat = yield ("get_data", path, watcher is not None), watcher
    return _data(data, Stat(*stat))


def exists(path: str, watcher: Optional[_native.NativeWatcher]) -> Steps:
    """The znode's Stat or None."""
    stat = yield ("exists", path, watcher is not None), watcher
    return None if stat is None else Stat(*stat)


def set_data(path: str, value: Optional[bytes], version: int) -> Steps:
    """Replaces the znode's data; returns its new Stat."""
    stat = yield ("set_data", path, value, version), None
    return Stat(*stat)


def _delete_tree(path: str) -> Steps:
    while True:
        try:
            children, _ = yield ("get_children", path, False), None
        except NoNodeError:
            return
        for child in children:
            yield from _delete_tree(_join(path, child))
        try:
            yield ("delete", path, -1), None
            return
        except NoNodeError:
            return
        except NotEmptyError:
            continue  # a child was created meanwhile: delete it too


def delete(path: str, version: int, recursive: bool) -> Steps:
    """Deletes the znode (with its descendants when ``recursive``); returns True."""
    if recursive:
        try:
            children, _ = yield ("get_children", path, False), None
        except NoNodeError:
            return True
        for child in children:
            yield from _delete_tree(_join(path, child))
    yield ("delete", path, version), None
    return True


def get_children(path: str, watcher: Optional[_native.NativeWatcher],
                 include_data: bool) -> Steps:
    """The children's names, sorted (with the znode's Stat when ``include_data``)."""
    children, stat = yield ("get_children", path, watcher is not None), watcher
    return (children, Stat(*stat)) if include_data else children


def get_acls(path: str) -> Steps:
    """The znode's ACL and Stat."""
    acl, stat = yield ("get_acl", path), None
    return _acl_from_native(acl), Stat(*stat)


def set_acls(path: str, acls: AclArg, version: int) -> Steps:
    """Replaces the znode's ACL; returns its Stat."""
    stat = yield ("set_acl", path, _acl_to_native(acls), version), None
    return Stat(*stat)


def sync(path: str) -> Steps:
    """Waits until the server has every change committed before the call; returns the path."""
    return (yield ("sync", path), None)


def add_auth(scheme: Any, credential: Any) -> Steps:
    """Adds an identity to the session; returns True."""
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a str, not {type(scheme).__name__}")
    if isinstance(credential, str):
        credential = credential.encode("utf-8")
    credential = check_bytes(credential, "credential")
    yield ("add_auth", scheme, credential), None
    return True


def multi(ops: List[Tuple[Any, ...]]) -> Steps:
    """Commits ops atomically; returns each op's result, exceptions for a failed one."""
    try:
        results = yield ("multi", ops), None
    except ZooKeeperError as error:
        if error.results is None:
            raise
        return error.results
    return _op_results(results)


def multi_read(reads: Iterable[Tuple[str, str]]) -> Steps:
    """Reads several znodes: Data, a list of children, or the exception, for each."""
    requests = []
    for read in reads:
        if not (isinstance(read, tuple) and len(read) == 2):
            raise TypeError("a read must be (\"get_data\" or \"get_children\", path)")
        kind, path = read
        kind = {"get": "get_data"}.get(kind, kind)
        if kind not in ("get_data", "get_children"):
            raise ValueError(f"unknown read {kind!r} (get_data or get_children)")
        requests.append((kind, check_path(path)))
    from zookeeper.exceptions import error_for_code
    results = yield ("multi_read", requests), None
    converted: List[Any] = []
    for result, (_, path) in zip(results, requests):
        if result[0] == "data":
            converted.append(_data(result[1], Stat(*result[2])))
        elif result[0] == "children":
            converted.append(result[1])
        else:
            converted.append(error_for_code(result[1], path))
    return converted


def simple(request: Tuple[Any, ...], watcher: Optional[_native.NativeWatcher] = None) -> Steps:
    """One request whose answer is the result."""
    return (yield request, watcher)


def whoami() -> Steps:
    """The session's identities."""
    infos = yield ("whoami",), None
    return [ClientInfo(scheme, user) for scheme, user in infos]
