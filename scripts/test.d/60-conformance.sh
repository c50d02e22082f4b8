#!/usr/bin/env bash
# RFC 6455 conformance suite (e2e/conformance) against every echo server: the
# C example and one echo endpoint per language package.
# Each server is one NAME=COMMAND line; the runner fills in {port} and
# {max_message}. To add a server, add a line to `servers` below, or pass extra
# lines (newline-separated) in WIRE_CONFORMANCE_SERVERS.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ ! -x build/wire_echo ]]; then
  echo "conformance: build/wire_echo is missing; run scripts/build.sh first" >&2
  exit 1
fi
dir=e2e/conformance/servers
args="--port {port} --max-message {max_message}"
servers=("c=build/wire_echo $args")

# The packages are built by their own suites (20-python, 30-node); Ruby's gem
# is installed only for 40-ruby's run, so its extension is compiled here.
if build/py-venv/bin/python -c 'import wirecore' 2>/dev/null; then
  servers+=("python=build/py-venv/bin/python $dir/python_echo.py $args")
else
  echo "conformance: python skipped: build/py-venv has no wirecore (run scripts/test.d/20-python.sh)"
fi
if command -v node >/dev/null && node -e "require('./packages/node')" 2>/dev/null; then
  servers+=("node=node $dir/node_echo.mjs $args")
else
  echo "conformance: node skipped: packages/node is not built (run scripts/test.d/30-node.sh)"
fi
if command -v rake >/dev/null && (cd packages/ruby && rake clobber compile >/dev/null 2>&1); then
  # Leave no extension behind for other suites to pick up by accident.
  trap '(cd packages/ruby && rake clobber >/dev/null 2>&1) || true' EXIT
  servers+=("ruby=ruby $dir/ruby_echo.rb $args")
else
  echo "conformance: ruby skipped: packages/ruby's extension did not build (rake compile)"
fi

if [[ -n "${WIRE_CONFORMANCE_SERVERS:-}" ]]; then
  while IFS= read -r line; do
    [[ -n "$line" ]] && servers+=("$line")
  done <<<"$WIRE_CONFORMANCE_SERVERS"
fi

run_args=()
for s in "${servers[@]}"; do
  run_args+=(--server "$s")
done
python3 e2e/conformance/run.py "${run_args[@]}" "$@"
