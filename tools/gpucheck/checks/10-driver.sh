#!/bin/bash
# Foundation check: the real driver loads (not simcuda: a run that never reached the NVIDIA
# driver must not pass), VMM reserve/create/map works on the device, and whether host-NUMA
# cuMemCreate (what demotion needs) works. Figures: vmm_probe's JSON, with "library" the file
# cuInit came from.
# estimate-s: 10
set -u
. "$BUNDLE/check-lib.sh"
check_begin 10-driver
res=$(timeout "$(check_time_left)" "$BUNDLE/bin/vmm_probe" 2>"$work/vmm_probe.stderr")
rc=$?
case $res in \{*\}) ;; *) res='{}' ;; esac
library=$(grep -o '"library":"[^"]*"' <<<"$res" | cut -d'"' -f4)
if [ $rc -ne 0 ]; then
  status=fail detail="vmm_probe exited $rc: $(grep -o '"[a-z_]*error":"[^"]\+"' <<<"$res" | head -n 1)"
elif grep -q '"simulated":true' <<<"$res"; then
  status=fail detail="cuInit came from the simulated driver ($library), not the NVIDIA driver"
else
  status=pass detail="the driver ($library) loads, device VMM round trip ok"
  grep -q '"host_numa_ok":true' <<<"$res" || detail="$detail; host-NUMA cuMemCreate fails: eviction is off here"
fi
check_result driver "$status" "$res" "$detail"
