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
# Python benchmarks (bench/*.py), with the interpreter of each test environment of tools/pyenv.sh.
here=$(dirname "$0")
for b in "$here"/*.py; do
  case $(basename "$b") in _*) continue ;; esac # modules the benchmarks import
  for v in 3.11 3.12; do
    if py=$("$here/../tools/pyenv.sh" path "$v"); then
      echo "== $(basename "$b") (Python $v)"
      LD_LIBRARY_PATH="$build/sim" "$py" "$b" "$build/vramshim" || { echo "bench: $(basename "$b") failed (exit $?)"; status=1; }
    else
      echo "== $(basename "$b") (Python $v): skipped: $py"
    fi
    echo
  done
done
exit $status
