"""Guards against ZooEnsemble losing acknowledged writes or sessions when members fail (the
leader killed, a member restarted, the leader cut off or paused), against a stale member
serving writes, and against bad input that panics, half-applies, or is silently accepted."""

import math
import signal
import threading
import time

import kazoo.exceptions
import pytest
from kazoo.client import KazooClient

from zookeeper import (BadVersionError, ConnectionLossError, ZooClient, ZooEnsemble, ZooKeeper,
                       _native)
from zookeeper.ensemble import EnsembleMember

#: Bound on every wait: elections take ~100-200 ms, a loaded CI machine much longer.
WAIT_S = 20.0


def wait_until(condition, what, timeout_s=WAIT_S):
    """Polls ``condition`` until it returns a true value, which it returns; fails after
    ``timeout_s`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def new_leader(ensemble, old):
    """Waits for a member other than ``old`` to lead, and returns it."""
    def look():
        leader = ensemble.leader()
        return (leader,) if leader not in (None, old) else None
    return wait_until(look, f"a leader other than member {old}")[0]


#: What a call cut short by a member losing or changing its leader raises, in our client and
#: in kazoo.
LOSS = (ConnectionLossError, kazoo.exceptions.ConnectionLoss)


def retry(call, *args, **kwargs):
    """``call(*args, **kwargs)``, again while it raises a connection loss, for up to WAIT_S.
    A member that loses or changes its leader drops its clients' calls in flight, and on a
    loaded machine elections happen beyond the ones a test causes: ZooKeeper leaves such a
    call's fate unknown, and clients retry it."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return call(*args, **kwargs)
        except LOSS:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def set_once(client, path, data, version):
    """Sets ``path`` to ``data`` if at ``version``, retried on a connection loss: a
    BadVersion after a loss means an attempt cut short applied it (the caller checks the
    data and version it left)."""
    try:
        retry(client.set, path, data, version=version)
    except (BadVersionError, kazoo.exceptions.BadVersionError):
        pass


def serving(ensemble, members):
    """Waits until each of ``members`` serves sessions (knows its leader): an in-process
    session opens there only then."""
    for member in members:
        ensemble.client(member, timeout=WAIT_S * 1000).close()


@pytest.fixture
def ensemble():
    with ZooEnsemble(3) as running:
        yield running


def test_hosts_names_every_member_on_its_own_port(ensemble):
    addresses = [ensemble.client_address(member) for member in range(3)]
    assert ensemble.hosts == ",".join(addresses)
    assert len(set(addresses)) == 3
    assert all(address.startswith("127.0.0.1:") for address in addresses)
    assert ensemble.size == 3 and ensemble.running
    assert 0 <= ensemble.wait_for_leader(WAIT_S) < 3


def test_our_client_keeps_its_session_and_data_when_the_leader_is_killed(ensemble):
    leader = ensemble.wait_for_leader(WAIT_S)
    with ZooKeeper(ensemble.hosts, 10000) as zk:
        session = zk.client_id[0]
        retry(zk.create, "/config", b"v1")
        retry(zk.create, "/owner", b"me", ephemeral=True)
        ensemble.kill(leader)
        elected = ensemble.wait_for_leader(WAIT_S)
        assert elected != leader
        serving(ensemble, [member for member in range(3) if member != leader])
        set_once(zk, "/config", b"v2", version=0)
        data = retry(zk.get, "/config")
        assert (data, data.stat.version) == (b"v2", 1)
        assert zk.client_id[0] == session
        assert retry(zk.exists, "/owner").ephemeralOwner == session
        # The elected member, asked directly, has it too.
        survivor = ensemble.client(elected)
        retry(survivor.sync, "/")
        data = retry(survivor.get, "/config")
        assert (data, data.stat.version) == (b"v2", 1)
        survivor.close()


def test_kazoo_keeps_its_session_and_data_when_the_leader_is_killed(ensemble):
    leader = ensemble.wait_for_leader(WAIT_S)
    kazoo = KazooClient(hosts=ensemble.hosts, timeout=10.0)
    kazoo.start(timeout=WAIT_S)
    try:
        session = kazoo.client_id[0]
        retry(kazoo.create, "/kazoo", b"before")
        retry(kazoo.create, "/kazoo-owner", b"", ephemeral=True)
        ensemble.kill(leader)
        assert ensemble.wait_for_leader(WAIT_S) != leader
        serving(ensemble, [member for member in range(3) if member != leader])
        set_once(kazoo, "/kazoo", b"after", version=0)
        data, stat = retry(kazoo.get, "/kazoo")
        assert (data, stat.version) == (b"after", 1)
        assert kazoo.client_id[0] == session
        assert retry(kazoo.exists, "/kazoo-owner").ephemeralOwner == session
    finally:
        kazoo.stop()
        kazoo.close()


def test_a_restarted_member_rejoins_on_its_port_and_catches_up(ensemble):
    leader = ensemble.wait_for_leader(WAIT_S)
    follower = (leader + 1) % 3
    address = ensemble.client_address(follower)
    with ZooKeeper(ensemble.hosts, 10000) as zk:
        retry(zk.create, "/before", b"1")
        ensemble.kill(follower)
        retry(zk.create, "/while-down", b"2")
        set_once(zk, "/before", b"3", version=0)
        ensemble.restart(follower)
        assert ensemble.client_address(follower) == address
    # Only the restarted member's port: it serves what it missed, after a sync.
    with ZooKeeper(address, 10000) as direct:
        retry(direct.sync, "/")
        assert sorted(retry(direct.get_children, "/")) == ["before", "while-down", "zookeeper"]
        data = retry(direct.get, "/before")
        assert (data, data.stat.version) == (b"3", 1)
        assert retry(direct.get, "/while-down") == b"2"


def test_a_partition_strands_the_leader_and_heal_brings_it_back_as_follower(ensemble):
    old = ensemble.wait_for_leader(WAIT_S)
    others = [member for member in range(3) if member != old]
    stranded = ensemble.client(old)
    retry(stranded.create, "/before", b"")
    ensemble.partition([[old], others])
    # The cut-off leader acknowledges nothing: the write's fate is unknown to its client.
    with pytest.raises(ConnectionLossError):
        stranded.create("/lost", b"")
    elected = new_leader(ensemble, old)
    assert elected in others
    writer = ensemble.client(elected)
    retry(writer.create, "/during", b"majority")
    assert retry(writer.exists, "/lost") is None

    ensemble.heal()
    back = ensemble.client(old)
    retry(back.sync, "/")
    assert sorted(retry(back.get_children, "/")) == ["before", "during", "zookeeper"]
    assert retry(back.get, "/during") == b"majority"
    assert ensemble.leader() == elected
    for client in (stranded, writer, back):
        client.close()


def test_isolate_is_a_partition_of_one(ensemble):
    old = ensemble.wait_for_leader(WAIT_S)
    ensemble.isolate(old)
    elected = new_leader(ensemble, old)
    retry(ensemble.client(elected).create, "/elected-while-isolated", b"")
    ensemble.heal()
    back = ensemble.client(old)
    retry(back.sync, "/")
    assert retry(back.exists, "/elected-while-isolated") is not None


def test_a_paused_leader_is_replaced_and_follows_once_resumed(ensemble):
    old = ensemble.wait_for_leader(WAIT_S)
    ensemble.pause(old)
    assert ensemble.leader() != old  # a stopped process leads nobody
    elected = new_leader(ensemble, old)
    # A paused member opens no session: the client gives up after its timeout.
    started = time.monotonic()
    with pytest.raises(ConnectionLossError):
        ensemble.client(old, timeout=300)
    assert time.monotonic() - started < 5
    writer = ensemble.client(elected)
    retry(writer.create, "/while-paused", b"p")
    ensemble.resume(old)
    resumed = ensemble.client(old)
    retry(resumed.sync, "/")
    assert retry(resumed.get, "/while-paused") == b"p"
    writer.close()
    resumed.close()


def test_clients_on_a_killed_member_are_disconnected_and_start_again_after_restart(ensemble):
    leader = ensemble.wait_for_leader(WAIT_S)
    member = (leader + 1) % 3
    client = ensemble.client(member)
    assert isinstance(client, ZooClient) and client.hosts.index == member
    retry(client.create, "/x", b"")
    ensemble.kill(member)
    with pytest.raises(ConnectionLossError):
        client.get("/x")
    with pytest.raises(ConnectionLossError):
        ensemble.client(member)  # down: at once, no waiting
    ensemble.restart(member)
    assert client.state == "SUSPENDED"  # in process: it cannot follow its member's restart
    client.stop()
    client.start()  # a new session, on the restarted member
    retry(client.sync, "/")
    assert retry(client.exists, "/x") is not None
    client.close()


def test_wait_for_leader_times_out_without_a_quorum():
    with ZooEnsemble(3) as ensemble:
        leader = ensemble.wait_for_leader(WAIT_S)
        ensemble.kill(leader)
        ensemble.kill((leader + 1) % 3)
        # The survivor may lead for a moment before it notices it has no quorum.
        wait_until(lambda: ensemble.leader() is None, "the survivor to stop leading")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            ensemble.wait_for_leader(0.3)
        assert 0.3 <= time.monotonic() - started < 5
        ensemble.restart(leader)
        assert ensemble.wait_for_leader(WAIT_S) in (leader, (leader + 2) % 3)


def test_wait_for_leader_releases_the_gil_and_ctrl_c_interrupts_it():
    with ZooEnsemble(1) as ensemble:
        assert ensemble.wait_for_leader(WAIT_S) == 0
        ensemble.kill(0)
        counter = [0]
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                counter[0] += 1

        spinner = threading.Thread(target=spin)
        spinner.start()

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        started = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                ensemble.wait_for_leader(math.inf)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            stop.set()
            spinner.join(WAIT_S)
        assert time.monotonic() - started < 2.0
        assert counter[0] > 10000


def test_a_stopped_ensemble_refuses_calls_and_disconnects_its_clients():
    ensemble = ZooEnsemble(1)
    ensemble.wait_for_leader(WAIT_S)
    client = ensemble.client(0)
    ensemble.stop()
    ensemble.stop()  # idempotent
    assert not ensemble.running
    for call in (lambda: ensemble.kill(0), lambda: ensemble.leader(), lambda: ensemble.heal(),
                 lambda: ensemble.client_address(0), lambda: ensemble.wait_for_leader(1)):
        with pytest.raises(RuntimeError, match="stopped"):
            call()
    with pytest.raises(ConnectionLossError):
        ensemble.client(0)
    with pytest.raises(ConnectionLossError):
        client.get("/")
    client.close()


@pytest.mark.parametrize("make, error", [
    (lambda: ZooEnsemble(0), ValueError),
    (lambda: ZooEnsemble(_native.ENSEMBLE_MEMBERS_MAX + 1), ValueError),
    (lambda: ZooEnsemble(-1), ValueError),
    (lambda: ZooEnsemble("3"), TypeError),
    (lambda: ZooEnsemble(True), TypeError),
    (lambda: ZooEnsemble(3, tick_ms=0), ValueError),
    (lambda: ZooEnsemble(3, tick_ms=1.5), TypeError),
    (lambda: ZooEnsemble(3, session_timeout_ms_min=9000, session_timeout_ms_max=4000),
     ValueError),
    (lambda: ZooEnsemble(3, super_digest=b"x"), TypeError),
    (lambda: _native.NativeEnsemble(0), ValueError),
    (lambda: _native.NativeEnsemble(_native.ENSEMBLE_MEMBERS_MAX + 1), ValueError),
])
def test_bad_settings_raise(make, error):
    with pytest.raises(error):
        make()


@pytest.mark.parametrize("call, error", [
    (lambda e: e.kill(3), IndexError),
    (lambda e: e.kill(-1), IndexError),
    (lambda e: e.kill("0"), TypeError),
    (lambda e: e.kill(True), TypeError),
    (lambda e: e.restart(1.0), TypeError),
    (lambda e: e.restart(99), IndexError),
    (lambda e: e.pause(3), IndexError),
    (lambda e: e.resume(None), TypeError),
    (lambda e: e.isolate(3), IndexError),
    (lambda e: e.client_address(3), IndexError),
    (lambda e: e.client(3), IndexError),
    (lambda e: e.client(0, timeout="1"), TypeError),
    (lambda e: EnsembleMember(e, 7), IndexError),
    (lambda e: EnsembleMember("e", 0), TypeError),
    (lambda e: e.partition([[0], [0, 1]]), ValueError),
    (lambda e: e.partition([[0, 1, 2, 1]]), ValueError),
    (lambda e: e.partition([[0], [1, 3]]), IndexError),
    (lambda e: e.partition([[0], [-1]]), IndexError),
    (lambda e: e.partition("012"), TypeError),
    (lambda e: e.partition([0, 1]), TypeError),
    (lambda e: e.partition([["0"]]), TypeError),
    (lambda e: e.partition(None), TypeError),
    (lambda e: e.wait_for_leader(-1), ValueError),
    (lambda e: e.wait_for_leader(math.nan), ValueError),
    (lambda e: e.wait_for_leader("1"), TypeError),
    # The native layer checks on its own too: bypassing the Python layer panics nothing.
    (lambda e: e._native.kill(3), IndexError),
    (lambda e: e._native.partition([[1], [1]]), ValueError),
    (lambda e: e._native.partition([[0], [2**40]]), IndexError),
    (lambda e: e._native.connect(5, 1000), IndexError),
    (lambda e: e._native.client_address(3), IndexError),
])
def test_bad_input_raises_and_changes_nothing(ensemble, call, error):
    leader = ensemble.wait_for_leader(WAIT_S)
    with pytest.raises(error):
        call(ensemble)
    # No member was killed, paused or cut off: each one serves and sees a write at once.
    assert ensemble.leader() == leader
    writer = ensemble.client(leader)
    retry(writer.create, "/probe", b"")
    for member in range(3):
        reader = ensemble.client(member, timeout=4000)
        retry(reader.sync, "/")
        assert retry(reader.exists, "/probe") is not None
        reader.close()
    writer.close()
