# shellcheck shell=bash
# Shared by the quickstart, the benchmark scripts and swarmr-local: where cargo puts its
# build output.
target_dir() {
    cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

# ---------------------------------------------------------------- two-host harness
# For the scripts that run real nodes in host namespaces on an underlay bridge (the
# quickstart and the benchmarks). A benchmark sets BENCH (its file name without .sh), calls
# bench_init, and before make_underlay/start_node sets P (namespace prefix), NODE_DIR
# (node data dirs and logs: $NODE_DIR/hN, $NODE_DIR/hN.log), BIN and optionally the
# array NODE_ARGS (more `swarmr` arguments). Whatever a run starts goes into $RUN/pids
# ("PID marker", the marker being part of its command line) and $RUN/netns: teardown
# removes exactly that, so other processes and namespaces on the machine are never touched.

# Kills what a run dir recorded (only processes whose command line still matches: the PID
# may have been reused), removes the containers and sandbox namespaces of its nodes, then
# its namespaces. Idempotent: everything may already be gone.
teardown() {
    local dir="$1" pid marker id ns ids
    if [ -f "$dir/pids" ]; then
        while read -r pid marker; do
            [ -n "$pid" ] || continue
            if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$dir/pids"
        # Let the kernel reap them before their namespaces go.
        while read -r pid marker; do
            for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        done <"$dir/pids"
        : >"$dir/pids"
    fi
    # Node dirs are $RUN/hN or, with rounds, $RUN/<round>/hN.
    for id in $(cat "$dir"/*/node.json "$dir"/*/*/node.json 2>/dev/null | jq -r '.node_id // empty' 2>/dev/null); do
        for ns in $(ip netns list | awk '{print $1}' | grep "^swr-${id:0:12}-" || true); do
            ip netns del "$ns" 2>/dev/null || true
        done
        mapfile -t ids < <(docker ps -aq --filter "label=com.swarmr.node.id=$id" 2>/dev/null || true)
        [ "${#ids[@]}" = 0 ] || docker rm -f "${ids[@]}" >/dev/null 2>&1 || true
        # A killed node cannot unmount the tmpfs that holds its tasks' secrets and configs.
        umount "/run/swarmr/files/$id" 2>/dev/null || true
        rmdir "/run/swarmr/files/$id" 2>/dev/null || true
    done
    if [ -f "$dir/netns" ]; then
        while read -r ns; do
            [ -z "$ns" ] || ip netns del "$ns" 2>/dev/null || true
        done <"$dir/netns"
        : >"$dir/netns"
    fi
}

# Sweeps the run dirs of earlier runs of this script that died without cleaning up (their
# owner PID no longer runs it), then makes this run's dir $RUN, removed on exit.
bench_init() {
    local stale owner
    for stale in "/tmp/swarmr-$BENCH-bench."*; do
        [ -d "$stale" ] || continue
        owner="${stale##*.}"
        if ! { tr '\0' ' ' <"/proc/$owner/cmdline"; } 2>/dev/null | grep -q "$BENCH.sh"; then
            echo "removing leftovers of an earlier run: $stale" >&2
            teardown "$stale"
            rm -rf "$stale"
        fi
    done
    RUN="/tmp/swarmr-$BENCH-bench.$$"
    mkdir -p "$RUN"
    : >"$RUN/pids"
    : >"$RUN/netns"
    trap on_exit EXIT
    # Through the EXIT trap, so an interrupted run cleans up too.
    trap 'exit 130' INT TERM
}

# On failure (not on ^C) the nodes' last log lines say why; cleanup always.
on_exit() {
    local rc=$? log
    if [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ -n "${NODE_DIR:-}" ]; then
        for log in "$NODE_DIR"/*.log; do
            [ -f "$log" ] || continue
            echo "--- last lines of $log" >&2
            tail -n 15 "$log" >&2 || true
        done
    fi
    teardown "$RUN"
    rm -rf "$RUN"
    exit "$rc"
}

die() { echo "$BENCH bench: $*" >&2; exit 1; }

# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s.
wait_for() {
    local limit="$1" what="$2" deadline
    shift 2
    deadline=$(( ${EPOCHREALTIME/./} + limit * 1000000 ))
    until "$@" >/dev/null 2>&1; do
        (( ${EPOCHREALTIME/./} < deadline )) || die "timed out after ${limit}s waiting for: $what"
        sleep 0.1
    done
}

# median [DECIMALS]: of the numbers on stdin; an even count averages the middle two,
# printed with DECIMALS (default 3).
# shellcheck disable=SC2120 # DECIMALS is optional
median() {
    sort -g | awk -v d="${1:-3}" '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%." d "f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The underlay: namespace ${P}u with bridge br0, host namespaces ${P}h1/${P}h2 (and more
# with HOSTS, e.g. HOSTS=3) with eth0 192.0.2.N; with MTU, every link of it at MTU.
# Nothing is created in the root namespace.
# shellcheck disable=SC2120 # MTU is optional
make_underlay() {
    local n mtu_args=()
    [ -z "${1:-}" ] || mtu_args=(mtu "$1")
    ip netns add "${P}u"
    echo "${P}u" >>"$RUN/netns"
    ip -n "${P}u" link set lo up
    ip -n "${P}u" link add br0 "${mtu_args[@]}" type bridge
    ip -n "${P}u" link set br0 up
    for n in $(seq "${HOSTS:-2}"); do
        add_underlay_host "h$n" "$n" "${mtu_args[@]}"
    done
    # Adding ports may have changed the bridge's MTU: set it again.
    [ -z "${1:-}" ] || ip -n "${P}u" link set br0 mtu "$1"
}

# add_underlay_host NAME LAST [mtu M]: namespace ${P}NAME on the underlay at 192.0.2.LAST
# (a node's host, or an outside client or server that runs no node).
add_underlay_host() {
    local name="$1" last="$2"
    shift 2
    ip netns add "${P}$name"
    echo "${P}$name" >>"$RUN/netns"
    ip -n "${P}$name" link set lo up
    ip -n "${P}$name" link add eth0 "$@" type veth peer name "${P}${last}u" "$@" netns "${P}u"
    ip -n "${P}$name" addr add "192.0.2.$last/24" dev eth0
    ip -n "${P}$name" link set eth0 up
    ip -n "${P}u" link set "${P}${last}u" master br0
    ip -n "${P}u" link set "${P}${last}u" up
}

# start_node N ARGS...: `swarmr ARGS` in host namespace N (nsenter execs it: $! is the node).
start_node() {
    local n="$1"
    shift
    mkdir -p "$NODE_DIR/h$n"
    SWARMR_LOG=info NO_COLOR=1 nsenter --net="/run/netns/${P}h$n" "$BIN" "$@" \
        --data-dir "$NODE_DIR/h$n" --listen-addr "192.0.2.$n:2377" \
        --advertise-addr "192.0.2.$n" --hostname "h$n" "${NODE_ARGS[@]}" \
        </dev/null >>"$NODE_DIR/h$n.log" 2>&1 &
    echo "$! $NODE_DIR/h$n" >>"$RUN/pids"
    disown "$!" # killed by teardown, by PID: no job report
}

# A manager on host 1 and a worker on host 2 (in the underlay): returns once h2 is Ready.
start_cluster() {
    local token
    start_node 1 init
    wait_for 60 "manager on host 1" sw node ls -q
    token="$(sw join-token -q worker)"
    start_node 2 join --token "$token" 192.0.2.1:2377
    wait_for 60 "worker h2 Ready" node_ready h2
}

# The CLI against the manager on host 1.
sw() { "$BIN" -H "unix://$NODE_DIR/h1/swarmr.sock" "$@"; }

node_ready() { sw node ls --format json | jq -e --arg h "$1" 'select(.Hostname == $h and .Status == "Ready")'; }

# field KEY: the value of KEY=value among the space-separated words on stdin.
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

# container_of SERVICE: one container of the service (through sw).
container_of() { docker ps -q --filter "label=com.swarmr.service.id=$(sw service inspect "$1" | jq -r '.[0].ID')" | head -n 1; }

# ---------------------------------------------------------------- measurements

# iperf3 single stream, client in namespace args $1 to server in namespace args $2 at $3;
# prints Gbit/s received.
iperf_gbps() {
    local client_ns="$1" server_ns="$2" addr="$3" srv out _try
    # shellcheck disable=SC2086
    nsenter $server_ns iperf3 -s -1 -p 5201 </dev/null >/dev/null 2>&1 &
    srv=$!
    echo "$srv iperf3" >>"$RUN/pids"
    for _try in $(seq 30); do
        sleep 0.2
        # shellcheck disable=SC2086
        if out="$(nsenter $client_ns iperf3 -c "$addr" -p 5201 -t "$IPERF_SECONDS" -J 2>/dev/null)"; then
            break
        fi
        out=""
    done
    wait "$srv" 2>/dev/null || true
    [ -n "$out" ] || die "iperf3 to $addr failed"
    jq -r '.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000' <<<"$out"
}

# conn_rate WHAT VIP_TARGET DIRECT_TARGET: REPEATS interleaved runs of CONNS new TCP
# connections (`net_load connect` through the caller's `conn_load TARGET COUNT`), through
# the VIP and straight to a task; prints each way's median and runs and their ratio with
# the connections that failed (a timed-out connection counts only there), and sets
# CONN_RATIO.
conn_rate() {
    local what="$1" vip="$2" direct="$3" i run vips="" directs="" failed=0 vm dm
    for i in $(seq "$REPEATS"); do
        run="$(conn_load "$vip" "$CONNS")"
        vips="$vips $(field cps <<<"$run")" failed=$((failed + $(field errors <<<"$run")))
        run="$(conn_load "$direct" "$CONNS")"
        directs="$directs $(field cps <<<"$run")" failed=$((failed + $(field errors <<<"$run")))
    done
    vm="$(tr ' ' '\n' <<<"$vips" | grep . | median 1)"
    dm="$(tr ' ' '\n' <<<"$directs" | grep . | median 1)"
    CONN_RATIO="$(awk -v v="$vm" -v d="$dm" 'BEGIN { printf "%.2f", v / d }')"
    echo "  TCP connections/s, $CONNS per run x $REPEATS, $what:"
    echo "    through the VIP:      median $vm  (runs:$vips)"
    echo "    straight to the task: median $dm  (runs:$directs)"
    echo "    VIP/direct: $CONN_RATIO  ($failed connections failed)"
}
