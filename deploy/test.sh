#!/usr/bin/env bash
# Runs every test, including those that need root, Docker and the kernel's network
# devices. Installs what is missing first, so it works on a fresh Debian machine (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/prereqs.sh
bash deploy/images/build.sh
cargo build --workspace --all-targets
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-targets -- --include-ignored 2>&1 | tee "$log" || status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
