#!/usr/bin/env bash
# Rolling-update figures. Prints figures only, asserts nothing.
# Three hosts as network namespaces on an underlay bridge (its own namespace, TEST-NET-1
# 192.0.2.0/24): a manager on h1, workers on h2 and h3 (real `swarmr` processes under
# `nsenter --net`, sharing this machine's Docker). A `web` service of REPLICAS (default 30)
# my-service httpd tasks on an overlay, with a health check, and a `client` task pinned to
# h1. From the client's namespace, `cli/examples/net_load.rs poll` sends one HTTP request
# every INTERVAL_MS (default 50) through web's VIP, each on a new connection, for the
# whole update. The update: a new image (`my-service:bench-v2`, the same httpd with one
# more label), `--update-parallelism PARALLELISM` (default 3) `--update-delay 0s
# --update-order ORDER` (default start-first) `--update-monitor 0s`, timed from the call
# until `service update` returns with the update completed. Then, in the same run, the Docker floor: REPLICAS containers
# of the same image created and started straight through the worker's executor in groups
# of PARALLELISM, each group at once after the previous one runs (`cli/examples/
# service_bench` floor mode). The floor has no health wait: each group of the update
# also waits for its first passing check, HEALTH_INTERVAL (default 1s) after its start.
# Ends with key=value lines: update_replicas, update_s, update_floor_s, update_over_floor,
# update_requests_sent, update_requests_failed (aim: 0).
# Needs root, Docker, nft and the kernel's VXLAN (deploy/prereqs.sh). Traffic stays inside
# the namespaces this script creates. Everything it creates is removed on exit (also on
# failure); leftovers of a run that was killed are swept at start.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/lib.sh

REPLICAS="${REPLICAS:-30}"
INTERVAL_MS="${INTERVAL_MS:-50}"
ORDER="${ORDER:-start-first}"
# Docker runs each check as an exec: 30 containers at 250 ms were 120 execs a second,
# more than dockerd keeps up with on 2 cores, and every task went unhealthy.
HEALTH_INTERVAL="${HEALTH_INTERVAL:-1s}"
PARALLELISM="${PARALLELISM:-3}"
BENCH=update
HOSTS=3
V2=my-service:bench-v2

bench_init
P="ub$$"
NODE_DIR="$RUN"
NODE_ARGS=(--dns-upstream 127.0.0.1:5353)

load() { nsenter -t "$CLIENT_PID" -n "$LOAD" "$@"; }
vip_serves() { load request "$VIP:80" 1 | grep -q 'errors=0'; }

command -v nft >/dev/null || die "nft is not installed (deploy/prereqs.sh)"
docker image inspect my-service:latest >/dev/null 2>&1 || bash deploy/images/build.sh
# A distinct image id, so the update really changes the image.
printf 'FROM my-service:latest\nLABEL com.swarmr.bench=v2\n' | docker build -q -t "$V2" - >/dev/null
cargo build --release -q -p swarmr-cli --bin swarmr --example net_load --example service_bench
BIN="$(target_dir)/release/swarmr"
LOAD="$(target_dir)/release/examples/net_load"
FLOOR="$(target_dir)/release/examples/service_bench"
echo "rolling update: 3 hosts (namespaces on an underlay bridge), $REPLICAS replicas, kernel $(uname -r), $(nproc) CPUs"

make_underlay
start_cluster
token="$(sw join-token -q worker)"
start_node 3 join --token "$token" 192.0.2.1:2377
wait_for 60 "worker h3 Ready" node_ready h3
sw network create upd >/dev/null
SWARMR_CONVERGE_TIMEOUT=300 sw service create -q --name web --network upd --replicas "$REPLICAS" \
    --health-cmd 'wget -qO- http://127.0.0.1/ >/dev/null' --health-interval "$HEALTH_INTERVAL" \
    --health-timeout 2s --health-retries 3 my-service:latest >/dev/null
sw service create -q --name client --network upd --constraint node.hostname==h1 \
    swarmr/busybox:latest sleep 3600 >/dev/null
CLIENT_PID="$(docker inspect -f '{{.State.Pid}}' "$(container_of client)")"
VIP="$(sw service inspect web | jq -r '.[0].Endpoint.VirtualIPs[0].Addr | split("/")[0]')"
wait_for 30 "the VIP serves" vip_serves
echo "  client on h1 (pid $CLIENT_PID), web VIP $VIP, a request every $INTERVAL_MS ms"

STOP="$RUN/stop-poll"
load poll "$VIP:80" "$INTERVAL_MS" "$STOP" >"$RUN/poll.out" 2>"$RUN/poll.err" &
POLL_PID=$!
echo "$POLL_PID net_load" >>"$RUN/pids"
sleep 1
start="${EPOCHREALTIME/./}"
SWARMR_CONVERGE_TIMEOUT=300 sw service update --image "$V2" --update-parallelism "$PARALLELISM" \
    --update-delay 0s --update-order "$ORDER" --update-monitor 0s web >/dev/null
took=$(awk -v a="$start" -v b="${EPOCHREALTIME/./}" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
sleep 1
touch "$STOP"
wait "$POLL_PID" || true
sent="$(field sent <"$RUN/poll.out")"
failed="$(field failed <"$RUN/poll.out")"
[ -n "$sent" ] || die "the request loop printed nothing: $(tail -n 3 "$RUN/poll.err")"
[ "$failed" = 0 ] || { echo "  failed requests:"; sed 's/^/    /' "$RUN/poll.err" | head -n 10; }
floor="$("$FLOOR" floor "$REPLICAS" "$V2" "$PARALLELISM" | field floor_s)"
echo "  update of $REPLICAS replicas ($ORDER, parallelism $PARALLELISM, no delay, monitor 0 s): $took s; Docker floor (the same containers in groups of $PARALLELISM, one group after another) $floor s"
echo "  requests through the VIP during the update: $sent sent, $failed failed (aim: 0)"
echo "update_replicas=$REPLICAS"
echo "update_s=$took"
echo "update_floor_s=$floor"
awk -v t="$took" -v f="$floor" 'BEGIN { printf "update_over_floor=%.2f\n", t / f }'
echo "update_requests_sent=$sent"
echo "update_requests_failed=$failed"
