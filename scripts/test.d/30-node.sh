#!/usr/bin/env bash
# Node package (issue #6): build the addon the way `npm install` does (node-gyp,
# offline, against the running Node's own headers), run `node --test` over
# tests/node/ with the real `ws` client, run every example briefly, and check
# that `npm pack` gives a tarball that installs and works in an empty project.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "30-node: node and npm are required" >&2
  exit 1
fi
# node-gyp needs make, a C compiler and python3; the addon links these libraries.
bash scripts/apt.sh build-essential python3 libwslay-dev libmsgpack-dev libssl-dev libpcre2-dev libhiredis-dev redis-server zlib1g-dev
npm_q=(--no-audit --no-fund --loglevel=error)

echo "--> strict compile of the Node-API glue"
nodeinc=$(node -p "require('path').resolve(process.execPath, '..', '..', 'include', 'node')")
for f in bindings/node/*.c; do
  cc -std=gnu11 -fsyntax-only -Wall -Wextra -Werror -Wno-unused-parameter \
    -I"$nodeinc" -Icore/include -Icore/src "$f"
done

echo "--> npm install in packages/node (builds the addon)"
(cd packages/node && npm install "${npm_q[@]}" --no-package-lock >/dev/null)

echo "--> test dependencies (ws)"
(cd tests/node && npm ci "${npm_q[@]}" >/dev/null)

echo "--> examples"
for ex in packages/node/examples/*.mjs packages/node/examples/*.cjs; do
  echo "    $(basename "$ex")"
  WIRECORE_EXAMPLE_SMOKE=1 timeout 30 node "$ex" >/dev/null
done

echo "--> npm pack, then install the tarball into an empty project"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd packages/node && npm pack "${npm_q[@]}" --pack-destination "$tmp" >/dev/null)
tarball=$(ls "$tmp"/wirecore-*.tgz)
tar -tzf "$tarball" > "$tmp/files.txt"
grep -q 'package/native/core/src/server.c' "$tmp/files.txt"
grep -q 'package/native/bindings/node/node_server.c' "$tmp/files.txt"
mkdir "$tmp/project"
(
  cd "$tmp/project"
  npm init -y >/dev/null
  npm install "${npm_q[@]}" "$tarball" >/dev/null
  cat > smoke.mjs <<'JS'
import { App, WebSocketResponse } from 'wirecore';
const app = new App();
app.websocket('/e', () => new WebSocketResponse({ onMessage: (m) => m }));
const ws = await app.testClient().websocket('/e');
ws.send('packed');
if ((await ws.receiveText()) !== 'packed') process.exit(1);
await ws.close();
await app.close();
JS
  timeout 30 node smoke.mjs
  timeout 30 node -e "const w = require('wirecore'); if (typeof w.App !== 'function') process.exit(1)"
)
echo "    the packed tarball installs and runs"

echo "--> node --test tests/node/"
cd "$root/tests/node"
node --test --test-timeout=300000 --test-reporter=spec

# The same suite once more against an AddressSanitizer + UBSan build of the
# addon (core and glue), built from the packed tarball; the sanitizer
# runtimes are preloaded because node itself is not instrumented.
asan=$(cc -print-file-name=libasan.so)
ubsan=$(cc -print-file-name=libubsan.so)
if [ -f "$asan" ] && [ -f "$ubsan" ] && [ "${WIRECORE_NODE_ASAN:-1}" = 1 ]; then
  echo "--> node --test tests/node/ with the addon under ASan + UBSan"
  mkdir "$tmp/asan"
  tar -xzf "$tarball" -C "$tmp/asan"
  (cd "$tmp/asan/package" && CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
    LDFLAGS="-fsanitize=address,undefined" node tools/build.js >/dev/null 2>&1)
  LD_PRELOAD="$asan:$ubsan" ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 WIRECORE_PACKAGE="$tmp/asan/package" \
    node --test --test-timeout=300000
fi
