"""What the Python auto-hook costs, measured in one run against the same program without it:
`python bench_python_hook.py VRAMSHIM_CLI` (the simulated driver's directory on
LD_LIBRARY_PATH; bench/run.sh runs it with each test environment of tools/pyenv.sh). Runs
itself plain and under `vramshim run` with the README's diffusers policy plus one pattern for
the measured function, alternately, and prints per measurement the best time without and with
the hook and the ratio:
  - a call of a function the policy does not match (the common case),
  - a call of the function it matches (stage begin + end in the shim),
  - importing a set of standard library modules (the wrapper hook scans each new module; both
    hooks scan each new class),
  - importing diffusers and its StableDiffusionPipeline (torch, transformers, accelerate), when
    installed.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

CALLS = 1_000_000
ROUNDS = 3
MODULES = ["asyncio", "email.mime.multipart", "http.server", "xml.dom.minidom", "decimal",
           "unittest", "argparse", "logging.handlers", "concurrent.futures", "sqlite3"]
POLICY = """[stage load]
match = DiffusionPipeline.from_pretrained, DiffusionPipeline.to
[stage text_encode]
match = *Pipeline.encode_prompt
[stage denoise]
match = UNet2DConditionModel.forward, *Transformer2DModel.forward
[stage decode]
match = AutoencoderKL.decode, AutoencoderKLWan.decode, Measured.decode
"""


class Measured:
    def decode(self):
        pass

    def other(self):
        pass


def per_call(fn, n):
    best = None
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        dt = (time.perf_counter_ns() - t0) / n
        best = dt if best is None else min(best, dt)
    return best


def timed_import(names):
    t0 = time.perf_counter()
    for name in names:
        __import__(name)
    return (time.perf_counter() - t0) * 1e3


def measure(what):
    if what == "calls":
        m = Measured()
        result = {"unmatched_ns": per_call(m.other, CALLS),
                  "matched_ns": per_call(m.decode, CALLS // 10)}
    elif what == "stdlib":
        result = {"stdlib_ms": timed_import(MODULES)}
    else:
        t0 = time.perf_counter()
        from diffusers import StableDiffusionPipeline  # noqa: F401
        result = {"diffusers_ms": (time.perf_counter() - t0) * 1e3}
    print(json.dumps(result))


def has_diffusers():
    return subprocess.call([sys.executable, "-c", "import diffusers"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def main():
    cli = sys.argv[1]
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
        f.write(POLICY)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    best = {}
    try:
        kinds = ["calls", "stdlib"] + (["diffusers"] if has_diffusers() else [])
        for _ in range(ROUNDS):
            for kind in kinds:
                me = [sys.executable, os.path.abspath(__file__), "--measure", kind]
                for hooked, cmd in ((False, me), (True, [cli, "run", "--policy", f.name, "--"] + me)):
                    out = subprocess.check_output(cmd, env=env, stderr=subprocess.DEVNULL)
                    for key, value in json.loads(out).items():
                        slot = best.setdefault(key, [None, None])
                        slot[hooked] = value if slot[hooked] is None else min(slot[hooked], value)
    finally:
        os.unlink(f.name)
    print("Python %d.%d, hook: %s, best of %d" % (
        sys.version_info[0], sys.version_info[1],
        "sys.monitoring" if sys.version_info >= (3, 12) else "function wrappers", ROUNDS))
    for key, what in (("unmatched_ns", "call, function not matched (ns)"),
                      ("matched_ns", "call, matched: stage begin+end (ns)"),
                      ("stdlib_ms", "import %d stdlib modules (ms)" % len(MODULES)),
                      ("diffusers_ms", "import diffusers + StableDiffusionPipeline (ms)")):
        if key in best:
            plain, hooked = best[key]
            print("%-48s %9.1f -> %9.1f  x%.2f" % (what, plain, hooked, hooked / plain))
    if "diffusers_ms" not in best:
        print("(diffusers is not installed: its import is not measured)")


if __name__ == "__main__":
    measure(sys.argv[2]) if sys.argv[1:2] == ["--measure"] else main()
