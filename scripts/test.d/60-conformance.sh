#!/usr/bin/env bash
# RFC 6455 conformance suite (e2e/conformance) against every echo server.
# Each server is one NAME=COMMAND line; {port} and {max_message} are filled in
# by the runner. To add a server, add a line to `servers` below, or pass extra
# lines (newline-separated) in WIRE_CONFORMANCE_SERVERS.
set -euo pipefail
cd "$(dirname "$0")/../.."

servers=(
  "c=build/wire_echo --port {port} --max-message {max_message}"
)
if [[ -n "${WIRE_CONFORMANCE_SERVERS:-}" ]]; then
  while IFS= read -r line; do
    [[ -n "$line" ]] && servers+=("$line")
  done <<<"$WIRE_CONFORMANCE_SERVERS"
fi

if [[ ! -x build/wire_echo ]]; then
  echo "conformance: build/wire_echo is missing; run scripts/build.sh first" >&2
  exit 1
fi

args=()
for s in "${servers[@]}"; do
  args+=(--server "$s")
done
exec python3 e2e/conformance/run.py "${args[@]}" "$@"
