"""reconfig on a real ensemble, ours and Apache ZooKeeper 3.8 with the same assertions: who may
reconfigure and what is refused, removing a follower and the leader, adding a member started
as ZooKeeper's manual says (the ensemble's server lines plus its own), "/zookeeper/config"
and its watch on every member, a member restarted on its old zoo.cfg keeping the newer
membership, and the Java client following a reconfig with getConfig and updateServerList.

    ENSEMBLE_KINDS=ours,reference   which servers to run (default both)
"""

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (BadArgumentsError, BadVersionError, ConnectionLoss,
                              NewConfigNoQuorumError, NoAuthError)

from conftest import ZOOKEEPER_CLASSPATH
from process_ensemble import ProcessEnsemble, four_letter, mode

KINDS = os.environ.get("ENSEMBLE_KINDS", "ours,reference").split(",")
SUPER_PASSWORD = "reconfig-super-secret"
SUPER_DIGEST = base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PASSWORD}".encode()).digest()).decode()
RECONFIG_LINES = ("reconfigEnabled=true",
                  f"DigestAuthenticationProvider.superDigest=super:{SUPER_DIGEST}")
WAIT_S = 30.0
UPDATE_SERVER_LIST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "java", "UpdateServerList.java")


def client(hosts, superuser=False):
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=WAIT_S)
    if superuser:
        zk.add_auth("digest", f"super:{SUPER_PASSWORD}")
    return zk


def members_of(config_data):
    """The server lines of "/zookeeper/config" (ZooKeeper orders them as its hash map does),
    and its version line."""
    lines = config_data.decode().split("\n")
    return set(lines[:-1]), lines[-1]


def assert_config_answer(answer, expected_lines):
    """A reconfig's answer: the new "/zookeeper/config" whose version is the reconfig's zxid,
    written with version -1 as ZooKeeper writes it."""
    data, stat = answer
    lines, version = members_of(data)
    assert lines == set(expected_lines), data
    assert version == f"version={stat.mzxid:x}", (data, stat)
    assert (stat.version, stat.czxid, stat.ctime, stat.dataLength) == (-1, 0, 0, len(data))


def line(ensemble, member):
    """Member `member`'s line as "/zookeeper/config" holds it."""
    if member in ensemble.spares:
        return ensemble.spare_line(member)
    return next(peer for peer in ensemble.peer_lines
                if peer.startswith(f"server.{member}=")) + ":participant"


def until(what, check, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.1)


def retry_connection_loss(call):
    """A write through a member that was leaving may answer ConnectionLoss: ask again."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return call()
        except ConnectionLoss:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("kind", KINDS)
def test_reconfig_is_refused_as_zookeeper_refuses_it(kind):
    with ProcessEnsemble(kind, 3, tick_ms=500, extra_lines=RECONFIG_LINES) as ensemble:
        plain = client(ensemble.hosts)
        admin = client(ensemble.hosts, superuser=True)
        before = admin.get("/zookeeper/config")
        # "/zookeeper/config" is world-readable only: only the super user passes.
        with pytest.raises(NoAuthError):
            plain.reconfig(joining=None, leaving="3", new_members=None)
        with pytest.raises(BadVersionError):
            admin.reconfig(joining=None, leaving="3", new_members=None, from_config=0x12345)
        # Joiners need the 3.5+ form with the client port.
        with pytest.raises(BadArgumentsError):
            admin.reconfig(joining="server.9=127.0.0.1:1001:1002", leaving=None,
                           new_members=None)
        # Fewer than two voters would be a standalone server.
        with pytest.raises(BadArgumentsError):
            admin.reconfig(joining=None, leaving="2,3", new_members=None)
        # Two of three voters of the new membership are not running.
        with pytest.raises(NewConfigNoQuorumError):
            admin.reconfig(joining=None, leaving=None, new_members=(
                f"{line(ensemble, 1)},server.8=127.0.0.1:1004:1005;1006,"
                "server.9=127.0.0.1:1007:1008;1009"))
        # Nothing refused changed anything.
        assert admin.get("/zookeeper/config")[0] == before[0]
        plain.stop()
        admin.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_reconfig_removes_and_adds_members_and_outlives_restarts(kind):
    with ProcessEnsemble(kind, 3, tick_ms=500, extra_lines=RECONFIG_LINES,
                         spares=1) as ensemble:
        leader = ensemble.leader()
        admin = client(ensemble.host(leader), superuser=True)
        admin.create("/before", b"kept")
        watcher = client(ensemble.hosts)
        events = []
        watcher.get("/zookeeper/config", watch=events.append)

        # Leaving a member that is not one changes only the version.
        answer = admin.reconfig(joining=None, leaving="7", new_members=None)
        assert_config_answer(answer, [line(ensemble, member) for member in (1, 2, 3)])
        until("the config watch fires", lambda: events)
        assert [(event.type, event.path) for event in events] == [
            ("CHANGED", "/zookeeper/config")]
        # from_config names the version just made.
        version = answer[1].mzxid

        follower = next(member for member in (1, 2, 3) if member != leader)
        answer = admin.reconfig(joining=None, leaving=str(follower), new_members=None,
                                from_config=version)
        staying = [member for member in (1, 2, 3) if member != follower]
        assert_config_answer(answer, [line(ensemble, member) for member in staying])
        if kind == "ours":
            # Ours stops serving at once, so its clients move to a member that counts;
            # Apache ZooKeeper's removed follower serves until its leader changes.
            until("the removed follower stops serving",
                  lambda: mode(ensemble.client_ports[follower]) is None)

        # A new member, configured with the ensemble's lines plus its own, added by reconfig:
        # it catches up and serves what was written before it came.
        ensemble.start(4)
        answer = admin.reconfig(joining=ensemble.spare_line(4), leaving=None,
                                new_members=None)
        current = [line(ensemble, member) for member in (*staying, 4)]
        assert_config_answer(answer, current)
        ensemble.wait_until_serving(members=[*staying, 4])
        joiner = client(ensemble.host(4))
        assert joiner.get("/before")[0] == b"kept"
        joiner.sync("/")
        assert members_of(joiner.get("/zookeeper/config")[0]) == members_of(answer[0])
        conf = four_letter(ensemble.client_ports[4], "conf")
        assert set(conf.split("membership: \n")[1].strip().split("\n")[:-1]) == set(current)
        joiner.stop()

        # The leader leaves: another member leads, and writes go on.
        survivors = [member for member in (*staying, 4) if member != leader]
        try:
            answer = admin.reconfig(joining=None, leaving=str(leader), new_members=None)
            assert_config_answer(answer, [line(ensemble, member) for member in survivors])
        except ConnectionLoss:
            pass  # Apache ZooKeeper's leader drops its clients as it leaves
        new_leader = ensemble.leader(among=survivors)
        assert new_leader in survivors
        writer = client(",".join(ensemble.host(member) for member in survivors))
        retry_connection_loss(lambda: writer.create("/after", b"written"))
        final = writer.get("/zookeeper/config")[0]
        assert members_of(final)[0] == {line(ensemble, member) for member in survivors}
        writer.stop()

        # A member restarted on its zoo.cfg, which still lists the first three members, runs
        # with the newer membership and rejoins.
        restarted = next(member for member in survivors if member != new_leader)
        ensemble.kill(restarted)
        ensemble.start(restarted)
        ensemble.wait_until_serving(members=survivors)
        again = client(ensemble.host(restarted))
        again.sync("/")
        assert members_of(again.get("/zookeeper/config")[0]) == members_of(final)
        assert again.get("/after")[0] == b"written"
        again.stop()
        admin.stop()
        watcher.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_the_java_client_follows_a_reconfig_with_get_config_and_update_server_list(kind):
    """ZooKeeper's Java client reads the new membership (getConfig), takes its client addresses
    (updateServerList), and fails over to the member it learned of only there. (Debian's C
    client 3.8.0 does not: after zoo_set_servers it keeps dialing the member it lost, against
    Apache ZooKeeper as against ours.)"""
    if shutil.which("javac") is None:
        pytest.fail("needs javac (scripts/test-all.sh installs a JDK)")
    build = tempfile.mkdtemp(prefix="zk-java-servers-")
    try:
        subprocess.run(["javac", "-proc:none", "-cp", ZOOKEEPER_CLASSPATH, "-d", build,
                        UPDATE_SERVER_LIST], check=True)
        with ProcessEnsemble(kind, 3, tick_ms=500, extra_lines=RECONFIG_LINES,
                             spares=1) as ensemble:
            leader = ensemble.leader()
            ensemble.start(4)
            admin = client(ensemble.host(leader), superuser=True)
            answer = admin.reconfig(joining=ensemble.spare_line(4), leaving=None,
                                    new_members=None)
            assert_config_answer(answer, [line(ensemble, member) for member in (1, 2, 3, 4)])
            ensemble.wait_until_serving(members=[1, 2, 3, 4])
            first = next(member for member in (1, 2, 3) if member != leader)
            java = subprocess.Popen(
                ["java", "-cp", f"{build}:{ZOOKEEPER_CLASSPATH}", "UpdateServerList",
                 ensemble.host(first)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                # Only the joiner's line carries a client address (the others are zoo.cfg's
                # pre-3.5 lines), so the new list is the joiner alone.
                assert java.stdout.readline().strip() == f"SERVERS {ensemble.host(4)}"
                ensemble.kill(first)
                java.stdin.write("go\n")
                java.stdin.flush()
                output = java.stdout.read()
                assert java.wait(timeout=WAIT_S) == 0, output
                assert output.strip().endswith("PASS"), output
            finally:
                if java.poll() is None:
                    java.kill()
            admin.stop()
    finally:
        shutil.rmtree(build, ignore_errors=True)


@pytest.mark.parametrize("kind", KINDS)
def test_reconfig_turns_a_follower_into_an_observer_and_back(kind):
    """A joiner line naming an existing member replaces its line: the same member observes
    (it forwards writes, srvr says observer), then votes again."""
    with ProcessEnsemble(kind, 3, tick_ms=500, extra_lines=RECONFIG_LINES) as ensemble:
        leader = ensemble.leader()
        admin = client(ensemble.host(leader), superuser=True)
        member = next(other for other in (1, 2, 3) if other != leader)
        # Joiners carry their client address (the 3.5+ form).
        participant = f"{line(ensemble, member)};{ensemble.host(member)}"
        observer = participant.replace(":participant;", ":observer;")
        others = [line(ensemble, other) for other in (1, 2, 3) if other != member]
        answer = admin.reconfig(joining=observer, leaving=None, new_members=None)
        assert_config_answer(answer, [observer, *others])
        until("the member observes", lambda: mode(ensemble.client_ports[member]) == "observer")
        through_observer = client(ensemble.host(member))
        retry_connection_loss(lambda: through_observer.create("/through-observer", b"x"))
        assert admin.get("/through-observer")[0] == b"x"
        answer = admin.reconfig(joining=participant, leaving=None, new_members=None)
        assert_config_answer(answer, [participant, *others])
        until("the member follows again",
              lambda: mode(ensemble.client_ports[member]) == "follower")
        through_observer.stop()
        admin.stop()
