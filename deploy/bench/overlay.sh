#!/usr/bin/env bash
# Overlay data-plane figures. Prints figures only, asserts nothing.
# Two hosts as network namespaces on an underlay bridge (its own namespace, TEST-NET-1
# 192.0.2.0/24), a manager on host 1 and a worker on host 2 (real `swarmr` processes under
# `nsenter --net`, sharing this machine's Docker), an overlay network `bench` and a service
# `bench` (dnsrr: no VIP) with one task on each host. Then, per round (underlay MTU 1500,
# then 9000 with the cluster built again, since the overlay MTU is the underlay's minus 50
# when a sandbox is created):
#   1. TCP single stream (iperf3, IPERF_SECONDS, default 5), container to container over
#      the overlay and host to host over the underlay, REPEATS (default 3) runs each,
#      interleaved; the median of each and their ratio (Docker Swarm here: 0.78). In round
#      1 first bare (no VIP on the network), then with VIPs on: a vip-mode service `vipweb`
#      with two running tasks on the network, so both bench containers balance its VIP
#      (BPF socket load balancer, or nftables NAT where it cannot load: the round says
#      which, from `network check`). Round 2 measures with VIPs on only.
#   2. RTT: PINGS (default 20) busybox pings 0.2 s apart, host 2 to host 1, over the overlay
#      (from the task's namespace) and over the underlay (Docker Swarm: 0.10 vs 0.055 ms).
#   3. (first round only) TCP connections opened and closed one after another, CONNS
#      (default 3000) per run x REPEATS, from the bench task on h2 through vipweb's VIP and
#      straight to one of its tasks (both on h1, each running cli/examples/net_load.rs's
#      `listen`): the ratio of the medians.
#   4. (first round only) Endpoint propagation, TRIALS (default 20) trials: a task pinned to
#      host 1 is scaled up (`service scale -d probe=1`); from that call until (a) its IP is
#      allocated, (b) its peer entries (neighbour + FDB) are in host 2's sandbox (Docker
#      Swarm: 0.3-0.4 s) and (c) a ping from the task on host 2 gets an answer.
# Ends with one key=value line per figure (ratios against the underlay of the same run):
# overlay_tcp_ratio_bare, overlay_tcp_ratio_vip, overlay_tcp_ratio_jumbo (MTU 9000, VIPs
# on), overlay_rtt_ratio (MTU 1500, VIPs on), vip_over_direct_conn_rate, vip_balancer,
# overlay_forwarding. SWARMR_VIP_BALANCER=nftables measures the VIP fallback and
# SWARMR_OVERLAY_FORWARDING=bridge the sandboxes without their BPF fast path.
# Needs root, Docker, iperf3, busybox-static and the kernel's VXLAN (deploy/prereqs.sh).
# Traffic stays inside the namespaces this script creates. Everything it creates is
# removed on exit (also on failure); leftovers of a run that was killed are swept at start.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/lib.sh

TRIALS="${TRIALS:-20}"
REPEATS="${REPEATS:-3}"
IPERF_SECONDS="${IPERF_SECONDS:-5}"
PINGS="${PINGS:-20}"
CONNS="${CONNS:-3000}"
MTUS="${MTUS:-1500 9000}"
IMAGE=swarmr/busybox:latest
BUSYBOX=/bin/busybox
BENCH=overlay

bench_init
PREFIX="ob$$"

# ---------------------------------------------------------------- helpers

# Microseconds since the epoch.
now_us() { echo "${EPOCHREALTIME/./}"; }

# p50 (lower median, an observed value) and max of the numbers on stdin
p50_max() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a n/a"; else printf "%.3f %.3f\n", v[int((NR + 1) / 2)], v[NR] }'; }

# ---------------------------------------------------------------- cluster

# make_underlay, start_cluster, start_node, node_ready, sw: deploy/lib.sh (NODE_DIR is
# the round's dir).

# Container id -> "node ip" of the tasks of service $1 that have a container, per `network inspect`.
endpoints() {
    sw network inspect bench | jq -r --arg s "$1." '.[0].Containers // {} | to_entries[]
        | select((.key | length) == 64 and (.value.Name | startswith($s))) | "\(.key) \(.value.Node) \(.value.IPv4Address | split("/")[0])"'
}

two_bench_containers() { [ "$(endpoints bench | wc -l)" = 2 ]; }

pings_once() { nsenter -t "$1" -n "$BUSYBOX" ping -c 1 -W 1 "$2"; }

# Builds the cluster for one round (underlay MTU $1) and sets A_*/B_* (the bench tasks on
# host 1 and host 2), VNI, SANDBOX2 (host 2's sandbox namespace).
build_cluster() {
    local mtu="$1" round="$2"
    P="${PREFIX}r$round"
    NODE_DIR="$RUN/r$round"
    mkdir -p "$NODE_DIR"
    make_underlay "$mtu"
    start_cluster

    sw network create bench >/dev/null
    sw service create -q --name bench --endpoint-mode dnsrr --network bench --replicas 2 "$IMAGE" sleep 3600 >/dev/null
    wait_for 60 "both bench tasks have a container" two_bench_containers
    local nodes
    nodes="$(sw service ps bench --format json | jq -r 'select(.DesiredState == "Running") | .Node' | sort | tr '\n' ' ')"
    [ "$nodes" = "h1 h2 " ] || die "expected one bench task on h1 and one on h2, got: $nodes"
    read -r A_ID _ A_IP < <(endpoints bench | awk '$2 == "h1"')
    read -r B_ID _ B_IP < <(endpoints bench | awk '$2 == "h2"')
    [ -n "${A_IP:-}" ] && [ -n "${B_IP:-}" ] || die "network inspect does not list a task on each host"
    A_PID="$(docker inspect -f '{{.State.Pid}}' "$A_ID")"
    B_PID="$(docker inspect -f '{{.State.Pid}}' "$B_ID")"
    wait_for 30 "overlay ping h2 -> h1" pings_once "$B_PID" "$A_IP"
    wait_for 30 "overlay ping h1 -> h2" pings_once "$A_PID" "$B_IP"

    VNI="$(sw network inspect bench | jq -r '.[0].Options["com.docker.network.driver.overlay.vxlanid_list"]')"
    local id2
    id2="$(jq -r .node_id "$NODE_DIR/h2/node.json")"
    SANDBOX2="swr-${id2:0:12}-$VNI"
    local ov_mtu
    ov_mtu="$(nsenter -t "$B_PID" -n ip -o link show eth0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"
    echo "  cluster: h1 192.0.2.1 (manager), h2 192.0.2.2 (worker); bench tasks $A_IP on h1, $B_IP on h2; VNI $VNI; container eth0 MTU $ov_mtu"
}

# ---------------------------------------------------------------- measurements

throughput() {
    local i ov un ovs="" uns="" ovm unm
    for i in $(seq "$REPEATS"); do
        ov="$(iperf_gbps "-t $B_PID -n" "-t $A_PID -n" "$A_IP")"
        un="$(iperf_gbps "--net=/run/netns/${P}h2" "--net=/run/netns/${P}h1" 192.0.2.1)"
        ovs="$ovs $ov"
        uns="$uns $un"
    done
    ovm="$(tr ' ' '\n' <<<"$ovs" | grep . | median)"
    unm="$(tr ' ' '\n' <<<"$uns" | grep . | median)"
    echo "  TCP single stream, ${IPERF_SECONDS}s x $REPEATS (h2 -> h1):"
    echo "    overlay  (container -> container): median $ovm Gbit/s  (runs:$ovs)"
    echo "    underlay (host -> host):           median $unm Gbit/s  (runs:$uns)"
    RATIO="$(awk -v o="$ovm" -v u="$unm" 'BEGIN { printf "%.2f", o / u }')"
    echo "    overlay/underlay: $RATIO  (Docker Swarm here: 0.78)"
}

# The vip-mode service whose VIP the bench containers then balance: two tasks on h1, each
# serving TCP connections on port 8080 (net_load listen); sets VIP and VIP_TASK_IP.
vips_on() {
    sw service create -q --name vipweb --network bench --replicas 2 \
        --constraint node.hostname==h1 "$IMAGE" sleep 3600 >/dev/null
    wait_for 60 "both vipweb tasks have a container" two_vipweb_containers
    local id pid
    while read -r id _ _; do
        pid="$(docker inspect -f '{{.State.Pid}}' "$id")"
        nsenter -t "$pid" -n "$LOAD" listen 8080 </dev/null >/dev/null 2>&1 &
        echo "$! net_load" >>"$RUN/pids"
        disown "$!"
    done < <(endpoints vipweb)
    VIP="$(sw service inspect vipweb | jq -r '.[0].Endpoint.VirtualIPs[0].Addr | split("/")[0]')"
    VIP_TASK_IP="$(endpoints vipweb | awk 'NR == 1 { print $3 }')"
    wait_for 30 "the VIP serves from the h2 bench task" vip_serves
    local check
    check="$(sw network check)"
    BALANCER="$(awk '$1 == "h2" && ($2 == "bpf" || $2 == "nftables") { print $2 }' <<<"$check")"
    echo "  VIPs on: vipweb $VIP (2 tasks on h1); h2 balances VIPs with: ${BALANCER:-unknown}"
    FORWARDING="$(awk -F '  +' '$1 == "h2" && NF >= 3 { split($3, w, " "); print w[1] }' <<<"$check")"
    echo "  h2's sandboxes forward with: ${FORWARDING:-unknown} (bpf: past the bridge; bridge: through it)"
}

two_vipweb_containers() { [ "$(endpoints vipweb | wc -l)" = 2 ]; }
conn_load() { nsenter -t "$B_PID" -n "$LOAD" connect "$1:8080" "$2"; }
vip_serves() { conn_load "$VIP" 1 | grep -q 'errors=0'; }

# avg RTT (ms) of busybox ping in namespace args $1 to $2
rtt_avg() {
    # shellcheck disable=SC2086
    nsenter $1 "$BUSYBOX" ping -c "$PINGS" -i 0.2 "$2" | sed -n 's#.*min/avg/max = [^/]*/\([^/]*\)/.*#\1#p'
}

rtt() {
    local ov un
    ov="$(rtt_avg "-t $B_PID -n" "$A_IP")"
    un="$(rtt_avg "--net=/run/netns/${P}h2" 192.0.2.1)"
    RTT_RATIO="$(awk -v o="$ov" -v u="$un" 'BEGIN { printf "%.2f", o / u }')"
    echo "  RTT, $PINGS pings 0.2 s apart (h2 -> h1), avg:"
    echo "    overlay  $ov ms"
    echo "    underlay $un ms  (Docker Swarm here: 0.10 vs 0.055 ms)"
    echo "    overlay/underlay: $RTT_RATIO"
}

mac_of() { printf '02:42:%02x:%02x:%02x:%02x' ${1//./ }; }

# Host 2's sandbox holds the peer entries of $1: neighbour on vxlan0 and FDB to 192.0.2.1.
peer_present() {
    ip -n "$SANDBOX2" neigh show "$1" dev vxlan0 2>/dev/null | grep -q lladdr &&
        bridge -n "$SANDBOX2" fdb show dev vxlan0 2>/dev/null | grep -qi "^$(mac_of "$1") .*dst 192.0.2.1"
}

peer_absent() { ! ip -n "$SANDBOX2" neigh show "$1" dev vxlan0 2>/dev/null | grep -q lladdr; }

probe_ip() {
    sw network inspect bench | jq -r '.[0].Containers // {} | to_entries[]
        | select(.value.Name | startswith("probe.")) | .value.IPv4Address | split("/")[0]' | head -n 1
}

# No probe endpoint left in the network and no probe container left in Docker.
probe_gone() {
    [ -z "$(probe_ip)" ] && [ -z "$(docker ps -aq --filter "label=com.swarmr.service.id=$PROBE_ID")" ]
}

# Endpoint propagation: one trial; prints the seconds from the scale call to "IP allocated,
# peer entries on h2, first ping answered, container started", or "fail <reason>".
# Polls every 10 ms (each poll runs `swarmr`/`ip`, on the same 2 CPUs as the nodes).
propagation_trial() {
    local t0 ip="" t_ip t_peer t_ping deadline first
    t0="$(now_us)"
    sw service scale -d probe=1 >/dev/null
    deadline=$(( t0 + 20000000 ))
    until ip="$(probe_ip)" && [ -n "$ip" ]; do
        (( $(now_us) < deadline )) || { echo "fail no-ip"; return; }
        sleep 0.01
    done
    t_ip="$(now_us)"
    until peer_present "$ip"; do
        (( $(now_us) < deadline )) || { echo "fail no-peer-entry"; return; }
        sleep 0.01
    done
    t_peer="$(now_us)"
    # Pings every 20 ms from the task on host 2 until the first answer (the new task's
    # container may still be starting on host 1). Started once the peer entries are there:
    # no answer can come before (the task's ARP is answered by vxlan0's proxy from them),
    # and an ARP sent earlier would only be retried after the kernel's 1 s timer.
    first="$(nsenter -t "$B_PID" -n "$BUSYBOX" ping -i 0.02 -w 15 "$ip" 2>/dev/null |
        while IFS= read -r line; do
            case "$line" in *"bytes from"*) now_us; break ;; esac
        done || true)"
    [ -n "$first" ] || { echo "fail no-ping"; return; }
    t_ping="$first"
    # When Docker started the new task's container (for the reader: the ping needs it).
    local cid started t_start
    cid="$(docker ps -q --no-trunc --filter "label=com.swarmr.service.id=$PROBE_ID" | head -n 1)"
    started="$(docker inspect -f '{{.State.StartedAt}}' "$cid")"
    t_start="$(date -d "$started" +%s%6N)"
    awk -v a="$t0" -v b="$t_ip" -v c="$t_peer" -v d="$t_ping" -v e="$t_start" \
        'BEGIN { printf "%.3f %.3f %.3f %.3f\n", (b - a) / 1e6, (c - a) / 1e6, (d - a) / 1e6, (e - a) / 1e6 }'
}

propagation() {
    # The probe exits on SIGTERM at once (a bare `sleep` as PID 1 ignores it: 10 s stops).
    sw service create -d --name probe --network bench --replicas 0 \
        --constraint node.hostname==h1 "$IMAGE" sh -c 'trap "exit 0" TERM; sleep 3600 & wait' >/dev/null
    PROBE_ID="$(sw service inspect probe | jq -r '.[0].ID')"
    local i res a b c d ips="" peers="" pings="" starts="" fails=0 line="" last_ip
    for i in $(seq "$TRIALS"); do
        res="$(propagation_trial)"
        case "$res" in
            fail*) fails=$((fails + 1)); line="$line [$i: ${res#fail }]" ;;
            *)
                read -r a b c d <<<"$res"
                ips="$ips $a"; peers="$peers $b"; pings="$pings $c"; starts="$starts $d"
                line="$line $c"
                ;;
        esac
        last_ip="$(probe_ip || true)"
        sw service scale -d probe=0 >/dev/null
        wait_for 30 "probe task gone (trial $i)" probe_gone
        if [ -n "$last_ip" ]; then
            wait_for 30 "probe peer entry gone from h2 (trial $i)" peer_absent "$last_ip"
        fi
    done
    local ip_s peer_s ping_s start_s
    start_s="$(tr ' ' '\n' <<<"$starts" | grep . | p50_max)"
    ip_s="$(tr ' ' '\n' <<<"$ips" | grep . | p50_max)"
    peer_s="$(tr ' ' '\n' <<<"$peers" | grep . | p50_max)"
    ping_s="$(tr ' ' '\n' <<<"$pings" | grep . | p50_max)"
    echo "  Endpoint propagation, $TRIALS trials (from \`service scale -d probe=1\`, task pinned to h1, seen from h2):"
    echo "    IP allocated (network inspect):       p50 ${ip_s% *} s, max ${ip_s#* } s"
    echo "    peer entries in h2's sandbox:         p50 ${peer_s% *} s, max ${peer_s#* } s  (Docker Swarm: 0.3-0.4 s after task creation)"
    echo "    its container started (Docker):       p50 ${start_s% *} s, max ${start_s#* } s"
    echo "    first ping answered (h2 task -> new): p50 ${ping_s% *} s, max ${ping_s#* } s"
    echo "    per trial, first ping (s):$line"
    [ "$fails" = 0 ] || echo "    failed trials: $fails"
}

# ---------------------------------------------------------------- main

command -v iperf3 >/dev/null || die "iperf3 is not installed (deploy/prereqs.sh)"
[ -x "$BUSYBOX" ] || die "busybox-static is not installed at $BUSYBOX (deploy/prereqs.sh)"
docker image inspect "$IMAGE" >/dev/null 2>&1 || bash deploy/images/build.sh
cargo build --release -q -p swarmr-cli --bin swarmr --example net_load
BIN="$(target_dir)/release/swarmr"
LOAD="$(target_dir)/release/examples/net_load"
echo "overlay data plane: 2 hosts (namespaces on an underlay bridge), kernel $(uname -r), $(nproc) CPUs"

round=0
for mtu in $MTUS; do
    round=$((round + 1))
    echo "round $round: underlay MTU $mtu"
    build_cluster "$mtu" "$round"
    if [ "$round" = 1 ]; then
        echo "  no VIP on the network:"
        throughput
        BARE="$RATIO"
    fi
    vips_on
    throughput
    if [ "$round" = 1 ]; then
        VIP_RATIO="$RATIO"
        rtt
        conn_rate "h2 bench task -> vipweb on h1" "$VIP" "$VIP_TASK_IP"
        [ "$TRIALS" = 0 ] || propagation
    else
        JUMBO="$RATIO"
    fi
    teardown "$RUN"
done
echo "overlay_tcp_ratio_bare=${BARE:-n/a}"
echo "overlay_tcp_ratio_vip=${VIP_RATIO:-n/a}"
echo "overlay_tcp_ratio_jumbo=${JUMBO:-n/a}"
echo "overlay_rtt_ratio=${RTT_RATIO:-n/a}"
echo "vip_over_direct_conn_rate=${CONN_RATIO:-n/a}"
echo "vip_balancer=${BALANCER:-unknown}"
echo "overlay_forwarding=${FORWARDING:-unknown}"
