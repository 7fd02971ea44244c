"""Runs a real ensemble of server processes on 127.0.0.1, ours or Apache ZooKeeper 3.8, from
the same zoo.cfg lines an operator writes (server.N, myid in dataDir), and does to its members
what operators and failures do: kill -9, SIGSTOP/SIGCONT, restart.

    with ProcessEnsemble("ours", 3) as ensemble:
        client = KazooClient(hosts=ensemble.hosts)
        ensemble.kill(ensemble.leader())
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from conftest import ZKRS_BIN_DEFAULT, ZOOKEEPER_CLASSPATH, _tail, free_port

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# The secret our members share (quorum.secretFile); Apache ZooKeeper has no such key.
SECRET = b"process-ensemble-shared-secret-0123456789"


def four_letter(port, word, timeout_s=1.0):
    """The answer to a four-letter word, or "" when the member does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(word.encode())
            sock.settimeout(timeout_s)
            answer = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    return answer.decode("utf-8", "replace")
                answer += chunk
    except OSError:
        return ""


def mode(port):
    """srvr's Mode (leader, follower, observer, standalone), or None when not serving."""
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):]
    return None


class ProcessEnsemble:
    """`size` members of one kind ("ours" or "reference"), each its own process."""

    def __init__(self, kind, size, tick_ms=2000, extra_lines=(), observers=0, jvm_args=(),
                 spares=0, secret=True, member_lines=None):
        """`size` participants (members 1..size), then `observers` observers, then `spares`
        members that do not start with the others: each is configured as ZooKeeper's manual
        says a joiner is (the ensemble's server lines plus its own), to be added by reconfig
        (`spare_line` is its server string). `extra_lines` go to every member's zoo.cfg,
        `member_lines[N]` to member N's only (`configure` changes them later); `secret=False`
        leaves out our quorum.secretFile."""
        assert kind in ("ours", "reference")
        self.kind = kind
        self.jvm_args = tuple(jvm_args)
        self.size = size + observers
        self.root = tempfile.mkdtemp(prefix=f"zk-ensemble-{kind}-")
        self.client_ports = {}
        self.processes = {}
        self.logs = {}
        peer_lines = []
        self.observers = set(range(size + 1, size + observers + 1))
        self.spares = set(range(self.size + 1, self.size + spares + 1))
        self.spare_lines = {}
        for member in range(1, self.size + spares + 1):
            self.client_ports[member] = free_port()
            role = ":observer" if member in self.observers else ""
            line = f"server.{member}=127.0.0.1:{free_port()}:{free_port()}{role}"
            if member in self.spares:
                self.spare_lines[member] = line
            else:
                peer_lines.append(line)
        self.peer_lines = peer_lines
        secret_path = os.path.join(self.root, "secret")
        with open(secret_path, "wb") as secret_file:
            secret_file.write(SECRET)
        self.base_lines = {}
        for member in self.client_ports:
            directory = self._directory(member)
            os.makedirs(os.path.join(directory, "data"))
            with open(os.path.join(directory, "data", "myid"), "w") as myid:
                myid.write(f"{member}\n")
            lines = [
                f"tickTime={tick_ms}",
                "initLimit=10",
                "syncLimit=5",
                f"dataDir={directory}/data",
                f"clientPort={self.client_ports[member]}",
                "clientPortAddress=127.0.0.1",
                "4lw.commands.whitelist=*",
                "admin.enableServer=false",
                *peer_lines,
                *([self.spare_lines[member]] if member in self.spares else []),
                *extra_lines,
            ]
            if kind == "ours" and secret:
                lines.append(f"quorum.secretFile={secret_path}")
            if member in self.observers:
                lines.append("peerType=observer")
            self.base_lines[member] = lines
            self.configure(member, (member_lines or {}).get(member, ()))

    def configure(self, member, lines):
        """Rewrites `member`'s zoo.cfg with `lines` as its own lines (taken at its next start)."""
        with open(self._config(member), "w") as config:
            config.write("".join(line + "\n" for line in [*self.base_lines[member], *lines]))

    def peer_port(self, member):
        """The port `member`'s server.N line names for its peers."""
        line = next(line for line in self.peer_lines if line.startswith(f"server.{member}="))
        return int(line.split("=", 1)[1].split(":")[1])

    def membership_text(self):
        """What ZooKeeper keeps in /zookeeper/config for these server lines."""
        return "".join(line if line.endswith(":observer") else line + ":participant\n"
                       for line in self.peer_lines).replace(":observer", ":observer\n") \
            + "version=0"

    def _directory(self, member):
        return os.path.join(self.root, f"member{member}")

    def _config(self, member):
        return os.path.join(self._directory(member), "zoo.cfg")

    def spare_line(self, member):
        """The server string a reconfig adds spare `member` with (3.5+ form, client port
        included, as reconfig requires)."""
        return f"{self.spare_lines[member]}:participant;127.0.0.1:{self.client_ports[member]}"

    @property
    def hosts(self):
        """The connect string of every member that starts with the ensemble."""
        return ",".join(f"127.0.0.1:{port}" for member, port in self.client_ports.items()
                        if member not in self.spares)

    def host(self, member):
        return f"127.0.0.1:{self.client_ports[member]}"

    def __enter__(self):
        for member in self.client_ports:
            if member not in self.spares:
                self.start(member)
        self.wait_until_serving()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def start(self, member):
        """Starts (or restarts) `member`'s process on its data directory."""
        assert member not in self.processes or self.processes[member].poll() is not None
        log_path = os.path.join(self._directory(member), "server.log")
        log = open(log_path, "ab")
        if self.kind == "ours":
            binary = os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)
            command = [binary, "--config", self._config(member)]
        else:
            command = ["java", "-Dzookeeper.root.logger=INFO,CONSOLE", "-Xmx256m", *self.jvm_args,
                       "-cp", ZOOKEEPER_CLASSPATH,
                       "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                       self._config(member)]
        self.processes[member] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=self._directory(member))
        self.logs[member] = (log, log_path)

    def kill(self, member):
        """kill -9: no goodbye to peers or clients."""
        process = self.processes[member]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)

    def terminate(self, member):
        """SIGTERM: a graceful stop."""
        process = self.processes[member]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT_S)

    def pause(self, member):
        """SIGSTOP: the process stays, silent (a long GC pause, a frozen VM)."""
        self.processes[member].send_signal(signal.SIGSTOP)

    def resume(self, member):
        self.processes[member].send_signal(signal.SIGCONT)

    def running(self):
        return [member for member, process in self.processes.items() if process.poll() is None]

    def modes(self, members=None):
        return {member: mode(self.client_ports[member])
                for member in (members or self.running())}

    def leader(self, timeout_s=START_TIMEOUT_S, among=None):
        """The member whose srvr says leader (waiting for one)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leaders = [member for member, role in self.modes(among).items() if role == "leader"]
            if len(leaders) == 1:
                return leaders[0]
            time.sleep(0.05)
        raise AssertionError(f"no single leader within {timeout_s} s: {self.modes()}; "
                             f"{self.tails()}")

    def wait_until_serving(self, members=None, timeout_s=START_TIMEOUT_S):
        """Waits until each of `members` (default: every running one) serves clients and
        exactly one of them leads (a leader paused and resumed believes it leads until it
        hears of the newer term)."""
        members = members or self.running()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for member in members:
                process = self.processes[member]
                if process.poll() is not None:
                    raise AssertionError(f"member {member} exited with {process.returncode}: "
                                         f"{_tail(self.logs[member][1])}")
            modes = self.modes(members)
            roles = list(modes.values())
            if (all(role in ("leader", "follower", "observer") for role in roles)
                    and roles.count("leader") == 1):
                return modes
            time.sleep(0.05)
        raise AssertionError(f"members {members} not serving within {timeout_s} s: "
                             f"{self.modes()}; {self.tails()}")

    def tails(self):
        return "\n".join(f"--- member {member}:\n{_tail(path, 1500)}"
                         for member, (_, path) in self.logs.items())

    def close(self):
        for member, process in self.processes.items():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        for log, _ in self.logs.values():
            log.close()
        shutil.rmtree(self.root, ignore_errors=True)
