"""Guards against recipes that let two holders in, hang a waiter after the holder's session
ends, lose or duplicate queue entries, or miscount under contention, on every backend.

Each recipe runs with several clients in threads (test_recipe_processes.py has them in
separate processes and across session ends). The backends are the embedded
server (in-process clients), our TCP server and Apache ZooKeeper 3.8.
"""

import queue
import threading
import time

import pytest

from recipe_harness import (  # recipe_backend is a fixture
    recipe_backend,
    EXPIRY_SLACK_S,
    SESSION_TIMEOUT_MS,
    unique_path,
    wait_until,
)
from zookeeper.recipes import (
    Barrier,
    CancelledError,
    Counter,
    DoubleBarrier,
    LeaderElection,
    LeaderLatch,
    Lock,
    LockingQueue,
    LockTimeout,
    Party,
    Queue,
    ReadLock,
    Semaphore,
    ShallowParty,
    WriteLock,
)

SESSION_END_S = SESSION_TIMEOUT_MS / 1000 + EXPIRY_SLACK_S
THREAD_JOIN_S = 30.0


@pytest.fixture
def connect(recipe_backend):
    """Opens a client on the test's backend: ``connect(timeout_ms=4000)``."""
    return recipe_backend.connect


def run_threads(target, count):
    """Runs target(index) on ``count`` threads; re-raises the first failure."""
    errors = []

    def wrapped(index):
        try:
            target(index)
        except BaseException as error:  # reported to the test below
            errors.append(error)

    threads = [threading.Thread(target=wrapped, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_JOIN_S)
        assert not thread.is_alive(), "a recipe thread did not finish"
    if errors:
        raise errors[0]


# Locks


def test_lock_excludes_across_threads(connect):
    path = unique_path()
    inside = []
    entries = []

    def contend(index):
        lock = Lock(connect(), path, f"t{index}")
        for _ in range(5):
            with lock:
                inside.append(index)
                assert len(inside) == 1, f"two holders at once: {inside}"
                time.sleep(0.002)
                entries.append(index)
                inside.remove(index)

    run_threads(contend, 4)
    assert len(entries) == 20


def test_lock_nonblocking_timeout_and_contenders(connect):
    path = unique_path()
    holder, waiter = Lock(connect(), path, "holder"), Lock(connect(), path, "waiter")
    assert holder.acquire()
    assert holder.is_acquired
    assert waiter.acquire(blocking=False) is False
    started = time.monotonic()
    with pytest.raises(LockTimeout):
        waiter.acquire(timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 5
    # A failed attempt leaves no contender node behind.
    assert holder.contenders() == ["holder"]

    results = []
    thread = threading.Thread(target=lambda: results.append(waiter.acquire(timeout=10)))
    thread.start()
    wait_until(lambda: waiter.contenders() == ["holder", "waiter"], 5, "waiter in line")
    assert holder.release() is True
    assert holder.release() is False
    thread.join(THREAD_JOIN_S)
    assert results == [True]
    assert waiter.contenders() == ["waiter"]
    waiter.release()
    assert waiter.contenders() == []


def test_lock_cancel_stops_a_waiter(connect):
    path = unique_path()
    holder, waiter = Lock(connect(), path), Lock(connect(), path)
    holder.acquire()
    raised = []

    def wait():
        try:
            waiter.acquire(timeout=20)
        except CancelledError:
            raised.append(True)

    thread = threading.Thread(target=wait)
    thread.start()
    wait_until(lambda: len(holder.contenders()) == 2, 5, "waiter in line")
    waiter.cancel()
    thread.join(THREAD_JOIN_S)
    assert raised == [True]
    assert len(holder.contenders()) == 1


def test_blocking_acquire_inside_a_callback_of_its_client_raises(connect):
    # The wake-up the acquire waits for would queue behind the callback on the dispatcher
    # thread: the call refuses at once instead of waiting out its timeout.
    path = unique_path()
    holder, zk = Lock(connect(), path), connect()
    lock = Lock(zk, path)
    holder.acquire()
    answers = queue.Queue()

    def created(event):
        started = time.monotonic()
        try:
            lock.acquire(timeout=5)
            answers.put("acquired")
        except RuntimeError as error:
            answers.put(str(error))
        answers.put(lock.acquire(blocking=False))
        answers.put(time.monotonic() - started < 1)

    zk.exists(path + "-go", watch=created)
    zk.create(path + "-go")
    assert "cannot wait inside a callback of its own client" in answers.get(timeout=10)
    assert answers.get(timeout=10) is False
    assert answers.get(timeout=10) is True
    holder.release()
    assert lock.acquire(timeout=5)
    lock.release()


def test_lock_passes_on_when_holder_session_closes(connect):
    path = unique_path()
    holder_client = connect()
    holder = Lock(holder_client, path, "holder")
    holder.acquire()
    waiter = Lock(connect(), path, "waiter")
    results = []
    thread = threading.Thread(target=lambda: results.append(waiter.acquire(timeout=20)))
    thread.start()
    wait_until(lambda: len(waiter.contenders()) == 2, 5, "waiter in line")
    holder_client.close()
    thread.join(THREAD_JOIN_S)
    assert results == [True]


def test_read_write_lock(connect):
    path = unique_path()
    reader_a, reader_b = ReadLock(connect(), path, "ra"), ReadLock(connect(), path, "rb")
    writer = WriteLock(connect(), path, "w")
    assert reader_a.acquire(timeout=5)
    assert reader_b.acquire(timeout=5), "readers share the lock"
    assert writer.acquire(blocking=False) is False
    results = []
    thread = threading.Thread(target=lambda: results.append(writer.acquire(timeout=10)))
    thread.start()
    wait_until(lambda: len(writer.contenders()) == 3, 5, "writer in line")
    # A reader that comes after a waiting writer waits for it.
    late_reader = ReadLock(connect(), path, "late")
    assert late_reader.acquire(blocking=False) is False
    reader_a.release()
    assert not results
    reader_b.release()
    thread.join(THREAD_JOIN_S)
    assert results == [True]
    assert ReadLock(connect(), path).acquire(blocking=False) is False
    writer.release()
    assert late_reader.acquire(timeout=5)


def test_semaphore_limits_holders(connect):
    path = unique_path()
    holding = []
    peak = []

    def use(index):
        semaphore = Semaphore(connect(), path, f"t{index}", max_leases=2)
        with semaphore:
            holding.append(index)
            peak.append(len(holding))
            time.sleep(0.05)
            holding.remove(index)

    run_threads(use, 5)
    assert max(peak) == 2
    semaphore = Semaphore(connect(), path, "x", max_leases=2)
    assert semaphore.lease_holders() == []
    with pytest.raises(ValueError):
        Semaphore(connect(), path, max_leases=3).acquire(timeout=1)


def test_semaphore_timeout_and_holders(connect):
    path = unique_path()
    first = Semaphore(connect(), path, "first", max_leases=1)
    second = Semaphore(connect(), path, "second", max_leases=1)
    assert first.acquire(timeout=5)
    assert second.acquire(blocking=False) is False
    with pytest.raises(LockTimeout):
        second.acquire(timeout=0.3)
    assert first.lease_holders() == ["first"]
    first.release()
    assert second.acquire(timeout=5)
    assert second.lease_holders() == ["second"]


# Elections


def test_leader_election_runs_one_leader_at_a_time(connect):
    path = unique_path()
    leading = []
    order = []

    def contend(index):
        election = LeaderElection(connect(), path, f"c{index}")

        def lead():
            leading.append(index)
            assert len(leading) == 1
            order.append(index)
            time.sleep(0.02)
            leading.remove(index)

        election.run(lead)

    run_threads(contend, 3)
    assert sorted(order) == [0, 1, 2]


def test_leader_election_cancel_and_contenders(connect):
    path = unique_path()
    leader_started, leader_may_stop = threading.Event(), threading.Event()
    leader = LeaderElection(connect(), path, "leader")
    follower = LeaderElection(connect(), path, "follower")
    follower_ran = []

    def lead():
        leader_started.set()
        leader_may_stop.wait(THREAD_JOIN_S)

    leader_thread = threading.Thread(target=leader.run, args=(lead,))
    leader_thread.start()
    assert leader_started.wait(10)
    follower_thread = threading.Thread(target=follower.run,
                                       args=(lambda: follower_ran.append(True),))
    follower_thread.start()
    wait_until(lambda: follower.contenders() == ["leader", "follower"], 5, "two contenders")
    follower.cancel()
    follower_thread.join(THREAD_JOIN_S)
    assert not follower_thread.is_alive() and follower_ran == []
    leader_may_stop.set()
    leader_thread.join(THREAD_JOIN_S)
    assert leader.contenders() == []
    with pytest.raises(ValueError):
        leader.run("not callable")


def leaders_of(latches):
    return [name for name, latch in latches.items() if latch.has_leadership()]


def test_leader_latch_one_leader_and_handover(connect):
    path = unique_path()
    heard = {name: [] for name in "abc"}
    latches = {}
    for name in "abc":
        latch = LeaderLatch(connect(), path, name)
        latch.add_listener(heard[name].append)
        latches[name] = latch
        latch.start()
    # Each latch joins from its own worker thread, so the joining order is not the start order.
    wait_until(lambda: sorted(latches["a"].participants()) == ["a", "b", "c"], 10,
               "three participants")
    wait_until(lambda: len(leaders_of(latches)) == 1, 10, "a leader")
    first = leaders_of(latches)[0]
    order = latches["a"].participants()
    assert order[0] == first
    assert latches["c"].leader() == first
    time.sleep(0.1)
    assert leaders_of(latches) == [first], "exactly one leader"
    assert latches[order[1]].await_leadership(timeout=0.2) is False

    latches[first].close()
    second = order[1]
    assert latches[second].await_leadership(timeout=10)
    assert not latches[first].has_leadership()
    assert latches[first].state == "CLOSED"
    assert heard[first] == [True], "close is silent by default"
    wait_until(lambda: heard[second] == [True], 5, "the new leader's listener")
    third = order[2]
    assert heard[third] == []
    assert latches[third].participants() == [second, third]

    latches[second].close(notify_leader=True)
    assert latches[third].await_leadership(timeout=10)
    assert heard[second] == [True, False]
    latches[third].close()
    assert latches[third].await_leadership(timeout=0) is False
    with pytest.raises(RuntimeError):
        latches[third].start()


def test_leader_latch_leader_session_closed(connect):
    path = unique_path()
    leader_client = connect()
    leader = LeaderLatch(leader_client, path, "leader")
    leader.start()
    assert leader.await_leadership(timeout=10)
    follower = LeaderLatch(connect(), path, "follower")
    follower.start()
    wait_until(lambda: len(follower.participants()) == 2, 5, "follower joined")
    leader_client.close()
    assert follower.await_leadership(timeout=SESSION_END_S)
    wait_until(lambda: not leader.has_leadership(), SESSION_END_S, "old leader to step down")
    follower.close()
    leader.close()


# Barriers


def test_barrier(connect):
    path = unique_path()
    barrier = Barrier(connect(), path)
    assert barrier.wait(timeout=0) is True, "no barrier in place"
    barrier.create()
    assert barrier.wait(timeout=0.2) is False
    passed = []
    waiters = [threading.Thread(target=lambda: passed.append(Barrier(connect(), path)
                                                              .wait(timeout=10)))
               for _ in range(3)]
    for thread in waiters:
        thread.start()
    time.sleep(0.1)
    assert passed == []
    assert barrier.remove() is True
    for thread in waiters:
        thread.join(THREAD_JOIN_S)
    assert passed == [True, True, True]
    assert barrier.remove() is False


def test_double_barrier(connect):
    path = unique_path()
    events = []
    lock = threading.Lock()

    def member(index):
        barrier = DoubleBarrier(connect(), path, 3, f"m{index}")
        time.sleep(0.05 * index)
        assert barrier.enter(timeout=10)
        with lock:
            events.append(("in", index))
        time.sleep(0.05 * (3 - index))
        with lock:
            events.append(("out", index))
        assert barrier.leave(timeout=10)
        with lock:
            events.append(("left", index))

    run_threads(member, 3)
    kinds = [kind for kind, _ in events]
    assert kinds[:3] == ["in"] * 3, f"someone worked before all entered: {events}"
    assert kinds[-3:] == ["left"] * 3, f"someone left before all were done: {events}"
    lone = DoubleBarrier(connect(), unique_path(), 2)
    assert lone.enter(timeout=0.3) is False
    assert lone.participating is False


# Queues


def test_queue_priorities_and_consumers(connect):
    path = unique_path()
    producer = Queue(connect(), path)
    assert producer.get() is None
    producer.put(b"low", priority=200)
    producer.put(b"high-1", priority=1)
    producer.put(b"high-2", priority=1)
    producer.put(b"middle")
    assert len(producer) == 4
    assert [producer.get() for _ in range(5)] == [b"high-1", b"high-2", b"middle", b"low",
                                                 None]
    with pytest.raises(TypeError):
        producer.put("text")
    with pytest.raises(ValueError):
        producer.put(b"x", priority=1000)

    for number in range(40):
        producer.put(str(number).encode())
    taken = []

    def consume(index):
        consumer = Queue(connect(), path)
        while True:
            value = consumer.get()
            if value is None:
                return
            taken.append(value)

    run_threads(consume, 3)
    assert sorted(int(v) for v in taken) == list(range(40)), "lost or duplicated entries"


def test_locking_queue(connect):
    path = unique_path()
    first, second = LockingQueue(connect(), path), LockingQueue(connect(), path)
    assert second.get(timeout=0.2) is None
    first.put_all([b"a", b"b"])
    first.put(b"urgent", priority=0)
    assert len(first) == 3
    assert first.get(timeout=5) == b"urgent"
    assert first.get(timeout=5) == b"urgent", "an unconsumed entry comes back"
    assert first.holds_lock()
    assert second.get(timeout=5) == b"a"
    assert second.release() is True
    assert first.consume() is True
    assert first.consume() is False
    assert first.get(timeout=5) == b"a"
    assert first.consume()
    assert len(first) == 1

    results = []
    waiter = threading.Thread(target=lambda: results.append(second.get(timeout=10)))
    third = LockingQueue(connect(), path)
    assert third.get(timeout=5) == b"b"
    waiter.start()
    time.sleep(0.1)
    assert results == []
    assert third.release()
    waiter.join(THREAD_JOIN_S)
    assert results == [b"b"]


def test_locking_queue_entry_returns_when_consumer_session_ends(connect):
    path = unique_path()
    consumer_client = connect()
    LockingQueue(consumer_client, path).put(b"job")
    consumer = LockingQueue(consumer_client, path)
    assert consumer.get(timeout=5) == b"job"
    other = LockingQueue(connect(), path)
    assert other.get(timeout=0.2) is None
    consumer_client.close()
    assert other.get(timeout=SESSION_END_S) == b"job"
    assert other.consume()


# Counter


def test_counter_int_and_float(connect):
    path = unique_path()
    counter = Counter(connect(), path)
    assert counter.value == 0
    counter += 2
    counter -= 1
    assert counter.value == 1
    assert (counter.pre_value, counter.post_value) == (2, 1)
    with pytest.raises(TypeError):
        counter += 1.5
    floats = Counter(connect(), unique_path(), default=1.5)
    floats += 2.0
    assert floats.value == 3.5
    curator = Counter(connect(), unique_path(), support_curator=True)
    curator += 7
    assert curator.value == 7


def test_counter_concurrent_increments_add_up(connect):
    path = unique_path()

    def add(index):
        counter = Counter(connect(), path)
        for _ in range(25):
            counter += 1

    run_threads(add, 4)
    assert Counter(connect(), path).value == 100


# Party


@pytest.mark.parametrize("party_class", [Party, ShallowParty])
def test_party_membership(connect, party_class):
    path = unique_path()
    clients = [connect() for _ in range(3)]
    members = [party_class(client, path, f"member{i}") for i, client in enumerate(clients)]
    assert len(members[0]) == 0
    for member in members:
        member.join()
    members[0].join()  # joining twice is harmless
    assert len(members[0]) == 3
    assert sorted(members[1]) == ["member0", "member1", "member2"]
    assert members[1].leave() is True
    assert members[1].leave() is False
    assert sorted(members[0]) == ["member0", "member2"]
    clients[2].close()
    wait_until(lambda: list(members[0]) == ["member0"], SESSION_END_S,
               "a closed session's member to leave")
