#!/usr/bin/env bash
# Control-plane figures with three real managers on loopback: leader failover (p50, max
# over TRIALS, default 10) and committed writes per second with their p99 latency (one
# writer, 64 writers, again at OBJECTS networks, default 10,000, and through a follower).
# Prints figures only; the last lines are key=value (writes_per_s_1, writes_per_s_64,
# write_p99_ms_1, write_p99_ms_64, writes_per_s_64_at_10k, ..., failover_p50_s).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p swarmr-cli --bin swarmr --example raft_bench
. deploy/lib.sh
target="$(target_dir)"
SWARMR_BIN="$target/release/swarmr" "$target/release/examples/raft_bench"
