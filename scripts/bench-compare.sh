#!/usr/bin/env bash
# Our server and Apache ZooKeeper 3.8 (Debian's package) side by side, measured by the same
# client, zookeeper-bench, in the same run: both durable with forceSync on (a write is answered
# once its log record is fsynced), tickTime 2000, ZooKeeper with a fixed 1 GiB heap, each on a
# free port. Every row runs against ours, then against ZooKeeper, on a fresh prefix that the
# tool deletes afterwards. Prints the machine, the date and a markdown table: requests/s of
# each, the ratio ours/ZooKeeper, and latency p50 / p99.
#
# SECONDS_PER_ROW (default 5) and WARMUP_PER_ROW (default 1s) set each row's length; the JVM is
# warmed up once first. Not run by CI: the machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_PER_ROW:-5}
warmup=${WARMUP_PER_ROW:-1s}
cargo build --release -q -p zookeeper-rs -p zookeeper-bench
bench=target/release/zookeeper-bench
work=$(mktemp -d)
ours='' theirs=''
trap 'kill $ours $theirs 2>/dev/null || true; rm -rf "$work"' EXIT

source scripts/bench-common.sh

our_port=$(free_port); their_port=$(free_port)
start_ours "$our_port" "$work" yes
ZOOKEEPER_HEAP="-Xms1g -Xmx1g" start_zookeeper "$their_port" "$work" yes
until serving "$our_port" && serving "$their_port"; do sleep 0.2; done

# The rows: a label, then zookeeper-bench's options for it.
rows=(
  "1 session, synchronous creates, 1 KiB|--sessions 1 --pipeline 1 --mix create=1 --value-bytes 1024"
  "1 session, synchronous getData, 1 KiB|--sessions 1 --pipeline 1 --mix get=1 --value-bytes 1024"
  "32 x 64 pipelined creates, 100 B|--sessions 32 --pipeline 64 --mix create=1 --value-bytes 100"
  "32 x 64 pipelined setData, 1 KiB|--sessions 32 --pipeline 64 --mix set=1 --value-bytes 1024"
  "32 x 64 pipelined getData + exists, 10,000 znodes|--sessions 32 --pipeline 64 --mix get=1,exists=1 --keys 10000"
  "32 x 64 pipelined 70% getData / 30% setData, 1 KiB|--sessions 32 --pipeline 64 --mix get=70,set=30 --value-bytes 1024"
)

# measure PORT OPTIONS...: one run; prints "requests/s p50 p99" from its JSON report, and
# warns on stderr about errors or lost connections (the figures then cover what was answered).
measure() {
  local port=$1; shift
  local status=0
  "$bench" --hosts "127.0.0.1:$port" --warmup "$warmup" --duration "${seconds}s" --json "$@" \
    > "$work/report.json" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
    echo "zookeeper-bench failed ($status): $*" >&2
    exit 1
  fi
  python3 - "$work/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
total = report["total"]
if total["errors"] or report["lost_connections"]:
    print(f"warning: errors {total['errors']}, lost {report['lost_connections']}", file=sys.stderr)
latency = total["latency_us"]
print(f"{total['ops_per_second']:.0f} {latency['p50']:.0f} {latency['p99']:.0f}")
PY
}

# Warm up the JVM's JIT so ZooKeeper is measured at its best; ours gets the same load.
for port in "$their_port" "$our_port"; do
  measure "$port" --sessions 32 --pipeline 64 --mix get=70,set=30 --value-bytes 1024 >/dev/null
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "zookeeper-bench options per row: --duration ${seconds}s --warmup $warmup, then the row's"
echo
echo "| workload | ours, requests/s | ZooKeeper, requests/s | ratio | ours p50 / p99 us | ZooKeeper p50 / p99 us |"
echo "|---|---:|---:|---:|---:|---:|"
for row in "${rows[@]}"; do
  label=${row%%|*}; options=${row#*|}
  # shellcheck disable=SC2086 # the options are words on purpose
  ours_figures=$(measure "$our_port" $options)
  # shellcheck disable=SC2086
  their_figures=$(measure "$their_port" $options)
  python3 - "$label" $ours_figures $their_figures <<'PY'
import sys
label, a, a50, a99, b, b50, b99 = sys.argv[1], *map(int, sys.argv[2:])
ratio = f"{a / b:.1f}x" if b else "-"
print(f"| {label} | {a:,} | {b:,} | {ratio} | {a50} / {a99} | {b50} / {b99} |")
PY
done
