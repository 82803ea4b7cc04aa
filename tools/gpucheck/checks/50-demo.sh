#!/bin/bash
# The main demo on the real GPU: `vramshim demo --device real --json` runs the seeds' generator
# programs with every size scaled to this GPU's memory (its total / the seed's GPU), each in
# pass-through (must run out of memory where the seed did) and under vramshim with its example
# policy (must complete with every weight's checksum intact; demotion to host memory is real
# here). The memory another process holds (seed 000) is held by a vram_holder process.
# Writes $OUT/50-demo.json; traces, result lines and logs in $OUT/50-demo/.
set -u
. "$BUNDLE/check-lib.sh"
check_begin 50-demo
"$BUNDLE/bin/vramshim" demo --device real --json --out "$work" >"$work/demo.json" 2>"$work/demo.stderr"
rc=$?
if ! have_python3; then
  if [ $rc -eq 0 ]; then st=pass; else st=fail; fi
  check_result demo "$st" '{}' "vramshim demo exited $rc (python3 missing: figures in 50-demo/demo.json)"
  exit 0
fi
RC=$rc DEMO="$work/demo.json" JSON="$json" python3 - <<'PY'
import json, os

rc, path, out = int(os.environ["RC"]), os.environ["DEMO"], os.environ["JSON"]
figures, notes = {}, []
try:
    with open(path) as f:
        demo = json.load(f)
except (OSError, ValueError) as e:
    demo = None
    notes.append("no JSON from vramshim demo (exit %d): %s" % (rc, e))
for s in (demo or {}).get("scenarios", []):
    n, b, v = s["name"], s["baseline"], s["vramshim"]
    figures[n + ".baseline_failed_stage"] = b.get("failed_stage")
    figures[n + ".vramshim_completed"] = v.get("completed")
    figures[n + ".checksums_ok"] = v.get("checksums_ok")
    figures[n + ".scale"] = v.get("scale")
    figures[n + ".peak_device_bytes"] = v.get("peak_device_bytes")
    figures[n + ".demoted_bytes"] = v.get("demoted_bytes")
    figures[n + ".vramshim_s"] = round(v.get("time_s") or 0, 2)
    if not s.get("as_expected"):
        notes.append("%s: pass-through %s (expected: out of memory at %s), vramshim %s (%s)" % (
            n, "completed" if b.get("completed") else "failed at %s" % b.get("failed_stage"),
            s.get("expected_failure"),
            "completed" if v.get("completed") else "failed at %s" % v.get("failed_stage"),
            v.get("problem") or v.get("error") or ("checksums ok" if v.get("checksums_ok") else "checksums differ")))
ok = rc == 0 and demo is not None and demo.get("ok") is True
detail = "every scenario out of memory in pass-through, complete under vramshim" if ok else "; ".join(notes) or "vramshim demo exited %d" % rc
with open(out, "w") as f:
    json.dump({"name": "demo", "status": "pass" if ok else "fail", "figures": figures,
               "detail": detail.replace('"', "'")}, f)
    f.write("\n")
PY
