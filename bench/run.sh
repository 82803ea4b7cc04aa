#!/bin/bash
# Runs every benchmark binary in BUILD/bench in turn. Each prints its own figures as ratios
# against a baseline measured in the same run; a failing benchmark fails `make bench`.
set -u
build=${1:-build}
status=0
for b in "$build"/bench/*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" || { echo "bench: $(basename "$b") failed (exit $?)"; status=1; }
  echo
done
exit $status
