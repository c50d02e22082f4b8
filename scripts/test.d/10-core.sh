#!/usr/bin/env bash
# C core tests (Criterion), through ctest.
set -euo pipefail
cd "$(dirname "$0")/../.."
ctest --test-dir build --output-on-failure
