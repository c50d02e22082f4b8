#!/usr/bin/env bash
# Conformance suite (e2e/conformance): the RFC 6455 cases against every echo
# server (the C example and one echo endpoint per language package), and the
# app cases (cases/10-app.json) against the conformance servers' /app/...
# endpoints: c_app.c on the C API and the same servers of the three packages.
# Each server is one NAME=COMMAND line; the runner fills in {port} and
# {max_message}. To add a server, add a line below, or pass extra echo
# servers (newline-separated lines) in WIRE_CONFORMANCE_SERVERS. A server that
# cannot be built or started fails the suite.
# Then the same servers (not the extra ones) play the same cases over wss://
# (run.py --tls: a throwaway CA made by openssl; {tls} becomes
# --cert FILE --key FILE).
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "conformance: $*" >&2; exit 1; }
[[ -x build/wire_echo ]] || fail "build/wire_echo is missing; run scripts/build.sh first"
dir=e2e/conformance/servers
args="--port {port} --max-message {max_message} {tls}"
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Icore/include "$dir/c_app.c" -Lbuild -lwirecore \
  -Wl,-rpath,"$PWD/build" -o build/conformance_c_app || fail "c_app.c did not build"
run_args=(--echo-server "c=build/wire_echo $args" --app-server "c-app=build/conformance_c_app $args")
servers=()

# The packages are built by their own suites (20-python, 30-node); Ruby's gem
# is installed only for 40-ruby's run, so its extension is compiled here.
build/py-venv/bin/python -c 'import wirecore' 2>/dev/null ||
  fail "build/py-venv has no wirecore (run scripts/test.d/20-python.sh)"
servers+=("python=build/py-venv/bin/python $dir/python_echo.py $args")
node -e "require('./packages/node')" 2>/dev/null ||
  fail "packages/node is not built (run scripts/test.d/30-node.sh)"
servers+=("node=node $dir/node_echo.mjs $args")
(cd packages/ruby && rake clobber compile >/dev/null 2>&1) ||
  fail "packages/ruby's extension did not build (rake compile)"
# Leave no extension behind for other suites to pick up by accident.
trap '(cd packages/ruby && rake clobber >/dev/null 2>&1) || true' EXIT
servers+=("ruby=ruby $dir/ruby_echo.rb $args")

for s in "${servers[@]}"; do
  run_args+=(--server "$s")
done
tls_args=("${run_args[@]}") # the TLS run: the built-in servers (their commands take {tls})
# Extra servers are echo servers: they play every case but the app group.
if [[ -n "${WIRE_CONFORMANCE_SERVERS:-}" ]]; then
  while IFS= read -r line; do
    [[ -n "$line" ]] && run_args+=(--echo-server "$line")
  done <<<"$WIRE_CONFORMANCE_SERVERS"
fi
status=0
python3 e2e/conformance/run.py "${run_args[@]}" "$@" || status=1
echo "==> the same over TLS"
python3 e2e/conformance/run.py --tls "${tls_args[@]}" "$@" || status=1
exit $status
