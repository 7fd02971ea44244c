#!/usr/bin/env bash
# Compares two builds of our server on one workload, alternating them on fresh data
# directories so machine noise falls on both: a change's before and after.
#
#   scripts/bench-ab.sh BEFORE_BINARY AFTER_BINARY [RUNS] [zookeeper-bench options...]
#
# The default workload is 32 sessions x 64 pipelined creates of 100 B for 6 s (fsync on).
# Each line prints ops/s, p99 and p99.9 in microseconds.
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,8p' "$0"
  exit 2
fi
before="$1"
after="$2"
runs="${3:-2}"
shift $(( $# < 3 ? $# : 3 ))
workload=("$@")
if [ ${#workload[@]} -eq 0 ]; then
  workload=(--sessions 32 --pipeline 64 --mix create=100 --value-bytes 100 --keys 10
            --duration 6s --warmup 1s)
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release -q -p zookeeper-bench --manifest-path "$repo/Cargo.toml"
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bench="$target_dir/release/zookeeper-bench"

one_run() {
  local binary="$1" dir port server
  dir="$(mktemp -d)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$binary" --port "$port" --data-dir "$dir/data" > "$dir/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    if echo srvr | nc -q1 127.0.0.1 "$port" 2>/dev/null | grep -q "Mode:"; then break; fi
    sleep 0.05
  done
  "$bench" --hosts "127.0.0.1:$port" "${workload[@]}" 2>&1 |
    awk '$1 == "total" { print $3 " ops/s, p99 " $7 " us, p99.9 " $8 " us" }'
  kill "$server"
  wait "$server" 2>/dev/null || true
  rm -rf "$dir"
}

for run in $(seq "$runs"); do
  echo "run $run before: $(one_run "$before")"
  echo "run $run after:  $(one_run "$after")"
done
