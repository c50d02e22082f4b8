#!/usr/bin/env bash
# Configure and build the core, CLI, examples, tests and C benchmarks.
# Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}; shift || true
cmake -S . -B "$dir" -G Ninja -DWIRE_WERROR=ON "$@" >/dev/null
ninja -C "$dir"
