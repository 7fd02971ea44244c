"""A recipe user in its own process, for the multi-process recipe tests.

    python recipe_worker.py HOSTS ROLE PATH [ARG...]

It prints one line per milestone (flushed at once) so the test can follow it, and exits when
its stdin closes or its work is done. Roles:

- ``lock-hold PATH``: acquires a Lock, prints ``ACQUIRED``, holds it until stdin closes.
- ``lock-increment PATH ROUNDS``: ROUNDS times takes the Lock and increments ``PATH-count``
  by an unguarded read-modify-write, which only adds up when the lock really excludes.
- ``counter PATH ROUNDS``: adds 1 to a Counter ROUNDS times.
- ``latch PATH ID``: runs a LeaderLatch and prints ``LEADER`` / ``FOLLOWER`` on each change.
- ``queue-take PATH``: takes one LockingQueue entry, prints ``TOOK <value>``, holds it.
- ``semaphore-hold PATH LEASES``: acquires a lease, prints ``ACQUIRED``, holds it.
"""

import os
import sys
import time

from zookeeper import ZooKeeper
from zookeeper.recipes import Counter, LeaderLatch, Lock, LockingQueue, Semaphore

SESSION_TIMEOUT_MS = int(os.environ.get("RECIPE_SESSION_TIMEOUT_MS", "4000"))


def say(line):
    print(line, flush=True)


def wait_for_stdin_close():
    sys.stdin.read()


def main(hosts, role, path, *args):
    zk = ZooKeeper(hosts, SESSION_TIMEOUT_MS)
    try:
        if role == "lock-hold":
            lock = Lock(zk, path, f"pid-{os.getpid()}")
            lock.acquire(timeout=30)
            say("ACQUIRED")
            wait_for_stdin_close()
            lock.release()
        elif role == "lock-increment":
            lock = Lock(zk, path, f"pid-{os.getpid()}")
            count_path = path + "-count"
            zk.ensure_path(count_path)
            for _ in range(int(args[0])):
                with lock:
                    value = int(bytes(zk.get(count_path)) or b"0")
                    time.sleep(0.002)  # widen the race window a lock must close
                    zk.set(count_path, str(value + 1).encode())
            say("DONE")
        elif role == "counter":
            counter = Counter(zk, path)
            for _ in range(int(args[0])):
                counter += 1
            say("DONE")
        elif role == "latch":
            latch = LeaderLatch(zk, path, args[0])
            latch.add_listener(lambda leader: say("LEADER" if leader else "FOLLOWER"))
            latch.start()
            say("STARTED")
            wait_for_stdin_close()
            latch.close()
        elif role == "queue-take":
            queue = LockingQueue(zk, path)
            value = queue.get(timeout=30)
            say(f"TOOK {value.decode() if value is not None else None}")
            wait_for_stdin_close()
        elif role == "semaphore-hold":
            semaphore = Semaphore(zk, path, f"pid-{os.getpid()}", max_leases=int(args[0]))
            semaphore.acquire(timeout=30)
            say("ACQUIRED")
            wait_for_stdin_close()
            semaphore.release()
        else:
            raise SystemExit(f"unknown role {role!r}")
    finally:
        zk.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
