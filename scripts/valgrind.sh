#!/usr/bin/env bash
# Run every C test program under valgrind (memcheck): any invalid access,
# uninitialised read or definite leak in a test's process fails the run.
# Usage: scripts/valgrind.sh [BUILD_DIR]   (default: build, built by scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
bash scripts/apt.sh valgrind
status=0
for t in "$dir"/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  log="$dir/$name.valgrind.log"
  # Criterion runs each test in a child process and reports its result before
  # the child exits, so valgrind's exit code does not reach the runner. With
  # -q valgrind prints only problems: any line of its own fails the program.
  # (Only definite leaks count: Criterion's runner keeps "possibly lost" blocks.)
  valgrind -q --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --trace-children=yes "$t" --jobs 1 > "$log" 2>&1 || true
  if grep -qE '^==[0-9]+==' "$log" || ! grep -q 'Failing: 0 | Crashing: 0' "$log"; then
    echo "valgrind FAIL $name (log: $log)"
    # valgrind's own lines, and Criterion's failures with their messages
    grep -E '^==[0-9]+==|FAIL|^\[----\] .*(Assert|:[0-9]+:)|^\[----\]   ' "$log" | head -n 40
    status=1
  else
    echo "valgrind ok   $name: $(tail -n 1 "$log")"
  fi
done
exit $status
