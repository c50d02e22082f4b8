#!/usr/bin/env bash
# Browser chat (e2e/browser): two headless Chromium pages (Debian's chromium,
# driven by playwright-core from npm) join a room, send, receive in the other
# page and leave, against the Python package's chat example; then once over
# wss:// against build/wire_chat --cert/--key (an openssl-made certificate).
# Saves e2e/browser/screenshot.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/apt.sh chromium fonts-noto-color-emoji
bash e2e/bench/install.sh --python
(cd e2e/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
export PYTHON=$PWD/build/e2e-venv/bin/python
cd e2e/browser
node --test chat.test.js
