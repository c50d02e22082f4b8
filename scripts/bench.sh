#!/usr/bin/env bash
# The full benchmark: installs the peer servers (PyPI, npm, Debian) and the
# Wirecore packages present in this checkout, builds the core and the load
# generator, then runs every echo server through the same load and writes
# e2e/bench/results/latest.md and latest.png. Takes about 15 minutes.
# Extra arguments go to the runner, e.g. --only wire_echo,ws --duration 5.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash e2e/bench/install.sh --peers --wirecore --chart
bash scripts/build.sh build
exec python3 e2e/bench/run.py "$@"
