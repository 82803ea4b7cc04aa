"""40-evict (see 40-evict.sh)."""
import json
import os
import sys

sys.path.insert(0, os.environ["BUNDLE"])
import gpucheck  # noqa: E402

work = os.environ["WORK"]
python = gpucheck.python()


def moved_enough(r):
    """The demote moved at least the tensor: by the shim's status or by the device's free memory."""
    asked = r.get("asked_bytes") or 0
    return asked > 0 and max(r.get("demoted_bytes") or 0, r.get("free_delta") or 0) >= asked


with gpucheck.Result("evict") as res:
    rc, res.figures["evict_check"] = gpucheck.program_output("EVICT")
    if rc == 3:
        res.skipped.append("the driver cannot map host-NUMA memory: eviction is off on this machine")
    elif rc:
        res.problems.append(gpucheck.exit_problem("evict_check", rc, "40-evict/evict_check.stderr"))
    else:
        res.ran = True
    res.save()
    info = gpucheck.torch_info(python, os.path.join(work, "torch_probe.log"))
    if "skip" in info:
        res.skipped.append("PyTorch: " + info["skip"])
    elif rc != 3:
        path = os.path.join(work, "torch.json")
        env = gpucheck.clean_env({"LD_PRELOAD": gpucheck.bundle_path("bin", "libvramshim.so"),
                                  "VRAMSHIM_MODE": "arena", "PYTORCH_NO_CUDA_MEMORY_CACHING": "1"})
        trc, _, _ = gpucheck.run([python, gpucheck.bundle_path("workloads", "evict_torch.py"), path],
                                 os.path.join(work, "torch.log"), env, timeout=180)
        if trc != 0:
            res.problems.append("the PyTorch run under the shim: exit %s (see 40-evict/torch.log)" % trc)
        else:
            with open(path) as f:
                r = json.load(f)
            r.pop("status_after_demote", None)
            res.figures["torch"] = r
            res.ran = True
            if "skip" in r:
                res.skipped.append("torch: " + r["skip"])
            elif r["tag"] or r["demote"] or r["promote"]:
                res.problems.append("torch: vramshim_tag/demote/promote returned %s/%s/%s" % (
                    r["tag"], r["demote"], r["promote"]))
            elif not moved_enough(r):
                res.problems.append("torch: the demote moved %s bytes (status) / freed %s, asked %s" % (
                    r.get("demoted_bytes"), r.get("free_delta"), r.get("asked_bytes")))
            elif not (r["equal_demoted"] and r["equal_promoted"]):
                res.problems.append("torch: the matmul differs on the demoted (%s) or promoted (%s) "
                                    "tensor" % (r["equal_demoted"], r["equal_promoted"]))
    if not res.problems and not res.skipped:
        ec = res.figures["evict_check"]
        res.notes.append("demote/promote kept address and contents; bandwidth vs DtoH %sx, vs HtoD "
                         "%sx (target >= 0.8x; first demote, making its host memory: %sx); a "
                         "PyTorch matmul on a demoted tensor matches" % (
                             ec.get("demote_vs_dtoh"), ec.get("promote_vs_htod"),
                             ec.get("first_demote_vs_dtoh")))
