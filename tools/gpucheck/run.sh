#!/bin/bash
# Runs every real-GPU check of this bundle and writes REPORT_DIR/report.json and report.txt.
# Usage: run.sh [REPORT_DIR]   (default: ./report next to this script; on the device tool: $OUT)
# Each check is checks/NN-name.sh, run with BUNDLE (this folder) and OUT (the report folder);
# it writes OUT/NN-name.json: {"name":..,"status":"pass|fail|skip","figures":{..},"detail":".."}.
set -u
BUNDLE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-${OUT:-$BUNDLE/report}}
mkdir -p "$OUT"
export BUNDLE OUT
export LD_LIBRARY_PATH="$BUNDLE/bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
commit=$(tr -d '\n' <"$BUNDLE/COMMIT")
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  printf '{"date":"%s","commit":"%s","gpu":null,"driver":null,"checks":[],"detail":"no NVIDIA GPU present"}\n' \
    "$date_utc" "$commit" >"$OUT/report.json"
  printf 'vramshim GPU report %s (commit %s)\nno NVIDIA GPU present: nothing checked\n' \
    "$date_utc" "$commit" | tee "$OUT/report.txt"
  exit 0
fi

# A top-level string field of a check's JSON, whatever its spacing (the checks are written in
# shell and Python alike).
json_field() {
  grep -o "\"$1\": *\"[^\"]*\"" "$2" | head -n 1 | sed -E 's/.*: *"([^"]*)"/\1/'
}

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)
failed=0
for check in "$BUNDLE"/checks/*.sh; do
  name=$(basename "$check" .sh)
  echo "== $name" >&2
  start=$(date +%s)
  timeout "${VS_CHECK_TIMEOUT:-480}" bash "$check" >"$OUT/$name.log" 2>&1
  rc=$?
  if [ ! -s "$OUT/$name.json" ]; then
    printf '{"name":"%s","status":"fail","figures":{},"detail":"check wrote no result (exit %d)"}\n' \
      "$name" "$rc" >"$OUT/$name.json"
  fi
  [ "$(json_field status "$OUT/$name.json")" = pass ] || [ "$(json_field status "$OUT/$name.json")" = skip ] ||
    failed=$((failed + 1))
  echo "   $(($(date +%s) - start)) s" >&2
done

{
  printf '{"date":"%s","commit":"%s","gpu":"%s","driver":"%s","checks":[' "$date_utc" "$commit" "$gpu" "$driver"
  sep=""
  for j in "$OUT"/[0-9]*.json; do printf '%s' "$sep"; tr -d '\n' <"$j"; sep=","; done
  printf ']}\n'
} >"$OUT/report.json"

{
  echo "vramshim GPU report $date_utc"
  echo "GPU: $gpu   driver: $driver   commit: $commit"
  for j in "$OUT"/[0-9]*.json; do
    printf '%-5s %-24s %s\n' "$(json_field status "$j")" "$(basename "$j" .json)" \
      "$(json_field detail "$j")"
    grep -o '"figures": *{[^}]*}' "$j" | head -n 1 | sed 's/^/      /'
  done
  echo "$failed check(s) failed"
} | tee "$OUT/report.txt"
[ "$failed" -eq 0 ]
