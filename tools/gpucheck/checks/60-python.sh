#!/bin/bash
# Python programs under `vramshim run` on the real driver, with the GPU machine's python3 (3.12+:
# the sys.monitoring auto-hook, which the development machine's 3.11 cannot run). Writes
# $OUT/60-python.json.
#  1. stages: tests/progs/py_stages.py under its policy prints exactly py_stages.expected
#     (stage entry/exit from function entry and exit, exceptions, generators, recursion, classes
#     and modules defined later, vramshim.stage); exit status 7 and SIGTERM (143) come through.
#  2. trace: py_trace.py's allocations (ctypes.PyDLL keeping the GIL, ctypes.CDLL releasing it,
#     a second thread) carry their py:FILE:LINE:QUALNAME frames; py_deadlock.py (an allocation
#     under a lock that a GIL holder waits for) finishes.
#  3. demo: tools/demo/python_wan.py with another process holding all but 11766 MiB (its seed's
#     12 GB GPU): out of memory in pass-through, completes under vramshim with
#     policy/examples/wan21-t2v-1.3b-12gb.ini with the video checksum of an unconstrained run.
#  4. torch (skipped without PyTorch with CUDA): py_torch_vae.py loads a 3 GiB "diffusion
#     model" with 6.5 GiB left free, then VAE.decode needs 3.5 GiB: out of memory in
#     pass-through, completes under vramshim (policy py_torch_vae.ini) with the output of an
#     unconstrained run bit for bit, and the trace shows the script's Python frames.
set -u
. "$BUNDLE/check-lib.sh"
check_begin 60-python
if ! have_python3; then
  check_result python skip '{}' "python3 missing"
  exit 0
fi
BUNDLE="$BUNDLE" WORK="$work" JSON="$json" python3 - <<'PY'
import json, os, signal, subprocess, sys, time

bundle, work, out_json = os.environ["BUNDLE"], os.environ["WORK"], os.environ["JSON"]
cli = os.path.join(bundle, "bin", "vramshim")
progs = os.path.join(bundle, "python", "tests")
examples = os.path.join(bundle, "policy", "examples")
figures = {"python": "%d.%d.%d" % sys.version_info[:3]}
problems, skipped = [], []


def env_of(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRAMSHIM_") and k not in (
        "LD_PRELOAD", "PYTORCH_CUDA_ALLOC_CONF")}
    env.update(extra)
    return env


def run(argv, name, extra=None, timeout=600):
    try:
        p = subprocess.run(argv, env=env_of(extra or {}), capture_output=True, text=True,
                           timeout=timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = e.stdout or "", (e.stderr or "") + "\n(timed out)", None
        out = out.decode() if isinstance(out, bytes) else out
        err = err.decode() if isinstance(err, bytes) else err
    with open(os.path.join(work, name + ".log"), "w") as f:
        f.write("$ %s\n--- stdout\n%s--- stderr\n%s--- exit %s\n" % (" ".join(argv), out, err, rc))
    return rc, out, err


def vrun(args, prog_argv, name, extra=None, timeout=600):
    return run([cli, "run"] + args + ["--"] + prog_argv, name, extra, timeout)


def site_frames(trace):
    with open(trace) as f:
        lines = [json.loads(l) for l in f]
    return [fr for l in lines if l.get("ev") == "site" for fr in l["frames"]]


def line_of(path, mark):
    with open(path) as f:
        for n, text in enumerate(f, 1):
            if mark in text:
                return n
    raise ValueError("%s has no %s" % (path, mark))


class Holder:
    """Another process holding all but `free` bytes of the GPU while the block runs."""

    def __init__(self, free):
        self.free = free

    def __enter__(self):
        self.p = subprocess.Popen([sys.executable, os.path.join(progs, "py_vram_holder.py"),
                                   str(self.free)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env_of({}))
        line = self.p.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            raise RuntimeError("the memory holder did not start")
        return int(line[1])

    def __exit__(self, *exc):
        self.p.stdin.close()
        self.p.wait(timeout=60)


# 1. stages, exit status, signals
with open(os.path.join(progs, "py_stages.expected")) as f:
    want = f.read() + "hook %s\n" % ("monitoring" if sys.version_info >= (3, 12) else "wrap")
rc, out, err = vrun(["--policy", os.path.join(progs, "py_stages.ini")],
                    [sys.executable, os.path.join(progs, "py_stages.py")], "stages",
                    {"PYTHONPATH": progs})
figures["stages_ok"] = rc == 0 and out == want
if not figures["stages_ok"]:
    problems.append("py_stages.py printed other stages (see stages.log)")
rc, _, _ = vrun([], [sys.executable, "-c", "import sys; sys.exit(7)"], "exit7")
if rc != 7:
    problems.append("exit status 7 came back as %s" % rc)
p = subprocess.Popen([cli, "run", "--", sys.executable, "-u", "-c",
                      "import time; print('ready'); time.sleep(60)"],
                     stdout=subprocess.PIPE, text=True, env=env_of({}))
p.stdout.readline()
p.send_signal(signal.SIGTERM)
if p.wait(timeout=60) != 143:
    problems.append("SIGTERM to vramshim run: exit %s, expected 143" % p.returncode)

# 2. trace frames on the real driver, and the deadlock set-up
trace = os.path.join(work, "py_trace.jsonl")
prog = os.path.join(progs, "py_trace.py")
rc, out, err = vrun(["--mode", "passthrough", "--trace", trace], [sys.executable, prog], "trace")
if rc != 0:
    problems.append("py_trace.py failed (exit %s)" % rc)
else:
    frames = set(site_frames(trace))
    found = 0
    for mark, qual in (("site:held", "Model.load_holding_gil"),
                       ("site:released", "Model.load_releasing_gil"),
                       ("site:thread", "Model.load_in_thread")):
        frame = "py:%s:%d:%s" % (prog, line_of(prog, "# " + mark), qual)
        if frame in frames:
            found += 1
        else:
            problems.append("no trace frame %s" % frame)
    figures["python_frames_found"] = "%d/3" % found
rc, out, err = vrun(["--mode", "passthrough", "--trace", os.path.join(work, "deadlock.jsonl")],
                    [sys.executable, os.path.join(progs, "py_deadlock.py")], "deadlock",
                    timeout=120)
figures["deadlock_setup_finished"] = rc == 0 and out == "ok\n"
if not figures["deadlock_setup_finished"]:
    problems.append("py_deadlock.py did not finish (exit %s)" % rc)


# 3. the Python demo generator on its seed's 12 GB GPU
def demo(args, name):
    rc, out, err = vrun(args, [sys.executable, os.path.join(progs, "python_wan.py")], name)
    lines = out.strip().splitlines()
    return rc, json.loads(lines[-1]) if lines else {}


rc_ref, ref = demo(["--mode", "passthrough"], "demo_reference")
with Holder(11766 << 20) as free:
    figures["demo_free_bytes"] = free
    rc_pass, passed = demo(["--mode", "passthrough"], "demo_passthrough")
    rc_vs, vs = demo(["--policy", os.path.join(examples, "wan21-t2v-1.3b-12gb.ini")], "demo_vramshim")
figures["demo_passthrough"] = passed.get("failed_stage") or ("completed" if rc_pass == 0 else rc_pass)
figures["demo_vramshim"] = "completed" if rc_vs == 0 else vs.get("failed_stage", rc_vs)
if rc_ref != 0:
    problems.append("the unconstrained demo run failed (exit %s)" % rc_ref)
if rc_pass != 3:
    problems.append("the demo did not run out of memory in pass-through (exit %s)" % rc_pass)
if rc_vs != 0 or vs.get("video_checksum") != ref.get("video_checksum"):
    problems.append("the demo under vramshim: exit %s, video %s, reference %s" % (
        rc_vs, vs.get("video_checksum"), ref.get("video_checksum")))

# 4. PyTorch
probe = run([sys.executable, "-c", "import torch; assert torch.cuda.is_available()"], "torch_probe")
if probe[0] != 0:
    skipped.append("torch: no PyTorch with CUDA")
else:
    script = os.path.join(progs, "py_torch_vae.py")
    argv = [sys.executable, script, "cuda", "3072", "3584"]
    torch_env = {"PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync"}
    rc_ref, out_ref, _ = run(argv, "torch_reference", torch_env)
    trace = os.path.join(work, "torch.jsonl")
    with Holder(int(6.5 * (1 << 30))) as free:
        figures["torch_free_bytes"] = free
        rc_pass, out_pass, _ = run(argv, "torch_passthrough", torch_env)
        rc_vs, out_vs, _ = vrun(["--policy", os.path.join(progs, "py_torch_vae.ini"),
                                 "--trace", trace], argv, "torch_vramshim")
    figures["torch_passthrough"] = out_pass.strip()
    figures["torch_bitwise_equal"] = rc_vs == 0 and rc_ref == 0 and out_vs == out_ref
    if out_pass.strip() != "oom decode":
        problems.append("torch pass-through: expected 'oom decode', got %r" % out_pass.strip())
    if not figures["torch_bitwise_equal"]:
        problems.append("torch under vramshim: %r (exit %s), reference %r" % (
            out_vs.strip(), rc_vs, out_ref.strip()))
    elif not any(f.startswith("py:%s:" % script) and f.endswith(":VAE.decode")
                 for f in site_frames(trace)):
        problems.append("the torch trace has no py:%s:LINE:VAE.decode frame" % script)

status = "fail" if problems else "pass"
detail = "; ".join(problems) if problems else "all Python checks passed" + (
    " (skipped: %s)" % ", ".join(skipped) if skipped else "")
with open(out_json, "w") as f:
    json.dump({"name": "python", "status": status, "figures": figures, "detail": detail}, f)
    f.write("\n")
PY
