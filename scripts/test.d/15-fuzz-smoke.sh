#!/usr/bin/env bash
# Fuzz smoke run: build every tests/fuzz/fuzz_*.c with clang + libFuzzer +
# ASan/UBSan in build-fuzz, then run each for a bounded time (FUZZ_SECONDS,
# default 30) and print how many inputs it executed. A crash, leak or
# sanitizer report fails the suite; the reproducer is left in build-fuzz.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-30}
bash scripts/apt.sh clang >/dev/null
# libFuzzer and the sanitizer runtimes are only a Recommends of clang, which
# apt.sh does not install: ask for the runtime package of this clang.
clang_major=$(clang -dumpversion | cut -d. -f1)
bash scripts/apt.sh "libclang-rt-${clang_major}-dev" >/dev/null
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DWIRE_BUILD_FUZZ=ON \
  -DWIRE_BUILD_TESTS=OFF -DWIRE_BUILD_EXAMPLES=OFF -DWIRE_BUILD_BENCH=OFF \
  -DWIRE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build-fuzz >/dev/null

testdata=${WIRE_TESTDATA:-../shared/testdata}
status=0
for bin in build-fuzz/tests/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus=build-fuzz/corpus/$name
  mkdir -p "$corpus"
  # Seed the JSON fuzzer with the JSONTestSuite cases when they are around.
  if [ "$name" = fuzz_json ] && [ -d "$testdata/jsontestsuite/test_parsing" ] &&
    [ -z "$(ls -A "$corpus")" ]; then
    cp "$testdata"/jsontestsuite/test_parsing/*.json "$corpus"/
  fi
  log=build-fuzz/$name.log
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/$name-" "$corpus" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    echo "$name: ${runs:-?} executions in ${seconds}s, no crash"
  else
    echo "$name: FAILED (see $log)"
    tail -n 40 "$log"
    status=1
  fi
done
exit $status
