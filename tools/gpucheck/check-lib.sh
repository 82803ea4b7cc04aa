# Shell functions the checks share; checks/NN-name.sh source it as "$BUNDLE/check-lib.sh". It
# lives outside checks/ because run.sh runs every checks/NN-*.sh as a check. What a check gets
# and writes: docs/gpu-checks.md.

# check_begin NN-name: json=$OUT/NN-name.json (the check's result) and work=$OUT/NN-name/ (its
# logs and files, created).
check_begin() {
  json="$OUT/$1.json"
  work="$OUT/$1"
  mkdir -p "$work"
}

# check_result NAME STATUS FIGURES DETAIL: writes the check's result object to $json (through a
# temporary file, so a check killed while writing leaves its previous result). FIGURES is a JSON
# object; quotes, backslashes and control characters in DETAIL are escaped.
check_result() {
  local detail
  detail=$(printf '%s' "$4" | tr '\t\n\r' '   ' | sed 's/\\/\\\\/g; s/"/\\"/g')
  printf '{"name":"%s","status":"%s","figures":%s,"detail":"%s"}\n' "$1" "$2" "$3" "$detail" \
    >"$json.tmp" && mv "$json.tmp" "$json"
}

# Seconds left before the check's deadline (VS_CHECK_DEADLINE, set by run.sh; 600 without it).
check_time_left() {
  local left=$((${VS_CHECK_DEADLINE:-$(($(date +%s) + 600))} - $(date +%s)))
  echo $((left > 1 ? left : 1))
}

# The interpreter the Python checks use (run.sh resolves VS_PYTHON; empty: none found).
have_python3() {
  [ -n "${VS_PYTHON:-}" ] && command -v "$VS_PYTHON" >/dev/null 2>&1
}

# check_python NN-name NAME: runs checks/NN-name.py (which imports gpucheck.py from the bundle)
# with json and work in its environment; without Python the check is a skip with the reason.
check_python() {
  if ! have_python3; then
    check_result "$2" skip '{}' "no Python interpreter (VS_PYTHON=${VS_PYTHON:-}): nothing checked"
    return
  fi
  JSON="$json" WORK="$work" PYTHONDONTWRITEBYTECODE=1 \
    "$VS_PYTHON" "$BUNDLE/checks/$1.py"
  [ -s "$json" ] || check_result "$2" fail '{}' "checks/$1.py wrote no result (see $1.log)"
}
