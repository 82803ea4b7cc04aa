#!/bin/bash
# Foundation check: the real driver loads, VMM reserve/create/map works on the device, and
# whether host-NUMA cuMemCreate (needed for demotion) works. Writes $OUT/10-driver.json.
set -u
. "$BUNDLE/check-lib.sh"
json="$OUT/10-driver.json"
res=$("$BUNDLE/bin/vmm_probe" 2>"$OUT/10-driver.stderr")
rc=$?
if [ -z "$res" ]; then res='{}'; fi
if [ $rc -eq 0 ]; then status=pass; detail="driver loads, device VMM round trip ok"; else
  status=fail; detail="vmm_probe exited $rc"; fi
check_result driver "$status" "$res" "$detail"
