#!/bin/bash
# Stand-in check: leaves a 3 MiB trace and a 2 MiB log (the details archive must summarise them).
# estimate-s: 5
. "$BUNDLE/check-lib.sh"
check_begin 40-big
printf '{"vramshim_trace":1}\n' >"$work/trace.jsonl"
for i in $(seq 1 30000); do echo "{\"ev\":\"alloc\",\"ptr\":\"0x$i\",\"size\":4096,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"; done >>"$work/trace.jsonl"
head -c $((2 << 20)) /dev/urandom | base64 >"$work/big.log"
check_result big pass '{}' "big files written"
