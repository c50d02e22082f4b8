#!/usr/bin/env bash
# Python package: build and install it with pip (scikit-build-core compiles the
# core and the extension), then run pytest on tests/python and the examples.
# Uses a virtualenv under build/ so the machine's Python stays untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' || {
  echo "20-python: Python >= 3.11 required"; exit 1; }
bash scripts/apt.sh cmake ninja-build pkg-config libuv1-dev libwslay-dev libmsgpack-dev \
  libssl-dev libpcre2-dev libhiredis-dev redis-server zlib1g-dev
# Debian's own python3 needs its headers for the extension (pyenv builds have them).
inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$inc/Python.h" ] || bash scripts/apt.sh python3-dev
venv=build/py-venv
[ -x "$venv/bin/python" ] || "$PY" -m venv "$venv" || {
  rm -rf "$venv"; bash scripts/apt.sh python3-venv; "$PY" -m venv "$venv"; }
vpy="$venv/bin/python"
"$vpy" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
"$vpy" -m pip install -q --disable-pip-version-check pytest pytest-asyncio websockets msgpack \
  pyyaml pydantic msgspec prometheus_client
# A fresh build every run: the core's sources may have changed since the last one.
"$vpy" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
  -C cmake.define.WIRE_WERROR=ON -C build-dir="$PWD/build/py-ext" ./packages/python
set +e
"$vpy" -m pytest -q -p no:cacheprovider tests/python "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "20-python: no tests were collected"; exit 1; fi
exit $rc
