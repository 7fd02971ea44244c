#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, the Rust suites (unit, behavioural, doc
# tests, and the check that include/zookeeper_rs.h matches the code), then the black-box suites
# against the server binary: kazoo, the Apache C client, zkCli.sh and the differential run
# against Apache ZooKeeper 3.8; then the C ABI (installed under a prefix, C tests and examples
# compiled with gcc and run under valgrind); then the Python package: a fresh
# `pip install ./python`, its tests (embedded, our binary, Apache ZooKeeper) and stubtest.
# On a fresh machine it installs what it needs first (Debian packages need root, as on CI).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== installing test dependencies"
# redis-server: the Python package's Redis failover example runs real redis-server processes.
# gcc, pkg-config, valgrind: the C ABI's tests compile against the installed library and run
# under memcheck. openssl: the TLS tests make their certificates with it.
debian_packages=(zookeeper zookeeper-bin libzookeeper-mt-dev netcat-openbsd redis-server
  gcc pkg-config valgrind openssl)
# javac: the reconfig test compiles a Java client program (getConfig + updateServerList).
command -v javac >/dev/null || debian_packages+=(default-jdk-headless)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages (run as root or install them): ${missing[*]}" >&2
    exit 1
  fi
fi
python3 -c "import pytest, kazoo, maturin, mypy, prometheus_client" 2>/dev/null \
  || python3 -m pip install -q pytest kazoo maturin mypy prometheus_client

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== Rust tests"
cargo test --workspace

echo "== benchmarks compile (run them with: cargo bench -p zookeeper-core)"
cargo bench --workspace --no-run

echo "== black-box tests against the server binary"
cargo build --release -p zookeeper-rs
# Wherever cargo builds (CARGO_TARGET_DIR, a target-dir setting, ...).
target_dir="$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
export ZKRS_BIN="$target_dir/release/zookeeper-rs"
python3 -m pytest tests/python -q

echo "== C ABI: install, C tests and examples under valgrind"
./ffi/tests/run-c-tests.sh

echo "== Python package: fresh build with pip, tests, stubtest"
python3 -m pip install -q --force-reinstall --no-deps ./python
python3 -m pytest python/tests -q
# From elsewhere, so the installed package is checked rather than the source tree. An
# allowlist entry a given mypy does not need is not an error: the allowlist (runtime facts
# stubtest cannot express, such as the disjoint base Data) serves mypy versions either side.
(cd "$(mktemp -d)" && python3 -m mypy.stubtest zookeeper --ignore-unused-allowlist \
  --allowlist "$OLDPWD/python/stubtest-allowlist.txt")
