"""What the bundle's Python checks (checks/NN-name.py) share: bounded subprocesses, the
environment a measured run gets, JSON-line parsing, counter comparison, another process holding
GPU memory, an nvidia-smi sampler, and a result that is written after every step and whatever
happens (docs/gpu-checks.md). Standard library only: it runs where PyTorch is missing."""
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

# Settings inherited from the machine that would change what a run measures.
DROPPED_ENV = ("LD_PRELOAD", "PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_NO_CUDA_MEMORY_CACHING")


def time_left(margin=2.0):
    """Seconds before the check's deadline (VS_CHECK_DEADLINE, from run.sh), less `margin`."""
    deadline = float(os.environ.get("VS_CHECK_DEADLINE", time.time() + 600))
    return max(0.0, deadline - time.time() - margin)


def bounded(timeout):
    """`timeout` seconds, or less when the check's deadline comes first (at least 1)."""
    return max(1.0, min(timeout, time_left()))


def clean_env(extra=None, keep_vramshim=("VRAMSHIM_LOG",)):
    """os.environ without preloads, PyTorch allocator settings and vramshim settings (but
    `keep_vramshim`), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV and not (
        k.startswith("VRAMSHIM_") and k not in keep_vramshim)}
    env.update(extra or {})
    return env


def _text(data):
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def run(argv, log, env=None, timeout=300, stdin=None):
    """Runs argv for at most bounded(timeout) seconds with `env` (default clean_env()); writes
    its command, output and exit status to `log`. Returns (exit status or None when it timed out
    or could not start, stdout, stderr)."""
    limit = bounded(timeout)
    try:
        p = subprocess.run(argv, env=clean_env() if env is None else env, capture_output=True,
                           text=True, timeout=limit, stdin=stdin or subprocess.DEVNULL)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, _text(e.stdout), _text(e.stderr) + "\n(killed after %.0f s)" % limit
    except OSError as e:
        rc, out, err = None, "", "cannot run %s: %s" % (argv[0], e)
    with open(log, "w") as f:
        f.write("$ %s\n--- stdout\n%s--- stderr\n%s--- exit %s\n" % (" ".join(argv), out, err, rc))
    return rc, out, err


def json_lines(text):
    """The lines of `text` that are JSON objects, and how many others started with '{'."""
    objs, bad = [], 0
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            v = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(v, dict):
            objs.append(v)
        else:
            bad += 1
    return objs, bad


def last_json(text):
    """The last JSON-object line of `text`, or None."""
    objs, _ = json_lines(text)
    return objs[-1] if objs else None


def program_output(name):
    """What the shell half of a check passed on about a program it ran: (exit status from $NAME_RC,
    the JSON object it printed in $NAME, {} when that is not JSON). 124/137: it ran out of time."""
    try:
        figures = json.loads(os.environ.get(name, ""))
    except ValueError:
        figures = {}
    return int(os.environ.get(name + "_RC", "127")), figures if isinstance(figures, dict) else {}


def exit_problem(program, rc, log):
    """What a program's exit status (from the shell: 127 missing, 124/137 timed out) says went
    wrong, or None for 0."""
    if rc == 0:
        return None
    if rc == 127:
        return "%s missing from the bundle" % program
    if rc in (124, 137):
        return "%s did not finish in the check's time" % program
    return "%s exited %d (see %s)" % (program, rc, log)


def load_trace(path):
    """A vramshim trace: (header, {site id: frames}, events). Raises ValueError naming the file
    and line of anything that is not a JSON object, and when the header is missing."""
    header, sites, events = None, {}, []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                v = json.loads(line)
            except ValueError:
                raise ValueError("%s:%d: not JSON" % (path, n))
            if not isinstance(v, dict):
                raise ValueError("%s:%d: not a JSON object" % (path, n))
            if header is None:
                if v.get("vramshim_trace") != 1:
                    raise ValueError("%s:1: no trace header" % path)
                header = v
            elif v.get("ev") == "site":
                sites[v.get("site")] = v.get("frames") or []
            else:
                events.append(v)
    if header is None:
        raise ValueError("%s: empty trace" % path)
    return header, sites, events


def compare_counter(traced, reported):
    """A trace count against PyTorch's counter: "untracked" when PyTorch does not keep it (None,
    or 0 while the trace saw calls: the cudaMallocAsync backend fills only byte counters),
    "equal" or "differ"."""
    if reported is None or (reported == 0 and traced):
        return "untracked"
    return "equal" if traced == reported else "differ"


class Result:
    """The check's result file, written after every save() and, in any case, when the `with`
    block ends (SIGTERM included): an exception becomes a problem ("the check script raised
    ...") instead of a lost check. status: fail with problems, else skip when nothing ran, else
    pass."""

    def __init__(self, name, path=None):
        self.name, self.path = name, path or os.environ["JSON"]
        self.figures, self.problems, self.skipped, self.notes = {}, [], [], []
        self.ran = False

    def status(self):
        if self.problems:
            return "fail"
        return "pass" if self.ran else "skip"

    def save(self):
        detail = "; ".join(self.problems + self.skipped + self.notes) or "ok"
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"name": self.name, "status": self.status(), "figures": self.figures,
                       "detail": detail}, f, default=str)
            f.write("\n")
        os.replace(tmp, self.path)

    def __enter__(self):
        # run.sh stops a check past its time with SIGTERM: leave through __exit__, which writes.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None and not issubclass(kind, SystemExit):
            self.problems.append("the check script raised %s: %s" % (kind.__name__, value))
        self.save()
        return kind is not None and not issubclass(kind, SystemExit)


class Holder:
    """Another process holding device memory so that about `free` bytes stay free, as on a shared
    GPU; used as `with Holder(...) as free_now:`. Start and stop are bounded in time."""

    def __init__(self, python, script, free, log, start_timeout=120):
        self.argv = [python, script, str(free)]
        self.log, self.start_timeout, self.p = log, start_timeout, None

    def __enter__(self):
        self.err = open(self.log, "w")
        self.p = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, env=clean_env())
        ready, _, _ = select.select([self.p.stdout], [], [], bounded(self.start_timeout))
        words = self.p.stdout.readline().split() if ready else []
        if len(words) != 2 or words[0] != "ready":
            self.__exit__(None, None, None)
            raise RuntimeError("the memory holder did not start (see %s)" % self.log)
        return int(words[1])

    def __exit__(self, *exc):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()
        self.err.close()
        return False


def device_used(log):
    """Device 0's memory.used in bytes now, from nvidia-smi; None without it."""
    rc, out, _ = run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                      "-i", "0"], log, timeout=30)
    try:
        return int(out.split()[0]) << 20 if rc == 0 else None
    except (IndexError, ValueError):
        return None


class Sampler:
    """Peak device memory.used (bytes) while a run lasts, from `nvidia-smi -lms 10`; peak() is
    None without nvidia-smi or without samples. Always stop() it (it is a context manager)."""

    def __init__(self, interval_ms=10):
        self.max, self.proc, self.thread = None, None, None
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                 "-i", "0", "-lms", str(interval_ms)], stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True)
        except OSError:
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                v = int(line.strip()) << 20
            except ValueError:
                continue
            self.max = v if self.max is None else max(self.max, v)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.thread:
            self.thread.join(timeout=5)
        return self.max

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def torch_info(python, log):
    """PyTorch as `python` sees it: {"torch", "cuda", "available"} or {"skip": reason}."""
    rc, out, err = run([python, "-c", "import json, torch; print(json.dumps({'torch': "
                        "torch.__version__, 'cuda': torch.version.cuda, 'available': "
                        "torch.cuda.is_available()}))"], log, timeout=120)
    info = last_json(out)
    if rc is None:
        return {"skip": "importing torch did not finish in time"}
    if rc != 0 or info is None:
        return {"skip": "torch not importable (%s)" % ((err.strip().splitlines() or ["?"])[-1])}
    if not info.get("available"):
        return dict(info, skip="torch %s has no CUDA device" % info.get("torch"))
    return info


def bundle_path(*parts):
    return os.path.join(os.environ["BUNDLE"], *parts)


def python():
    return os.environ.get("VS_PYTHON") or sys.executable
