"""30-arena (see 30-arena.sh). Peak device memory is nvidia-smi's memory.used (sampled every
10 ms) during the run minus its value just before, for every configuration (one source: it
includes the CUDA context alike); utilisation is the native run's peak allocated bytes (what the
workload needs) over that peak. The alloc+free pair through PyTorch (workloads/pair_torch.py)
runs with the native caching allocator, cudaMallocAsync and cudaMallocAsync served by the arena:
the same Python calls each time, so their ratios are the allocators'."""
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
PAIR_COST = ("native", "async", "async_arena")  # configurations timing pair_torch.py


def utilisation(demand, peak_device):
    """demand / peak device bytes, or None when either is unknown."""
    if not demand or not peak_device or peak_device <= 0:
        return None
    return round(demand / peak_device, 4)


def config_env(conf, nocache, arena):
    """The environment of one configuration."""
    extra = {}
    if conf:
        extra["PYTORCH_CUDA_ALLOC_CONF"] = conf
    if nocache:
        extra["PYTORCH_NO_CUDA_MEMORY_CACHING"] = "1"
    if arena:
        extra.update(LD_PRELOAD=shim, VRAMSHIM_MODE="arena", VRAMSHIM_LOG="info")
    return gpucheck.clean_env(extra)


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def pair_cost(res):
    """ns per alloc+free pair through PyTorch per configuration of PAIR_COST, and the ratios."""
    script = gpucheck.bundle_path("workloads", "pair_torch.py")
    ns = {}
    for name, conf, nocache, arena in CONFIGS:
        if name not in PAIR_COST:
            continue
        path = os.path.join(work, "pair_%s.json" % name)
        rc, _, _ = gpucheck.run([python, script, path], os.path.join(work, "pair_%s.log" % name),
                                config_env(conf, nocache, arena), timeout=120)
        if rc != 0:
            res.problems.append("torch pair cost %s: exit %s (see 30-arena/pair_%s.log)" % (
                name, rc, name))
            continue
        with open(path) as f:
            ns[name] = json.load(f)["pair_ns"]
    res.figures["torch_pair"] = {
        "ns": ns, "arena_vs_caching_allocator": ratio(ns.get("async_arena"), ns.get("native")),
        "arena_vs_cuMemAllocAsync": ratio(ns.get("async_arena"), ns.get("async"))}


def run_config(res, script, name, conf, nocache, arena):
    path = os.path.join(work, name + ".json")
    idle = gpucheck.device_used(os.path.join(work, name + ".idle.log"))
    with gpucheck.Sampler() as sampler:
        rc, _, err = gpucheck.run([python, script, path], os.path.join(work, name + ".log"),
                                  config_env(conf, nocache, arena), timeout=240)
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
        pair_cost(res)
    if not res.problems and not res.skipped:
        res.notes.append("PyTorch served by the arena bitwise equal to the driver; arena "
                         "stream-ordered pair %sx the driver's" % res.figures["pair"].get("async_ratio"))
