# Shared by the side-by-side benchmarks: free ports, waiting for a server, starting ours and
# Apache ZooKeeper 3.8 (Debian's package). Source it; it defines functions only.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Succeeds once the server on port $1 answers the srvr four-letter word.
serving() { python3 - "$1" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1); s.sendall(b"srvr")
    sys.exit(0 if b"Zookeeper version" in s.recv(4096) else 1)
except OSError:
    sys.exit(1)
PY
}

# Our server binary: the release build unless OURS_BIN names another (a before/after pair).
ours_bin() { echo "${OURS_BIN:-target/release/zookeeper-rs}"; }

# start_ours PORT WORKDIR FORCESYNC(yes|no): our release binary on a data dir under WORKDIR,
# with start_zookeeper's tickTime; sets $ours to its pid.
start_ours() {
  printf 'tickTime=2000\n4lw.commands.whitelist=*\nmaxClientCnxns=0\nforceSync=%s\n' "$3" > "$2/ours.cfg"
  "$(ours_bin)" --port "$1" --data-dir "$2/ours" --config "$2/ours.cfg" 2>/dev/null &
  ours=$!
}

# start_zookeeper PORT WORKDIR FORCESYNC(yes|no): Apache ZooKeeper on a data dir under
# WORKDIR; sets $theirs to its pid. ZOOKEEPER_HEAP sets the JVM's heap flags (-Xmx1g).
start_zookeeper() {
  mkdir -p "$2/zk"
  printf 'tickTime=2000\ndataDir=%s/zk\nclientPort=%s\n4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns=0\n' "$2" "$1" > "$2/zoo.cfg"
  # shellcheck disable=SC2086 # the heap flags are words on purpose
  java -Dzookeeper.forceSync="$3" -Dzookeeper.root.logger=WARN,CONSOLE ${ZOOKEEPER_HEAP:--Xmx1g} \
    -cp "/etc/zookeeper/conf:/usr/share/java/*" \
    org.apache.zookeeper.server.ZooKeeperServerMain "$2/zoo.cfg" >/dev/null 2>&1 &
  theirs=$!
}

# rss_kb PID: the process's resident set, in KiB.
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# mntr_value PORT KEY: one value of the mntr four-letter word (zk_znode_count, ...).
mntr_value() { python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10); s.sendall(b"mntr")
data = b""
while chunk := s.recv(65536):
    data += chunk
print(dict(l.split("\t", 1) for l in data.decode().splitlines() if "\t" in l).get(sys.argv[2], "-"))
PY
}

# server_mode PORT: srvr's Mode line (leader, follower, standalone), empty when not serving.
server_mode() { python3 - "$1" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1); s.sendall(b"srvr")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    print(next((l[6:] for l in data.decode().splitlines() if l.startswith("Mode: ")), ""))
except OSError:
    print("")
PY
}

# stop_process PID: SIGTERM, then waits for it to exit (SIGKILL after 30 s).
stop_process() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# start_ensemble KIND(ours|zookeeper) DIR: three members on 127.0.0.1 with fresh ports, each
# with its own data dir and zoo.cfg (server.N lines, myid), forceSync on, tickTime 2000;
# ZooKeeper's members get ZOOKEEPER_HEAP (-Xms1g -Xmx1g). ENSEMBLE_CFG_LINES (zoo.cfg lines,
# one per line) go to every member of both kinds, e.g. sslQuorum and its stores. Sets
# $ensemble_pids and $ensemble_hosts (the connect string); the ports are in $ensemble_ports.
start_ensemble() {
  local kind=$1 dir=$2 member
  local servers=""
  ensemble_ports=() ensemble_pids=()
  for member in 1 2 3; do
    ensemble_ports+=("$(free_port)")
    servers+="server.$member=127.0.0.1:$(free_port):$(free_port)"$'\n'
  done
  printf 'process-ensemble-shared-secret-0123456789' > "$dir/secret"
  for member in 1 2 3; do
    mkdir -p "$dir/$member/data"
    echo "$member" > "$dir/$member/data/myid"
    {
      printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\n' "$dir/$member/data"
      printf 'clientPort=%s\nclientPortAddress=127.0.0.1\n' "${ensemble_ports[$((member - 1))]}"
      printf '4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns=0\n%s' "$servers"
      if [ "$kind" = ours ]; then
        printf 'forceSync=yes\nquorum.secretFile=%s\n' "$dir/secret"
      fi
      if [ -n "${ENSEMBLE_CFG_LINES:-}" ]; then printf '%s\n' "$ENSEMBLE_CFG_LINES"; fi
    } > "$dir/$member/zoo.cfg"
    if [ "$kind" = ours ]; then
      "$(ours_bin)" --config "$dir/$member/zoo.cfg" >"$dir/$member/log" 2>&1 &
    else
      # shellcheck disable=SC2086 # the heap flags are words on purpose
      java -Dzookeeper.forceSync=yes -Dzookeeper.root.logger=WARN,CONSOLE \
        ${ZOOKEEPER_HEAP:--Xms1g -Xmx1g} -cp "/etc/zookeeper/conf:/usr/share/java/*" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/$member/zoo.cfg" \
        >"$dir/$member/log" 2>&1 &
    fi
    ensemble_pids+=($!)
  done
  ensemble_hosts=$(printf '127.0.0.1:%s,' "${ensemble_ports[@]}"); ensemble_hosts=${ensemble_hosts%,}
}

# wait_for_ensemble: until every member serves and one of them leads (60 s at most).
wait_for_ensemble() {
  local port modes
  for _ in $(seq 600); do
    modes=""
    for port in "${ensemble_ports[@]}"; do modes+="$(server_mode "$port") "; done
    if [[ "$modes" == *leader* ]] && [ "$(echo "$modes" | wc -w)" -eq 3 ]; then return 0; fi
    sleep 0.1
  done
  echo "ensemble did not form: $modes" >&2
  return 1
}
