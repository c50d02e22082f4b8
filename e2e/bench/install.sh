#!/usr/bin/env bash
# Install what the benchmark servers and the browser chat need, skipping what
# is already there. Python packages go into the virtualenv build/e2e-venv,
# the Wirecore gem into build/bench-gems (GEM_PATH), so nothing system-wide
# changes except Debian packages.
#   --peers     the peer servers: websockets + picows + socketify (PyPI), ws and
#               uWebSockets.js (npm, as for --fanout-peers),
#               em-websocket + faye-websocket + thin (Debian)
#   --wirecore  Wirecore's Python, Node and Ruby packages, for those that exist
#               in this checkout (a missing package is a skipped row, not an error)
#   --python    only Wirecore's Python package (the browser chat's server)
#   --websockets  only `websockets` (the chat stand-in and a command-line client)
#   --chart     matplotlib (PyPI), for the PNG of a full run
#   --fanout-peers  the fan-out benchmark's peers: uWebSockets.js (npm, the
#               @btc-vision build of uWS.js 20.57.0 under its usual name, into
#               build/bench-uws), ws (npm), socketify (PyPI: uWebSockets for
#               Python, with its own publish) and websockets (PyPI)
#   --fresh     reinstall Wirecore's packages even when they load (a full run
#               must measure the code in this checkout)
# Prints nothing but progress; the venv's python is build/e2e-venv/bin/python.
# Usage: bash e2e/bench/install.sh [--fresh] [--peers] [--wirecore] [--python] [--websockets] [--chart]
#                                  [--fanout-peers]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=$root/build/e2e-venv
gems=$root/build/bench-gems
pip_q=(-q --disable-pip-version-check)
npm_q=(--no-audit --no-fund --loglevel=error)
fresh=0

# A fingerprint of the sources a package is built from (names, sizes, mtimes):
# a package is rebuilt when it changed since the last install, so a stale
# install is never measured or tested.
stamp_of() {
  find "$@" -type f -not -path '*/node_modules/*' -not -path '*/build/*' -not -path '*/pkg/*' \
    -not -path '*/__pycache__/*' -not -name '*.so' -not -name '*.o' -printf '%p %s %T@\n' \
    2>/dev/null | sort | sha1sum | cut -c1-40
}

# stale NAME STAMPFILE DIRS...: true when the package must be (re)installed.
stale() {
  local file=$2
  shift 2
  [ $fresh = 1 ] || [ ! -f "$file" ] || [ "$(cat "$file")" != "$(stamp_of "$@")" ]
}

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
  # socketify: uWebSockets under Python (a prebuilt library through cffi)
  "$py" -c "import socketify" 2>/dev/null || "$py" -m pip install "${pip_q[@]}" socketify ||
    echo "e2e: socketify did not install (its row is skipped)"
  fanout_peers
  bash scripts/apt.sh ruby ruby-em-websocket ruby-faye-websocket thin
}

# uWebSockets.js's Linux binary asks glibc 2.38 for three C23 entry points only
# (__isoc23_sscanf, _strtol, _strtoul). On an older glibc they come from a tiny
# shim (servers/uws_glibc/shim.c) and that version requirement is made weak;
# nothing else in the binary changes. Rows are skipped if it still does not load.
uws_glibc_fix() {
  local mod=$1 bin
  bin=$mod/uws_linux_$(node -p process.arch)_$(node -p process.versions.modules).node
  [ -f "$bin" ] || return 0
  echo "e2e: uWebSockets.js needs a newer glibc; adding its C23 functions from a shim"
  command -v patchelf >/dev/null || bash scripts/apt.sh patchelf
  [ -f "$bin.orig" ] || cp "$bin" "$bin.orig"
  cp "$bin.orig" "$bin"
  cc -shared -fPIC -O2 -o "$mod/libuwsglibc.so" e2e/bench/servers/uws_glibc/shim.c
  local sym args=()
  for sym in $(objdump -T "$bin" | grep -o '__isoc23_[a-z]*' | sort -u); do
    args+=(--clear-symbol-version "$sym")
  done
  [ ${#args[@]} -gt 0 ] && patchelf "${args[@]}" "$bin"
  python3 e2e/bench/servers/uws_glibc/weak_version.py "$bin" GLIBC_2.38 >/dev/null || true
  # one change per patchelf call: 0.14 mixes up several in one
  patchelf --add-needed libuwsglibc.so "$bin"
  patchelf --set-rpath '$ORIGIN' "$bin"
}

fanout_peers() {
  local dir=$root/build/bench-uws mod py
  mod=$dir/node_modules/uWebSockets.js
  py=$(venv_python)
  "$py" -c "import socketify, websockets" 2>/dev/null ||
    "$py" -m pip install "${pip_q[@]}" socketify websockets ||
    echo "e2e: socketify did not install (its rows are skipped)"
  [ -d e2e/bench/servers/node_modules/ws ] || (cd e2e/bench/servers && npm ci "${npm_q[@]}" >/dev/null)
  if [ ! -f "$mod/package.json" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm install "${npm_q[@]}" --no-save --prefix . \
      "uWebSockets.js@npm:@btc-vision/uwebsockets.js@20.57.0" >/dev/null)
  fi
  node -e "require('$mod')" 2>/dev/null && return 0
  uws_glibc_fix "$mod"
  node -e "require('$mod')" >/dev/null 2>&1 ||
    echo "e2e: uWebSockets.js does not load here (its rows are skipped)"
}

python_pkg() {
  local py
  py=$(venv_python)
  [ -f packages/python/pyproject.toml ] || return 0
  local srcs=(packages/python bindings/python core/src core/include) stamp=$venv/.wirecore-stamp
  if stale python "$stamp" "${srcs[@]}" || ! "$py" -c "import wirecore" 2>/dev/null; then
    echo "e2e: installing the Python package into build/e2e-venv"
    if "$py" -m pip install "${pip_q[@]}" --force-reinstall --no-deps \
      -C build-dir="$root/build/e2e-py-ext" ./packages/python; then
      stamp_of "${srcs[@]}" >"$stamp"
    else
      echo "e2e: the Python package did not install (its rows are skipped)"
    fi
  fi
}

node_pkg() {
  [ -f packages/node/package.json ] || return 0
  local srcs=(packages/node bindings/node core/src core/include) stamp=$root/build/.wirecore-node-stamp
  if stale node "$stamp" "${srcs[@]}" || ! node -e "require('$root/packages/node')" 2>/dev/null; then
    echo "e2e: building the Node package in packages/node"
    if (cd packages/node && npm install "${npm_q[@]}" --no-package-lock >/dev/null); then
      mkdir -p "$root/build" && stamp_of "${srcs[@]}" >"$stamp"
    else
      echo "e2e: the Node package did not build (its rows are skipped)"
    fi
  fi
}

ruby_pkg() {
  [ -f packages/ruby/wirecore.gemspec ] || return 0
  local srcs=(packages/ruby/lib packages/ruby/ext packages/ruby/wirecore.gemspec bindings/ruby core/src
    core/include) stamp=$gems/.wirecore-stamp
  if stale ruby "$stamp" "${srcs[@]}"; then
    echo "e2e: building the Ruby gem and installing it into build/bench-gems"
    bash scripts/apt.sh ruby-dev rake-compiler
    rm -rf "$gems"
    if (cd packages/ruby && rm -f pkg/wirecore-*.gem && rake gem >/dev/null &&
      gem install --local --no-document --install-dir "$gems" pkg/wirecore-*.gem >/dev/null); then
      stamp_of "${srcs[@]}" >"$stamp"
    else
      echo "e2e: the Ruby gem did not install (its rows are skipped)"
    fi
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
    --fanout-peers) fanout_peers ;;
    --chart)
      py=$(venv_python)
      "$py" -c "import matplotlib" 2>/dev/null || "$py" -m pip install "${pip_q[@]}" matplotlib ;;
    *) echo "usage: $0 [--fresh] [--peers] [--wirecore] [--python] [--websockets] [--chart] [--fanout-peers]" >&2
      exit 2 ;;
  esac
done
