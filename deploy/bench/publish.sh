#!/usr/bin/env bash
# Published-port figures. Prints figures only, asserts nothing.
# Three hosts as network namespaces on an underlay bridge (its own namespace, TEST-NET-1
# 192.0.2.0/24): a manager on h1, workers on h2 and h3 (real `swarmr` processes under
# `nsenter --net`, sharing this machine's Docker), and an outside client namespace at
# 192.0.2.100. One `web` task, pinned to h2, publishes port 9000 twice: through the
# routing mesh (8080, ingress mode) and in host mode (8081). Its server is the std-only
# generator `cli/examples/net_load.rs` in `serve` mode in the task's namespace (one
# thread, no fork), so every path ends at the same process. From the client, with
# `net_load request` (HTTP/1.0, a new connection per request, REQUESTS per run, REPEATS
# runs, interleaved):
#   mesh:   192.0.2.3:8080 (h3 runs no task: h3 -> mesh -> h2 -> task, replies back via h3)
#   host:   192.0.2.2:8081 (h2 DNATs straight to its task)
#   direct: the task's egress address, routed by the client through h2 (no NAT)
# Figures: requests/s, p50 and p99 latency per path, and the mesh/direct and host/direct
# ratios of the medians (aims: host >= 0.95, mesh >= 0.8).
# Needs root, Docker, nft and the kernel's VXLAN (deploy/prereqs.sh). Traffic stays inside
# the namespaces this script creates. Everything it creates is removed on exit (also on
# failure); leftovers of a run that was killed are swept at start.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/lib.sh

REQUESTS="${REQUESTS:-2000}"
REPEATS="${REPEATS:-5}"
BENCH=publish
HOSTS=3

bench_init
P="pb$$"
NODE_DIR="$RUN"
NODE_ARGS=(--dns-upstream 127.0.0.1:5353)

load() { nsenter --net="/run/netns/${P}client" "$LOAD" "$@"; }
serves() { load request "$1" 1 | grep -q 'errors=0'; }

command -v nft >/dev/null || die "nft is not installed (deploy/prereqs.sh)"
docker image inspect swarmr/busybox:latest >/dev/null 2>&1 || bash deploy/images/build.sh
cargo build --release -q -p swarmr-cli --bin swarmr --example net_load
BIN="$(target_dir)/release/swarmr"
LOAD="$(target_dir)/release/examples/net_load"
echo "published ports: 3 hosts + an outside client (namespaces on an underlay bridge), kernel $(uname -r), $(nproc) CPUs"

make_underlay
add_underlay_host client 100
start_cluster
token="$(sw join-token -q worker)"
start_node 3 join --token "$token" 192.0.2.1:2377
wait_for 60 "worker h3 Ready" node_ready h3
sw service create -q --name web --constraint node.hostname==h2 \
    -p 8080:9000 -p mode=host,published=8081,target=9000 \
    swarmr/busybox:latest sleep 3600 >/dev/null
WEB="$(container_of web)"
WEB_PID="$(docker inspect -f '{{.State.Pid}}' "$WEB")"
# The task's egress address (its last interface), for the direct path.
TASK_IP="$(nsenter -t "$WEB_PID" -n ip -4 -o addr show | awk '$2 != "lo" { split($4, a, "/"); ip = a[1] } END { print ip }')"
nsenter -t "$WEB_PID" -n "$LOAD" serve 9000 </dev/null >/dev/null 2>&1 &
echo "$! net_load" >>"$RUN/pids"
disown "$!"
ip -n "${P}client" route add "$TASK_IP/32" via 192.0.2.2
MESH=192.0.2.3:8080 HOST=192.0.2.2:8081 DIRECT="$TASK_IP:9000"
for target in "$DIRECT" "$HOST" "$MESH"; do
    wait_for 30 "$target serves" serves "$target"
done
echo "  web task on h2 ($TASK_IP), client 192.0.2.100; $REQUESTS requests per run x $REPEATS runs"

declare -A rps p50 p99
for _ in $(seq "$REPEATS"); do
    for path in direct host mesh; do
        case "$path" in direct) t="$DIRECT" ;; host) t="$HOST" ;; mesh) t="$MESH" ;; esac
        out="$(load request "$t" "$REQUESTS")"
        rps[$path]="${rps[$path]:-} $(field rps <<<"$out")"
        p50[$path]="${p50[$path]:-} $(field p50_ms <<<"$out")"
        p99[$path]="${p99[$path]:-} $(field p99_ms <<<"$out")"
    done
done
med() { tr ' ' '\n' <<<"$1" | grep . | median "${2:-3}"; }
for path in direct host mesh; do
    printf '    %-7s requests/s median %s (runs:%s), p50 %s ms, p99 %s ms\n' "$path:" \
        "$(med "${rps[$path]}" 0)" "${rps[$path]}" "$(med "${p50[$path]}")" "$(med "${p99[$path]}")"
done
d="$(med "${rps[direct]}" 1)" h="$(med "${rps[host]}" 1)" m="$(med "${rps[mesh]}" 1)"
awk -v d="$d" -v h="$h" -v m="$m" 'BEGIN {
    printf "    host/direct: %.2f (aim >= 0.95)   mesh/direct: %.2f (aim >= 0.8)\n", h / d, m / d
    printf "publish_host_over_direct=%.2f\npublish_mesh_over_direct=%.2f\n", h / d, m / d
}'
