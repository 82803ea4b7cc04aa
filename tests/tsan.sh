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
# Two processes under the shim on one shared simulated GPU (docs/lending.md): a lender whose
# idle weights hold most of it, and a borrower whose load runs out of memory and borrows them;
# the lender's ctl status and the ledger are read meanwhile, and it takes its weights back at
# its next request. Covers the ledger publisher, the control socket, lend, borrow and promote.
lend_pair() (
  local d; d=$(mktemp -d /tmp/vs_tsan_lend_XXXXXX) || exit 1
  printf '[global]\nctl = on\n[tag weights]\nmatch = llm_load_weights\n[lend]\nlend = weights\nidle_after = 100ms\nwait = 20s\n' >"$d/lend.ini"
  printf '[lend]\nwait = 20s\n' >"$d/borrow.ini"
  local shared=tsan$$ srv="$build/demo/llm_server --layers 4 --kv-mib 2 --weights-mib 32" rc=0
  export XDG_RUNTIME_DIR=$d SIMCUDA_SHARED=$shared SIMCUDA_VRAM=48MiB LD_LIBRARY_PATH="$build/sim"
  LD_PRELOAD="$build/libvramshim.so" VRAMSHIM_LOG=info VRAMSHIM_POLICY="$d/lend.ini" $srv \
    --interval-ms 3000 --requests 2 >"$d/a" 2>"$d/aerr" & local a=$!
  for _ in $(seq 200); do grep -q '^ready:' "$d/a" && break; sleep 0.05; done
  sleep 0.8 # idle_after, sampled every 500 ms
  LD_PRELOAD="$build/libvramshim.so" VRAMSHIM_POLICY="$d/borrow.ini" $srv --interval-ms 100 \
    --requests 1 >"$d/b" 2>"$d/berr" || rc=1
  "$build/vramshim" ctl "$a" status >/dev/null || rc=1
  "$build/vramshim" ctl --ledger >/dev/null || rc=1
  wait $a || rc=1
  grep -q 'borrow: out of memory .*: released 32.00 MiB; retrying' "$d/berr" || {
    echo "the borrower did not borrow:"; cat "$d/berr"; rc=1; }
  grep -q 'lend: in use again, promoted 33554432 lent bytes back' "$d/aerr" || {
    echo "the lender did not take its weights back:"; cat "$d/aerr"; rc=1; }
  rm -rf "$d" "/dev/shm/simcuda-$(id -u)-$shared"
  exit $rc
)
run "a lender and a borrower with the shim" lend_pair
# No RSS bound here: TSan's shadow and history memory grow with the run (make soak checks RSS).
run "soak (short)" env SOAK_SECONDS="${SOAK_SECONDS:-20}" SOAK_CYCLES="${SOAK_CYCLES:-200}" \
  SOAK_RSS_SLACK_MIB=1000000 "$build/soak/soak"
if [ ${#failed[@]} -gt 0 ]; then
  echo "tsan: failed: ${failed[*]}"
  exit 1
fi
echo "tsan: all passed, no report"
