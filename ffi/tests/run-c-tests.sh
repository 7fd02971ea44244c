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

echo "-- C examples under valgrind"
"${memcheck[@]}" "$bin/config_reader"
"${memcheck[@]}" "$bin/distributed_lock"
echo "C ABI: tests and examples passed under valgrind"
