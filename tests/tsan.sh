#!/bin/bash
# `make tsan`: runs the ThreadSanitizer build in BUILD (build-tsan): the threaded tests (built
# against tests/tsan/criterion/criterion.h), the threaded programs with the TSan shim preloaded,
# and a short soak. Any TSan report fails the run (halt_on_error); known benign reports are
# suppressed by tests/tsan.supp, each with the reason. Prints one closing line.
set -u
build=${1:-build-tsan}
here=$(cd "$(dirname "$0")" && pwd)
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$here/tsan.supp"
export VRAMSHIM_INVARIANTS=abort
failed=()
run() { # name, command...
  local name=$1; shift
  echo "== $name"
  if ! "$@"; then failed+=("$name"); fi
}
for t in "$build"/tsan-tests/test_*; do
  [ -x "$t" ] || continue
  run "$(basename "$t")" "$t"
done
# The shim preloaded into TSan-built threaded programs (as tests/interpose_harness.h runs them).
for p in interpose_threads_linked stages_threads_linked; do
  run "$p with the shim" env LD_LIBRARY_PATH="$build/sim" LD_PRELOAD="$build/libvramshim.so" \
    VRAMSHIM_LOG=error VS_SECONDS=1 "$build/tests/progs/$p"
done
# No RSS bound here: TSan's shadow and history memory grow with the run (make soak checks RSS).
run "soak (short)" env SOAK_SECONDS="${SOAK_SECONDS:-20}" SOAK_CYCLES="${SOAK_CYCLES:-200}" \
  SOAK_RSS_SLACK_MIB=1000000 "$build/soak/soak"
if [ ${#failed[@]} -gt 0 ]; then
  echo "tsan: failed: ${failed[*]}"
  exit 1
fi
echo "tsan: all passed, no report"
