#!/usr/bin/env bash
# Side-by-side throughput and memory of our server and Apache ZooKeeper 3.8 (Debian's package),
# measured in the same run with the same load generator (core/examples/wire_load.rs): pipelined
# requests over 4 connections, 32 in flight each, 100-byte values. Both run with forceSync=no
# (log written, not fsynced), so neither waits on this VM's disk. Prints each figure
# and the ratio ours/ZooKeeper. Not run by CI: the machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_PER_RUN:-4}
cargo build --release -q -p zookeeper-rs -p zookeeper-core --bin zookeeper-rs --example wire_load
load=target/release/examples/wire_load
work=$(mktemp -d)
trap 'kill $ours $theirs 2>/dev/null || true; rm -rf "$work"' EXIT

source scripts/bench-common.sh
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
znodes() { python3 - "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(b"mntr"); data = b""
while chunk := s.recv(65536):
    data += chunk
print(dict(l.split("\t", 1) for l in data.decode().splitlines() if "\t" in l)["zk_znode_count"])
PY
}

our_port=$(free_port); their_port=$(free_port)
start_ours "$our_port" "$work" no
start_zookeeper "$their_port" "$work" no
until serving "$our_port" && serving "$their_port"; do sleep 0.2; done
base_ours=$(rss_kb $ours); base_theirs=$(rss_kb $theirs)

# Warm up the JVM's JIT so ZooKeeper is measured at its best.
"$load" "127.0.0.1:$their_port" get 4 32 3 >/dev/null
"$load" "127.0.0.1:$their_port" set 4 32 3 >/dev/null

echo "operation ours/s zookeeper/s ratio"
for op in get exists set create; do
  a=$("$load" "127.0.0.1:$our_port" "$op" 4 32 "$seconds" | sed 's/.*per_second=//')
  b=$("$load" "127.0.0.1:$their_port" "$op" 4 32 "$seconds" | sed 's/.*per_second=//')
  echo "$op $a $b $(python3 -c "print(f'{$a/$b:.1f}x')")"
done
n_ours=$(znodes "$our_port"); n_theirs=$(znodes "$their_port")
echo "memory: idle RSS ours ${base_ours} kB, zookeeper ${base_theirs} kB"
python3 -c "
a=($(rss_kb $ours)-$base_ours)*1024/$n_ours; b=($(rss_kb $theirs)-$base_theirs)*1024/$n_theirs
print(f'memory per znode (RSS growth / znodes): ours {a:.0f} B over $n_ours, zookeeper {b:.0f} B over $n_theirs, ratio {a/b:.2f}')"
