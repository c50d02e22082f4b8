#!/usr/bin/env bash
# Benchmark smoke run: every installed echo server (wire_echo, Wirecore's
# packages, the peers) answers the load generator for about a second per
# scenario. Fails on errors (a server that does not start or answer), never
# on performance. Servers not installed are skipped rows, and so are typed
# rows whose endpoint cannot answer a chat message yet (the reason is printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash e2e/bench/install.sh --peers --wirecore
build/e2e-venv/bin/python e2e/bench/run.py --smoke --out build/bench-smoke
