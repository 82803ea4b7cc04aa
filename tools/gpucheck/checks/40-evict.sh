#!/bin/bash
# Eviction on the real driver. Writes $OUT/40-evict.json.
#  1. bin/evict_check (the arena without the hooks): a block demoted to host-NUMA memory keeps
#     its address and contents, gives its device memory back, takes writes while demoted and
#     comes back on promote; demote/promote bandwidth against cuMemcpyDtoH/HtoD, same run.
#  2. Through the shim: a PyTorch matmul on a demoted tensor (vramshim_tag + vramshim_demote via
#     ctypes) gives the same result as before the demote, and again after vramshim_promote.
# Skips (with the reason) what cannot run: driver without host-NUMA VMM, no python3/torch/CUDA,
# a shim that does not export vramshim_demote.
set -u
. "$BUNDLE/check-lib.sh"
check_begin 40-evict
bin="$BUNDLE/bin/evict_check"
shim="$BUNDLE/bin/libvramshim.so"
notes=()

figures='{}'
status=pass
if [ ! -x "$bin" ]; then
  status=fail
  notes+=("evict_check missing from the bundle")
else
  res=$("$bin" 2>"$work/evict_check.stderr")
  rc=$?
  case "$res" in \{*\}) figures=$res ;; esac
  case $rc in
    0) notes+=("demote/promote kept address and contents; bandwidth vs DtoH $(grep -o '"demote_vs_dtoh":[0-9.]*' <<<"$res" | cut -d: -f2)x, vs HtoD $(grep -o '"promote_vs_htod":[0-9.]*' <<<"$res" | cut -d: -f2)x") ;;
    3) status=skip; notes+=("the driver cannot map host-NUMA memory: eviction is off on this machine") ;;
    *) status=fail; notes+=("evict_check exited $rc (see 40-evict/evict_check.stderr)") ;;
  esac
fi

torch_result=$(SHIM="$shim" WORK="$work" python3 - <<'PY' 2>"$work/torch.stderr"
import json, os, subprocess, sys

shim, work = os.environ["SHIM"], os.environ["WORK"]
CHILD = r'''
import ctypes, json, sys
import torch
lib = ctypes.CDLL(None)
if not hasattr(lib, "vramshim_demote") or not hasattr(lib, "vramshim_tag"):
    print(json.dumps({"skip": "the shim does not export vramshim_demote/vramshim_tag"})); sys.exit(0)
lib.vramshim_tag.argtypes = [ctypes.c_uint64, ctypes.c_char_p]
lib.vramshim_stats_json.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
def demoted():
    buf = ctypes.create_string_buffer(1 << 16)
    lib.vramshim_stats_json(buf, len(buf))
    return buf.value.decode()
torch.manual_seed(0)
x = torch.randn(4096, 4096, device="cuda")
w = torch.randn(4096, 4096, device="cuda")
ref = x @ w
torch.cuda.synchronize()
out = {"tag": lib.vramshim_tag(x.data_ptr(), b"evict_check")}
out["demote"] = lib.vramshim_demote(b"evict_check")
out["stats_after_demote"] = demoted()
y = x @ w
torch.cuda.synchronize()
out["equal_demoted"] = bool(torch.equal(y, ref))
out["max_diff_demoted"] = float((y - ref).abs().max())
out["promote"] = lib.vramshim_promote(b"evict_check")
z = x @ w
torch.cuda.synchronize()
out["equal_promoted"] = bool(torch.equal(z, ref))
print(json.dumps(out))
'''
try:
    import torch  # noqa: F401
    if not torch.cuda.is_available():
        print(json.dumps({"skip": "torch has no CUDA"})); sys.exit(0)
except Exception as e:
    print(json.dumps({"skip": "no torch (%s)" % e.__class__.__name__})); sys.exit(0)
if not os.path.exists(shim):
    print(json.dumps({"fail": "libvramshim.so missing from the bundle"})); sys.exit(0)
env = dict(os.environ, LD_PRELOAD=shim, VRAMSHIM_MODE="arena", PYTORCH_NO_CUDA_MEMORY_CACHING="1")
p = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
with open(os.path.join(work, "torch.log"), "w") as f:
    f.write(p.stdout + "\n--- stderr\n" + p.stderr)
lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
if p.returncode != 0 or not lines:
    print(json.dumps({"fail": "the PyTorch run under the shim failed (exit %d, see 40-evict/torch.log)" % p.returncode})); sys.exit(0)
r = json.loads(lines[-1])
if "skip" in r:
    print(json.dumps(r)); sys.exit(0)
ok = r["tag"] == 0 and r["demote"] == 0 and r["promote"] == 0 and r["equal_demoted"] and r["equal_promoted"]
r["ok"] = ok
print(json.dumps(r))
PY
)
[ -n "$torch_result" ] || torch_result='{"fail":"python3 missing or the torch step crashed"}'
echo "$torch_result" >"$work/torch.json"
case "$torch_result" in
  *'"skip"'*) notes+=("torch: skipped: $(sed 's/.*"skip": *"\([^"]*\)".*/\1/' <<<"$torch_result")") ;;
  *'"ok": true'*) notes+=("torch matmul on a demoted tensor matches before/after") ;;
  *) [ "$status" = skip ] || status=fail
     notes+=("torch: $(sed 's/.*"fail": *"\([^"]*\)".*/\1/' <<<"$torch_result" | head -c 200)") ;;
esac

detail=$(IFS=';'; echo "${notes[*]}" | tr '"' "'")
check_result evict "$status" "$figures" "$detail"
