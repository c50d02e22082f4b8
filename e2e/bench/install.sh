#!/usr/bin/env bash
# Install what the benchmark servers need, skipping what is already there.
#   --peers     the peer servers: websockets + picows (PyPI), ws (npm),
#               em-websocket + faye-websocket + thin (Debian)
#   --wirecore  Wirecore's Python, Node and Ruby packages, for those that exist
#               in this checkout (a missing package is a skipped row, not an error)
#   --python    only Wirecore's Python package (the browser chat's server)
#   --chart     matplotlib (PyPI), for the PNG of a full run
# Usage: bash e2e/bench/install.sh [--peers] [--wirecore] [--python] [--chart]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
py=${PYTHON:-python3}
quiet=(-q --disable-pip-version-check)

peers() {
  $py -c "import websockets, picows" 2>/dev/null || $py -m pip install "${quiet[@]}" websockets picows
  [ -d e2e/bench/servers/node_modules/ws ] ||
    (cd e2e/bench/servers && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  bash scripts/apt.sh ruby ruby-em-websocket ruby-faye-websocket thin
}

python_pkg() {
  if [ -f packages/python/pyproject.toml ] && ! $py -c "import wirecore" 2>/dev/null; then
    echo "bench: installing the Python package"
    $py -m pip install "${quiet[@]}" ./packages/python || echo "bench: Python package did not install"
  fi
}

wirecore() {
  python_pkg
  if [ -f packages/node/package.json ] && ! node -e "require('$root/packages/node')" 2>/dev/null; then
    echo "bench: building the Node package"
    (cd packages/node && npm install --no-audit --no-fund --loglevel=error >/dev/null) ||
      echo "bench: Node package did not build"
  fi
  if [ -f packages/ruby/wirecore.gemspec ] && ! ruby -e "require 'wirecore'" 2>/dev/null; then
    echo "bench: installing the Ruby gem"
    (cd packages/ruby && rm -f wirecore-*.gem && gem build wirecore.gemspec >/dev/null &&
      gem install --local --no-document wirecore-*.gem >/dev/null) ||
      echo "bench: Ruby gem did not install"
  fi
}

for a in "$@"; do
  case "$a" in
    --peers) peers ;;
    --wirecore) wirecore ;;
    --python) python_pkg ;;
    --chart) $py -c "import matplotlib" 2>/dev/null || $py -m pip install "${quiet[@]}" matplotlib ;;
    *) echo "usage: $0 [--peers] [--wirecore] [--python] [--chart]" >&2; exit 2 ;;
  esac
done
