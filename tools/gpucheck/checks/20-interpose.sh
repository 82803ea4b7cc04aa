#!/bin/bash
# Interposer on the real driver (checks/20-interpose.py):
#  1. The interposer's test programs (bin/interpose_*) in pass-through: the output is identical
#     with and without the shim, and the trace holds each allocation call once under the exact
#     entry point the program used (cudart-like cuGetProcAddress look-ups, direct linking, dlsym,
#     _ptsz, 8 threads).
#  2. Unmodified PyTorch with each allocator (native caching, expandable segments,
#     cudaMallocAsync; the backend PyTorch reports is recorded), in pass-through and under the
#     arena: outputs bitwise equal to the run without the shim; in pass-through the trace's
#     allocations from libc10_cuda agree with torch.cuda.memory_stats() where PyTorch keeps the
#     counter ("untracked" where it does not).
# Skips (with the reason) what cannot run: no Python, no torch, no CUDA in torch.
# estimate-s: 120
set -u
. "$BUNDLE/check-lib.sh"
check_begin 20-interpose
check_python 20-interpose interpose
