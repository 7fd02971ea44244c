"""Guards recipes across processes and session ends: a killed holder's lock, latch or queue
entry passes on within the session timeout; counters and semaphores hold across processes; the
issue's example 5 runs as written in two processes; expired sessions rejoin, and an election
whose session expired under its leader runs again (embedded server).
"""

import queue
import threading
import time

import pytest

from recipe_harness import (  # recipe_backend is a fixture
    recipe_backend,
    EXPIRY_SLACK_S,
    SESSION_TIMEOUT_MS,
    Worker,
    unique_path,
    wait_until,
    workers,
)
from zookeeper.recipes import (Counter, LeaderElection, LeaderLatch, Lock, LockingQueue,
                               Semaphore)

SESSION_END_S = SESSION_TIMEOUT_MS / 1000 + EXPIRY_SLACK_S


# Separate processes (over TCP, on every backend)


def test_lock_across_processes(recipe_backend):
    path = unique_path()
    with workers() as started:
        for _ in range(3):
            started.append(Worker(recipe_backend.hosts, "lock-increment", path, "10"))
        for worker in started:
            worker.expect("DONE")
            assert worker.finish() == 0
    client = recipe_backend.connect()
    try:
        assert bytes(client.get(path + "-count")) == b"30", "the lock let two holders in"
    finally:
        recipe_backend.close_clients()


def test_counter_across_processes(recipe_backend):
    path = unique_path()
    with workers() as started:
        for _ in range(3):
            started.append(Worker(recipe_backend.hosts, "counter", path, "20"))
        for worker in started:
            worker.expect("DONE")
            assert worker.finish() == 0
    try:
        assert Counter(recipe_backend.connect(), path).value == 60
    finally:
        recipe_backend.close_clients()


def test_killed_lock_holder_process_releases_within_session_timeout(recipe_backend):
    path = unique_path()
    with workers() as started:
        holder = Worker(recipe_backend.hosts, "lock-hold", path)
        started.append(holder)
        holder.expect("ACQUIRED")
        waiter = Lock(recipe_backend.connect(), path, "waiter")
        try:
            assert waiter.acquire(blocking=False) is False
            killed_at = time.monotonic()
            holder.kill()
            assert waiter.acquire(timeout=SESSION_END_S)
            assert time.monotonic() - killed_at < SESSION_END_S
        finally:
            recipe_backend.close_clients()


def test_semaphore_across_processes(recipe_backend):
    path = unique_path()
    with workers() as started:
        for _ in range(2):
            started.append(Worker(recipe_backend.hosts, "semaphore-hold", path, "2"))
        for worker in started:
            worker.expect("ACQUIRED")
        third = Semaphore(recipe_backend.connect(), path, "third", max_leases=2)
        try:
            assert third.acquire(blocking=False) is False
            assert started[0].finish() == 0
            assert third.acquire(timeout=10)
            third.release()
        finally:
            recipe_backend.close_clients()


def test_leader_latch_processes_killed_leader(recipe_backend):
    path = unique_path()
    with workers() as started:
        first = Worker(recipe_backend.hosts, "latch", path, "first")
        started.append(first)
        first.expect("STARTED")
        first.expect("LEADER", timeout_s=10)
        second = Worker(recipe_backend.hosts, "latch", path, "second")
        started.append(second)
        second.expect("STARTED")
        time.sleep(0.3)
        assert not second.said("LEADER"), "two leaders at once"
        first.kill()
        second.expect("LEADER", timeout_s=SESSION_END_S)
        assert second.finish() == 0


def test_locking_queue_entry_returns_when_consumer_process_dies(recipe_backend):
    path = unique_path()
    LockingQueue(recipe_backend.connect(), path).put(b"job")
    try:
        with workers() as started:
            consumer = Worker(recipe_backend.hosts, "queue-take", path)
            started.append(consumer)
            consumer.expect("TOOK job")
            other = LockingQueue(recipe_backend.connect(), path)
            assert other.get(timeout=0.2) is None
            consumer.kill()
            assert other.get(timeout=SESSION_END_S) == b"job"
            assert other.consume()
    finally:
        recipe_backend.close_clients()


# The issue's example 5, run as written (only the imports and the address adjusted).

EXAMPLE_5 = '''
from zookeeper import ZooKeeper
from zookeeper.recipes import LeaderLatch
zk = ZooKeeper('localhost:2181')
latch = LeaderLatch(zk, '/redis/master')
latch.add_listener(lambda leader: print("I am the master now!" if leader else "I am not the master now."))
latch.start()
'''
# The example returns once started, as a service's setup code does; the harness then keeps
# the process (and so its session) alive until the test closes its stdin.
EXAMPLE_HARNESS = "\nimport sys\nsys.stdin.read()\n"


def test_issue_example_5_leader_latch_two_processes(recipe_backend):
    script = EXAMPLE_5.replace("localhost:2181", recipe_backend.hosts) + EXAMPLE_HARNESS
    client = recipe_backend.connect()
    try:
        if client.exists("/redis/master") is not None:
            client.delete("/redis/master", recursive=True)
        with workers() as started:
            first = Worker(recipe_backend.hosts, "", script=script)
            second = Worker(recipe_backend.hosts, "", script=script)
            started += [first, second]
            wait_until(lambda: first.said("I am the master now!")
                       or second.said("I am the master now!"), 15, "a master")
            time.sleep(0.5)
            leaders = [w for w in started if w.said("I am the master now!")]
            assert len(leaders) == 1, "exactly one process is master"
            leader, other = leaders[0], next(w for w in started if w is not leaders[0])
            # Over TCP the leader's process is killed, so its session ends only when the server
            # expires it (ZooKeeper('localhost:2181') asks for 10 s); the embedded run ends it
            # by a normal exit, which closes the session at once.
            if recipe_backend.name == "embedded":
                leader.finish()
            else:
                leader.kill()
            other.expect("I am the master now!", timeout_s=10 + EXPIRY_SLACK_S)
            assert other.finish() == 0
    finally:
        recipe_backend.close_clients()


# Session expiry on the embedded server, where a test can cut a client off.


@pytest.fixture
def embedded_server():
    from zookeeper import ZooServer

    # Short ticks: the server expires a cut-off session soon after its timeout.
    with ZooServer(tick_ms=500) as server:
        yield server


def test_leader_latch_session_expiry_and_rejoin(embedded_server):
    path = unique_path()
    leader_client = embedded_server.client(SESSION_TIMEOUT_MS)
    follower_client = embedded_server.client(SESSION_TIMEOUT_MS)
    heard = []
    old_leader = LeaderLatch(leader_client, path, "old")
    old_leader.add_listener(heard.append)
    old_leader.start()
    assert old_leader.await_leadership(timeout=10)
    follower = LeaderLatch(follower_client, path, "new")
    follower.start()
    wait_until(lambda: follower.participants() == ["old", "new"], 5, "follower joined")
    try:
        cut_at = time.monotonic()
        leader_client.simulate_partition()
        assert follower.await_leadership(timeout=SESSION_END_S)
        assert time.monotonic() - cut_at < SESSION_END_S
        wait_until(lambda: heard == [True, False], SESSION_END_S,
                   "the expired leader to hear it lost leadership")
        assert not old_leader.has_leadership()
        # A new session: the latch joins again, behind the new leader.
        leader_client.start()
        wait_until(lambda: follower.participants() == ["new", "old"], 10, "rejoin")
        assert follower.has_leadership() and not old_leader.has_leadership()
    finally:
        old_leader.close()
        follower.close()
        leader_client.close()
        follower_client.close()


def test_leader_election_runs_again_after_its_session_expired(embedded_server):
    # The lock under the election went with the session: giving it up is no error, and the
    # next run contends afresh instead of waiting on a lock it believes it still holds.
    client = embedded_server.client(SESSION_TIMEOUT_MS)
    states = queue.Queue()
    client.add_listener(states.put)
    election = LeaderElection(client, unique_path(), "x")
    led = []

    def lead_through_an_expiry():
        client.simulate_partition()
        wait_until(lambda: "LOST" in list(states.queue), SESSION_END_S, "the expiry")
        led.append("first")

    election.run(lead_through_an_expiry)
    client.start()
    second = threading.Thread(target=election.run, args=(lambda: led.append("second"),),
                              daemon=True)
    second.start()
    second.join(10)
    assert not second.is_alive(), "the second run hangs"
    assert led == ["first", "second"]
    client.close()


def test_lock_waiter_acquires_when_holder_session_expires(embedded_server):
    path = unique_path()
    holder_client = embedded_server.client(SESSION_TIMEOUT_MS)
    holder = Lock(holder_client, path, "holder")
    assert holder.acquire(timeout=5)
    waiter = Lock(embedded_server.client(SESSION_TIMEOUT_MS), path, "waiter")
    cut_at = time.monotonic()
    holder_client.simulate_partition()
    assert waiter.acquire(timeout=SESSION_END_S)
    assert time.monotonic() - cut_at < SESSION_END_S
    waiter.release()
