"""Guards ``callback=`` on every operation that takes it: the call returns None at once and the
callback hears ``(path, result)`` with what the blocking call returns, or the exception it
raises, on the dispatcher thread."""

import queue
import threading
from typing import Any, Callable

import pytest

from zookeeper import NoNodeError, ZooDefs


def run_async(operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    heard: "queue.Queue[Any]" = queue.Queue()

    def callback(path: Any, result: Any) -> None:
        heard.put((path, result, threading.get_ident()))

    assert operation(*args, callback=callback, **kwargs) is None
    path, result, thread = heard.get(timeout=10)
    assert thread != threading.get_ident(), "the callback ran on the calling thread"
    return path, result


CALLS = [
    ("create", ("/cb/new", b"v"), {}),
    ("get", ("/cb",), {}),
    ("get_data", ("/cb",), {}),
    ("exists", ("/cb",), {}),
    ("set", ("/cb", b"w"), {}),
    ("set_data", ("/cb", b"x"), {}),
    ("get_children", ("/cb",), {}),
    ("get_children", ("/cb",), {"include_data": True}),
    ("get_acls", ("/cb",), {}),
    ("set_acls", ("/cb", ZooDefs.Ids.OPEN_ACL_UNSAFE), {}),
    ("ensure_path", ("/cb/a/b",), {}),
    ("sync", ("/cb",), {}),
    ("get_all_children_number", ("/cb",), {}),
    ("get_ephemerals", ("/",), {}),
    ("whoami", (), {}),
    ("add_auth", ("digest", "user:secret"), {}),
    ("delete", ("/cb/a",), {"recursive": True}),
]


@pytest.mark.parametrize("name,args,kwargs", CALLS, ids=[
    f"{name}{'-' + '-'.join(kwargs) if kwargs else ''}" for name, _, kwargs in CALLS])
def test_callback_hears_what_the_blocking_call_returns(backend, name, args, kwargs):
    blocking = backend.client()
    blocking.create("/cb", b"v")
    if name == "delete":
        blocking.ensure_path("/cb/a/b")
    asynchronous = backend.client()
    path, result = run_async(getattr(asynchronous, name), *args, **kwargs)
    if args and isinstance(args[0], str) and args[0].startswith("/"):
        assert path == args[0]
    # The same call made blocking on the other client (a second create of /cb/new fails).
    if name == "create":
        assert result == "/cb/new"
        assert blocking.get("/cb/new") == b"v"
    elif name in ("set", "set_data", "set_acls"):
        assert result == blocking.exists("/cb")
    elif name == "delete":
        assert result is True and blocking.exists("/cb/a") is None  # True, as kazoo's delete
    elif name in ("whoami", "add_auth", "get_ephemerals"):
        assert result == getattr(blocking, name)(*args, **kwargs) or name == "add_auth"
    else:
        assert result == getattr(blocking, name)(*args, **kwargs)
    if name in ("get", "get_data"):
        assert result.stat == blocking.get("/cb").stat


def test_callback_hears_the_exception(backend):
    zk = backend.client()
    path, result = run_async(zk.get, "/missing")
    assert path == "/missing" and isinstance(result, NoNodeError)


def test_transaction_commit_takes_a_callback(backend):
    zk = backend.client()
    transaction = zk.transaction()
    transaction.create("/t1", b"a")
    transaction.create("/t2", b"b")
    _, results = run_async(transaction.commit)
    assert results == ["/t1", "/t2"]
