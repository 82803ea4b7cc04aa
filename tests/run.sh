#!/bin/bash
# Runs every criterion test binary in BUILD/tests (or those whose name contains FILTER) and
# prints one closing line: "N passed, N failed". Exit status is non-zero on any failure.
# VS_TEST_WRAPPER=valgrind runs each binary under valgrind (children traced, errors fatal,
# known false positives suppressed by tests/valgrind.supp).
set -u
build=${1:-build}
filter=${2:-}
passed=0; failed=0; broken=()

wrapper=()
case "${VS_TEST_WRAPPER:-}" in
  valgrind) wrapper=(valgrind -q --trace-children=yes --error-exitcode=97 --leak-check=full
                     --errors-for-leak-kinds=definite --show-leak-kinds=definite
                     --child-silent-after-fork=yes
                     "--suppressions=$(dirname "$0")/valgrind.supp"
                     "--trace-children-skip=*/bash,*/sh,*/valgrind*,*/python*") ;;
  "") ;;
  *) echo "run.sh: unknown VS_TEST_WRAPPER=${VS_TEST_WRAPPER}" >&2; exit 2 ;;
esac
# Sanitized shims get preloaded into uninstrumented children; let them start.
export ASAN_OPTIONS=${ASAN_OPTIONS:-verify_asan_link_order=0:detect_leaks=1}
# Leaks inside third-party test tooling, each explained in the file.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp}
# Internal invariants (allocator/vs_assert.h) abort the test that breaks one.
export VRAMSHIM_INVARIANTS=${VRAMSHIM_INVARIANTS:-abort}

for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  [ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
  log=$(mktemp)
  "${wrapper[@]}" "$t" --jobs=2 >"$log" 2>&1
  rc=$?
  cat "$log"
  synth=$(grep -a 'Synthesis: Tested:' "$log" | tail -n 1)
  rm -f "$log"
  if [ -z "$synth" ]; then
    echo "run.sh: $name printed no criterion summary (exit $rc)"
    failed=$((failed + 1)); broken+=("$name"); continue
  fi
  p=$(sed -E 's/.*Passing: *([0-9]+).*/\1/' <<<"$synth")
  f=$(sed -E 's/.*Failing: *([0-9]+).*/\1/' <<<"$synth")
  c=$(sed -E 's/.*Crashing: *([0-9]+).*/\1/' <<<"$synth")
  passed=$((passed + p)); failed=$((failed + f + c))
  if [ "$rc" -ne 0 ] && [ $((f + c)) -eq 0 ]; then
    echo "run.sh: $name exited $rc"
    failed=$((failed + 1))
  fi
  [ "$rc" -ne 0 ] || [ $((f + c)) -ne 0 ] && broken+=("$name")
done

[ ${#broken[@]} -gt 0 ] && echo "run.sh: failing binaries: ${broken[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
