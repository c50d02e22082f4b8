#!/usr/bin/env bash
# Abuse suite: hostile raw-socket clients (fragment amplification, stalled
# readers, slowloris, ping flood, handshake abuse, deflate bombs, a connection flood at a
# lowered RLIMIT_NOFILE) against build/wire_echo and the Python package's
# echo example, asserting bounded RSS and a bystander's echo latency. The
# Python package is built and installed as 20-python.sh does.
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
rm -f build/abuse-results.jsonl
set +e
"$vpy" -m pytest -q -p no:cacheprovider e2e/abuse "$@"
rc=$?
set -e
"$vpy" e2e/abuse/report.py build/abuse-results.jsonl || true
exit $rc
