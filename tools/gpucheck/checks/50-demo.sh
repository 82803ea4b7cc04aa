#!/bin/bash
# The main demo on the real GPU: `vramshim demo --device real` runs the generator programs at the
# sizes of the reported failures, one scenario at a time, with a vram_holder process holding all
# the device's memory but the GPU of the failure (less what another process held there): each
# must run out of memory in pass-through where the reported failure did, and complete under
# vramshim with its example policy with every weight's checksum intact (demotion to host memory
# is real here). Each run has a time limit (its share of the check's time); the demo writes each
# scenario's result to 50-demo/results.jsonl as it finishes, and this check reports those it
# has, also when it is stopped (checks/50-demo.py summarises).
# estimate-s: 120
set -u
. "$BUNDLE/check-lib.sh"
check_begin 50-demo
summarise() {
  if have_python3; then
    DEMO_RC=$1 check_python 50-demo demo
  else
    st=fail
    [ "$1" -eq 0 ] && st=pass
    check_result demo "$st" '{}' "vramshim demo exited $1 (no Python: figures in 50-demo/results.jsonl)"
  fi
}
trap 'summarise 143; exit 0' TERM
per_run=$(($(check_time_left) / 9))
"$BUNDLE/bin/vramshim" demo --device real --json --out "$work" --timeout $((per_run > 5 ? per_run : 5)) \
  >"$work/demo.json" 2>"$work/demo.stderr"
summarise $?
