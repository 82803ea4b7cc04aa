"""20-interpose (see 20-interpose.sh)."""
import json
import os
import sys

sys.path.insert(0, os.environ["BUNDLE"])
import gpucheck  # noqa: E402

work = os.environ["WORK"]
shim = gpucheck.bundle_path("bin", "libvramshim.so")
python = gpucheck.python()

# What each traced call is recorded as.
ALLOC_EVENTS = {"cuMemAlloc_v2": "alloc", "cuMemAllocPitch_v2": "alloc", "cuMemAllocAsync": "alloc",
                "cuMemAllocAsync_ptsz": "alloc", "cuMemAllocFromPoolAsync": "alloc",
                "cuMemAllocFromPoolAsync_ptsz": "alloc", "cuMemCreate": "create", "cuMemMap": "map",
                "cuMemUnmap": "unmap", "cuMemRelease": "release"}
PROGRAMS = [("interpose_direct_linked", {}), ("interpose_cudart_like", {}), ("interpose_dlsym", {}),
            ("interpose_ptsz_linked", {}), ("interpose_threads_linked", {"VS_SECONDS": "2"})]
ASYNC_APIS = ("cuMemAllocAsync", "cuMemAllocAsync_ptsz", "cuMemAllocFromPoolAsync",
              "cuMemAllocFromPoolAsync_ptsz")
# name, PYTORCH_CUDA_ALLOC_CONF
CONFIGS = [("native", None), ("expandable", "expandable_segments:True"),
           ("async", "backend:cudaMallocAsync")]


def shim_env(extra, mode, trace=None):
    env = gpucheck.clean_env(dict(extra, LD_PRELOAD=shim, VRAMSHIM_MODE=mode))
    if trace:
        env["VRAMSHIM_TRACE"] = trace
    return env


def called(stdout):
    """The test programs' "called API N" lines."""
    calls = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "called" and parts[2].isdigit():
            calls[parts[1]] = int(parts[2])
    return calls


def check_program(prog, extra):
    path = gpucheck.bundle_path("bin", prog)
    if not os.access(path, os.X_OK):
        return "missing from the bundle"
    trace = os.path.join(work, prog + ".jsonl")
    rc_plain, out_plain, _ = gpucheck.run([path], os.path.join(work, prog + ".plain.log"),
                                          gpucheck.clean_env(extra), timeout=60)
    rc, out, _ = gpucheck.run([path], os.path.join(work, prog + ".shim.log"),
                              shim_env(extra, "passthrough", trace), timeout=60)
    if rc_plain != 0 or rc != 0:
        return "exit %s without the shim, %s with it" % (rc_plain, rc)
    # The threads program's call counts depend on timing; the others' output must match exactly.
    if prog != "interpose_threads_linked" and out_plain != out:
        return "output differs under the shim"
    _, _, events = gpucheck.load_trace(trace)
    bad = []
    for api, n in called(out).items():
        ev = ALLOC_EVENTS.get(api)
        seen = sum(1 for e in events if e.get("ev") == ev and e.get("api") == api) if ev else n
        if seen != n:
            bad.append("%s %d calls, %d traced" % (api, n, seen))
    os.remove(trace)
    return "; ".join(bad) or None


def torch_figures(name, stats, sites, events):
    """Trace against memory_stats for one allocator in pass-through: (figures, agrees)."""
    mine = [e for e in events if any("libc10_cuda" in f for f in sites.get(e.get("site"), []))]
    count = lambda ev, apis: sum(1 for e in mine if e.get("ev") == ev and e.get("api") in apis)
    fig = {"events": len(events), "c10_events": len(mine)}
    if name == "native":
        # The caching allocator's segments are its cudaMalloc calls (cuMemAlloc_v2).
        fig["traced_allocs"] = count("alloc", ("cuMemAlloc_v2",))
        fig["traced_bytes"] = sum(e.get("size", 0) for e in mine if e.get("ev") == "alloc")
        pairs = [("traced_allocs", "num_device_alloc"), ("traced_bytes", "reserved_bytes.all.allocated")]
    elif name == "async":
        # One cudaMallocAsync per tensor; this backend keeps only byte counters.
        fig["traced_allocs"] = count("alloc", ASYNC_APIS)
        pairs = [("traced_allocs", "allocation.all.allocated")]
    else:
        # Expandable segments map physical chunks into reserved ranges.
        fig["traced_creates"] = count("create", ("cuMemCreate",))
        fig["traced_mapped_bytes"] = sum(e.get("size", 0) for e in mine if e.get("ev") == "map")
        pairs = [("traced_mapped_bytes", "reserved_bytes.all.allocated")]
    agrees = any(fig[k] for k, _ in pairs)
    for traced, counter in pairs:
        verdict = gpucheck.compare_counter(fig[traced], stats.get(counter))
        fig[counter] = stats.get(counter) if verdict != "untracked" else "untracked"
        agrees = agrees and verdict != "differ"
    return fig, agrees


def check_torch(res):
    info = gpucheck.torch_info(python, os.path.join(work, "torch_probe.log"))
    res.figures["torch"] = info
    if "skip" in info:
        res.skipped.append("PyTorch: " + info["skip"])
        return
    script = gpucheck.bundle_path("workloads", "interpose_torch.py")
    ok = 0
    for name, conf in CONFIGS:
        extra = {}
        if conf:
            extra["PYTORCH_CUDA_ALLOC_CONF"] = conf
        fig = res.figures.setdefault("torch_" + name, {})
        results = {}
        for mode, env in (("plain", gpucheck.clean_env(extra)),
                          ("passthrough", shim_env(extra, "passthrough",
                                                   os.path.join(work, name + ".jsonl"))),
                          ("arena", shim_env(extra, "arena"))):
            path = os.path.join(work, "%s.%s.json" % (name, mode))
            rc, _, _ = gpucheck.run([python, script, path], path[:-5] + ".log", env, timeout=180)
            if rc != 0:
                res.problems.append("torch %s %s: exit %s (see 20-interpose/%s.%s.log)" % (
                    name, mode, rc, name, mode))
                continue
            with open(path) as f:
                results[mode] = json.load(f)
            fig["backend_" + mode] = results[mode].get("backend")
            res.ran = True
        res.save()
        if "plain" not in results:
            continue
        good = True
        for mode in ("passthrough", "arena"):
            if mode in results and results[mode]["outputs"] != results["plain"]["outputs"]:
                good = False
                res.problems.append("torch %s %s: outputs differ from the run without the shim" % (
                    name, mode))
        if "passthrough" in results:
            try:
                _, sites, events = gpucheck.load_trace(os.path.join(work, name + ".jsonl"))
            except (OSError, ValueError) as e:
                res.problems.append("torch %s: %s" % (name, e))
                continue
            counts, agrees = torch_figures(name, results["passthrough"]["stats"], sites, events)
            fig.update(counts)
            os.remove(os.path.join(work, name + ".jsonl"))
            if not agrees:
                good = False
                res.problems.append("torch %s: trace and memory_stats disagree (%s)" % (
                    name, json.dumps(counts)))
        ok += good and len(results) == 3
    res.figures["torch_configs_ok"] = "%d/%d" % (ok, len(CONFIGS))


with gpucheck.Result("interpose") as res:
    ok = 0
    for prog, extra in PROGRAMS:
        try:
            problem = check_program(prog, extra)
        except (OSError, ValueError) as e:
            problem = str(e)
        if problem:
            res.problems.append("%s: %s" % (prog, problem))
        else:
            ok += 1
        res.ran = True
        res.figures["programs_ok"] = "%d/%d" % (ok, len(PROGRAMS))
        res.save()
    check_torch(res)
    if not res.problems and not res.skipped:
        res.notes.append("programs and PyTorch (3 allocators, pass-through and arena) identical "
                         "under the shim, traces agree")
