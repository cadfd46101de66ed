#!/usr/bin/env bash
# Service discovery figures. Prints figures only, asserts nothing.
# Two hosts as network namespaces on an underlay bridge (its own namespace, TEST-NET-1
# 192.0.2.0/24), a manager on host 1 and a worker on host 2 (real `swarmr` processes under
# `nsenter --net`, sharing this machine's Docker), an overlay network `disc`, a `web`
# service (busybox httpd, one replica pinned to host 2) and a `client` (pinned to host 1).
# From inside the client container's namespace (`nsenter -t <pid> -n`), with the
# release-built std-only generator `cli/examples/net_load.rs`:
#   1. DNS: QUERIES (default 20000) A queries for `web`, one at a time over UDP, to the
#      embedded DNS on the network's gateway address: queries/s, p50 and p99 latency
#      (Docker Swarm here: about 0.05 ms per query, p99 0.1-0.3 ms).
#   2. TCP connections opened and closed one after another, CONNS (default 3000) per run,
#      REPEATS (default 5) runs each, interleaved: to web's VIP (the BPF socket balancer, or
#      nftables DNAT where it cannot load) and straight to the task IP; the medians and
#      their ratio, same run. The server is the generator's `listen` mode in the web
#      task's namespace (busybox httpd forks per connection and would measure itself, not
#      the path).
# Ends with key=value lines: dns_qps, dns_p50_ms, dns_p99_ms,
# discovery_vip_over_direct_conn_rate.
# Needs root, Docker, nft and the kernel's VXLAN (deploy/prereqs.sh). Traffic stays inside
# the namespaces this script creates. Everything it creates is removed on exit (also on
# failure); leftovers of a run that was killed are swept at start.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/lib.sh

QUERIES="${QUERIES:-20000}"
CONNS="${CONNS:-3000}"
REPEATS="${REPEATS:-5}"
BENCH=discovery

bench_init
P="db$$"
NODE_DIR="$RUN"
# No real resolver is ever asked: forwarding goes to a closed loopback port.
NODE_ARGS=(--dns-upstream 127.0.0.1:5353)

task_ip() { sw network inspect disc | jq -r '.[0].Containers[] | select(.Name | startswith("web.")) | .IPv4Address | split("/")[0]' | head -n 1; }
resolves() { load dns "$GATEWAY" web 1 | grep -q 'errors=0'; }
load() { nsenter -t "$CLIENT_PID" -n "$LOAD" "$@"; }
conn_load() { load connect "$1:$PORT" "$2"; }
vip_serves() { conn_load "$VIP" 1 | grep -q 'errors=0'; }

command -v nft >/dev/null || die "nft is not installed (deploy/prereqs.sh)"
docker image inspect my-service:latest >/dev/null 2>&1 || bash deploy/images/build.sh
cargo build --release -q -p swarmr-cli --bin swarmr --example net_load
BIN="$(target_dir)/release/swarmr"
LOAD="$(target_dir)/release/examples/net_load"
echo "service discovery: 2 hosts (namespaces on an underlay bridge), kernel $(uname -r), $(nproc) CPUs"

make_underlay
start_cluster
sw network create disc >/dev/null
sw service create -q --name web --network disc --constraint node.hostname==h2 my-service:latest >/dev/null
sw service create -q --name client --network disc --constraint node.hostname==h1 \
    swarmr/busybox:latest sleep 3600 >/dev/null
CLIENT_PID="$(docker inspect -f '{{.State.Pid}}' "$(container_of client)")"
GATEWAY="$(sw network inspect disc | jq -r '.[0].IPAM.Config[0].Gateway')"
VIP="$(sw service inspect web | jq -r '.[0].Endpoint.VirtualIPs[0].Addr | split("/")[0]')"
TASK_IP="$(task_ip)"
wait_for 30 "the embedded DNS answers" resolves
PORT=8080
WEB_PID="$(docker inspect -f '{{.State.Pid}}' "$(container_of web)")"
nsenter -t "$WEB_PID" -n "$LOAD" listen "$PORT" </dev/null >/dev/null 2>&1 &
echo "$! net_load" >>"$RUN/pids"
disown "$!"
wait_for 30 "the VIP serves" vip_serves
echo "  client on h1 (pid $CLIENT_PID), web task $TASK_IP on h2, VIP $VIP, DNS $GATEWAY"

out="$(load dns "$GATEWAY" web "$QUERIES")"
echo "  DNS, $QUERIES A queries for web, one at a time over UDP, from the client container:"
echo "    $(field qps <<<"$out") queries/s, p50 $(field p50_ms <<<"$out") ms, p99 $(field p99_ms <<<"$out") ms, errors $(field errors <<<"$out")  (Docker Swarm here: ~0.05 ms, p99 0.1-0.3 ms)"

conn_rate "client on h1 -> web on h2" "$VIP" "$TASK_IP"
echo "dns_qps=$(field qps <<<"$out")"
echo "dns_p50_ms=$(field p50_ms <<<"$out")"
echo "dns_p99_ms=$(field p99_ms <<<"$out")"
echo "discovery_vip_over_direct_conn_rate=$CONN_RATIO"
