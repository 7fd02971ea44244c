#!/usr/bin/env bash
# Installs the C library under a prefix: lib/libzookeeper_rs.so and .a, include/zookeeper_rs.h
# and lib/pkgconfig/zookeeper_rs.pc, built in release mode.
#
#   scripts/install-c.sh PREFIX        e.g. /usr/local, or $HOME/.local
#
# Then: cc app.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs zookeeper_rs)
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: scripts/install-c.sh PREFIX" >&2
  exit 2
fi
prefix="$(realpath -m "$1")"
cd "$(dirname "$0")/.."
cargo build --release -q -p zookeeper-ffi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' ffi/Cargo.toml | head -1)"
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 target/release/libzookeeper_rs.so "$prefix/lib/"
install -m 0644 target/release/libzookeeper_rs.a "$prefix/lib/"
install -m 0644 include/zookeeper_rs.h "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" ffi/zookeeper_rs.pc.in \
  > "$prefix/lib/pkgconfig/zookeeper_rs.pc"
echo "installed libzookeeper_rs $version under $prefix"
