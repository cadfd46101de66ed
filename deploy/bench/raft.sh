#!/usr/bin/env bash
# Control-plane figures: leader failover (p50, max over TRIALS, default 10) and committed
# writes per second, with three real managers on loopback. Prints figures only.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p swarmr-cli --bin swarmr --example raft_bench
. deploy/lib.sh
target="$(target_dir)"
SWARMR_BIN="$target/release/swarmr" "$target/release/examples/raft_bench"
