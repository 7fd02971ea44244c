"""Guards against the binding holding the GIL while it waits, ignoring Ctrl-C, deadlocking
when used from several threads, and mishandling session expiry."""

import queue
import signal
import socket
import threading
import time

import pytest

from zookeeper import (ConnectionClosedError, NoNodeError, SessionExpiredError, ZooKeeper,
                       ZooServer)


def test_blocking_call_releases_the_gil(tcp_backend):
    zk = tcp_backend.client()
    zk.create("/g")
    tcp_backend.pause()
    counter = [0]
    done = threading.Event()
    result = queue.Queue()

    def blocked():
        try:
            result.put(zk.sync("/g"))
        except Exception as error:  # the server may be resumed late
            result.put(error)
        done.set()

    thread = threading.Thread(target=blocked)
    thread.start()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        counter[0] += 1  # pure Python work: runs only if the waiting thread let go of the GIL
    assert not done.is_set()
    tcp_backend.resume()
    thread.join(20)
    assert counter[0] > 10000
    assert result.get(timeout=1) == "/g"


def test_ctrl_c_interrupts_a_blocking_call(tcp_backend):
    zk = tcp_backend.client()
    tcp_backend.pause()

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            zk.sync("/")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        tcp_backend.resume()
    assert time.monotonic() - started < 2.0
    assert zk.exists("/") is not None  # the client still works


def test_many_threads_share_one_client(backend):
    zk = backend.client()
    zk.create("/threads")
    errors = []

    def work(index):
        try:
            for round_ in range(20):
                path = zk.create(f"/threads/t{index}-", b"x", sequence=True)
                assert zk.get(path) == b"x"
                zk.set(path, str(round_).encode())
                zk.delete(path)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert zk.get_children("/threads") == []


def test_callback_completions_reenter_the_client(backend):
    zk = backend.client()
    results = queue.Queue()

    def created(path, result):
        # On the dispatcher thread: a blocking call back into the client must not deadlock.
        results.put((result, zk.exists(path) is not None))

    zk.create("/cb", callback=created)
    assert results.get(timeout=10) == ("/cb", True)


def test_session_expiry_in_process():
    with ZooServer(tick_ms=50) as server:
        states = queue.Queue()
        zk = server.client(timeout=200)
        other = server.client()
        zk.add_listener(states.put)
        zk.create("/ephemeral", ephemeral=True)
        zk.simulate_partition()
        assert states.get(timeout=10) == "LOST"
        with pytest.raises(SessionExpiredError):
            zk.get("/")
        assert other.exists("/ephemeral") is None
        zk.start()  # a new session
        assert zk.state == "CONNECTED"
        with pytest.raises(NoNodeError):
            zk.get("/ephemeral")
        zk.close()
        with pytest.raises(ConnectionClosedError):
            zk.get("/")


class BlackholeProxy:
    """A TCP proxy to a server that can stop forwarding (a network cut without root): while
    cut, it accepts connections and reads requests but passes nothing on, either way."""

    def __init__(self, address):
        host, port = address.split("/")[0].rsplit(":", 1)
        self.target = (host, int(port))
        self.cut = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target)
            except OSError:
                return
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                if not self.cut.is_set():
                    sink.sendall(chunk)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.close()
            except OSError:
                pass

    def close(self):
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


def test_session_expiry_over_tcp(tcp_backend):
    proxy = BlackholeProxy(tcp_backend.process.address)
    root = tcp_backend.hosts[len(tcp_backend.process.address):]
    states = queue.Queue()
    zk = ZooKeeper(proxy.address + root, 4000)
    other = tcp_backend.client(timeout=30000)
    try:
        zk.add_listener(states.put)
        zk.create("/gone", ephemeral=True)
        proxy.cut.set()
        assert states.get(timeout=20) == "SUSPENDED"
        # The server hears nothing for longer than the timeout (plus a tick of bucketing).
        deadline = time.monotonic() + 20
        while other.exists("/gone") is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert other.exists("/gone") is None
        proxy.cut.clear()
        seen = [states.get(timeout=30)]
        while seen[-1] != "LOST":
            seen.append(states.get(timeout=30))
        assert seen == ["LOST"]
        with pytest.raises(SessionExpiredError):
            zk.get("/")
    finally:
        zk.close()
        proxy.close()
