#!/bin/bash
# Eviction on the real driver.
#  1. bin/evict_check (the arena without the hooks): a 1 GiB block demoted to host-NUMA memory
#     keeps its address and contents, gives its device memory back, takes writes while demoted and
#     comes back on promote; demote/promote bandwidth against cuMemcpyDtoH/HtoD, same run.
#  2. Through the shim (checks/40-evict.py, workloads/evict_torch.py): a PyTorch matmul on a
#     demoted tensor gives the result it gave before the demote, and again after the promote; the
#     demote must really move the tensor (the status's demoted bytes or the device's free-memory
#     gain at least the tensor's size).
# Skips (with the reason) what cannot run: a driver without host-NUMA VMM, no Python or torch.
# estimate-s: 60
set -u
. "$BUNDLE/check-lib.sh"
check_begin 40-evict
res=$(timeout "$(check_time_left)" "$BUNDLE/bin/evict_check" 2>"$work/evict_check.stderr")
rc=$?
case "$res" in \{*\}) ;; *) res='{}' ;; esac
EVICT="$res" EVICT_RC=$rc check_python 40-evict evict
if ! have_python3; then
  case $rc in 0) st=pass ;; 3) st=skip ;; *) st=fail ;; esac
  check_result evict "$st" "{\"evict_check\":$res}" "evict_check exit $rc; no Python: the PyTorch part is skipped"
fi
