#!/usr/bin/env bash
# Topic history benchmark (history_bench.c): server CPU per publish with and
# without history, recovery of 1,000 missed publications, then the same with
# a Redis broker attached (Redis CPU per publish from /proc of redis-server).
# Usage: e2e/bench/history_bench.sh [BUILD_DIR] (default build; needs
# scripts/build.sh and redis-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/e2e/bench/history_bench
[ -x "$bin" ] || { echo "$bin not built (scripts/build.sh)" >&2; exit 1; }
for subs in 1 10; do
  echo "### $subs subscriber(s) per topic, no broker"
  "$bin" --subs "$subs" --publishes 20000
done
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
rpid=$!
trap 'kill "$rpid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done
echo "### 10 subscribers per topic, Redis broker"
"$bin" --subs 10 --publishes 100000 --redis "redis://127.0.0.1:$port/0" --redis-pid "$rpid"
