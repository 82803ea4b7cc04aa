"""30-arena (see 30-arena.sh). Peak device memory is nvidia-smi's memory.used (sampled every
10 ms) during the run minus its value just before, for every configuration (one source: it
includes the CUDA context alike); utilisation is the native run's peak allocated bytes (what the
workload needs) over that peak."""
import json
import os
import sys

sys.path.insert(0, os.environ["BUNDLE"])
import gpucheck  # noqa: E402

work = os.environ["WORK"]
shim = gpucheck.bundle_path("bin", "libvramshim.so")
python = gpucheck.python()

# name, PYTORCH_CUDA_ALLOC_CONF, PYTORCH_NO_CUDA_MEMORY_CACHING, under the arena
CONFIGS = [("native", None, False, False), ("expandable", "expandable_segments:True", False, False),
           ("async", "backend:cudaMallocAsync", False, False),
           ("async_arena", "backend:cudaMallocAsync", False, True),
           ("nocache", None, True, False), ("nocache_arena", None, True, True)]
PAIRS = [("async_arena", "async"), ("nocache_arena", "nocache")]


def utilisation(demand, peak_device):
    """demand / peak device bytes, or None when either is unknown."""
    if not demand or not peak_device or peak_device <= 0:
        return None
    return round(demand / peak_device, 4)


def run_config(res, script, name, conf, nocache, arena):
    extra = {}
    if conf:
        extra["PYTORCH_CUDA_ALLOC_CONF"] = conf
    if nocache:
        extra["PYTORCH_NO_CUDA_MEMORY_CACHING"] = "1"
    if arena:
        extra.update(LD_PRELOAD=shim, VRAMSHIM_MODE="arena", VRAMSHIM_LOG="info")
    path = os.path.join(work, name + ".json")
    idle = gpucheck.device_used(os.path.join(work, name + ".idle.log"))
    with gpucheck.Sampler() as sampler:
        rc, _, err = gpucheck.run([python, script, path], os.path.join(work, name + ".log"),
                                  gpucheck.clean_env(extra), timeout=240)
    if rc != 0:
        res.problems.append("torch %s: exit %s (see 30-arena/%s.log)" % (name, rc, name))
        return None
    with open(path) as f:
        r = json.load(f)
    fig = {"backend": r.get("backend"), "wall_s": round(r["wall_s"], 4),
           "peak_allocated": r["peak_allocated"], "vmm_backed": r["vmm_backed"]}
    if sampler.max is not None and idle is not None:
        fig["peak_device"] = sampler.max - idle
    if arena:
        fallback = [l for l in err.splitlines() if "serving memory from the driver" in l]
        if fallback:
            res.problems.append("torch %s: the arena fell back: %s" % (name, fallback[0]))
        elif not r["vmm_backed"]:
            res.problems.append("torch %s: tensors are not in arena memory" % name)
        summary = [l for l in err.splitlines() if "vramshim: summary:" in l]
        if summary:
            fig["shim_summary"] = summary[-1]
    res.figures["torch_" + name] = fig
    res.figures["torch_version"] = r.get("torch")
    return r


with gpucheck.Result("arena") as res:
    pair_rc, res.figures["pair"] = gpucheck.program_output("PAIR")
    problem = gpucheck.exit_problem("arena_pair_cost", pair_rc, "30-arena/arena_pair_cost.stderr")
    if problem:
        res.problems.append(problem)
    res.ran = True
    sanitizer = os.environ.get("SANITIZER_RC")
    res.figures["memcheck_exit"] = int(sanitizer) if sanitizer else "not run"
    if not sanitizer:
        res.skipped.append("compute-sanitizer not found or no time: memcheck not run")
    elif sanitizer in ("124", "137"):
        res.skipped.append("compute-sanitizer memcheck did not finish in its time")
    elif sanitizer != "0":
        res.problems.append("arena_pair_cost under compute-sanitizer memcheck: exit %s (see "
                            "30-arena/memcheck.log)" % sanitizer)
    res.save()
    info = gpucheck.torch_info(python, os.path.join(work, "torch_probe.log"))
    if "skip" in info:
        res.skipped.append("PyTorch: " + info["skip"])
    else:
        script = gpucheck.bundle_path("workloads", "arena_torch.py")
        results = {}
        for name, conf, nocache, arena in CONFIGS:
            r = run_config(res, script, name, conf, nocache, arena)
            if r:
                results[name] = r
            res.save()
        demand = results.get("native", {}).get("peak_allocated")
        res.figures["demand_bytes"] = demand
        for name, _, _, _ in CONFIGS:
            fig = res.figures.get("torch_" + name)
            if fig:
                fig["utilisation"] = utilisation(demand, fig.get("peak_device"))
        for arena, plain in PAIRS:
            if arena in results and plain in results:
                a, b = results[arena]["outputs"], results[plain]["outputs"]
                res.figures["bitwise_" + arena] = a == b
                if a != b:
                    res.problems.append("torch %s: outputs differ from %s without the shim (%s)" % (
                        arena, plain, ", ".join(k for k in b if a.get(k) != b[k])))
                wa, wb = results[arena]["wall_s"], results[plain]["wall_s"]
                res.figures["wall_ratio_" + arena] = round(wa / wb, 3) if wb else None
        if all(res.figures.get("torch_" + n, {}).get("peak_device") is None for n, _, _, _ in CONFIGS):
            res.skipped.append("no nvidia-smi samples: peak device memory not measured")
    if not res.problems and not res.skipped:
        res.notes.append("PyTorch served by the arena bitwise equal to the driver; arena "
                         "stream-ordered pair %sx the driver's" % res.figures["pair"].get("async_ratio"))
