#!/bin/bash
# Runs every libFuzzer harness in BUILD/fuzz for SECONDS each (make fuzz). New inputs go to a
# scratch corpus (BUILD/fuzz-corpus/NAME), never into the committed seeds
# (tests/fuzz/corpus/NAME), which are read as a second corpus directory. A crash, leak or
# timeout leaves its input in BUILD/fuzz-crashes/ and fails the run; add that input to
# tests/fuzz/regress/NAME/ so `make test` replays it from then on.
set -u
build=${1:-build-fuzz}
seconds=${2:-60}
src=$(dirname "$0")
failed=()
for bin in "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=${bin##*/fuzz_}
  scratch="$build/fuzz-corpus/$name"
  crashes="$build/fuzz-crashes"
  mkdir -p "$scratch" "$crashes"
  dirs=("$scratch")
  for d in "$src/corpus/$name" "$src/regress/$name"; do [ -d "$d" ] && dirs+=("$d"); done
  log="$build/fuzz-$name.log"
  echo "fuzz: $name for ${seconds}s (log: $log)"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/$name-" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  grep -E '^#[0-9]+.*(DONE|INITED)|stat::number_of_executed_units|stat::average_exec_per_sec' "$log" \
    | sed "s/^/fuzz: $name: /" | tail -n 3
  if [ $rc -ne 0 ]; then
    echo "fuzz: $name FAILED (exit $rc); input and report:"
    grep -E 'ERROR:|SUMMARY:|Test unit written to' "$log" | sed 's/^/  /'
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a failure"
