#!/usr/bin/env bash
# Formerly its own comparison with the old load generator (core/examples/wire_load.rs: 4
# connections x 32 pipelined, forceSync=no, plus memory per znode); the tables in
# docs/benchmarks.md labelled with this script were made that way. zookeeper-bench's
# bench-compare.sh now covers those rows, so this runs its pipelined rows with the log written
# but not fsynced, and its footprint rows (RSS per znode; those always fsync).
set -euo pipefail
FORCE_SYNC=no ROWS=${ROWS:-pipelined,footprint} exec "$(dirname "$0")/bench-compare.sh"
