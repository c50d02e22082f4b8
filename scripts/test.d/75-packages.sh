#!/usr/bin/env bash
# Release artifacts: scripts/package.sh builds every one of them into dist/
# (and checks that the packages' versions are VERSION's); the installed C
# library links shared and static through pkg-config and find_package from a
# moved prefix; one version everywhere (VERSION, the CLI, the header, the
# SONAME, the Python, Node and Ruby packages); and on a bare Debian 12 root
# the wheel, the npm tarball and the platform gem install without a compiler
# and echo to real clients (e2e/bare/run.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ver=$(cat VERSION)

echo "--> scripts/package.sh"
bash scripts/package.sh

echo "--> the C library from a moved install prefix: build/ (lib/), then build/pkg-c (the .deb's lib/<multiarch>/)"
bash e2e/packages/c_install.sh build
bash e2e/packages/c_install.sh build/pkg-c

echo "--> one version ($ver) everywhere"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "75-packages: $*" >&2; exit 1; }
[ "$(build/pkg-c/wirecore --version)" = "wirecore $ver" ] || fail "CLI says $(build/pkg-c/wirecore --version)"
soname=$(readelf -d build/pkg-c/libwirecore.so | grep -oE 'libwirecore\.so\.[0-9]+')
[ "$soname" = "libwirecore.so.${ver%%.*}" ] || fail "SONAME $soname"
[ -f "build/pkg-c/libwirecore.so.$ver" ] || fail "libwirecore.so.$ver is missing"
tar -tzf "dist/wirecore-$ver-linux-x86_64.tar.gz" >"$tmp/c.txt"
grep -q "/libwirecore\.so\.$ver$" "$tmp/c.txt" ||
  fail "the C tarball has no libwirecore.so.$ver"
dpkg-deb -f "dist/wirecore_${ver}_amd64.deb" Version | grep -qx "$ver" || fail "the .deb's version"
build/pkg-venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --target "$tmp/py" \
  dist/wirecore-"$ver"-*manylinux*.whl
got=$(PYTHONPATH=$tmp/py build/pkg-venv/bin/python -c \
  'import wirecore; print(wirecore.__version__, wirecore.core_version())')
[ "$got" = "$ver $ver" ] || fail "Python says $got"
mkdir "$tmp/node" && tar -xzf "dist/wirecore-$ver.tgz" -C "$tmp/node"
got=$(node -e "const w = require('$tmp/node/package'); console.log(w.version, require('$tmp/node/package/package.json').version)")
[ "$got" = "$ver $ver" ] || fail "Node says $got"
GEM_HOME=$tmp/gems gem install -q --local --no-document "dist/wirecore-$ver-x86_64-linux.gem" >/dev/null
got=$(GEM_HOME=$tmp/gems GEM_PATH=$tmp/gems ruby -e 'require "wirecore"; print Wirecore::VERSION, " ", Wirecore.core_version')
[ "$got" = "$ver $ver" ] || fail "Ruby says $got"
for a in "wirecore-$ver.tar.gz" "wirecore-$ver.gem"; do [ -f "dist/$a" ] || fail "dist/$a is missing"; done
tar -tzf "dist/wirecore-$ver.tar.gz" >"$tmp/sdist.txt"
grep -q "native/core/src/server.c" "$tmp/sdist.txt" || fail "the sdist has no core sources"
tar -xOf "dist/wirecore-$ver.gem" data.tar.gz | tar -tzf - >"$tmp/gem.txt"
grep -q "vendor/core/src/server.c" "$tmp/gem.txt" ||
  fail "the source gem has no core sources"
echo "    VERSION, CLI, SONAME, .deb, Python, Node and Ruby all say $ver"

echo "--> bare Debian 12 root"
bash e2e/bare/run.sh
