#!/usr/bin/env bash
# The demo: a browser chat with rooms on Wirecore.
# Installs what it needs (fresh Debian 12), builds, starts the chat server and
# a static file server for the page (e2e/browser), and prints the URL to open.
# Ctrl-C stops everything.
#
# Usage: bash scripts/demo.sh [--host H] [--port P] [--http-port Q]
#   --host       address both servers listen on (default 127.0.0.1; 0.0.0.0 for
#                other machines, at your own risk: there is no authentication)
#   --port       the chat WebSocket port (default 8000)
#   --http-port  the page's port (default 8080)
# WIRE_CHAT_SERVER=python|wire_chat picks the chat server (default: the Python
# package's chat example).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
host=127.0.0.1 port=8000 http_port=8080
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --http-port) http_port=$2; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done

echo "demo: installing and building (first run takes a few minutes)..."
bash scripts/deps.sh
bash scripts/build.sh build >/dev/null
bash e2e/bench/install.sh --python
py=$PWD/build/e2e-venv/bin/python

choice=${WIRE_CHAT_SERVER:-python}
case "$choice" in
  python)
    server=("$py" packages/python/examples/chat.py --host "$host" --port "$port")
    what="the Python package's chat example (packages/python/examples/chat.py)" ;;
  wire_chat)
    [ -x build/wire_chat ] || { echo "demo: build/wire_chat is not built" >&2; exit 1; }
    server=(build/wire_chat --host "$host" --port "$port")
    what="the C chat example (build/wire_chat)" ;;
  *) echo "demo: WIRE_CHAT_SERVER must be python or wire_chat" >&2; exit 2 ;;
esac

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "demo: stopped"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

"${server[@]}" &
pids+=($!)
"$py" -m http.server "$http_port" --bind "$host" --directory "$root/e2e/browser" \
  >/dev/null 2>&1 &
pids+=($!)

# Wait until both ports answer (or a server dies).
shown=$host
[ "$host" = 0.0.0.0 ] && shown=127.0.0.1
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/$shown/$port") 2>/dev/null &&
    (exec 3<>"/dev/tcp/$shown/$http_port") 2>/dev/null; then
    break
  fi
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "demo: a server failed to start" >&2; exit 1; }
  done
  sleep 0.1
done

if [ "$host" = 0.0.0.0 ]; then query="?port=$port"; else query="?server=ws://$shown:$port"; fi
cat <<EOF

  Wirecore chat demo is running: $what

  Open in a browser (two tabs, two names, one room):
      http://$shown:$http_port/$query

  Or connect with any WebSocket client to ws://$shown:$port/chat/ROOM?user=NAME, e.g.
      $py -m websockets 'ws://$shown:$port/chat/lobby?user=me'
  and type:  {"type":"chat","text":"hello"}

  Ctrl-C stops both servers.
EOF
wait -n "${pids[@]}" || true
echo "demo: a server exited" >&2
