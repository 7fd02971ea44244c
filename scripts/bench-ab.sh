#!/usr/bin/env bash
# Compares two builds of our server on one workload, alternating them on fresh data
# directories so machine noise falls on both: a change's before and after.
#
#   scripts/bench-ab.sh BEFORE_BINARY AFTER_BINARY [RUNS] [zookeeper-bench options...]
#   ENSEMBLE=1 scripts/bench-ab.sh ...   the same against a 3-member ensemble of each build
#
# The default workload is 32 sessions x 64 pipelined creates of 100 B for 6 s (fsync on).
# Each line prints ops/s, p99 and p99.9 in microseconds.
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,9p' "$0"
  exit 2
fi
before="$(realpath "$1")"
after="$(realpath "$2")"
runs="${3:-2}"
shift $(( $# < 3 ? $# : 3 ))
workload=("$@")
if [ ${#workload[@]} -eq 0 ]; then
  workload=(--sessions 32 --pipeline 64 --mix create=100 --value-bytes 100 --keys 10
            --duration 6s --warmup 1s)
fi

cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh
cargo build --release -q -p zookeeper-bench
target_dir="$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bench="$target_dir/release/zookeeper-bench"

ensemble_pids=()
trap 'kill "${ensemble_pids[@]}" 2>/dev/null || true' EXIT

# one_run BINARY: a fresh server (or ensemble) of that build, the workload, its figures.
one_run() {
  local dir hosts server=""
  dir="$(mktemp -d)"
  if [ -n "${ENSEMBLE:-}" ]; then
    OURS_BIN="$1" start_ensemble ours "$dir"
    wait_for_ensemble
    hosts="$ensemble_hosts"
  else
    local port
    port="$(free_port)"
    "$1" --port "$port" --data-dir "$dir/data" > "$dir/server.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do serving "$port" && break; sleep 0.05; done
    hosts="127.0.0.1:$port"
  fi
  "$bench" --hosts "$hosts" "${workload[@]}" 2>&1 |
    awk '$1 == "total" { print $3 " ops/s, p99 " $7 " us, p99.9 " $8 " us" }'
  for pid in $server "${ensemble_pids[@]}"; do stop_process "$pid"; done
  ensemble_pids=()
  rm -rf "$dir"
}

for run in $(seq "$runs"); do
  echo "run $run before: $(one_run "$before")"
  echo "run $run after:  $(one_run "$after")"
done
