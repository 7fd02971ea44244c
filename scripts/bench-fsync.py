#!/usr/bin/env python3
"""Where the disk sets the limit: how fast this machine's disk makes a small append durable,
and how many log records each server makes durable per fsync, on the synchronous and the
pipelined create rows of scripts/bench-compare.sh (both servers with forceSync on).

A synchronous create cannot be answered sooner than one write + fdatasync of its log record,
so 1 / (fdatasync p50) bounds that row for every server; the pipelined rows are bounded by
records per fsync. fsyncs are counted with `strace -f -c` attached to the server, which slows
it: the counts and their ratio are the figures, not the strace-time throughput. The rows keep
their znodes (--keep), so the cleanup's deletes are not counted.

  scripts/bench-fsync.py            (needs strace; builds the release binaries)
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "python"))
BENCH = os.path.join(REPO, "target", "release", "zookeeper-bench")
SERVER = os.path.join(REPO, "target", "release", "zookeeper-rs")
ZOOKEEPER_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/*"
APPENDS = 3000
ROWS = {
    "1 session, synchronous creates, 1 KiB": ["--sessions", "1", "--pipeline", "1",
                                              "--value-bytes", "1024"],
    "32 x 64 pipelined creates, 100 B": ["--sessions", "32", "--pipeline", "64",
                                         "--value-bytes", "100"],
}


def disk_latency(directory):
    """write + fdatasync of 1.1 KiB appends, as a log record of a 1 KiB create."""
    path = os.path.join(directory, "appends")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    record = b"x" * 1100
    latencies = []
    for _ in range(APPENDS):
        started = time.perf_counter()
        os.write(descriptor, record)
        os.fdatasync(descriptor)
        latencies.append((time.perf_counter() - started) * 1e6)
    os.close(descriptor)
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serving(port):
    try:
        with socket.create_connection(("127.0.0.1", port), 1) as sock:
            sock.sendall(b"srvr")
            return b"Mode" in sock.recv(4096)
    except OSError:
        return False


def start(kind, directory):
    port = free_port()
    if kind == "ours":
        with open(f"{directory}/ours.cfg", "w") as cfg:
            cfg.write("tickTime=2000\nforceSync=yes\n4lw.commands.whitelist=*\n")
        command = [SERVER, "--port", str(port), "--data-dir", f"{directory}/ours",
                   "--config", f"{directory}/ours.cfg"]
    else:
        os.makedirs(f"{directory}/zk")
        with open(f"{directory}/zoo.cfg", "w") as cfg:
            cfg.write(f"tickTime=2000\ndataDir={directory}/zk\nclientPort={port}\n"
                      "4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns=0\n")
        command = ["java", "-Dzookeeper.forceSync=yes", "-Dzookeeper.root.logger=WARN,CONSOLE",
                   "-Xms1g", "-Xmx1g", "-cp", ZOOKEEPER_CLASSPATH,
                   "org.apache.zookeeper.server.ZooKeeperServerMain", f"{directory}/zoo.cfg"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not serving(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind} did not start")
        time.sleep(0.2)
    return process, port


def fsyncs_per_row(process, port, options):
    """Runs the row under strace; returns (requests answered, fsync calls)."""
    counts = os.path.join(tempfile.mkdtemp(), "strace.txt")
    tracer = subprocess.Popen(["strace", "-f", "-c", "-e", "trace=fdatasync,fsync",
                               "-o", counts, "-p", str(process.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    run = subprocess.run([BENCH, "--hosts", f"127.0.0.1:{port}", "--mix", "create=1",
                          "--keys", "1", "--keep", "--warmup", "0s", "--duration", "4s", *options],
                         capture_output=True, text=True, check=False)
    tracer.send_signal(2)
    tracer.wait()
    answered = int(re.search(r"^total\s+([\d,]+)", run.stdout, re.M).group(1).replace(",", ""))
    with open(counts) as report:
        fsyncs = sum(int(match.group(1)) for match in
                     re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?f(?:data)?sync",
                                 report.read(), re.M))
    return answered, fsyncs


def main():
    if not shutil.which("strace"):
        sys.exit("strace is needed (apt-get install strace)")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "zookeeper-rs", "-p",
                    "zookeeper-bench"], cwd=REPO, check=True)
    work = tempfile.mkdtemp(prefix="bench-fsync-")
    try:
        p50, p99 = disk_latency(work)
        print(f"disk ({work}): write + fdatasync of a 1.1 KiB append: p50 {p50:.0f} us, "
              f"p99 {p99:.0f} us; at most {1e6 / p50:,.0f} durable appends/s one at a time")
        print()
        print("| row | server | requests answered | fsyncs | requests per fsync |")
        print("|---|---|---:|---:|---:|")
        for kind in ("ours", "ZooKeeper"):
            directory = tempfile.mkdtemp(dir=work)
            process, port = start(kind, directory)
            try:
                for row, options in ROWS.items():
                    answered, fsyncs = fsyncs_per_row(process, port, options)
                    per = answered / fsyncs if fsyncs else float("nan")
                    print(f"| {row} | {kind} | {answered:,} | {fsyncs:,} | {per:,.1f} |",
                          flush=True)
            finally:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
