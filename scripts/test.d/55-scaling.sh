#!/usr/bin/env bash
# Scaling end to end: a real redis-server, build/wire_chat processes (one
# single, one supervisor with --workers 2) attached to it, `websockets`
# clients: cross-process delivery, Redis restarted mid-stream, a SIGKILLed
# worker, SIGHUP during a connection storm, no descriptor leaks; and a
# Python and a Node package server in the same rooms (test_cross_language.py:
# needs the packages built by 20-python and 30-node, which run first).
# (The C side, test_broker and test_workers, runs with the core suite.)
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/apt.sh redis-server libhiredis-dev
PY=${PYTHON:-python3}
venv=build/e2e-venv
if [ ! -x "$venv/bin/python" ]; then
  "$PY" -m venv "$venv" 2>/dev/null || { bash scripts/apt.sh python3-venv; "$PY" -m venv "$venv"; }
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check websockets pytest
"$venv/bin/python" -m pytest -q -p no:cacheprovider e2e/scaling "$@"
