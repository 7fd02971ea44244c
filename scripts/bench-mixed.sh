#!/usr/bin/env bash
# The pipelined mix of reads and writes, side by side with Apache ZooKeeper 3.8 in the same
# run: 32 connections with 64 requests in flight each, 70% getData / 30% setData of 1 KiB on
# one znode, fsync on for both (each write answered once durable). Prints both figures and
# the ratio ours/ZooKeeper. Not run by CI: the machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_PER_RUN:-6}
cargo build --release -q -p zookeeper-rs -p zookeeper-core --bin zookeeper-rs --example wire_load
load=target/release/examples/wire_load
work=$(mktemp -d)
trap 'kill $ours $theirs 2>/dev/null || true; rm -rf "$work"' EXIT

source scripts/bench-common.sh

our_port=$(free_port); their_port=$(free_port)
start_ours "$our_port" "$work" yes
start_zookeeper "$their_port" "$work" yes
until serving "$our_port" && serving "$their_port"; do sleep 0.2; done

export VALUE_BYTES=1024
# Warm up the JVM's JIT so ZooKeeper is measured at its best.
"$load" "127.0.0.1:$their_port" mix 32 64 3 >/dev/null

echo "operation ours/s zookeeper/s ratio"
for op in mix get set; do
  a=$("$load" "127.0.0.1:$our_port" "$op" 32 64 "$seconds" | sed 's/.*per_second=//')
  b=$("$load" "127.0.0.1:$their_port" "$op" 32 64 "$seconds" | sed 's/.*per_second=//')
  echo "$op $a $b $(python3 -c "print(f'{$a/$b:.1f}x')")"
done
