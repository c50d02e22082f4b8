#!/usr/bin/env bash
# The full benchmark: installs the peer servers (PyPI, npm, Debian) and the
# Wirecore packages of this checkout (rebuilt whenever their sources changed,
# so the run measures this code),
# builds the core and the load generator, then runs every echo server through
# the same load and writes e2e/bench/results/latest.md, latest.json and
# latest.png. Takes about 15 minutes; keep other work off the machine meanwhile.
# Extra arguments go to the runner, e.g. --only wire_echo,ws --duration 5 --repeat 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build
bash e2e/bench/install.sh --peers --wirecore --chart
exec build/e2e-venv/bin/python e2e/bench/run.py "$@"
