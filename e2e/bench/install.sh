#!/usr/bin/env bash
# Install what the benchmark servers and the browser chat need, skipping what
# is already there. Python packages go into the virtualenv build/e2e-venv,
# the Wirecore gem into build/bench-gems (GEM_PATH), so nothing system-wide
# changes except Debian packages.
#   --peers     the peer servers: websockets + picows (PyPI), ws (npm),
#               em-websocket + faye-websocket + thin (Debian)
#   --wirecore  Wirecore's Python, Node and Ruby packages, for those that exist
#               in this checkout (a missing package is a skipped row, not an error)
#   --python    only Wirecore's Python package (the browser chat's server)
#   --websockets  only `websockets` (the chat stand-in and a command-line client)
#   --chart     matplotlib (PyPI), for the PNG of a full run
#   --fresh     reinstall Wirecore's packages even when they load (a full run
#               must measure the code in this checkout)
# Prints nothing but progress; the venv's python is build/e2e-venv/bin/python.
# Usage: bash e2e/bench/install.sh [--fresh] [--peers] [--wirecore] [--python] [--websockets] [--chart]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=$root/build/e2e-venv
gems=$root/build/bench-gems
pip_q=(-q --disable-pip-version-check)
npm_q=(--no-audit --no-fund --loglevel=error)
fresh=0

venv_python() {
  if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$root/build"
    "${PYTHON:-python3}" -m venv "$venv"
  fi
  echo "$venv/bin/python"
}

peers() {
  local py
  py=$(venv_python)
  "$py" -c "import websockets, picows" 2>/dev/null || "$py" -m pip install "${pip_q[@]}" websockets picows
  [ -d e2e/bench/servers/node_modules/ws ] || (cd e2e/bench/servers && npm ci "${npm_q[@]}" >/dev/null)
  bash scripts/apt.sh ruby ruby-em-websocket ruby-faye-websocket thin
}

python_pkg() {
  local py
  py=$(venv_python)
  [ -f packages/python/pyproject.toml ] || return 0
  if [ $fresh = 1 ] || ! "$py" -c "import wirecore" 2>/dev/null; then
    echo "e2e: installing the Python package into build/e2e-venv"
    "$py" -m pip install "${pip_q[@]}" --force-reinstall --no-deps -C build-dir="$root/build/e2e-py-ext" \
      ./packages/python || echo "e2e: the Python package did not install (its rows are skipped)"
  fi
}

node_pkg() {
  [ -f packages/node/package.json ] || return 0
  if [ $fresh = 1 ] || ! node -e "require('$root/packages/node')" 2>/dev/null; then
    echo "e2e: building the Node package in packages/node"
    (cd packages/node && npm install "${npm_q[@]}" --no-package-lock >/dev/null) ||
      echo "e2e: the Node package did not build (its rows are skipped)"
  fi
}

ruby_pkg() {
  [ -f packages/ruby/wirecore.gemspec ] || return 0
  local have
  have=$(ls "$gems"/gems 2>/dev/null | grep -c '^wirecore-' || true)
  if [ $fresh = 1 ] || [ "$have" = 0 ]; then
    echo "e2e: building the Ruby gem and installing it into build/bench-gems"
    bash scripts/apt.sh ruby-dev rake-compiler
    (cd packages/ruby && rm -f pkg/wirecore-*.gem && rake gem >/dev/null &&
      gem install --local --no-document --install-dir "$gems" pkg/wirecore-*.gem >/dev/null) ||
      echo "e2e: the Ruby gem did not install (its rows are skipped)"
  fi
}

for a in "$@"; do [ "$a" = --fresh ] && fresh=1; done
for a in "$@"; do
  case "$a" in
    --fresh) ;;
    --peers) peers ;;
    --wirecore) python_pkg; node_pkg; ruby_pkg ;;
    --python) python_pkg ;;
    --websockets)
      py=$(venv_python)
      "$py" -c "import websockets" 2>/dev/null || "$py" -m pip install "${pip_q[@]}" websockets ;;
    --chart)
      py=$(venv_python)
      "$py" -c "import matplotlib" 2>/dev/null || "$py" -m pip install "${pip_q[@]}" matplotlib ;;
    *) echo "usage: $0 [--fresh] [--peers] [--wirecore] [--python] [--websockets] [--chart]" >&2; exit 2 ;;
  esac
done
