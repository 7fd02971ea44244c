"""Guards against our server answering zkCli.sh (the Java client's shell) differently from ZooKeeper 3.8: one scripted session, outputs compared after normalising."""

import os
import re
import shutil
import subprocess

import pytest
from conftest import CLIENT_SERVERS

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSION = os.path.join(TESTS_DIR, "zkcli", "session.txt")
EXPECTED = os.path.join(TESTS_DIR, "zkcli", "expected.txt")
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
ZKCLI_TIMEOUT_S = 60

# Lines that come from the JVM, logging or the shell's banner, not from the server's answers.
NOISE = re.compile(
    r"^(SLF4J: |Connecting to |Welcome to ZooKeeper!|JLine support is|WATCHER::$|$"
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)")
TIME_FIELD = re.compile(r"^(ctime|mtime) = .*$")
ZXID_FIELD = re.compile(r"^(cZxid|mZxid|pZxid) = (0x[0-9a-f]+)$")
OWNER_FIELD = re.compile(r"^ephemeralOwner = (0x[0-9a-f]+)$")
EVENT = re.compile(r"^WatchedEvent ")


def normalise(raw):
    """Returns (lines, events): the answers with times, zxids and session ids replaced by
    placeholders, and the watch events apart (they print from another thread, so their place
    among the answers is not fixed).

    Zxids become Z1, Z2, ... in order of first appearance, which keeps which fields are equal
    (cZxid == pZxid of a fresh node) while dropping the absolute numbers.
    """
    zxids = {}
    lines, events = [], []
    for line in raw.splitlines():
        line = line.rstrip()
        if NOISE.match(line):
            continue
        if EVENT.match(line):
            events.append(line)
            continue
        if TIME_FIELD.match(line):
            line = TIME_FIELD.sub(r"\1 = TIME", line)
        match = ZXID_FIELD.match(line)
        if match:
            zxids.setdefault(match.group(2), f"Z{len(zxids) + 1}")
            line = f"{match.group(1)} = {zxids[match.group(2)]}"
        match = OWNER_FIELD.match(line)
        if match and match.group(1) != "0x0":
            line = "ephemeralOwner = SESSION"
        lines.append(line)
    return lines, sorted(events)


_outputs = {}


def run_session(request, server):
    """Runs the scripted session once per server per test run (the JVM costs ~1 s)."""
    if server not in _outputs:
        if not os.path.exists(ZKCLI) or shutil.which("java") is None:
            pytest.fail("needs zkCli.sh from Debian's zookeeper package (scripts/test-all.sh installs it)")
        address = request.getfixturevalue(server)
        with open(SESSION) as script:
            # zkCli.sh has no comments: it would answer "#" with its usage text.
            commands = "".join(line for line in script if not line.startswith("#"))
        result = subprocess.run(
            [ZKCLI, "-server", address], input=commands, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=ZKCLI_TIMEOUT_S)
        _outputs[server] = (result.returncode, result.stdout)
    return _outputs[server]


@pytest.mark.parametrize("server", CLIENT_SERVERS)
def test_zkcli_session_matches_expected(request, server):
    returncode, raw = run_session(request, server)
    assert returncode == 0, raw
    lines, events = normalise(raw)
    with open(EXPECTED) as expected_file:
        expected = expected_file.read().splitlines()
    separator = expected.index("--- events")
    assert lines == expected[:separator], f"raw zkCli output:\n{raw}"
    assert events == expected[separator + 1:], f"raw zkCli output:\n{raw}"


def test_zkcli_outputs_of_both_servers_agree(request):
    ours = normalise(run_session(request, "zk_server")[1])
    reference = normalise(run_session(request, "reference_server")[1])
    assert ours == reference


if __name__ == "__main__":
    # Regenerates expected.txt from a server's output: python3 test_zkcli.py < raw.txt
    import sys
    lines, events = normalise(sys.stdin.read())
    sys.stdout.write("\n".join(lines + ["--- events"] + events) + "\n")
