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

# start_ours PORT WORKDIR FORCESYNC(yes|no): our release binary on a data dir under WORKDIR,
# with start_zookeeper's tickTime; sets $ours to its pid.
start_ours() {
  printf 'tickTime=2000\n4lw.commands.whitelist=*\nmaxClientCnxns=0\nforceSync=%s\n' "$3" > "$2/ours.cfg"
  target/release/zookeeper-rs --port "$1" --data-dir "$2/ours" --config "$2/ours.cfg" 2>/dev/null &
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
