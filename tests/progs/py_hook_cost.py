"""What the Python auto-hook costs, measured in one run against the same program without it:
`python3 py_hook_cost.py VRAMSHIM_CLI` (the simulated driver's directory on LD_LIBRARY_PATH).
Runs itself twice, plain and under `vramshim run` with a policy that matches one function, and
prints per measurement the time without and with the hook and the ratio:
  - a call of a function the policy does not match (the common case),
  - a call of the function it matches (stage begin + end in the shim),
  - importing a set of standard library modules (the wrapper hook scans each new module).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

CALLS = 1_000_000
MODULES = ["asyncio", "email.mime.multipart", "http.server", "xml.dom.minidom", "decimal",
           "unittest", "argparse", "logging.handlers", "concurrent.futures", "sqlite3"]
POLICY = "[stage decode]\nmatch = Measured.decode\n"


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


def measure():
    t0 = time.perf_counter()
    for m in MODULES:
        __import__(m)
    imports_ms = (time.perf_counter() - t0) * 1e3
    m = Measured()
    print(json.dumps({"unmatched_ns": per_call(m.other, CALLS),
                      "matched_ns": per_call(m.decode, CALLS // 10),
                      "imports_ms": imports_ms}))


def main():
    cli = sys.argv[1]
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
        f.write(POLICY)
    try:
        me = [sys.executable, os.path.abspath(__file__), "--measure"]
        plain = json.loads(subprocess.check_output(me))
        hooked = json.loads(subprocess.check_output(
            [cli, "run", "--policy", f.name, "--"] + me, stderr=subprocess.DEVNULL))
    finally:
        os.unlink(f.name)
    print("Python %d.%d, hook: %s" % (sys.version_info[0], sys.version_info[1],
                                     "sys.monitoring" if sys.version_info >= (3, 12)
                                     else "function wrappers"))
    for key, what in (("unmatched_ns", "call, function not matched (ns)"),
                      ("matched_ns", "call, matched: stage begin+end (ns)"),
                      ("imports_ms", "import %d stdlib modules (ms)" % len(MODULES))):
        print("%-40s %9.1f -> %9.1f  x%.2f" % (what, plain[key], hooked[key],
                                              hooked[key] / plain[key]))


if __name__ == "__main__":
    measure() if sys.argv[1:] == ["--measure"] else main()
