#!/usr/bin/env bash
# Guards against the Apache C client failing against a server: compiles zk_c_client.c and runs it.
# Usage: tests/c/run.sh HOST:PORT   (needs gcc and Debian's libzookeeper-mt-dev)
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 HOST:PORT" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
build_dir="$(mktemp -d)"
trap 'rm -rf "$build_dir"' EXIT

gcc -std=c11 -DTHREADED -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror -O1 \
    -o "$build_dir/zk_c_client" "$here/zk_c_client.c" -lzookeeper_mt -lpthread
# The program bounds its own waits; timeout is a second guard against a hung library call.
timeout 60 "$build_dir/zk_c_client" "$1"
