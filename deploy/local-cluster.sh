#!/usr/bin/env bash
# A local cluster on loopback addresses: three managers and one worker, each a real
# `swarmr` process with its own data dir under $STATE (default /var/tmp/swarmr-local).
#   deploy/local-cluster.sh        build, start, show `node ls`
#   deploy/local-cluster.sh down   stop every process it started and remove its data
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="${STATE:-/var/tmp/swarmr-local}"
. deploy/bench/lib.sh

down() {
    if [ -d "$STATE" ]; then
        for pidfile in "$STATE"/*.pid; do
            [ -e "$pidfile" ] || continue
            kill "$(cat "$pidfile")" 2>/dev/null || true
        done
        sleep 1
        rm -rf "$STATE"
    fi
    echo "local cluster removed"
}

run() { echo "+ $*" >&2; "$@"; }

up() {
    down >/dev/null
    cargo build --release -p swarmr-cli --bin swarmr
    local bin; bin="$(target_dir)/release/swarmr"
    mkdir -p "$STATE"
    start() { # name, then swarmr arguments
        local name=$1; shift
        "$bin" "$@" --data-dir "$STATE/$name" --hostname "$name" >"$STATE/$name.out" 2>"$STATE/$name.log" &
        echo $! >"$STATE/$name.pid"
    }
    wait_sock() { for _ in $(seq 1 100); do [ -S "$STATE/$1/swarmr.sock" ] && return; sleep 0.1; done; }
    echo "+ swarmr init --listen-addr 127.0.0.11:2377" >&2
    start m1 init --listen-addr 127.0.0.11:2377
    wait_sock m1
    sleep 1
    local m1="unix://$STATE/m1/swarmr.sock"
    local manager_token worker_token
    manager_token=$("$bin" -H "$m1" join-token manager -q)
    worker_token=$("$bin" -H "$m1" join-token worker -q)
    for i in 2 3; do
        echo "+ swarmr join --token <manager token> --listen-addr 127.0.0.1$i:2377 127.0.0.11:2377" >&2
        start "m$i" join --token "$manager_token" --listen-addr "127.0.0.1$i:2377" 127.0.0.11:2377
    done
    echo "+ swarmr join --token <worker token> --listen-addr 127.0.0.14:2377 127.0.0.11:2377" >&2
    start w1 join --token "$worker_token" --listen-addr 127.0.0.14:2377 127.0.0.11:2377
    sleep 3
    run "$bin" -H "$m1" node ls
    cat <<EOT

The cluster runs. Talk to it with:
    $bin -H $m1 node ls
    $bin -H 127.0.0.12:2377 node inspect w1
Logs are in $STATE/*.log. Remove everything with:
    $0 down
EOT
}

case "${1:-up}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
