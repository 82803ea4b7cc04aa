#!/bin/bash
# Stand-in check: writes a partial result, records its pid, then hangs far past any limit.
# estimate-s: 10
. "$BUNDLE/check-lib.sh"
check_begin 20-hang
check_result hang pass '{"partial":1}' "first step done"
echo $$ >"$work/pid"
sleep 100
