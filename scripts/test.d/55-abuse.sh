#!/usr/bin/env bash
# Abuse suite: hostile raw-socket clients (fragment amplification, stalled
# readers, slowloris, ping flood, handshake abuse, deflate bombs, a connection
# flood at a lowered RLIMIT_NOFILE, a hung handler, slow consumers over the
# memory budget) against build/wire_echo and the Python, Node and Ruby packages'
# echo servers, asserting bounded RSS and a bystander's echo latency. The
# Python package is built and installed as 20-python.sh does; the Node addon
# in place when missing or stale, the Ruby extension for the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
venv=build/py-venv
[ -x "$venv/bin/python" ] || "$PY" -m venv "$venv" || {
  rm -rf "$venv"; bash scripts/apt.sh python3-venv; "$PY" -m venv "$venv"; }
vpy="$venv/bin/python"
"$vpy" -m pip install -q --disable-pip-version-check pytest pytest-asyncio websockets msgpack \
  pyyaml pydantic msgspec
"$vpy" -c 'import wirecore' 2>/dev/null && [ "${WIRE_ABUSE_REBUILD:-1}" = 0 ] ||
  "$vpy" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    -C cmake.define.WIRE_WERROR=ON -C build-dir="$PWD/build/py-ext" ./packages/python
# The Node addon is rebuilt when missing or older than a C source it is made
# of (30-node.sh has usually just built it).
stale() {
  local out=$1; shift
  [ ! -f "$out" ] || [ -n "$(find "$@" -name '*.[ch]' -newer "$out" -print -quit)" ]
}
servers=${WIRE_ABUSE_SERVERS:-wire_echo,python,node,ruby}
if [[ $servers == *node* ]] && stale packages/node/build/Release/wirecore.node core/src core/include bindings/node; then
  (cd packages/node && npm install --no-audit --no-fund --loglevel=error --no-package-lock >/dev/null)
fi
if [[ $servers == *ruby* ]]; then
  # built into lib/ for this run and removed after, as 60-conformance.sh does
  bash scripts/apt.sh ruby-dev rake-compiler
  (cd packages/ruby && rake clobber compile >/dev/null 2>&1)
  trap '(cd packages/ruby && rake clobber >/dev/null 2>&1) || true' EXIT
fi
rm -f build/abuse-results.jsonl
set +e
"$vpy" -m pytest -q -p no:cacheprovider e2e/abuse "$@"
rc=$?
set -e
"$vpy" e2e/abuse/report.py build/abuse-results.jsonl || true
exit $rc
