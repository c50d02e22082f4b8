#!/usr/bin/env bash
# Proves the prebuilt artifacts in dist/ install and run on a bare Debian 12:
# a minbase root (e2e/bare/make-root.sh, cached under build/bare-root) with only
# python3, nodejs (18) and ruby plus the test clients -- no compiler, no -dev
# package, no wslay or msgpack-c. Inside it (chroot): pip installs the wheel,
# npm (10, the last one that runs on Node 18) installs the tarball, gem installs
# the x86_64-linux gem; each package then echoes a message to a real client
# (websockets, ws, the websocket gem) over 127.0.0.1. Then a source build is
# forced through npm and must fail with the message naming what to install.
# Usage: e2e/bare/run.sh   (after scripts/package.sh; needs root)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
ver=$(cat VERSION)
broot=${WIRECORE_BARE_ROOT:-$root/build/bare-root}
[ "$(id -u)" -eq 0 ] || { echo "bare: needs root (debootstrap, chroot, mount)" >&2; exit 1; }

whl=$(ls dist/wirecore-"$ver"-*manylinux*_x86_64.whl)
tgz=dist/wirecore-$ver.tgz
gem=dist/wirecore-$ver-x86_64-linux.gem
for f in "$whl" "$tgz" "$gem"; do
  [ -f "$f" ] || { echo "bare: $f is missing (run scripts/package.sh)" >&2; exit 1; }
done

t0=$SECONDS
bash e2e/bare/make-root.sh "$broot"
echo "    root ready in $((SECONDS - t0))s: $(chroot "$broot" sh -c '. /etc/os-release; echo $PRETTY_NAME')"

# An npm client that runs on Debian 12's Node 18 (the host's may need Node 20),
# fetched once with the host's npm and kept beside the root.
npm_tgz=$root/build/bare-npm10.tgz
if [ ! -f "$npm_tgz" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack npm@10 --loglevel=error >/dev/null)
  mv "$tmp"/npm-10.*.tgz "$npm_tgz"
  rm -rf "$tmp"
fi

work=$broot/opt/wirecore-test
cleanup() {
  umount "$broot/proc" 2>/dev/null || true
  umount "$broot/dev" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cleanup # whatever an interrupted run left mounted
mkdir -p "$work"
cp "$whl" "$tgz" "$gem" e2e/bare/echo_py.py e2e/bare/echo_node.cjs e2e/bare/echo_ruby.rb "$work/"
tar -xzf "$npm_tgz" -C "$work" && mv "$work/package" "$work/npm"
mount -t proc proc "$broot/proc"
mount --bind /dev "$broot/dev"

chroot "$broot" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/opt/wirecore-test LANG=C.UTF-8 \
  WHL="$(basename "$whl")" TGZ="$(basename "$tgz")" GEM="$(basename "$gem")" bash -euo pipefail -c '
cd /opt/wirecore-test
for tool in cc gcc clang make pkg-config; do
  if command -v $tool >/dev/null; then echo "bare: $tool is installed in the root" >&2; exit 1; fi
done
if ls /usr/lib/x86_64-linux-gnu | grep -qE "libwslay|libmsgpack"; then
  echo "bare: wslay or msgpack-c is installed in the root" >&2; exit 1
fi
if dpkg-query -W -f="\${Package}\n" | grep -- "-dev$"; then echo "bare: a -dev package is installed" >&2; exit 1; fi
echo "    root has no compiler, no -dev package, no wslay, no msgpack-c"

echo "--> pip install $WHL"
python3 -m pip install -q --no-index --root-user-action=ignore --break-system-packages --target /opt/wirecore-test/py "$WHL"
PYTHONPATH=/opt/wirecore-test/py timeout 60 python3 echo_py.py

echo "--> npm install $TGZ"
npm="node /opt/wirecore-test/npm/bin/npm-cli.js"
mkdir app && cd app && echo "{\"name\":\"bare\",\"private\":true}" > package.json
$npm install --no-audit --no-fund --loglevel=error --foreground-scripts "../$TGZ" | sed "s/^/    /"
cp ../echo_node.cjs . && timeout 60 node echo_node.cjs
echo "--> npm install --build-from-source $TGZ: no compiler here, so it must fail and say why"
cd /opt/wirecore-test && mkdir app2 && cd app2 && cp ../app/package.json .
if $npm install --no-audit --no-fund --loglevel=error --foreground-scripts --build-from-source \
    "../$TGZ" >log 2>&1; then
  echo "bare: a source build succeeded without a compiler?" >&2; exit 1
fi
grep -q "building the addon from source failed" log || { cat log >&2; exit 1; }
grep "apt install" log | sed "s/^/    /"
cd /opt/wirecore-test

echo "--> gem install $GEM"
export GEM_HOME=/opt/wirecore-test/gems
gem install --local --no-document "$GEM" | sed "s/^/    /"
timeout 60 ruby echo_ruby.rb
'
echo "    bare root: all three packages installed without compiling and echoed ($((SECONDS - t0))s)"
