"""Guards against an ensemble that loses an acknowledged write, or issues a sequential name
twice, while kazoo clients write all along and the leader is cut off by a partition, then
healed: the ensemble's own partition hook standing in for iptables."""

import threading
import time

import kazoo.exceptions
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from zookeeper import ZooEnsemble

WAIT_S = 30.0
WRITERS = 3


class Writers:
    """Kazoo clients creating sequential znodes under /load, each with its own data, each
    starting from a different member; every acknowledged create is remembered."""

    def __init__(self, ensemble):
        addresses = [ensemble.client_address(member) for member in range(ensemble.size)]
        self.clients = []
        for index in range(WRITERS):
            rotated = addresses[index:] + addresses[:index]
            client = KazooClient(hosts=",".join(rotated), timeout=10.0, randomize_hosts=False,
                                 connection_retry={"max_tries": -1, "delay": 0.05,
                                                   "max_delay": 0.2})
            client.start(timeout=WAIT_S)
            self.clients.append(client)
        self.clients[0].ensure_path("/load")
        self.acknowledged = {}
        self.sent_and_acknowledged = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(index,), daemon=True)
                        for index in range(WRITERS)]
        for thread in self.threads:
            thread.start()

    def _write(self, index):
        count = 0
        while not self.stopping.is_set():
            count += 1
            data = f"writer{index}-{count}".encode()
            sent = time.monotonic()
            try:
                name = self.clients[index].create_async("/load/w-", data, sequence=True).get(
                    timeout=5.0)
            except (kazoo.exceptions.KazooException, KazooTimeoutError):
                time.sleep(0.01)
                continue
            with self.lock:
                assert name not in self.acknowledged, f"{name} issued twice"
                self.acknowledged[name] = data
                self.sent_and_acknowledged.append((sent, time.monotonic()))

    def first_acknowledged_after(self, moment):
        """Seconds from ``moment`` to the first acknowledgement of a write sent after it."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.lock:
                later = [acked for sent, acked in self.sent_and_acknowledged if sent > moment]
            if later:
                return min(later) - moment
            time.sleep(0.005)
        raise AssertionError(f"no write acknowledged within {WAIT_S} s")

    def stop_and_verify(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=10)
        client = self.clients[0]
        client.sync("/load")
        children = client.get_children("/load")
        present = {f"/load/{child}" for child in children}
        missing = sorted(set(self.acknowledged) - present)
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        for name, data in self.acknowledged.items():
            assert client.get(name)[0] == data, name
        for client in self.clients:
            client.stop()
            client.close()
        return len(self.acknowledged)


def test_a_partition_that_strands_the_leader_loses_no_acknowledged_write():
    with ZooEnsemble(3) as ensemble:
        leader = ensemble.wait_for_leader(WAIT_S)
        writers = Writers(ensemble)
        writers.first_acknowledged_after(time.monotonic())
        time.sleep(0.5)
        cut_at = time.monotonic()
        ensemble.isolate(leader)
        gap = writers.first_acknowledged_after(cut_at)
        print(f"writes stopped for {gap * 1000:.0f} ms after the leader was cut off")
        deadline = time.monotonic() + WAIT_S
        while ensemble.leader() in (None, leader):
            assert time.monotonic() < deadline, "no new leader"
            time.sleep(0.01)
        time.sleep(0.5)
        ensemble.heal()
        healed_at = time.monotonic()
        writers.first_acknowledged_after(healed_at)
        time.sleep(0.5)
        assert writers.stop_and_verify() > 50
