#!/bin/bash
# Arena on the real driver, without the hooks: data round trips through arena blocks (a
# size-class object, a large block, a block stitched from scattered free granules) and the
# alloc+free pair cost against cuMemAllocAsync/cuMemFreeAsync and cuMemAlloc/cuMemFree, measured
# in the same run. Writes $OUT/30-arena.json. (Serving PyTorch through the arena needs the hooks;
# that comparison is a separate check.)
set -u
bin="$BUNDLE/bin/arena_pair_cost"
json="$OUT/30-arena.json"
if [ ! -x "$bin" ]; then
  printf '{"name":"arena","status":"skip","figures":{},"detail":"arena_pair_cost missing from the bundle"}\n' >"$json"
  exit 0
fi
res=$("$bin" 2>"$OUT/30-arena.stderr")
rc=$?
case "$res" in
  \{*\}) ;;
  *) res='{}' ;;
esac
ratio=$(grep -o '"async_ratio":[0-9.-]*' <<<"$res" | cut -d: -f2)
if [ $rc -eq 0 ]; then
  status=pass
  detail="round trips ok; stream-ordered pair costs ${ratio:-?}x the driver's cuMemAllocAsync+cuMemFreeAsync"
else
  status=fail
  detail="arena_pair_cost exited $rc (see 30-arena.stderr and the round-trip figures)"
fi
printf '{"name":"arena","status":"%s","figures":%s,"detail":"%s"}\n' "$status" "$res" "$detail" >"$json"
