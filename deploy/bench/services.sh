#!/usr/bin/env bash
# Service figures. Prints figures only, asserts nothing.
# 1. On 3 real nodes over loopback sharing this host's Docker (needs root and Docker;
#    builds the image if missing), see cli/examples/service_bench/: convergence of 3, 30
#    and 100 replicas of swarmr/busybox against the Docker floor in the same run (TRIALS,
#    default 5; TRIALS_100, default 3), a 30-replica rolling update, a worker's RSS at 10
#    tasks, and a killed worker: Down and rescheduled times.
# 2. Scheduler at scale: 10,000 tasks onto 1,000 simulated nodes around one in-process
#    manager (NODES, TASKS, SESSIONS tune it; see manager/examples/scheduler_scale/).
# SKIP_CONVERGENCE=1 or SKIP_SCALE=1 runs only the other part. Each part ends with
# key=value lines.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/lib.sh
target="$(target_dir)"

if [ "${SKIP_CONVERGENCE:-0}" != 1 ]; then
    docker image inspect swarmr/busybox:latest >/dev/null 2>&1 || bash deploy/images/build.sh
    cargo build --release -p swarmr-cli --bin swarmr --example service_bench
    SWARMR_BIN="$target/release/swarmr" "$target/release/examples/service_bench"
fi

if [ "${SKIP_SCALE:-0}" != 1 ]; then
    cargo build --release -p swarmr-manager --example scheduler_scale
    "$target/release/examples/scheduler_scale"
fi
