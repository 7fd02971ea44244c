#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, then the Rust suites (unit, behavioural,
# doc tests). On a fresh machine it installs what it needs first. Later suites (Python, C, wire
# compatibility against Apache ZooKeeper) join here as they land.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== Rust tests"
cargo test --workspace

echo "== benchmarks compile (run them with: cargo bench -p zookeeper-core)"
cargo bench --workspace --no-run
