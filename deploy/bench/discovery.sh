#!/usr/bin/env bash
# Service discovery figures. Prints figures only, asserts nothing.
# Two hosts as network namespaces on an underlay bridge (its own namespace, TEST-NET-1
# 192.0.2.0/24), a manager on host 1 and a worker on host 2 (real `swarmr` processes under
# `nsenter --net`, sharing this machine's Docker), an overlay network `disc`, a `web`
# service (busybox httpd, one replica pinned to host 2) and a `client` (pinned to host 1).
# From inside the client container's namespace (`nsenter -t <pid> -n`), with the
# release-built std-only generator `cli/examples/discovery_load.rs`:
#   1. DNS: QUERIES (default 20000) A queries for `web`, one at a time over UDP, to the
#      embedded DNS on the network's gateway address: queries/s, p50 and p99 latency
#      (Docker Swarm here: about 0.05 ms per query, p99 0.1-0.3 ms).
#   2. TCP connections opened and closed one after another, CONNS (default 3000) per run,
#      REPEATS (default 5) runs each, interleaved: to web's VIP (nftables DNAT in the client
#      namespace) and straight to the task IP; the medians and their ratio, same run. The
#      server is the generator's `listen` mode in the web task's namespace (busybox httpd
#      forks per connection and would measure itself, not the path).
# Needs root, Docker, nft and the kernel's VXLAN (deploy/prereqs.sh). Traffic stays inside
# the namespaces this script creates. Everything it creates is removed on exit (also on
# failure); leftovers of a run that was killed are swept at start.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/bench/lib.sh

QUERIES="${QUERIES:-20000}"
CONNS="${CONNS:-3000}"
REPEATS="${REPEATS:-5}"
STATE_GLOB=/tmp/swarmr-discovery-bench.

# Kills what the run dir recorded (only processes whose command line still matches), removes
# the containers and sandboxes of its nodes, then its namespaces. Idempotent.
teardown() {
    local dir="$1" pid marker id ns ids
    if [ -f "$dir/pids" ]; then
        while read -r pid marker; do
            [ -n "$pid" ] || continue
            if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$dir/pids"
        while read -r pid marker; do
            for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        done <"$dir/pids"
        : >"$dir/pids"
    fi
    for id in $(cat "$dir"/*/node.json 2>/dev/null | jq -r '.node_id // empty' 2>/dev/null); do
        for ns in $(ip netns list | awk '{print $1}' | grep "^swr-${id:0:12}-" || true); do
            ip netns del "$ns" 2>/dev/null || true
        done
        ids="$(docker ps -aq --filter "label=com.swarmr.node.id=$id" 2>/dev/null || true)"
        [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    done
    if [ -f "$dir/netns" ]; then
        while read -r ns; do
            [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
        done <"$dir/netns"
        : >"$dir/netns"
    fi
}

for stale in "$STATE_GLOB"*; do
    [ -d "$stale" ] || continue
    owner="${stale##*.}"
    if ! { tr '\0' ' ' <"/proc/$owner/cmdline"; } 2>/dev/null | grep -q 'discovery.sh'; then
        echo "removing leftovers of an earlier run: $stale" >&2
        teardown "$stale"
        rm -rf "$stale"
    fi
done

RUN="$STATE_GLOB$$"
P="db$$"
mkdir -p "$RUN"
: >"$RUN/pids"
: >"$RUN/netns"
on_exit() {
    local rc=$?
    if [ "$rc" != 0 ] && [ "$rc" != 130 ]; then
        for log in "$RUN"/*.log; do
            [ -f "$log" ] || continue
            echo "--- last lines of $log" >&2
            tail -n 15 "$log" >&2 || true
        done
    fi
    teardown "$RUN"
    rm -rf "$RUN"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

die() { echo "discovery bench: $*" >&2; exit 1; }

wait_for() {
    local limit="$1" what="$2" deadline
    shift 2
    deadline=$(( ${EPOCHREALTIME/./} + limit * 1000000 ))
    until "$@" >/dev/null 2>&1; do
        (( ${EPOCHREALTIME/./} < deadline )) || die "timed out after ${limit}s waiting for: $what"
        sleep 0.1
    done
}

sw() { "$BIN" -H "unix://$RUN/h1/swarmr.sock" "$@"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

make_underlay() {
    local n
    ip netns add "${P}u"
    echo "${P}u" >>"$RUN/netns"
    ip -n "${P}u" link set lo up
    ip -n "${P}u" link add br0 type bridge
    ip -n "${P}u" link set br0 up
    for n in 1 2; do
        ip netns add "${P}h$n"
        echo "${P}h$n" >>"$RUN/netns"
        ip -n "${P}h$n" link set lo up
        ip -n "${P}h$n" link add eth0 type veth peer name "${P}${n}u" netns "${P}u"
        ip -n "${P}h$n" addr add "192.0.2.$n/24" dev eth0
        ip -n "${P}h$n" link set eth0 up
        ip -n "${P}u" link set "${P}${n}u" master br0
        ip -n "${P}u" link set "${P}${n}u" up
    done
}

start_node() {
    local n="$1"
    shift
    mkdir -p "$RUN/h$n"
    # No real resolver is ever asked: forwarding goes to a closed loopback port.
    SWARMR_LOG=info NO_COLOR=1 nsenter --net="/run/netns/${P}h$n" "$BIN" "$@" \
        --data-dir "$RUN/h$n" --listen-addr "192.0.2.$n:2377" \
        --advertise-addr "192.0.2.$n" --hostname "h$n" --dns-upstream 127.0.0.1:5353 \
        </dev/null >>"$RUN/h$n.log" 2>&1 &
    echo "$! $RUN/h$n" >>"$RUN/pids"
    disown "$!"
}

node_ready() { sw node ls --format json | jq -e --arg h "$1" 'select(.Hostname == $h and .Status == "Ready")'; }
container_of() { docker ps -q --filter "label=com.swarmr.service.id=$(sw service inspect "$1" | jq -r '.[0].ID')" | head -n 1; }
task_ip() { sw network inspect disc | jq -r '.[0].Containers[] | select(.Name | startswith("web.")) | .IPv4Address | split("/")[0]' | head -n 1; }
resolves() { load dns "$GATEWAY" web 1 | grep -q 'errors=0'; }
vip_serves() { load connect "$VIP:$PORT" 1 | grep -q 'errors=0'; }
load() { nsenter -t "$CLIENT_PID" -n "$LOAD" "$@"; }

command -v nft >/dev/null || die "nft is not installed (deploy/prereqs.sh)"
docker image inspect my-service:latest >/dev/null 2>&1 || bash deploy/images/build.sh
cargo build --release -q -p swarmr-cli --bin swarmr --example discovery_load
BIN="$(target_dir)/release/swarmr"
LOAD="$(target_dir)/release/examples/discovery_load"
echo "service discovery: 2 hosts (namespaces on an underlay bridge), kernel $(uname -r), $(nproc) CPUs"

make_underlay
start_node 1 init
wait_for 60 "manager on host 1" sw node ls -q
start_node 2 join --token "$(sw join-token -q worker)" 192.0.2.1:2377
wait_for 60 "worker h2 Ready" node_ready h2
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
echo "$! discovery_load" >>"$RUN/pids"
disown "$!"
wait_for 30 "the VIP serves" vip_serves
echo "  client on h1 (pid $CLIENT_PID), web task $TASK_IP on h2, VIP $VIP, DNS $GATEWAY"

out="$(load dns "$GATEWAY" web "$QUERIES")"
echo "  DNS, $QUERIES A queries for web, one at a time over UDP, from the client container:"
echo "    $(field qps <<<"$out") queries/s, p50 $(field p50_ms <<<"$out") ms, p99 $(field p99_ms <<<"$out") ms, errors $(field errors <<<"$out")  (Docker Swarm here: ~0.05 ms, p99 0.1-0.3 ms)"

vips="" directs=""
for _ in $(seq "$REPEATS"); do
    vips="$vips $(load connect "$VIP:$PORT" "$CONNS" | field cps)"
    directs="$directs $(load connect "$TASK_IP:$PORT" "$CONNS" | field cps)"
done
vm="$(tr ' ' '\n' <<<"$vips" | grep . | median)"
dm="$(tr ' ' '\n' <<<"$directs" | grep . | median)"
echo "  TCP connections/s, $CONNS per run x $REPEATS, client on h1 -> web on h2:"
echo "    through the VIP:     median $vm  (runs:$vips)"
echo "    straight to the task: median $dm  (runs:$directs)"
awk -v v="$vm" -v d="$dm" 'BEGIN { printf "    VIP/direct: %.2f\n", v / d }'
