#!/usr/bin/env bash
# A mechanism lab, not a product figure (all.sh does not run it): how much of the
# overlay's throughput the container's own hop costs. No swarmr runs. Two hosts as
# network namespaces on an underlay bridge (TEST-NET-1 192.0.2.0/24, as overlay.sh), a
# VXLAN device in each with static FDB entries, and a "container" namespace behind it,
# wired one of two ways, rebuilt each round:
#   veth:    a veth pair, its host end on a bridge with the VXLAN device (swarmr's
#            sandboxes, without the BPF fast path);
#   macvlan: a macvlan of the VXLAN device in bridge mode, moved into the container (no
#            veth, no bridge, no backlog queue between the container and the VXLAN).
# Per round (ROUNDS, default 6): an iperf3 single stream for IPERF_SECONDS (default 4) host
# to host over the underlay, then container to container each way of wiring; prints each
# round's ratios to the underlay and ends with lab_veth_ratio and lab_macvlan_ratio
# (medians).
# Needs root, iperf3 and the kernel's VXLAN and macvlan. Everything it creates is removed
# on exit (also on failure).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/lib.sh

ROUNDS="${ROUNDS:-6}"
IPERF_SECONDS="${IPERF_SECONDS:-4}"
BENCH=overlay_lab
bench_init
P="ol$$"
make_underlay

# A new container namespace per host, wired by "$1" (veth or macvlan) to a new VXLAN
# device whose FDB points the other container's MAC at the other host.
wire() {
    local mode="$1" i host container other
    for i in 1 2; do
        host="${P}h$i" container="${P}c$i" other=$((3 - i))
        ip netns del "$container" 2>/dev/null || true
        ip netns add "$container"
        grep -qx "$container" "$RUN/netns" || echo "$container" >>"$RUN/netns"
        ip -n "$host" link del vxlan0 2>/dev/null || true
        ip -n "$host" link del br1 2>/dev/null || true
        ip -n "$host" link add vxlan0 mtu 1450 type vxlan id 42 local "192.0.2.$i" dstport 4789 nolearning
        if [ "$mode" = veth ]; then
            ip -n "$host" link add br1 mtu 1450 type bridge
            ip -n "$host" link set vxlan0 master br1
            ip -n "$host" link add ve0 mtu 1450 master br1 type veth peer name eth0 netns "$container"
            ip -n "$host" link set ve0 up
            ip -n "$host" link set br1 up
        else
            ip -n "$host" link add mv0 link vxlan0 type macvlan mode bridge
            ip -n "$host" link set mv0 netns "$container"
            ip -n "$container" link set mv0 name eth0
        fi
        ip -n "$host" link set vxlan0 up
        ip -n "$container" link set lo up
        ip -n "$container" link set eth0 address "02:42:0a:09:00:0$i" mtu 1450 up
        ip -n "$container" addr add "10.9.0.$i/24" dev eth0
        ip -n "$container" neigh replace "10.9.0.$other" lladdr "02:42:0a:09:00:0$other" dev eth0 nud permanent
        bridge -n "$host" fdb append "02:42:0a:09:00:0$other" dev vxlan0 dst "192.0.2.$other" self permanent
    done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

for round in $(seq "$ROUNDS"); do
    underlay="$(iperf_gbps "--net=/run/netns/${P}h1" "--net=/run/netns/${P}h2" 192.0.2.2)"
    line="round $round: underlay $(printf %.1f "$underlay") Gbit/s"
    for mode in veth macvlan; do
        wire "$mode"
        overlay="$(iperf_gbps "--net=/run/netns/${P}c1" "--net=/run/netns/${P}c2" 10.9.0.2)"
        share="$(ratio "$overlay" "$underlay")"
        echo "$share" >>"$RUN/$mode"
        line+=", $mode $share"
    done
    echo "$line"
done
echo "lab_veth_ratio=$(median 2 <"$RUN/veth")"
echo "lab_macvlan_ratio=$(median 2 <"$RUN/macvlan")"
