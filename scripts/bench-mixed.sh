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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
serving() { python3 - "$1" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1); s.sendall(b"srvr")
    sys.exit(0 if b"Zookeeper version" in s.recv(4096) else 1)
except OSError:
    sys.exit(1)
PY
}

our_port=$(free_port); their_port=$(free_port)
printf '4lw.commands.whitelist=*\n' > "$work/ours.cfg"
target/release/zookeeper-rs --port "$our_port" --data-dir "$work/ours" --config "$work/ours.cfg" 2>/dev/null & ours=$!
mkdir -p "$work/zk"
printf 'tickTime=2000\ndataDir=%s/zk\nclientPort=%s\n4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns=0\n' "$work" "$their_port" > "$work/zoo.cfg"
java -Dzookeeper.root.logger=WARN,CONSOLE -Xmx1g -cp "/etc/zookeeper/conf:/usr/share/java/*" \
  org.apache.zookeeper.server.ZooKeeperServerMain "$work/zoo.cfg" >/dev/null 2>&1 & theirs=$!
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
