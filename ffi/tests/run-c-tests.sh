#!/usr/bin/env bash
# The C ABI's tests as a C user meets the library: install it under a fresh prefix
# (scripts/install-c.sh), compile the C tests and examples with gcc against the installed
# header and library through pkg-config (one test against the static library too), and run
# each under valgrind memcheck, which fails the run on any memory error or definite/indirect
# leak.
set -euo pipefail
cd "$(dirname "$0")/../.."

prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
./scripts/install-c.sh "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
bin="$prefix/bin"
mkdir -p "$bin"

# Exactly the compile command the README documents, plus warnings as errors.
compile() {
  gcc -std=gnu11 -Wall -Wextra -Werror -g "$1" -o "$2" $(pkg-config --cflags --libs zookeeper_rs)
}

memcheck=(valgrind -q --error-exitcode=1 --leak-check=full
  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect)

for source in ffi/tests/c/*.c examples/c/*.c; do
  compile "$source" "$bin/$(basename "$source" .c)"
done
# The static library too, linked as the .pc file says (its Libs.private come from rustc).
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
gcc -std=gnu11 -Wall -Wextra -Werror -g ffi/tests/c/test_api.c -o "$bin/test_api_static" \
  $(pkg-config --cflags zookeeper_rs) $(pkg-config --variable=static_libs zookeeper_rs)
if ldd "$bin/test_api_static" | grep -q libzookeeper_rs; then
  echo "test_api_static still loads libzookeeper_rs.so" >&2
  exit 1
fi

echo "-- C tests under valgrind"
"${memcheck[@]}" "$bin/test_api"
"${memcheck[@]}" "$bin/test_api_static"
"${memcheck[@]}" "$bin/test_watches_async"
"${memcheck[@]}" "$bin/test_lifetime"
"${memcheck[@]}" "$bin/test_bad_input"
"${memcheck[@]}" "$bin/test_ensemble"
"${memcheck[@]}" "$bin/test_tree_cache"
# The worker processes run without valgrind: they are killed mid-session by design.
"${memcheck[@]}" "$bin/test_recipes" "$bin/recipe_worker"

echo "-- C TLS options against a TLS server of ours (certificates made here with openssl)"
# The server binary test-all.sh built (ZKRS_BIN), or the default release build.
zkrs_bin="${ZKRS_BIN:-target/release/zookeeper-rs}"
[ -x "$zkrs_bin" ] || cargo build --release -q -p zookeeper-rs
certs="$prefix/certs"
mkdir -p "$certs" "$prefix/zk-data"
make_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$certs/$1-key.pem" 2>/dev/null; }
make_ca() {
  make_key "$1"
  openssl req -x509 -new -key "$certs/$1-key.pem" -subj "/CN=$1" -days 2 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -out "$certs/$1.pem" 2>/dev/null
}
make_leaf() { # name subject ca extensions
  make_key "$1"
  openssl req -new -key "$certs/$1-key.pem" -subj "$2" -out "$certs/$1.csr" 2>/dev/null
  printf '%b' "$4" >"$certs/$1.ext"
  openssl x509 -req -in "$certs/$1.csr" -CA "$certs/$3.pem" -CAkey "$certs/$3-key.pem" \
    -CAcreateserial -days 2 -extfile "$certs/$1.ext" -out "$certs/$1-cert.pem" 2>/dev/null
  cat "$certs/$1-key.pem" "$certs/$1-cert.pem" >"$certs/$1.pem"
}
make_ca ca
make_ca other-ca
make_leaf server /CN=server ca 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n'
make_leaf client /CN=c-client ca 'basicConstraints=CA:FALSE\n'
make_leaf stranger /CN=stranger other-ca 'basicConstraints=CA:FALSE\n'
secure_port=$((20000 + RANDOM % 10000))
cat >"$prefix/zoo.cfg" <<CFG
dataDir=$prefix/zk-data
clientPort=$((secure_port + 1))
secureClientPort=$secure_port
clientPortAddress=127.0.0.1
ssl.keyStore.location=$certs/server.pem
ssl.trustStore.location=$certs/ca.pem
authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider
CFG
"$zkrs_bin" --config "$prefix/zoo.cfg" >"$prefix/tls-server.log" 2>&1 &
tls_server=$!
trap 'kill "$tls_server" 2>/dev/null || true; rm -rf "$prefix"' EXIT
for _ in $(seq 100); do
  [ "$(printf srvr | nc -q1 127.0.0.1 $((secure_port + 1)) 2>/dev/null | head -c9)" = "Zookeeper" ] && break
  sleep 0.1
done
# ring's AES-GCM assembly needs two suppressions (see the file); nothing else is suppressed.
"${memcheck[@]}" --suppressions=ffi/tests/valgrind-tls.supp "$bin/test_tls" "127.0.0.1:$secure_port" "$certs"
kill "$tls_server"
wait "$tls_server" 2>/dev/null || true

echo "-- C examples under valgrind"
"${memcheck[@]}" "$bin/config_reader"
"${memcheck[@]}" "$bin/distributed_lock"
echo "C ABI: tests and examples passed under valgrind"
