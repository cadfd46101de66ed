#!/usr/bin/env bash
# Installs and starts what swarmr's tests, quickstart and benchmarks need on Debian:
# iproute2, util-linux (nsenter, unshare), jq (the scripts read JSON), busybox-static,
# iperf3, nftables, systemd-analyze (to check the unit), python3 (UDP responders in the
# discovery tests), curl and docker-py (the Docker API tests; the docker CLI comes with
# docker.io), chromium (the dashboard test loads the page headless), clang and libbpf-dev
# (the build compiles the BPF socket load balancer for VIPs), and a running Docker engine.
# Safe to run again.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "run as root: network namespaces, netlink and the Docker socket need it" >&2
    exit 1
fi
packages=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip || packages+=(iproute2)
have bridge || packages+=(iproute2)
have nsenter || packages+=(util-linux)
have file || packages+=(file)
[ -x /bin/busybox ] && file -L /bin/busybox | grep -q "statically linked" || packages+=(busybox-static)
have iperf3 || packages+=(iperf3)
have nft || packages+=(nftables)
have docker || packages+=(docker.io)
have cc || packages+=(gcc)
have clang || packages+=(clang)
[ -f /usr/include/bpf/bpf_helpers.h ] || packages+=(libbpf-dev)
have python3 || packages+=(python3)
have curl || packages+=(curl)
have jq || packages+=(jq)
have systemd-analyze || packages+=(systemd)
have chromium || packages+=(chromium)
if [ "${#packages[@]}" -gt 0 ]; then
    echo "installing: ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${packages[@]}" >/dev/null
fi
# docker-py for the Docker API tests: pip where it may install, else Debian's package.
if ! python3 -c 'import docker' 2>/dev/null; then
    echo "installing docker-py"
    python3 -m pip install --quiet docker 2>/dev/null || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-docker >/dev/null
    }
fi
if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd"
    nohup dockerd >/var/log/swarmr-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/swarmr-dockerd.log" >&2; exit 1; }
fi
