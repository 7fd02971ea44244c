#!/usr/bin/env python3
"""Python client throughput, side by side: kazoo and zookeeper-rs's `zookeeper` package against
the same Apache ZooKeeper 3.8 in the same run, then `zookeeper` against our server over TCP, in
process (ZooServer) and with the read cache. Blocking calls from one thread, 100-byte values.

    python3 scripts/bench-python.py [--ops N] [--zk-bin target/release/zookeeper-rs]

Starts both servers itself (Apache ZooKeeper from the Debian package, forceSync=no on both so
the clients, not the disks, are measured) and prints ops/s and the ratio against kazoo.
"""

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Callable, Dict, List, Tuple

from kazoo.client import KazooClient

from zookeeper import ZooKeeper, ZooServer

VALUE = b"x" * 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_serving(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"srvr")
                if b"Mode" in sock.recv(4096):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no server on port {port}")


def start_apache(directory: str) -> Tuple[subprocess.Popen, int]:
    port = free_port()
    config = os.path.join(directory, "zoo.cfg")
    with open(config, "w") as out:
        out.write(f"tickTime=2000\ndataDir={directory}/apache\nclientPort={port}\n"
                  "admin.enableServer=false\n4lw.commands.whitelist=*\nforceSync=no\n")
    process = subprocess.Popen(
        ["java", "-cp", "/etc/zookeeper/conf:/usr/share/java/*",
         "org.apache.zookeeper.server.ZooKeeperServerMain", config],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_serving(port)
    return process, port


def start_ours(directory: str, binary: str) -> Tuple[subprocess.Popen, int]:
    port = free_port()
    config = os.path.join(directory, "ours.cfg")
    with open(config, "w") as out:
        out.write(f"tickTime=2000\ndataDir={directory}/ours\nclientPort={port}\nforceSync=no\n")
    process = subprocess.Popen([binary, "--config", config],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_serving(port)
    return process, port


def timed(ops: int, call: Callable[[int], object]) -> float:
    """ops/s of `call(i)` for i in range(ops), after a warm-up of a tenth (other indexes)."""
    for index in range(ops, ops + ops // 10):
        call(index)
    started = time.perf_counter()
    for index in range(ops):
        call(index)
    return ops / (time.perf_counter() - started)


def measure(name: str, client: object, ops: int, prefix: str) -> Dict[str, float]:
    ensure = getattr(client, "ensure_path")
    ensure(prefix)
    create = getattr(client, "create")
    get = getattr(client, "get")
    set_ = getattr(client, "set")
    results = {
        "create": timed(ops, lambda i: create(f"{prefix}/n{i:08d}-{name}", VALUE)),
        "get": timed(ops, lambda i: get(f"{prefix}/n{i % 100:08d}-{name}")),
        "set": timed(ops, lambda i: set_(f"{prefix}/n{i % 100:08d}-{name}", VALUE)),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--zk-bin", default="target/release/zookeeper-rs")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="bench-python-")
    apache, apache_port = start_apache(directory)
    ours, ours_port = start_ours(directory, args.zk_bin)
    rows: List[Tuple[str, Dict[str, float]]] = []
    try:
        kazoo = KazooClient(hosts=f"127.0.0.1:{apache_port}")
        kazoo.start()
        rows.append(("kazoo -> Apache ZooKeeper", measure("k", kazoo, args.ops, "/k")))
        kazoo.stop()
        with ZooKeeper(f"127.0.0.1:{apache_port}") as zk:
            rows.append(("zookeeper -> Apache ZooKeeper", measure("z", zk, args.ops, "/z")))
        with ZooKeeper(f"127.0.0.1:{ours_port}") as zk:
            rows.append(("zookeeper -> zookeeper-rs (TCP)", measure("t", zk, args.ops, "/t")))
        with ZooServer() as server:
            with server.client() as zk:
                rows.append(("zookeeper -> ZooServer (in process)",
                             measure("e", zk, args.ops, "/e")))
        with ZooKeeper(f"127.0.0.1:{ours_port}", cache=1000) as zk:
            rows.append(("zookeeper cache=1000 -> zookeeper-rs (TCP)",
                         measure("c", zk, args.ops, "/c")))
    finally:
        for process in (apache, ours):
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)
    base = rows[0][1]
    print(f"{'client -> server':44} {'create/s':>10} {'get/s':>10} {'set/s':>10}   "
          "(x kazoo: create get set)")
    for name, result in rows:
        ratios = " ".join(f"{result[op] / base[op]:5.1f}" for op in ("create", "get", "set"))
        print(f"{name:44} {result['create']:10.0f} {result['get']:10.0f} {result['set']:10.0f}"
              f"   {ratios}")


if __name__ == "__main__":
    main()
