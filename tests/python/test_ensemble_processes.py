"""Guards the promise of an ensemble: with a minority of members killed, paused or restarted,
no acknowledged write is lost, no sequential name is issued twice, and writes come back; and
measures how long writes stop after a leader dies, against Apache ZooKeeper 3.8 in the same run.

Three real server processes on 127.0.0.1 (tests/python/process_ensemble.py), configured with
the zoo.cfg lines ZooKeeper operators write, with kazoo clients writing all along.

    ENSEMBLE_KINDS=ours,reference   which servers to run (default both)
"""

import os
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from process_ensemble import ProcessEnsemble

KINDS = os.environ.get("ENSEMBLE_KINDS", "ours,reference").split(",")
WRITERS = 3
SESSION_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 5.0
# How long writes must come back within after the quorum is whole again.
RECOVERY_TIMEOUT_S = 60.0


class Writers:
    """`WRITERS` kazoo clients creating sequential znodes under /load, each its own data, and
    the time of every acknowledged create. Each client starts from a different member."""

    def __init__(self, ensemble):
        self.ensemble = ensemble
        self.acknowledged = {}  # name -> data
        # (sent, acknowledged) monotonic times of every acknowledged create.
        self.successes = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.clients = []
        members = list(ensemble.client_ports)
        for index in range(WRITERS):
            rotated = members[index % len(members):] + members[:index % len(members)]
            client = KazooClient(hosts=",".join(ensemble.host(m) for m in rotated),
                                 timeout=SESSION_TIMEOUT_S, randomize_hosts=False,
                                 connection_retry={"max_tries": -1, "delay": 0.05,
                                                   "max_delay": 0.2})
            client.start(timeout=30)
            self.clients.append(client)
        self.clients[0].ensure_path("/load")
        self.threads = [threading.Thread(target=self._write, args=(index,), daemon=True)
                        for index in range(WRITERS)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def _write(self, index):
        client = self.clients[index]
        count = 0
        while not self.stopping.is_set():
            count += 1
            data = f"writer{index}-{count}".encode()
            sent = time.monotonic()
            try:
                name = client.create_async("/load/w-", data, sequence=True).get(
                    timeout=REQUEST_TIMEOUT_S)
            except (KazooException, KazooTimeoutError):
                time.sleep(0.01)
                continue
            now = time.monotonic()
            with self.lock:
                assert name not in self.acknowledged, f"{name} acknowledged twice"
                self.acknowledged[name] = data
                self.successes.append((sent, now))

    def first_success_after(self, moment, timeout_s=RECOVERY_TIMEOUT_S):
        """Seconds from `moment` to the first acknowledgement of a write sent after it (a
        write sent before may have committed before `moment`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                later = [acked for sent, acked in self.successes if sent > moment]
            if later:
                return min(later) - moment
            time.sleep(0.005)
        raise AssertionError(f"no write acknowledged within {timeout_s} s; "
                             f"{self.ensemble.modes()}\n{self.ensemble.tails()}")

    def successes_between(self, start, end):
        """Writes sent and acknowledged within (start, end]."""
        with self.lock:
            return sum(1 for sent, acked in self.successes if start < sent and acked <= end)

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)

    def verify(self):
        """Every acknowledged create is present with its own data; names never repeat."""
        client = self.clients[0]
        children = client.get_children("/load")
        assert len(children) == len(set(children))
        present = set(f"/load/{child}" for child in children)
        missing = sorted(set(self.acknowledged) - present)
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        for name, data in self.acknowledged.items():
            assert client.get(name)[0] == data, name
        for client in self.clients:
            client.stop()
            client.close()
        return len(self.acknowledged)


def report(kind, what, seconds):
    line = f"ensemble ({kind}): {what}: {seconds * 1000:.0f} ms"
    print(line, flush=True)
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "target",
                           "ensemble-gaps.txt"), "a") as gaps:
        gaps.write(line + "\n")


@pytest.mark.parametrize("kind", KINDS)
def test_leader_then_follower_killed_and_restarted(kind):
    with ProcessEnsemble(kind, 3) as ensemble, Writers(ensemble) as writers:
        writers.first_success_after(time.monotonic())
        time.sleep(1.0)
        leader = ensemble.leader()
        killed_at = time.monotonic()
        ensemble.kill(leader)
        gap = writers.first_success_after(killed_at)
        report(kind, "writes stopped after kill -9 of the leader", gap)
        survivors = [member for member in ensemble.running()]
        new_leader = ensemble.leader(among=survivors)
        assert new_leader != leader
        time.sleep(0.5)
        follower = next(member for member in survivors if member != new_leader)
        ensemble.kill(follower)
        alone_at = time.monotonic()
        time.sleep(3.0)
        # One member of three: nothing sent now can commit.
        assert writers.successes_between(alone_at, time.monotonic()) == 0
        restarted_at = time.monotonic()
        ensemble.start(leader)
        ensemble.start(follower)
        ensemble.wait_until_serving()
        report(kind, "writes back after restarting both",
               writers.first_success_after(restarted_at))
        time.sleep(1.0)
        writers.stop()
        count = writers.verify()
        assert count > 100, count


@pytest.mark.parametrize("kind", KINDS)
def test_paused_leader_is_replaced_and_rejoins(kind):
    with ProcessEnsemble(kind, 3) as ensemble, Writers(ensemble) as writers:
        writers.first_success_after(time.monotonic())
        time.sleep(1.0)
        leader = ensemble.leader()
        paused_at = time.monotonic()
        ensemble.pause(leader)
        gap = writers.first_success_after(paused_at)
        report(kind, "writes stopped after SIGSTOP of the leader", gap)
        others = [member for member in ensemble.running() if member != leader]
        assert ensemble.leader(among=others) != leader
        ensemble.resume(leader)
        modes = ensemble.wait_until_serving()
        assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
        time.sleep(1.0)
        writers.stop()
        writers.verify()


@pytest.mark.parametrize("kind", KINDS)
def test_rolling_restart_keeps_sessions_and_writes(kind):
    with ProcessEnsemble(kind, 3) as ensemble, Writers(ensemble) as writers:
        holder = KazooClient(hosts=ensemble.hosts, timeout=SESSION_TIMEOUT_S)
        holder.start(timeout=30)
        session_id = holder.client_id[0]
        holder.create("/lock", b"held", ephemeral=True)
        for member in list(ensemble.client_ports):
            ensemble.terminate(member)
            ensemble.start(member)
            ensemble.wait_until_serving()
            writers.first_success_after(time.monotonic())
        # kazoo drops its watches when a connection drops, so watches are not asked here.
        assert holder.client_id[0] == session_id
        assert holder.get("/lock")[0] == b"held"
        assert holder.get("/lock")[1].ephemeralOwner == session_id
        holder.stop()
        holder.close()
        writers.stop()
        writers.verify()
