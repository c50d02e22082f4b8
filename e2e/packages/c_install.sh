#!/usr/bin/env bash
# The C library installs where the user says: install BUILD_DIR (default
# build/) into a temporary prefix with `cmake --install --prefix`, move the
# tree elsewhere (the pkg-config file and the CMake package are relocatable),
# then build c_install_probe.c four ways against it -- shared and static,
# through pkg-config and through find_package(wirecore) -- and run each.
# Usage: e2e/packages/c_install.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/staged" >/dev/null
mv "$tmp/staged" "$tmp/moved" # nothing may remember the install prefix
prefix=$tmp/moved
pc=$(find "$prefix" -name wirecore.pc)
libdir=$(dirname "$(dirname "$pc")")
want=$(cat "$root/VERSION")

check() { # NAME EXE SHARED|STATIC: runs EXE, checks how it linked libwirecore
  local out; out=$("$2")
  [ "$out" = "wirecore $want" ] || { echo "$1: printed '$out', want 'wirecore $want'"; exit 1; }
  if readelf -d "$2" | grep -q 'NEEDED.*libwirecore'; then linked=SHARED; else linked=STATIC; fi
  [ "$linked" = "$3" ] || { echo "$1: linked libwirecore $linked, want $3"; exit 1; }
  echo "    $1: ok ($out, $3)"
}

echo "--> installed tree (moved after install): $(cd "$prefix" && find . -type f | sort | tr '\n' ' ')"
"$prefix/bin/wirecore" --version | grep -qx "wirecore $want"
echo "    bin/wirecore --version: wirecore $want"

export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion wirecore)" = "$want" ]
cc -Wall -Werror -o "$tmp/pc-shared" "$here/c_install_probe.c" \
  $(pkg-config --cflags --libs wirecore) -Wl,-rpath,"$libdir"
check pkg-config-shared "$tmp/pc-shared" SHARED
# Static: the archive, plus what Libs.private / Requires.private name.
static_libs=$(pkg-config --static --libs wirecore | sed "s|-lwirecore|-l:libwirecore.a|")
cc -Wall -Werror -o "$tmp/pc-static" "$here/c_install_probe.c" \
  $(pkg-config --cflags wirecore) $static_libs
check pkg-config-static "$tmp/pc-static" STATIC

for kind in shared static; do
  target=wirecore::wirecore; [ $kind = static ] && target=wirecore::wirecore_static
  mkdir -p "$tmp/cm-$kind"
  cat > "$tmp/cm-$kind/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(probe LANGUAGES C)
find_package(wirecore $want REQUIRED)
add_executable(probe "$here/c_install_probe.c")
target_compile_options(probe PRIVATE -Wall -Werror)
target_link_libraries(probe PRIVATE $target)
CM
  cmake -S "$tmp/cm-$kind" -B "$tmp/cm-$kind/b" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  ninja -C "$tmp/cm-$kind/b" >/dev/null
  check "find_package-$kind" "$tmp/cm-$kind/b/probe" "${kind^^}"
done
