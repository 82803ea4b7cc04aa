"""50-demo's summary (see 50-demo.sh): one figure set per scenario from 50-demo/results.jsonl,
written by `vramshim demo` as each scenario finishes."""
import os
import sys

sys.path.insert(0, os.environ["BUNDLE"])
import gpucheck  # noqa: E402

work = os.environ["WORK"]
rc = int(os.environ["DEMO_RC"])


def scenario_figures(s):
    b, v = s.get("baseline") or {}, s.get("vramshim") or {}
    return {"baseline_failed_stage": b.get("failed_stage"), "vramshim_completed": v.get("completed"),
            "checksums_ok": v.get("checksums_ok"), "peak_device_bytes": v.get("peak_device_bytes"),
            "demoted_bytes": v.get("demoted_bytes"), "vramshim_s": round(v.get("time_s") or 0, 2),
            "passthrough_s": round(b.get("time_s") or 0, 2)}


def why(s):
    """What went wrong in a scenario that did not behave as expected, in one line."""
    b, v = s.get("baseline") or {}, s.get("vramshim") or {}
    if b.get("problem") or v.get("problem"):
        return "%s: could not be judged: %s" % (s["name"], b.get("problem") or v.get("problem"))
    return "%s: pass-through %s (expected: out of memory at %s), vramshim %s (%s)" % (
        s["name"], "completed" if b.get("completed") else "failed at %s" % b.get("failed_stage"),
        s.get("expected_failure"),
        "completed" if v.get("completed") else "failed at %s" % v.get("failed_stage"),
        "checksums ok" if v.get("checksums_ok") else "checksums differ or missing")


with gpucheck.Result("demo") as res:
    try:
        with open(os.path.join(work, "results.jsonl")) as f:
            scenarios, bad = gpucheck.json_lines(f.read())
    except OSError:
        scenarios, bad = [], 0
    if bad:
        res.problems.append("%d lines of results.jsonl are not JSON" % bad)
    for s in scenarios:
        if s.get("skipped"):
            res.skipped.append("%s: %s" % (s.get("name"), s["skipped"]))
            continue
        res.ran = True
        res.figures[s.get("name", "?")] = scenario_figures(s)
        if not s.get("as_expected"):
            res.problems.append(why(s))
    if rc == 143:
        res.problems.append("stopped at the check's time limit after %d scenarios" % len(scenarios))
    elif rc != 0 and not res.problems:
        res.problems.append("vramshim demo exited %d (see 50-demo/demo.stderr)" % rc)
    if not scenarios and rc == 0:
        res.problems.append("vramshim demo reported no scenario")
    if not res.problems:
        res.notes.append("every scenario that fits this GPU ran out of memory in pass-through "
                         "and completed under vramshim")
