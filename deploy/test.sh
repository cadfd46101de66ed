#!/usr/bin/env bash
# Runs every test, including those that need root, Docker and the kernel's network
# devices. Installs what is missing first, so it works on a fresh Debian machine (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/prereqs.sh
bash deploy/images/build.sh
cargo build --workspace --all-targets
cargo test --workspace -- --include-ignored
