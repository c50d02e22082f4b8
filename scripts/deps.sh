#!/usr/bin/env bash
# Everything the core needs to build and test on a fresh Debian 12 machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt.sh build-essential cmake ninja-build pkg-config git \
  libuv1-dev libwslay-dev libssl-dev libmsgpack-dev libpcre2-dev \
  libcriterion-dev libcjson-dev valgrind clang \
  libhiredis-dev redis-server zlib1g-dev
