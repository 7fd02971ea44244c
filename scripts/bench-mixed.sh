#!/usr/bin/env bash
# Formerly its own run of the 32 x 64 pipelined 70% getData / 30% setData mix (and getData
# and setData alone) with the old load generator (core/examples/wire_load.rs); the tables in
# docs/benchmarks.md labelled with this script were made that way. bench-compare.sh's
# pipelined rows now measure the same workloads with zookeeper-bench, fsync on for both
# servers; this runs them.
set -euo pipefail
ROWS=${ROWS:-pipelined} exec "$(dirname "$0")/bench-compare.sh"
