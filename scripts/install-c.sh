#!/usr/bin/env bash
# Installs the C library under a prefix: lib/libzookeeper_rs.so and .a, include/zookeeper_rs.h
# and lib/pkgconfig/zookeeper_rs.pc, built in release mode.
#
#   scripts/install-c.sh PREFIX        e.g. /usr/local, or $HOME/.local
#
# Then: cc app.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs zookeeper_rs)
# or, linking the static library: ... $(pkg-config --cflags zookeeper_rs) $(pkg-config --variable=static_libs zookeeper_rs)
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: scripts/install-c.sh PREFIX" >&2
  exit 2
fi
prefix="$(realpath -m "$1")"
cd "$(dirname "$0")/.."

# One build of every crate type; rustc also prints the system libraries the static library
# needs (cargo replays the note when nothing had to be rebuilt), which become Libs.private.
if ! build_log="$(cargo rustc --release -q -p zookeeper-ffi --lib -- --print native-static-libs 2>&1)"; then
  printf '%s\n' "$build_log" >&2
  exit 1
fi
native_static_libs="$(printf '%s\n' "$build_log" | sed -n 's/^note: native-static-libs: //p' | tail -1)"
if [ -z "$native_static_libs" ]; then
  echo "rustc printed no native-static-libs for libzookeeper_rs.a" >&2
  exit 1
fi
# Wherever cargo put them (CARGO_TARGET_DIR, a workspace target-dir setting, ...).
target_dir="$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
release="$target_dir/release"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' ffi/Cargo.toml | head -1)"
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$release/libzookeeper_rs.so" "$prefix/lib/"
install -m 0644 "$release/libzookeeper_rs.a" "$prefix/lib/"
install -m 0644 include/zookeeper_rs.h "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" \
  -e "s|@NATIVE_STATIC_LIBS@|$native_static_libs|" ffi/zookeeper_rs.pc.in \
  > "$prefix/lib/pkgconfig/zookeeper_rs.pc"
echo "installed libzookeeper_rs $version under $prefix"
