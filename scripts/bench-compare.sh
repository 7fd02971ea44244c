#!/usr/bin/env bash
# Our server and Apache ZooKeeper 3.8 (Debian's package) side by side, measured by the same
# client, zookeeper-bench, in the same run: both durable with forceSync on (a write is answered
# once its log record is fsynced), tickTime 2000, maxClientCnxns=0, ZooKeeper with a fixed
# 1 GiB heap, each on a free port. Every row runs against ours, then against ZooKeeper, on a
# fresh prefix that the tool deletes afterwards. Prints the machine, the date and markdown
# tables: each figure of both servers and the ratio ours/ZooKeeper.
#
# The groups of rows (all by default; ROWS=fanout,sessions runs a subset):
#   pipelined  synchronous and 32 x 64 pipelined requests: requests/s, latency p50 / p99
#   fanout     FANOUT_SESSIONS (1000) sessions x FANOUT_WATCHES (1000) watched znodes:
#              time to set the watches, setData to the last notification over FANOUT_ROUNDS (20)
#   sessions   EPHEMERAL_SESSIONS (10000) sessions with an ephemeral each, plus the one that
#              counts them (10,001 connections); session timeout 4 s: connect and create rates, and the time from the sockets
#              dropping (no closeSession) until the server has deleted every ephemeral
#   footprint  FOOTPRINT_ZNODES (1000000) znodes of 100 B with ~60-byte paths, one server at a
#              time (ZooKeeper with -Xmx4g instead): RSS (ZooKeeper's after a full GC, and its
#              used heap), newest snapshot, restart time to the first answer
#   ensemble   three members of each kind on 127.0.0.1, one kind at a time, sessions spread
#              over them: the pipelined creates, setData, getData + exists and 70/30 rows
#
# FORCE_SYNC=no runs the pipelined, fanout and sessions groups with the log written but not
# fsynced (the old scripts/bench-wire.sh's setting). SECONDS_PER_ROW (default 5) and WARMUP_PER_ROW (default 1s) set the length of each
# request-rate row; the JVM is warmed up once first. Not run by CI: the machine is shared
# and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_PER_ROW:-5}
warmup=${WARMUP_PER_ROW:-1s}
rows_wanted=${ROWS:-pipelined,fanout,sessions,footprint,ensemble}
for group in ${rows_wanted//,/ }; do
  case $group in
    pipelined|fanout|sessions|footprint|ensemble) ;;
    *) echo "ROWS: unknown group $group (pipelined, fanout, sessions, footprint, ensemble)" >&2
       exit 2 ;;
  esac
done
wants() { [[ ",$rows_wanted," == *",$1,"* ]]; }
fanout_sessions=${FANOUT_SESSIONS:-1000}
fanout_watches=${FANOUT_WATCHES:-1000}
fanout_rounds=${FANOUT_ROUNDS:-20}
ephemeral_sessions=${EPHEMERAL_SESSIONS:-10000}
force_sync=${FORCE_SYNC:-yes}
footprint_znodes=${FOOTPRINT_ZNODES:-1000000}

# 10,000 sessions are 10,000 sockets in the client and in the server (which inherits this).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((ephemeral_sessions + 1000)) ] && wants sessions; then
  echo "ulimit -n is $(ulimit -n): too few descriptors for $ephemeral_sessions sessions" >&2
  exit 2
fi

cargo build --release -q -p zookeeper-rs -p zookeeper-bench
bench=target/release/zookeeper-bench
work=$(mktemp -d)
ours='' theirs='' ensemble_pids=()
trap 'kill $ours $theirs "${ensemble_pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

source scripts/bench-common.sh

# measure HOSTS OPTIONS...: one run; prints "requests/s p50 p99" from its JSON report, and
# warns on stderr about errors or lost connections (the figures then cover what was answered).
measure() {
  local hosts=$1; shift
  local status=0
  "$bench" --hosts "$hosts" --warmup "$warmup" --duration "${seconds}s" --json "$@" \
    > "$work/report.json" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
    echo "zookeeper-bench failed ($status): $*" >&2
    exit 1
  fi
  python3 - "$work/report.json" "${who:-}${who:+ }$hosts $*" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
total = report["total"]
if total["errors"] or report["lost_connections"]:
    print(f"warning: {sys.argv[2]}: errors {total['errors']}, lost {report['lost_connections']}",
          file=sys.stderr)
latency = total["latency_us"]
print(f"{total['ops_per_second']:.0f} {latency['p50']:.0f} {latency['p99']:.0f}")
PY
}

rate_header() {
  echo "| workload | ours, requests/s | ZooKeeper, requests/s | ratio | ours p50 / p99 us | ZooKeeper p50 / p99 us |"
  echo "|---|---:|---:|---:|---:|---:|"
}

# rate_row LABEL OURS_FIGURES THEIR_FIGURES: one table row from two `measure` outputs.
rate_row() {
  # shellcheck disable=SC2086 # the figures are words on purpose
  python3 - "$1" $2 $3 <<'PY'
import sys
label, a, a50, a99, b, b50, b99 = sys.argv[1], *map(int, sys.argv[2:])
ratio = f"{a / b:.1f}x" if b else "-"
print(f"| {label} | {a:,} | {b:,} | {ratio} | {a50} / {a99} | {b50} / {b99} |")
PY
}

# rate_rows OURS_HOSTS THEIR_HOSTS ROW...: the request-rate table, each row "label|options".
rate_rows() {
  local ours_hosts=$1 their_hosts=$2 row options; shift 2
  rate_header
  for row in "$@"; do
    options=${row#*|}
    # shellcheck disable=SC2086 # the options are words on purpose
    rate_row "${row%%|*}" "$(who=ours measure "$ours_hosts" $options)" \
      "$(who=ZooKeeper measure "$their_hosts" $options)"
  done
}

# figures OURS.json THEIRS.json "label|key|decimals"...: a table of figures from two JSON
# objects (a missing or null figure prints -), with the ratio ours/ZooKeeper.
figures() {
  python3 - "$@" <<'PY'
import json, sys
ours, theirs = (json.load(open(path)) for path in sys.argv[1:3])
print("| figure | ours | ZooKeeper | ours / ZooKeeper |")
print("|---|---:|---:|---:|")
for row in sys.argv[3:]:
    label, key, decimals = row.split("|")
    a, b = ours.get(key), theirs.get(key)
    show = lambda value: "-" if value is None else f"{value:,.{int(decimals)}f}"
    ratio = f"{a / b:.2f}" if a is not None and b else "-"
    print(f"| {label} | {show(a)} | {show(b)} | {ratio} |")
PY
}

# scenario HOSTS OUT OPTIONS...: one zookeeper-bench scenario run, its JSON report to OUT.
scenario() {
  local hosts=$1 out=$2; shift 2
  if ! "$bench" --hosts "$hosts" --json "$@" > "$out"; then
    echo "zookeeper-bench failed (${who:-}): --hosts $hosts $*" >&2
    exit 1
  fi
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "rows: $rows_wanted; forceSync=$force_sync (footprint and ensemble: yes)"

if wants pipelined || wants fanout || wants sessions; then
  our_port=$(free_port); their_port=$(free_port)
  start_ours "$our_port" "$work" "$force_sync"
  ZOOKEEPER_HEAP="-Xms1g -Xmx1g" start_zookeeper "$their_port" "$work" "$force_sync"
  until serving "$our_port" && serving "$their_port"; do sleep 0.2; done
  ours_hosts=127.0.0.1:$our_port their_hosts=127.0.0.1:$their_port
  # Warm up the JVM's JIT so ZooKeeper is measured at its best; ours gets the same load.
  for hosts in "$their_hosts" "$ours_hosts"; do
    measure "$hosts" --sessions 32 --pipeline 64 --mix get=70,set=30 --value-bytes 1024 >/dev/null
  done
fi

if wants pipelined; then
  echo
  echo "zookeeper-bench options per row: --duration ${seconds}s --warmup $warmup, then the row's"
  echo
  rate_rows "$ours_hosts" "$their_hosts" \
    "1 session, synchronous creates, 1 KiB|--sessions 1 --pipeline 1 --mix create=1 --value-bytes 1024" \
    "1 session, synchronous getData, 1 KiB|--sessions 1 --pipeline 1 --mix get=1 --value-bytes 1024" \
    "32 x 64 pipelined creates, 100 B|--sessions 32 --pipeline 64 --mix create=1 --value-bytes 100" \
    "32 x 64 pipelined setData, 1 KiB|--sessions 32 --pipeline 64 --mix set=1 --value-bytes 1024" \
    "32 x 64 pipelined getData + exists, 10,000 znodes|--sessions 32 --pipeline 64 --mix get=1,exists=1 --keys 10000" \
    "32 x 64 pipelined 70% getData / 30% setData, 1 KiB|--sessions 32 --pipeline 64 --mix get=70,set=30 --value-bytes 1024"
fi

if wants fanout; then
  options=(--scenario watch-fanout --sessions "$fanout_sessions" --watches "$fanout_watches"
           --rounds "$fanout_rounds" --value-bytes 100)
  who=ours scenario "$ours_hosts" "$work/fanout-ours.json" "${options[@]}"
  who=ZooKeeper scenario "$their_hosts" "$work/fanout-theirs.json" "${options[@]}"
  echo
  echo "watch fan-out: zookeeper-bench ${options[*]}"
  echo
  figures "$work/fanout-ours.json" "$work/fanout-theirs.json" \
    "connect $fanout_sessions sessions, s|connect_s|2" \
    "set $((fanout_sessions * fanout_watches)) watches, s|watches_set_s|2" \
    "watches set per second|watches_per_second|0" \
    "setData to last notification, p50 ms|last_p50_ms|1" \
    "setData to last notification, p99 ms|last_p99_ms|1" \
    "notifications missing|notifications_missing|0"
fi

if wants sessions; then
  options=(--scenario ephemerals --sessions "$ephemeral_sessions" --session-timeout 4s
           --value-bytes 10)
  who=ours scenario "$ours_hosts" "$work/sessions-ours.json" "${options[@]}"
  who=ZooKeeper scenario "$their_hosts" "$work/sessions-theirs.json" "${options[@]}"
  echo
  echo "sessions with an ephemeral each: zookeeper-bench ${options[*]}"
  echo
  figures "$work/sessions-ours.json" "$work/sessions-theirs.json" \
    "sessions established per second|connects_per_second|0" \
    "ephemerals created per second|creates_per_second|0" \
    "sessions lost before their create was answered|sessions_lost|0" \
    "session timeout agreed, ms|session_timeout_ms|0" \
    "silent to first ephemeral deleted, s|first_expiry_s|2" \
    "silent to every ephemeral deleted, s|all_expired_s|2" \
    "ephemerals left|left|0"
fi

if [ -n "$ours" ]; then
  stop_process "$ours"; stop_process "$theirs"; ours='' theirs=''
fi

# newest_snapshot DIR: "bytes name" of the newest snapshot file under DIR.
newest_snapshot() {
  local file
  file=$(find "$1" -name 'snapshot.*' ! -name '*.tmp' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
  if [ -n "$file" ]; then echo "$(stat -c %s "$file") $(basename "$file")"; else echo "0 -"; fi
}

# footprint KIND(ours|zookeeper) DIR: loads the znodes into a fresh server, measures it,
# restarts it; writes DIR/figures.json.
footprint() {
  local kind=$1 dir=$2 port pid base_rss rss heap_used base_znodes znodes snapshot restarted
  local start_ns
  mkdir -p "$dir"; port=$(free_port)
  start_server() {
    if [ "$kind" = ours ]; then start_ours "$port" "$dir" yes; pid=$ours
    else ZOOKEEPER_HEAP=-Xmx4g start_zookeeper "$port" "$dir" yes; pid=$theirs; fi
  }
  # The resident set once the JVM has collected its garbage (a full GC; ours has none).
  settled_rss() {
    if [ "$kind" = zookeeper ]; then jcmd "$pid" GC.run >/dev/null; sleep 2; fi
    rss_kb "$pid"
  }
  start_server
  until serving "$port"; do sleep 0.1; done
  base_rss=$(settled_rss); base_znodes=$(mntr_value "$port" zk_znode_count)
  # 52 bytes of prefix and /k0../k999999: paths of about 60 bytes.
  "$bench" --hosts "127.0.0.1:$port" --sessions 32 --pipeline 64 --mix get=1 --ops 1 \
    --warmup 0 --keys "$footprint_znodes" --value-bytes 100 --keep \
    --prefix "/footprint-$(printf 'x%.0s' $(seq 41))" --json > "$dir/load.json"
  sleep 5 # a snapshot under way finishes
  rss=$(settled_rss); znodes=$(mntr_value "$port" zk_znode_count)
  heap_used=null
  if [ "$kind" = zookeeper ]; then
    heap_used=$(jcmd "$pid" GC.heap_info | sed -n 's/.*used \([0-9]*\)K.*/\1/p' | head -1)
  fi
  snapshot=$(newest_snapshot "$dir")
  stop_process "$pid"
  start_ns=$(date +%s%N)
  start_server
  until serving "$port"; do sleep 0.05; done
  restarted=$(( $(date +%s%N) - start_ns ))
  if [ "$(mntr_value "$port" zk_znode_count)" != "$znodes" ]; then
    echo "warning: $kind has $(mntr_value "$port" zk_znode_count) znodes after restart, $znodes before" >&2
  fi
  sleep 5 # a snapshot taken at startup lands
  local snapshot_after; snapshot_after=$(newest_snapshot "$dir")
  stop_process "$pid"; ours='' theirs=''
  python3 - "$dir" "$base_rss" "$rss" "$heap_used" "$base_znodes" "$znodes" $snapshot \
    "$restarted" $snapshot_after <<'PY'
import json, sys
dir, base_rss, rss, heap, base_znodes, znodes, snap, snap_name, restart_ns, after, after_name = sys.argv[1:]
load = json.load(open(f"{dir}/load.json"))
grown = int(znodes) - int(base_znodes)
# A snapshot's name is its zxid in hex; its low 32 bits count the Txns (ZooKeeper's high 32
# are the epoch), and nearly every Txn here was a create (a few were sessions).
def per_znode(size, name):
    counter = int(name.split(".")[1], 16) & 0xFFFFFFFF if name != "-" else 0
    return int(size) / counter if counter > 1000 else None
json.dump({
    "znodes": int(znodes),
    "creates_per_second": grown / load["setup_s"],
    "rss_mib": int(rss) / 1024,
    "heap_used_mib": None if heap == "null" else int(heap) / 1024,
    "bytes_per_znode": (int(rss) - int(base_rss)) * 1024 / grown,
    "snapshot_mib": int(snap) / 2**20,
    "snapshot_name": snap_name,
    "snapshot_bytes_per_znode": per_znode(snap, snap_name),
    "restart_s": int(restart_ns) / 1e9,
    "snapshot_after_restart_mib": int(after) / 2**20,
    "snapshot_after_restart_name": after_name,
    "snapshot_after_restart_bytes_per_znode": per_znode(after, after_name),
}, open(f"{dir}/figures.json", "w"))
PY
}

if wants footprint; then
  footprint ours "$work/footprint-ours"
  footprint zookeeper "$work/footprint-zookeeper"
  echo
  echo "footprint: $footprint_znodes znodes of 100 B, paths /footprint-x...x/k<i> (~60 B), one" \
    "parent; loaded by 32 x 64 pipelined creates; ZooKeeper -Xmx4g, RSS after jcmd GC.run"
  echo
  figures "$work/footprint-ours/figures.json" "$work/footprint-zookeeper/figures.json" \
    "znodes (mntr zk_znode_count)|znodes|0" \
    "creates per second while loading|creates_per_second|0" \
    "RSS after loading, MiB|rss_mib|0" \
    "JVM heap used after full GC, MiB|heap_used_mib|0" \
    "RSS growth per znode, bytes|bytes_per_znode|0" \
    "newest snapshot after loading, MiB|snapshot_mib|1" \
    "its bytes per znode (znodes ~ its zxid)|snapshot_bytes_per_znode|0" \
    "restart to first answer (srvr), s|restart_s|2" \
    "newest snapshot after restart, MiB|snapshot_after_restart_mib|1" \
    "its bytes per znode|snapshot_after_restart_bytes_per_znode|0"
  python3 - "$work"/footprint-{ours,zookeeper}/figures.json <<'PY'
import json, sys
for who, path in zip(("ours", "ZooKeeper"), sys.argv[1:]):
    f = json.load(open(path))
    print(f"{who}: newest snapshot after loading {f['snapshot_name']}, after restart {f['snapshot_after_restart_name']}")
PY
fi

if wants ensemble; then
  ensemble_rows=(
    "ensemble, 32 x 64 pipelined creates, 100 B|--sessions 32 --pipeline 64 --mix create=1 --value-bytes 100"
    "ensemble, 32 x 64 pipelined setData, 1 KiB|--sessions 32 --pipeline 64 --mix set=1 --value-bytes 1024"
    "ensemble, 32 x 64 pipelined getData + exists, 10,000 znodes|--sessions 32 --pipeline 64 --mix get=1,exists=1 --keys 10000"
    "ensemble, 32 x 64 pipelined 70% getData / 30% setData, 1 KiB|--sessions 32 --pipeline 64 --mix get=70,set=30 --value-bytes 1024"
  )
  # One ensemble at a time, alone on the machine: three idle members of the other kind (JVMs
  # collecting garbage, heartbeats) would take CPU from the one measured.
  for kind in ours zookeeper; do
    mkdir -p "$work/ensemble-$kind"
    ZOOKEEPER_HEAP="-Xms1g -Xmx1g" start_ensemble "$kind" "$work/ensemble-$kind"
    wait_for_ensemble
    # Warm up (the JVMs' JIT), then every row.
    measure "$ensemble_hosts" --sessions 32 --pipeline 64 --mix get=70,set=30 --value-bytes 1024 >/dev/null
    for row in "${ensemble_rows[@]}"; do
      # shellcheck disable=SC2086 # the options are words on purpose
      who=$kind measure "$ensemble_hosts" ${row#*|} >> "$work/ensemble-$kind.figures"
    done
    for pid in "${ensemble_pids[@]}"; do stop_process "$pid"; done
    ensemble_pids=()
  done
  echo
  echo "3-member ensembles on 127.0.0.1, one kind at a time (sessions spread over the members," \
    "--hosts of all three; forceSync on, tickTime 2000, ZooKeeper -Xms1g -Xmx1g per member)"
  echo
  rate_header
  mapfile -t our_figures < "$work/ensemble-ours.figures"
  mapfile -t their_figures < "$work/ensemble-zookeeper.figures"
  for index in "${!ensemble_rows[@]}"; do
    rate_row "${ensemble_rows[$index]%%|*}" "${our_figures[$index]}" "${their_figures[$index]}"
  done
fi
