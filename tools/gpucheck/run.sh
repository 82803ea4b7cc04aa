#!/bin/bash
# Runs the real-GPU checks of this bundle within a time budget. Writes in REPORT_DIR:
#   report.json, report.txt  the report, rewritten before and after every check, so a run
#                            stopped at any moment (or killed) leaves one that says how far it got
#   details.tar.gz           every check's logs and files, capped (traces over 1 MiB summarised)
# Usage: run.sh [REPORT_DIR]   (default: $OUT when set, as on the device tool, else ./report)
# Settings: VS_BUDGET_S     seconds for the whole run (default 540)
#           VS_PYTHON       the interpreter of the Python checks (default python3)
#           VS_DETAILS_MAX_MIB  the archive's cap (default 8)
#           VS_WORK         the working folder (default a new /tmp/vramshim-gpucheck.XXXXXX)
# Checks are checks/[0-9][0-9]-*.sh, run in order; docs/gpu-checks.md says what a check gets
# and what it writes. Exit status 0 when nothing failed or was cut off, 1 otherwise, 2 bad usage.
set -u
BUNDLE=$(cd "$(dirname "$0")" && pwd)
REPORT=${1:-${OUT:-$BUNDLE/report}}
budget=${VS_BUDGET_S:-540}
details_max=${VS_DETAILS_MAX_MIB:-8}
for v in "VS_BUDGET_S=$budget" "VS_DETAILS_MAX_MIB=$details_max"; do
  case ${v#*=} in '' | *[!0-9]*)
    echo "run.sh: ${v%%=*} must be a whole number, got '${v#*=}'" >&2
    exit 2 ;;
  esac
done
mkdir -p "$REPORT" && REPORT=$(cd "$REPORT" && pwd) || exit 2
WORK=${VS_WORK:-$(mktemp -d /tmp/vramshim-gpucheck.XXXXXX)}
mkdir -p "$WORK" || exit 2
# Nothing of an earlier run may pass for this one's.
rm -rf "$REPORT/report.json" "$REPORT/report.txt" "$REPORT/details.tar.gz" "$WORK"/*.json \
  "$WORK"/*.meta "$WORK"/*.log "$WORK"/run.tsv "$WORK"/[0-9][0-9]-*/
start=$(date +%s)
# The machine's allocator settings must not change what the checks measure; record them.
inherited_alloc_conf=${PYTORCH_CUDA_ALLOC_CONF-unset}
inherited_no_caching=${PYTORCH_NO_CUDA_MEMORY_CACHING-unset}
unset PYTORCH_CUDA_ALLOC_CONF PYTORCH_NO_CUDA_MEMORY_CACHING LD_PRELOAD

# --- the report's header (run.tsv) -------------------------------------------------------------
keys=()
declare -A H
set_h() { # KEY VALUE: one line each, tabs and newlines flattened
  [ -n "${H[$1]+x}" ] || keys+=("$1")
  H[$1]=$(printf '%s' "$2" | tr '\t\n' '  ' | head -c 2000)
}
oneline() { tr '\t\n' '  ' | sed 's/ *$//' | head -c 400; }

write_report() {
  set_h elapsed_s "$(($(date +%s) - start))"
  for k in "${keys[@]}"; do printf '%s\t%s\n' "$k" "${H[$k]}"; done >"$WORK/run.tsv.tmp" &&
    mv "$WORK/run.tsv.tmp" "$WORK/run.tsv"
  if [ -x "$BUNDLE/bin/report" ] && "$BUNDLE/bin/report" "$WORK" "$REPORT" 2>>"$WORK/run.log"; then
    return
  fi
  # The report writer itself cannot run (the preflight says why): a plain report still comes back.
  { echo "vramshim GPU report: the report writer bin/report could not run"
    cat "$WORK/run.tsv"; } >"$REPORT/report.txt"
  printf '{"vramshim_gpu_report":1,"run":{"state":"the report writer bin/report could not run; see report.txt"},"checks":[]}\n' \
    >"$REPORT/report.json"
}

# meta NAME KEY=VALUE...: run.sh's record of one check (see tools/gpucheck/report.c).
meta() {
  local f="$WORK/$1.meta"
  shift
  for kv in "$@"; do
    grep -v "^${kv%%=*}	" "$f" 2>/dev/null >"$f.tmp"
    printf '%s\t%s\n' "${kv%%=*}" "$(printf '%s' "${kv#*=}" | oneline)" >>"$f.tmp"
    mv "$f.tmp" "$f"
  done
}

# details.tar.gz: the working folder with every file over 1 MiB replaced by a summary (traces:
# line and event counts, the first lines) or its first and last 256 KiB; then, while the archive
# is over the cap, the largest files dropped (listed in DROPPED.txt).
pack_details() {
  local stage="$WORK/.pack" f size
  rm -rf "$stage" && mkdir -p "$stage/details" || return
  (cd "$WORK" && find . -path ./.pack -prune -o -type f -print) | while read -r f; do
    mkdir -p "$stage/details/$(dirname "$f")"
    size=$(stat -c %s "$WORK/$f")
    if [ "$size" -le 1048576 ]; then
      cp "$WORK/$f" "$stage/details/$f"
    elif [ "${f%.jsonl}" != "$f" ]; then
      { echo "$f: $size bytes, $(wc -l <"$WORK/$f") lines, summarised (over 1 MiB); events:"
        grep -o '"ev": *"[a-z_]*"' "$WORK/$f" | sort | uniq -c
        echo "first 100 lines:"
        head -n 100 "$WORK/$f" | cut -c 1-2000; } >"$stage/details/$f.summary.txt"
    else
      { head -c 262144 "$WORK/$f"
        printf '\n[... %d bytes left out: the file is over 1 MiB ...]\n' $((size - 524288))
        tail -c 262144 "$WORK/$f"; } >"$stage/details/$f.cut"
    fi
  done
  local tries=0
  while :; do
    tar -C "$stage" -czf "$REPORT/.details.tmp" details || return
    [ "$(stat -c %s "$REPORT/.details.tmp")" -le $((details_max << 20)) ] || [ $tries -ge 50 ] && break
    f=$(find "$stage/details" -type f ! -name DROPPED.txt -printf '%s %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
    [ -n "$f" ] || break
    echo "${f#"$stage"/details/} ($(stat -c %s "$f") bytes): dropped, the archive was over ${details_max} MiB" \
      >>"$stage/details/DROPPED.txt"
    rm -f "$f"
    tries=$((tries + 1))
  done
  mv "$REPORT/.details.tmp" "$REPORT/details.tar.gz"
  rm -rf "$stage"
}

finish() { # STATE: the last report, the details, the summary on stdout, the exit status
  set_h state "$1"
  write_report
  pack_details
  cat "$REPORT/report.txt"
  echo "report: $REPORT (report.json, report.txt, details.tar.gz); working files: $WORK"
  [ "$1" = complete ] && grep -q '^summary: [0-9]* pass, 0 fail, [0-9]* skip, 0 cut off' "$REPORT/report.txt"
  exit $?
}

set_h date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
set_h state running
set_h commit "$(cat "$BUNDLE/COMMIT" 2>/dev/null | oneline)"
set_h budget_s "$budget"
set_h work "$WORK"
set_h inherited_PYTORCH_CUDA_ALLOC_CONF "$inherited_alloc_conf (unset for the checks)"
set_h inherited_PYTORCH_NO_CUDA_MEMORY_CACHING "$inherited_no_caching (unset for the checks)"

checks=()
for check in "$BUNDLE"/checks/[0-9][0-9]-*.sh; do
  [ -f "$check" ] || continue
  checks+=("$check")
  meta "$(basename "$check" .sh)" state=pending
done
stop() { # a signal: the check in progress stays "running", i.e. cut off
  [ -n "${child:-}" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
  set_h stopped "run.sh received a signal after $(($(date +%s) - start)) s"
  finish "stopped by a signal"
}
trap stop TERM INT HUP

# --- preflight ---------------------------------------------------------------------------------
# The GPU: nvidia-smi, else the driver itself (containers with compute-only capabilities have
# libcuda.so.1 but no nvidia-smi).
gpu="" driver="" probe=""
if command -v nvidia-smi >/dev/null 2>&1 && timeout 30 nvidia-smi -L >/dev/null 2>&1; then
  gpu=$(timeout 30 nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
  driver=$(timeout 30 nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)
  set_h gpu_found_by nvidia-smi
elif [ -x "$BUNDLE/bin/vmm_probe" ]; then
  probe=$(timeout 60 "$BUNDLE/bin/vmm_probe" 2>/dev/null)
  case $probe in *'"driver_loaded":true'*'"driver_version"'*)
    gpu=$(grep -o '"gpu":"[^"]*"' <<<"$probe" | cut -d'"' -f4)
    driver="CUDA $(grep -o '"driver_version":[0-9]*' <<<"$probe" | cut -d: -f2) (driver API version)"
    set_h gpu_found_by "the driver (libcuda.so.1; nvidia-smi missing or failing)" ;;
  esac
fi
if [ -z "$gpu" ]; then
  set_h gpu none
  set_h detail "no NVIDIA GPU present: nvidia-smi sees none and libcuda.so.1 finds no device$(
    [ -n "$probe" ] && printf ' (%s)' "$(grep -o '"error":"[^"]*"' <<<"$probe" | cut -d'"' -f4)")"
  for check in "${checks[@]}"; do meta "$(basename "$check" .sh)" state=skipped reason="no GPU"; done
  set_h state complete
  write_report
  cat "$REPORT/report.txt"
  exit 0
fi
set_h gpu "$gpu"
set_h driver "$driver"

preflight=()
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
need=$(sed -n 's/^glibc //p' "$BUNDLE/REQUIRES" 2>/dev/null)
set_h glibc "${glibc:-unknown} (the bundle needs ${need:-?})"
if [ -n "$glibc" ] && [ -n "$need" ] &&
  [ "$(printf '%s\n%s\n' "$need" "$glibc" | sort -V | head -n 1)" != "$need" ]; then
  preflight+=("glibc $glibc is older than the $need the bundle's programs need")
fi
missing=$(for elf in "$BUNDLE"/bin/* "$BUNDLE"/bin/demo/*; do
  [ -f "$elf" ] && [ -x "$elf" ] || continue
  ldd "$elf" 2>/dev/null | awk -v f="${elf#"$BUNDLE"/}" '/not found/ {print f ": " $1}'
done | grep -v 'libcuda.so' | sort -u | head -n 5 | oneline)
[ -z "$missing" ] || preflight+=("libraries not found: $missing")
set_h libraries "$(ldd "$BUNDLE/bin/vramshim" 2>/dev/null | awk '/=> \// {print $1 "=" $3}' |
  sed "s|$BUNDLE/||" | oneline)"
if version=$(timeout 30 "$BUNDLE/bin/vramshim" --version 2>&1); then
  set_h vramshim "$version"
else
  preflight+=("bin/vramshim --version failed: $(printf '%s' "$version" | tail -n 1)")
fi

# Python, PyTorch and the CUDA PyTorch was built with: the Python checks skip without them.
VS_PYTHON=${VS_PYTHON:-python3}
if py=$(command -v "$VS_PYTHON"); then
  VS_PYTHON=$py
  set_h python "$py $(timeout 30 "$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>&1 | oneline)"
  set_h torch "$(timeout 120 "$py" -c '
try:
    import torch
except Exception as e:
    print("not importable (%s: %s)" % (type(e).__name__, e))
else:
    print("%s, CUDA %s, %s" % (torch.__version__, torch.version.cuda,
          "device available" if torch.cuda.is_available() else "NO CUDA DEVICE"))' 2>&1 | tail -n 1 | oneline)"
else
  set_h python "not found (VS_PYTHON=$VS_PYTHON): the Python checks skip"
  VS_PYTHON=""
fi
export BUNDLE VS_PYTHON
set_h preflight "${preflight[*]:-ok}"
if [ ${#preflight[@]} -gt 0 ]; then
  for check in "${checks[@]}"; do
    meta "$(basename "$check" .sh)" state=skipped reason="preflight failed: ${preflight[*]}"
  done
  finish "preflight failed"
fi

# --- the checks --------------------------------------------------------------------------------
# Each check gets a share of the time left in proportion to its estimate (its "# estimate-s: N"
# line, default 60), and at least its estimate up to 20 s while time is left; time one does not
# use goes to those after it.
estimate() { sed -n 's/^# estimate-s: *\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1 | grep . || echo 60; }
reserve=8 # the last report and archive, and the 5 s a check stopped last may take to die
for i in "${!checks[@]}"; do
  check=${checks[$i]}
  name=$(basename "$check" .sh)
  left=$((budget - reserve - ($(date +%s) - start)))
  weights=0
  for c in "${checks[@]:$i}"; do weights=$((weights + $(estimate "$c"))); done
  est=$(estimate "$check")
  limit=$((left * est / weights))
  floor=$((est < 20 ? est : 20))
  [ "$limit" -ge "$floor" ] || limit=$((floor < left ? floor : left))
  if [ "$limit" -lt 3 ]; then
    meta "$name" state=skipped reason="no time left: $left s of the $budget s budget for $((${#checks[@]} - i)) checks"
    continue
  fi
  echo "== $name (at most $limit s)" >&2
  rm -rf "${WORK:?}/$name.json" "${WORK:?}/$name"
  meta "$name" state=running limit_s="$limit"
  write_report
  t0=$(date +%s)
  # Its own deadline leaves it 3 s to write what it has before the hard limit.
  OUT=$WORK VS_CHECK_DEADLINE=$((t0 + limit - 3)) timeout -k 5 "$limit" bash "$check" \
    >"$WORK/$name.log" 2>&1 </dev/null &
  child=$!
  wait "$child"
  rc=$?
  child=""
  state=done
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && state=timeout
  meta "$name" state=$state exit="$rc" seconds_s="$(($(date +%s) - t0))" \
    log_tail="$(grep . "$WORK/$name.log" | tail -n 1 | cut -c 1-300)"
  write_report
  pack_details
done
finish complete
