"""Guards against coordination recipes that break on our server: kazoo's Lock, Election,
Barrier, Counter, Queue and LockingQueue with several clients contending, each also run against
Apache ZooKeeper 3.8."""

import threading
import time

import pytest
from conftest import CLIENT_SERVERS


@pytest.fixture(params=CLIENT_SERVERS)
def address(request):
    """Both single servers, and a 3-member ensemble of ours: kazoo must not tell them apart."""
    return request.getfixturevalue(request.param)


WAIT_S = 10.0


def wait_for(predicate, what, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


# ---------------------------------------------------------------------------------------------
# Recipes


def test_lock_two_clients_contend(client, new_client, root):
    other = new_client()
    first = client.Lock(f"{root}/lock", "first")
    second = other.Lock(f"{root}/lock", "second")
    order = []
    assert first.acquire(timeout=WAIT_S)
    got_it = threading.Event()

    def contend():
        assert second.acquire(timeout=WAIT_S)
        order.append("second")
        got_it.set()
        second.release()

    thread = threading.Thread(target=contend)
    thread.start()
    try:
        wait_for(lambda: len(first.contenders()) == 2, "second contender to queue")
        assert first.contenders() == ["first", "second"]
        time.sleep(0.2)
        assert not got_it.is_set()
        order.append("first")
        first.release()
        assert got_it.wait(WAIT_S)
    finally:
        thread.join(WAIT_S)
    assert order == ["first", "second"]
    assert not first.is_acquired


def test_election_picks_one_leader_and_fails_over(client, new_client, root):
    other = new_client()
    leaders = []
    stop_first = threading.Event()
    first_leading = threading.Event()

    def lead_first():
        leaders.append("first")
        first_leading.set()
        stop_first.wait(WAIT_S)

    def lead_second():
        leaders.append("second")

    first = client.Election(f"{root}/election", "first")
    second = other.Election(f"{root}/election", "second")
    thread_first = threading.Thread(target=first.run, args=(lead_first,))
    thread_first.start()
    assert first_leading.wait(WAIT_S)
    thread_second = threading.Thread(target=second.run, args=(lead_second,))
    thread_second.start()
    try:
        wait_for(lambda: len(first.contenders()) == 2, "second candidate")
        assert first.contenders() == ["first", "second"]
        assert leaders == ["first"]
        stop_first.set()
        thread_first.join(WAIT_S)
        thread_second.join(WAIT_S)
        assert leaders == ["first", "second"]
    finally:
        stop_first.set()
        first.cancel()
        second.cancel()


def test_barrier_blocks_until_removed(client, new_client, root):
    other = new_client()
    barrier = client.Barrier(f"{root}/barrier")
    barrier.create()
    waiter = other.Barrier(f"{root}/barrier")
    assert waiter.wait(timeout=0.3) is False
    passed = threading.Event()
    thread = threading.Thread(target=lambda: waiter.wait(timeout=WAIT_S) and passed.set())
    thread.start()
    time.sleep(0.2)
    assert not passed.is_set()
    barrier.remove()
    thread.join(WAIT_S)
    assert passed.is_set()


def test_counter(client, new_client, root):
    other = new_client()
    counter = client.Counter(f"{root}/counter")
    counter += 5
    other_counter = other.Counter(f"{root}/counter")
    other_counter -= 2
    # Across clients ZooKeeper promises order only after a sync: each client may talk to
    # another member of an ensemble, one that has not applied the other's write yet.
    client.sync(f"{root}/counter")
    assert counter.value == 3
    assert other_counter.value == 3

    def bump():
        mine = new_client().Counter(f"{root}/counter")
        for _ in range(10):
            mine += 1

    threads = [threading.Thread(target=bump) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    client.sync(f"{root}/counter")
    assert counter.value == 33


def test_queue_fifo_and_priority(client, new_client, root):
    producer = client.Queue(f"{root}/queue")
    consuming = new_client()
    consumer = consuming.Queue(f"{root}/queue")
    for item in [b"one", b"two", b"three"]:
        producer.put(item)
    producer.put(b"urgent", priority=10)
    consuming.sync(f"{root}/queue")  # the producer's writes, in the consumer's view
    assert len(consumer) == 4
    assert [consumer.get() for _ in range(4)] == [b"urgent", b"one", b"two", b"three"]
    assert consumer.get() is None


def test_locking_queue(client, new_client, root):
    queue = client.LockingQueue(f"{root}/lq")
    queue.put_all([b"a", b"b"])
    worker = new_client().LockingQueue(f"{root}/lq")
    assert worker.get(timeout=WAIT_S) == b"a"
    # The item is held, not consumed, until consume().
    assert len(queue) == 2
    assert worker.consume()
    client.sync(f"{root}/lq")  # the worker's consume, in this client's view
    assert len(queue) == 1
    assert worker.get(timeout=WAIT_S) == b"b"
    assert worker.release()  # give it back
    assert queue.get(timeout=WAIT_S) == b"b"
    assert queue.consume()
    assert len(queue) == 0
