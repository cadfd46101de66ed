#!/usr/bin/env bash
# Builds the local test images from Debian's busybox-static binary:
#   swarmr/busybox  - busybox applets (sh, ping, nslookup, wget, httpd, nc)
#   my-service      - the quickstart's demo: httpd answering with its hostname
# Idempotent: rebuilding an unchanged image is a cache hit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
busybox="$(command -v busybox || true)"
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
    busybox=/bin/busybox
fi
[ -x "$busybox" ] || { echo "busybox-static is not installed (apt-get install busybox-static)" >&2; exit 1; }
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$here/busybox/Dockerfile" "$ctx/"
cp "$busybox" "$ctx/busybox"
docker build -q -t swarmr/busybox:latest "$ctx" >/dev/null
echo "built swarmr/busybox:latest"
docker build -q -t my-service:latest "$here/my-service" >/dev/null
echo "built my-service:latest"
