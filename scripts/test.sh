#!/usr/bin/env bash
# Install what is missing, build, and run every test suite: C (Criterion),
# Python (pytest), Node (node --test), Ruby (minitest) and end-to-end.
# Each suite is a script in scripts/test.d/, run in name order.
# Usage: scripts/test.sh [SUITE-NAME-SUBSTRING]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build
status=0
for suite in scripts/test.d/*.sh; do
  case "$suite" in *"${1:-}"*) ;; *) continue ;; esac
  echo "==> $(basename "$suite")"
  if ! bash "$suite"; then
    echo "FAILED: $(basename "$suite")"
    status=1
  fi
done
exit $status
