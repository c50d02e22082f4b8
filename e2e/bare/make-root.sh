#!/usr/bin/env bash
# Make (or reuse) a minimal Debian 12 root with only the language runtimes and
# the test clients: python3 + pip + websockets, nodejs + ws, ruby + websocket.
# No compiler, no -dev package, none of the core's libraries (libuv, wslay,
# msgpack-c, pcre2). Usage: e2e/bare/make-root.sh DIR   (DIR/.ready marks done)
set -euo pipefail
dir=$1
[ -f "$dir/.ready" ] && exit 0
[ "$(id -u)" -eq 0 ] || { echo "make-root: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || bash "$(dirname "$0")/../../scripts/apt.sh" debootstrap
# The mirror apt uses on this machine (deb822 sources or a classic list).
mirror=$(grep -hoE '^URIs: *[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null |
  head -1 | sed 's/^URIs: *//') || true
[ -n "$mirror" ] || mirror=$(grep -hoE '^deb +[^ ]+/debian/? ' /etc/apt/sources.list 2>/dev/null |
  head -1 | awk '{print $2}') || true
mirror=${mirror:-http://deb.debian.org/debian}
# A half-made root from an interrupted run: nothing may still be mounted in it
# (e2e/bare/run.sh binds /dev there) before it is deleted.
if [ -d "$dir" ]; then
  for m in proc dev; do umount "$dir/$m" 2>/dev/null || true; done
  if grep -q " $(realpath "$dir")/" /proc/mounts; then
    echo "make-root: something is still mounted under $dir; unmount it first" >&2; exit 1
  fi
fi
rm -rf "$dir"
mkdir -p "$dir"
debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 || {
  tail -20 "$dir.log" >&2; exit 1; }
cat > "$dir/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
SRC
cp /etc/resolv.conf "$dir/etc/resolv.conf"
chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends \
    python3 python3-pip python3-websockets nodejs node-ws ruby ruby-websocket ca-certificates \
    && apt-get clean' >>"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
touch "$dir/.ready"
