#!/usr/bin/env python3
"""The server built with each memory allocator (the system's, mimalloc, jemalloc), measured
side by side on fresh data directories:

  memory: RSS growth per znode while 1,000,000 znodes of 100 B (~57-byte paths) are created
          (forceSync off), and RSS after 500 znodes of 1,000,000 bytes are created then deleted
          (12 s later, past jemalloc's 10 s decay, then after a few requests: some allocators
          give memory back only when asked for more);
  speed:  the pipelined rows of scripts/bench-compare.sh, fsync on, 4 s each, the three
          builds alternating so the machine's noise falls on all of them.

  scripts/bench-allocators.py memory|speed [ROUNDS]
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from kazoo.client import KazooClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOCATORS = {"system": ["--no-default-features"],
              "mimalloc": ["--no-default-features", "--features", "allocator-mimalloc"],
              "jemalloc": ["--no-default-features", "--features", "allocator-jemalloc"]}
ROWS = {
    "32 x 64 creates, 100 B": ["--mix", "create=1", "--value-bytes", "100"],
    "32 x 64 setData, 1 KiB": ["--mix", "set=1", "--value-bytes", "1024"],
    "32 x 64 70% get / 30% set, 1 KiB": ["--mix", "get=70,set=30", "--value-bytes", "1024"],
    "32 x 64 get + exists, 10,000 znodes": ["--mix", "get=1,exists=1", "--keys", "10000"],
}


def build(work):
    binaries = {}
    for name, flags in ALLOCATORS.items():
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "zookeeper-rs", *flags],
                       cwd=REPO, check=True)
        binaries[name] = os.path.join(work, f"zookeeper-rs-{name}")
        shutil.copy(os.path.join(REPO, "target", "release", "zookeeper-rs"), binaries[name])
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "zookeeper-bench"], cwd=REPO,
                   check=True)
    return binaries


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def start(binary, force_sync):
    directory = tempfile.mkdtemp(prefix="bench-allocators-")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with open(f"{directory}/zoo.cfg", "w") as cfg:
        cfg.write(f"tickTime=2000\nforceSync={force_sync}\n4lw.commands.whitelist=*\n")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--data-dir", f"{directory}/data",
         "--config", f"{directory}/zoo.cfg"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
                sock.sendall(b"srvr")
                if b"Mode" in sock.recv(4096):
                    return process, port, directory
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{binary} did not start")


def stop(process, directory):
    process.kill()
    process.wait()
    shutil.rmtree(directory, ignore_errors=True)


def bench(port, *options):
    run = subprocess.run([os.path.join(REPO, "target", "release", "zookeeper-bench"),
                          "--hosts", f"127.0.0.1:{port}", "--json", *options],
                         capture_output=True, text=True, check=False)
    return json.loads(run.stdout)["total"]


def memory(name, binary):
    process, port, directory = start(binary, "no")
    before = rss_kb(process.pid)
    bench(port, "--keys", "1000000", "--value-bytes", "100", "--mix", "get=1", "--ops", "1000",
          "--warmup", "0s", "--keep", "--sessions", "8", "--pipeline", "64",
          "--prefix", "/footprint-of-one-million-znodes-with-long-paths")
    time.sleep(1)
    grown = rss_kb(process.pid) - before
    stop(process, directory)
    print(f"{name}: 1M znodes: RSS +{grown / 1024:.0f} MB, {grown * 1024 / 1e6:.0f} B per znode",
          flush=True)

    process, port, directory = start(binary, "no")
    client = KazooClient(hosts=f"127.0.0.1:{port}")
    client.start()
    before = rss_kb(process.pid)
    for index in range(500):
        client.create(f"/big{index}", b"x" * 1_000_000)
    peak = rss_kb(process.pid)
    for index in range(500):
        client.delete(f"/big{index}")
    time.sleep(12)
    idle = rss_kb(process.pid)
    for _ in range(200):
        client.set("/zookeeper/quota", b"y" * 1000)
    asked = rss_kb(process.pid)
    client.stop()
    client.close()
    stop(process, directory)
    print(f"{name}: 500 x 1 MB created then deleted: RSS {before / 1024:.0f} -> peak "
          f"{peak / 1024:.0f} -> {idle / 1024:.0f} MB 12 s after -> {asked / 1024:.0f} MB "
          "after 200 setData", flush=True)


def speed(binaries, rounds):
    for row, options in ROWS.items():
        for round_number in range(rounds):
            figures = []
            for name, binary in binaries.items():
                process, port, directory = start(binary, "yes")
                total = bench(port, "--sessions", "32", "--pipeline", "64", "--duration", "4s",
                              "--warmup", "1s", *options)
                stop(process, directory)
                figures.append(f"{name} {total['ops_per_second']:,.0f}/s "
                               f"p99 {total['latency_us']['p99']:,.0f} us")
            print(f"{row}, round {round_number + 1}: " + " | ".join(figures), flush=True)


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "memory"
    work = tempfile.mkdtemp(prefix="bench-allocators-bin-")
    try:
        binaries = build(work)
        if what == "memory":
            for name, binary in binaries.items():
                memory(name, binary)
        else:
            speed(binaries, int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        # Leave the default build in place for the other scripts.
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "zookeeper-rs"], cwd=REPO,
                       check=True)


if __name__ == "__main__":
    main()
