#!/bin/bash
# The arena on the real driver:
#  1. Without the hooks (bin/arena_pair_cost): data round trips through arena blocks (a size-class
#     object, a large block, a block stitched from scattered free granules) and the alloc+free pair
#     cost against cuMemAllocAsync/cuMemFreeAsync and cuMemAlloc/cuMemFree, in the same run.
#  2. With compute-sanitizer (when the GPU machine has it): arena_pair_cost under memcheck, i.e.
#     no invalid device access and no leak in the arena's driver use.
#  3. Unmodified PyTorch (checks/30-arena.py, workloads/arena_torch.py) served by the arena through
#     the shim with the cudaMallocAsync backend and with PYTORCH_NO_CUDA_MEMORY_CACHING=1, bitwise
#     against the same configuration without the shim, next to PyTorch's native caching allocator
#     and expandable segments: peak device memory, utilisation and wall time (best of 3); and
#     the alloc+free pair through PyTorch (workloads/pair_torch.py) with its caching allocator,
#     with cudaMallocAsync and with cudaMallocAsync served by the arena, same calls, same check.
# Skips (with the reason) what cannot run: no Python, no torch, no CUDA in torch, no nvidia-smi
# (then peaks are left out, the rest still runs), no compute-sanitizer.
# estimate-s: 170
set -u
. "$BUNDLE/check-lib.sh"
check_begin 30-arena
pair='{}'
pair_rc=127
if [ -x "$BUNDLE/bin/arena_pair_cost" ]; then
  pair=$(timeout "$(check_time_left)" "$BUNDLE/bin/arena_pair_cost" 2>"$work/arena_pair_cost.stderr")
  pair_rc=$?
  case "$pair" in \{*\}) ;; *) pair='{}' ;; esac
fi
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
sanitizer_rc=""
if [ -n "$sanitizer" ] && [ "$(check_time_left)" -gt 30 ]; then
  timeout $(($(check_time_left) / 3)) "$sanitizer" --tool memcheck --leak-check full --error-exitcode 9 \
    "$BUNDLE/bin/arena_pair_cost" --quick >"$work/memcheck.log" 2>&1
  sanitizer_rc=$?
fi
if ! have_python3; then
  st=pass detail="arena_pair_cost exit $pair_rc; no Python: the PyTorch part is skipped"
  [ "$pair_rc" -eq 0 ] && [ "${sanitizer_rc:-0}" -eq 0 ] || st=fail
  check_result arena "$st" "{\"pair\":$pair,\"memcheck_exit\":\"${sanitizer_rc:-not run}\"}" "$detail"
  exit 0
fi
PAIR="$pair" PAIR_RC="$pair_rc" SANITIZER_RC="${sanitizer_rc:-}" check_python 30-arena arena
