#!/usr/bin/env bash
# Every benchmark in one run, one after another, for the README's table: overlay, raft,
# services (with the scheduler at scale), discovery, publish and update. Run it on a quiet
# machine. Before each part it waits (SETTLE_MAX seconds at most, default 240) until the
# CPUs are 90% idle over 2 s, and prints that wait and the load average. The load average
# trails the services part by minutes (10-20 when discovery starts): the idle share is
# what says whether the machine is quiet. Each part's full output goes to
# OUT (default /tmp/swarmr-bench-all.<pid>); a part that fails is named and the rest run
# on. Ends with the machine, the date, and one key=value line per figure (n/a where a part
# did not print it); exits non-zero if a part failed.
# The parts' own knobs pass through (TRIALS, REPEATS, ...); PARTS="overlay raft" runs only
# those. Needs what the parts need: root, Docker, deploy/prereqs.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."

PARTS="${PARTS:-overlay raft services discovery publish update}"
OUT="${OUT:-/tmp/swarmr-bench-all.$$}"
# The figures the README's table is made of, in its order.
KEYS="overlay_tcp_ratio_bare overlay_tcp_ratio_vip overlay_tcp_ratio_jumbo overlay_rtt_ratio
vip_over_direct_conn_rate vip_balancer overlay_forwarding writes_per_s_1 write_p99_ms_1 writes_per_s_64
write_p99_ms_64 writes_per_s_64_at_10k failover_p50_s failover_max_s node_down_s
rescheduled_s converge_3_s converge_3_over_floor converge_30_s converge_30_floor_s
converge_30_over_floor converge_100_s converge_100_floor_s converge_100_over_floor
update_30_over_floor placed_10k_s running_10k_s scale_peak_rss_mb dns_qps dns_p50_ms
dns_p99_ms discovery_vip_over_direct_conn_rate node_rss_mb publish_host_over_direct
publish_mesh_over_direct update_replicas update_s update_floor_s update_over_floor
update_requests_sent update_requests_failed"

mkdir -p "$OUT"
echo "building the release binaries and benchmark examples"
cargo build --release -q -p swarmr-cli --bin swarmr --examples || exit 1
cargo build --release -q -p swarmr-manager --example scheduler_scale || exit 1

# The percentage of CPU time spent idle over the next 2 s (I/O wait counts as busy).
idle_percent() {
    local before after
    before="$(head -n 1 /proc/stat)"
    sleep 2
    after="$(head -n 1 /proc/stat)"
    awk -v a="$before" -v b="$after" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 2; i <= n; i++) total += y[i] - x[i]
        print (total > 0 ? int(100 * (y[5] - x[5]) / total) : 100) }'
}

# Waits until the machine is quiet (or SETTLE_MAX has passed); prints how long that took.
settle() {
    local t0 idle
    t0=$(date +%s)
    until idle="$(idle_percent)"; [ "$idle" -ge 90 ] || (( $(date +%s) - t0 >= ${SETTLE_MAX:-240} )); do :; done
    echo "$(( $(date +%s) - t0 )) s to settle, ${idle}% idle"
}

failed=""
started=$(date +%s)
for part in $PARTS; do
    [ -f "deploy/bench/$part.sh" ] || { echo "no such part: $part" >&2; failed="$failed $part"; continue; }
    quiet="$(settle)"
    echo "== $part ($quiet, load average $(cut -d' ' -f1-3 /proc/loadavg)), output in $OUT/$part.log"
    t0=$(date +%s)
    if bash "deploy/bench/$part.sh" >"$OUT/$part.log" 2>&1; then
        echo "   done in $(( $(date +%s) - t0 )) s"
    else
        echo "   FAILED after $(( $(date +%s) - t0 )) s; last lines:"
        tail -n 5 "$OUT/$part.log" | sed 's/^/     /'
        failed="$failed $part"
    fi
done

# The last value printed for each key wins (parts print each key once).
figures="$(cat "$OUT"/*.log 2>/dev/null | grep -E '^[a-z0-9_]+=[^ ]*$' || true)"
value() { awk -F= -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "n/a" : v) }' <<<"$figures"; }
echo
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), Docker $(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), $(( ($(date +%s) - started) / 60 )) min, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
for key in $KEYS; do
    echo "$key=$(value "$key")"
done
if [ -n "$failed" ]; then
    echo "failed parts:$failed (see $OUT)" >&2
    exit 1
fi
