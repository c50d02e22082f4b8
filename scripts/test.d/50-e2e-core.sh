#!/usr/bin/env bash
# End-to-end: the Python `websockets` client (PyPI) against build/wire_echo,
# the same over wss:// with `openssl s_client` (TLS 1.1 refused, client
# certificates, SIGHUP reload, TLS workers), the C examples' graceful stop
# on SIGINT/SIGTERM, their metrics and JSON logs.
# A virtualenv under build/ keeps the machine's Python untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
venv=build/e2e-venv
if [ ! -x "$venv/bin/python" ]; then
  "$PY" -m venv "$venv" 2>/dev/null || { bash scripts/apt.sh python3-venv; "$PY" -m venv "$venv"; }
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check websockets pytest prometheus_client
"$venv/bin/python" -m pytest -q -p no:cacheprovider e2e/test_wire_echo_websockets.py \
  e2e/test_wire_echo_tls.py e2e/test_example_signals.py e2e/test_example_metrics.py
