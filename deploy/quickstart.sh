#!/usr/bin/env bash
# swarmr quickstart: a three-host cluster on this machine, each "host" a network namespace
# on one underlay bridge (TEST-NET-1, 192.0.2.0/24), each running its own swarmr node, all
# sharing the one Docker engine. Safe to rerun, also after a crash.
#   sudo deploy/quickstart.sh        set up and run the demo
#   sudo deploy/quickstart.sh down   remove every process, container, namespace and data dir
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=/var/tmp/swarmr-quickstart
P=qs-   # namespace prefix: qs-u (underlay), qs-h1, qs-h2, qs-h3, qs-client
. deploy/lib.sh

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# lib.sh's harness, with this script's state dir as its run dir: the cluster outlives the
# script, and `down` removes exactly what `up` recorded there (processes, namespaces, the
# nodes' containers and sandboxes).
RUN="$STATE"
NODE_DIR="$STATE"
NODE_ARGS=()

down() {
    [ -d "$STATE" ] && teardown "$STATE"
    rm -rf "$STATE"
}

node() { # n, swarmr arguments...: start a node on host n and wait for its socket
    start_node "$@"
    for _ in $(seq 1 100); do [ -S "$STATE/h$1/swarmr.sock" ] && return; sleep 0.1; done
    echo "node h$1 did not start; see $STATE/h$1.log" >&2
    exit 1
}

swarmr_on() { local n=$1; shift; "$BIN" -H "unix://$STATE/h$n/swarmr.sock" "$@"; }

up() {
    bash deploy/prereqs.sh
    cargo build --release -p swarmr-cli --bin swarmr
    BIN="$(target_dir)/release/swarmr"
    bash deploy/images/build.sh
    down
    mkdir -p "$STATE"
    : >"$STATE/pids"
    : >"$STATE/netns"
    HOSTS=3 make_underlay
    add_underlay_host client 100   # a machine outside the cluster, for the published port

    say "swarmr init    (on h1, 192.0.2.1)"
    node 1 init
    sleep 1
    grep -v '^[0-9-]*T[0-9:.]*Z' "$STATE/h1.log" || true
    manager_token=$(swarmr_on 1 join-token -q manager)
    worker_token=$(swarmr_on 1 join-token -q worker)
    say "swarmr join --token <manager token> 192.0.2.1:2377    (on h2)"
    node 2 join --token "$manager_token" 192.0.2.1:2377
    say "swarmr join --token <worker token> 192.0.2.1:2377    (on h3)"
    node 3 join --token "$worker_token" 192.0.2.1:2377
    sleep 3
    say "swarmr node ls"
    swarmr_on 1 node ls
    say "swarmr network create --driver overlay my-overlay"
    swarmr_on 1 network create --driver overlay my-overlay
    say "swarmr service create --network my-overlay --replicas 3 -p 8080:80 my-service"
    swarmr_on 1 service create --network my-overlay --replicas 3 -p 8080:80 my-service
    say "swarmr service ps my-service"
    swarmr_on 1 service ps my-service
    say "swarmr network inspect my-overlay"
    swarmr_on 1 network inspect my-overlay

    say "one container reaches the others across the overlay, by IP"
    ips=$(swarmr_on 1 network inspect my-overlay | sed -n 's/.*"IPv4Address": "\([0-9.]*\)\/.*/\1/p')
    from=$(docker ps -q --filter label=com.swarmr.service.id --filter name=my-service. | head -1)
    for ip in $ips; do
        for _ in $(seq 1 50); do
            # busybox-static's wget crashes in glibc's static resolver; nc speaks plain HTTP.
            answer=$(docker exec "$from" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $ip 80 | tail -1" 2>/dev/null || true)
            [ -n "$answer" ] && break
            sleep 0.2
        done
        echo "GET http://$ip/  ->  answered by ${answer:-nobody}"
    done

    say "by service name: the embedded DNS answers with the service's VIP, connections spread over the tasks"
    vip=""
    for _ in $(seq 1 50); do
        vip=$(docker exec "$from" nslookup my-service 2>/dev/null | awk '/^Name:/ { n = 1 } n && /^Address/ { print $NF; exit }')
        [ -n "$vip" ] && break
        sleep 0.2
    done
    echo "nslookup my-service        ->  $vip (the VIP)"
    echo "nslookup tasks.my-service  ->" $(docker exec "$from" nslookup tasks.my-service 2>/dev/null | awk '/^Name:/ { n = 1 } n && /^Address/ { print $NF }')
    for _ in 1 2 3 4 5 6; do
        answer=$(docker exec "$from" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $vip 80 | tail -1" 2>/dev/null || true)
        echo "GET http://my-service/ ($vip)  ->  answered by ${answer:-nobody}"
    done

    say "from a client outside the cluster (192.0.2.100): port 8080 on every node, the task sees the client's own address"
    for n in 1 2 3; do
        answer=""
        for _ in $(seq 1 50); do
            answer=$(nsenter --net=/run/netns/${P}client sh -c \
                "printf 'GET /cgi-bin/client-addr HTTP/1.0\r\n\r\n' | busybox nc -w 1 192.0.2.$n 8080 | tail -1" 2>/dev/null || true)
            [ -n "$answer" ] && break
            sleep 0.2
        done
        echo "GET http://192.0.2.$n:8080/cgi-bin/client-addr  ->  the task saw ${answer:-nothing}"
    done

    cat <<EOT

The cluster runs. Use it with the wrapper (h1 and h2 are managers, h3 a worker):
    deploy/swarmr-local h1 service ls
    deploy/swarmr-local h2 node ls
    deploy/swarmr-local h1 service scale my-service=5
Node logs: $STATE/h*.log. Remove everything with:
    sudo deploy/quickstart.sh down
EOT
}

case "${1:-up}" in
    up) up ;;
    down) down; echo "quickstart removed" ;;
    *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
