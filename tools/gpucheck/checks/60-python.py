"""60-python (see 60-python.sh)."""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.environ["BUNDLE"])
import gpucheck  # noqa: E402

work = os.environ["WORK"]
python = gpucheck.python()
cli = gpucheck.bundle_path("bin", "vramshim")
progs = gpucheck.bundle_path("python", "tests")
examples = gpucheck.bundle_path("policy", "examples")


def log(name):
    return os.path.join(work, name + ".log")


def vrun(args, prog_argv, name, extra=None, timeout=120):
    return gpucheck.run([cli, "run"] + args + ["--"] + prog_argv, log(name),
                        gpucheck.clean_env(extra), timeout)


def site_frames(trace):
    _, sites, _ = gpucheck.load_trace(trace)
    return [fr for frames in sites.values() for fr in frames]


def line_of(path, mark):
    with open(path) as f:
        for n, text in enumerate(f, 1):
            if mark in text:
                return n
    raise ValueError("%s has no %s" % (path, mark))


def holder(free, name):
    return gpucheck.Holder(python, os.path.join(progs, "py_vram_holder.py"), free, log(name))


def stages(res):
    """py_stages.py's stage lines, exit status 7 and SIGTERM through `vramshim run`."""
    with open(os.path.join(progs, "py_stages.expected")) as f:
        want = f.read() + "hook %s\n" % ("monitoring" if sys.version_info >= (3, 12) else "wrap")
    rc, out, _ = vrun(["--policy", os.path.join(progs, "py_stages.ini")],
                      [python, os.path.join(progs, "py_stages.py")], "stages",
                      {"PYTHONPATH": progs})
    res.figures["stages_ok"] = rc == 0 and out == want
    if not res.figures["stages_ok"]:
        res.problems.append("py_stages.py printed other stages (see stages.log)")
    rc, _, _ = vrun([], [python, "-c", "import sys; sys.exit(7)"], "exit7")
    if rc != 7:
        res.problems.append("exit status 7 came back as %s" % rc)
    p = subprocess.Popen([cli, "run", "--", python, "-u", "-c",
                          "import time; print('ready'); time.sleep(60)"],
                         stdout=subprocess.PIPE, text=True, env=gpucheck.clean_env())
    try:
        p.stdout.readline()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=gpucheck.bounded(30))
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "no exit within 30 s"
    if rc != 143:
        res.problems.append("SIGTERM to vramshim run: exit %s, expected 143" % rc)


def trace(res):
    """py_trace.py's Python frames on the real driver; py_deadlock.py finishes."""
    path = os.path.join(work, "py_trace.jsonl")
    prog = os.path.join(progs, "py_trace.py")
    rc, _, _ = vrun(["--mode", "passthrough", "--trace", path], [python, prog], "trace")
    if rc != 0:
        res.problems.append("py_trace.py failed (exit %s)" % rc)
    else:
        frames = set(site_frames(path))
        found = 0
        for mark, qual in (("site:held", "Model.load_holding_gil"),
                           ("site:released", "Model.load_releasing_gil"),
                           ("site:thread", "Model.load_in_thread")):
            frame = "py:%s:%d:%s" % (prog, line_of(prog, "# " + mark), qual)
            if frame in frames:
                found += 1
            else:
                res.problems.append("no trace frame %s" % frame)
        res.figures["python_frames_found"] = "%d/3" % found
    rc, out, _ = vrun(["--mode", "passthrough", "--trace", os.path.join(work, "deadlock.jsonl")],
                      [python, os.path.join(progs, "py_deadlock.py")], "deadlock", timeout=60)
    res.figures["deadlock_setup_finished"] = rc == 0 and out == "ok\n"
    if not res.figures["deadlock_setup_finished"]:
        res.problems.append("py_deadlock.py did not finish (exit %s)" % rc)


def demo(res):
    """tools/demo/python_wan.py on its 12 GB GPU (another process holds the rest)."""
    def one(args, name):
        rc, out, _ = vrun(args, [python, os.path.join(progs, "python_wan.py")], name)
        return rc, gpucheck.last_json(out) or {}

    rc_ref, ref = one(["--mode", "passthrough"], "demo_reference")
    with holder(11766 << 20, "demo_holder") as free:
        res.figures["demo_free_bytes"] = free
        rc_pass, passed = one(["--mode", "passthrough"], "demo_passthrough")
        rc_vs, vs = one(["--policy", os.path.join(examples, "wan21-t2v-1.3b-12gb.ini")],
                        "demo_vramshim")
    res.figures["demo_passthrough"] = passed.get("failed_stage") or (
        "completed" if rc_pass == 0 else rc_pass)
    res.figures["demo_vramshim"] = "completed" if rc_vs == 0 else vs.get("failed_stage", rc_vs)
    if rc_ref != 0:
        res.problems.append("the unconstrained demo run failed (exit %s)" % rc_ref)
    if rc_pass != 3:
        res.problems.append("the demo did not run out of memory in pass-through (exit %s)" % rc_pass)
    if rc_vs != 0 or vs.get("video_checksum") != ref.get("video_checksum"):
        res.problems.append("the demo under vramshim: exit %s, video %s, reference %s" % (
            rc_vs, vs.get("video_checksum"), ref.get("video_checksum")))


def torch_vae(res):
    """py_torch_vae.py: out of memory in pass-through, bit for bit under vramshim."""
    info = gpucheck.torch_info(python, log("torch_probe"))
    if "skip" in info:
        res.skipped.append("torch: " + info["skip"])
        return
    script = os.path.join(progs, "py_torch_vae.py")
    argv = [python, script, "cuda", "3072", "3584"]
    env = {"PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync"}
    rc_ref, out_ref, _ = gpucheck.run(argv, log("torch_reference"), gpucheck.clean_env(env), 180)
    path = os.path.join(work, "torch.jsonl")
    with holder(int(6.5 * (1 << 30)), "torch_holder") as free:
        res.figures["torch_free_bytes"] = free
        _, out_pass, _ = gpucheck.run(argv, log("torch_passthrough"), gpucheck.clean_env(env), 180)
        rc_vs, out_vs, _ = vrun(["--policy", os.path.join(progs, "py_torch_vae.ini"),
                                 "--trace", path], argv, "torch_vramshim", env, 180)
    res.figures["torch_passthrough"] = out_pass.strip()
    res.figures["torch_bitwise_equal"] = rc_vs == 0 and rc_ref == 0 and out_vs == out_ref
    if out_pass.strip() != "oom decode":
        res.problems.append("torch pass-through: expected 'oom decode', got %r" % out_pass.strip())
    if not res.figures["torch_bitwise_equal"]:
        res.problems.append("torch under vramshim: %r (exit %s), reference %r" % (
            out_vs.strip(), rc_vs, out_ref.strip()))
    elif not any(f.startswith("py:%s:" % script) and f.endswith(":VAE.decode")
                 for f in site_frames(path)):
        res.problems.append("the torch trace has no py:%s:LINE:VAE.decode frame" % script)


with gpucheck.Result("python") as res:
    res.figures["python"] = "%d.%d.%d" % sys.version_info[:3]
    for part in (stages, trace, demo, torch_vae):
        try:
            part(res)
        except (OSError, ValueError, RuntimeError) as e:
            res.problems.append("%s: %s" % (part.__name__, e))
        res.ran = True
        res.save()
    if not res.problems:
        res.notes.append("all Python checks passed")
