#!/bin/bash
# The arena on the real driver. Writes $OUT/30-arena.json.
#  1. Without the hooks (bin/arena_pair_cost): data round trips through arena blocks (a size-class
#     object, a large block, a block stitched from scattered free granules) and the alloc+free pair
#     cost against cuMemAllocAsync/cuMemFreeAsync and cuMemAlloc/cuMemFree, in the same run.
#  2. Unmodified PyTorch served by the arena through the shim (VRAMSHIM_MODE=arena), with
#     PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync (every tensor a cuMemAllocAsync) and with
#     PYTORCH_NO_CUDA_MEMORY_CACHING=1 (every tensor a cuMemAlloc_v2): outputs bitwise equal to the
#     same configuration without the shim, and tensors really in arena memory. Side by side on the
#     same workloads in the same run: PyTorch's native caching allocator and expandable segments
#     (no shim): peak device memory (nvidia-smi, sampled every 10 ms, minus what the process used
#     right after CUDA initialisation), utilisation (torch's peak allocated bytes / that peak) and
#     wall time of the timed iterations.
# Skips (with the reason) what cannot run: no python3, no torch, no CUDA in torch, no nvidia-smi
# sampling (then peaks are left out, the rest still runs).
set -u
. "$BUNDLE/check-lib.sh"
check_begin 30-arena
pair_bin="$BUNDLE/bin/arena_pair_cost"
pair='{}'
pair_rc=127
if [ -x "$pair_bin" ]; then
  pair=$("$pair_bin" 2>"$work/arena_pair_cost.stderr")
  pair_rc=$?
  case "$pair" in \{*\}) ;; *) pair='{}' ;; esac
fi
if ! have_python3; then
  if [ "$pair_rc" -eq 0 ]; then st=pass; else st=fail; fi
  check_result arena "$st" "{\"pair\":$pair}" \
    "arena_pair_cost exit $pair_rc; python3 missing: PyTorch part skipped"
  exit 0
fi
PAIR="$pair" PAIR_RC="$pair_rc" WORK="$work" JSON="$json" python3 - <<'PY'
import json, os, subprocess, sys, threading, time

bundle, work, out_json = os.environ["BUNDLE"], os.environ["WORK"], os.environ["JSON"]
shim = os.path.join(bundle, "bin", "libvramshim.so")
figures, problems, skipped = {}, [], []

# --- 1. arena_pair_cost ---------------------------------------------------------------------------
pair_rc = int(os.environ["PAIR_RC"])
try:
    figures["pair"] = json.loads(os.environ["PAIR"])
except ValueError:
    figures["pair"] = {}
if pair_rc == 127:
    skipped.append("arena_pair_cost missing from the bundle")
elif pair_rc != 0:
    problems.append("arena_pair_cost exited %d (see 30-arena/arena_pair_cost.stderr)" % pair_rc)

# --- 2. PyTorch -----------------------------------------------------------------------------------
WORKLOAD = r'''
import ctypes, hashlib, json, sys, time
import torch
torch.manual_seed(0)
torch.backends.cudnn.benchmark = False
torch.backends.cudnn.deterministic = True
torch.use_deterministic_algorithms(True)
dev = torch.device("cuda")
torch.cuda.init()
torch.zeros(1, device=dev)
torch.cuda.synchronize()
free0, total = torch.cuda.mem_get_info()
used_after_init = total - free0

def digest(t):
    return hashlib.sha256(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()

libcuda = ctypes.CDLL("libcuda.so.1")
def vmm_backed(t):
    """True when the tensor's memory is mapped from a cuMemCreate handle (arena, expandable)."""
    h = ctypes.c_ulonglong()
    if libcuda.cuMemRetainAllocationHandle(ctypes.byref(h), ctypes.c_void_p(t.data_ptr())) != 0:
        return False
    libcuda.cuMemRelease(h)
    return True

class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n1, self.c1 = torch.nn.GroupNorm(32, c), torch.nn.Conv2d(c, c, 3, padding=1)
        self.n2, self.c2 = torch.nn.GroupNorm(32, c), torch.nn.Conv2d(c, c, 3, padding=1)
    def forward(self, x):
        h = self.c1(torch.nn.functional.silu(self.n1(x)))
        return x + self.c2(torch.nn.functional.silu(self.n2(h)))

def decoder(ch):
    layers = [torch.nn.Conv2d(4, ch, 3, padding=1)]
    for _ in range(3):
        layers += [Block(ch), torch.nn.Upsample(scale_factor=2, mode="nearest"),
                   torch.nn.Conv2d(ch, ch, 3, padding=1)]
    layers += [torch.nn.GroupNorm(32, ch), torch.nn.SiLU(), torch.nn.Conv2d(ch, 3, 3, padding=1)]
    return torch.nn.Sequential(*layers).to(dev).eval().half()

outputs, arena_tensor = {}, None
with torch.no_grad():
    dec = decoder(256)
    # Latents of changing sizes, as a UI decoding different resolutions: the blocks freed by one
    # size do not fit the next, which is where allocators fragment.
    sizes = [(64, 64), (96, 64), (48, 112), (128, 96), (80, 80), (64, 128)]
    enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(
        512, 8, 2048, batch_first=True, dropout=0.0), 4).to(dev).eval()
    seqs = [77, 256, 1024, 333, 2048, 512]
    def step(i):
        h, w = sizes[i % len(sizes)]
        z = torch.randn(1, 4, h, w, device=dev, generator=torch.Generator(dev).manual_seed(i)).half()
        img = dec(z)
        x = torch.randn(2, seqs[i % len(seqs)], 512, device=dev, generator=torch.Generator(dev).manual_seed(100 + i))
        y = enc(x)
        return img, y
    img, y = step(0)  # warm-up (cuDNN/cuBLAS handles, workspaces)
    arena_tensor = vmm_backed(img)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(12):
        img, y = step(i)
        outputs["img%d" % i], outputs["seq%d" % i] = digest(img), digest(y)
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
stats = torch.cuda.memory_stats()
json.dump({"outputs": outputs, "wall_s": wall, "used_after_init": used_after_init,
           "peak_allocated": stats.get("allocated_bytes.all.peak"),
           "peak_reserved": stats.get("reserved_bytes.all.peak"),
           "vmm_backed": arena_tensor, "torch": torch.__version__}, open(sys.argv[1], "w"))
'''


class Sampler:
    """Peak device memory.used (bytes) while a run lasts, from nvidia-smi every 10 ms."""
    def __init__(self):
        self.peak, self.proc = None, None
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                          "-i", "0", "-lms", "10"], stdout=subprocess.PIPE, text=True)
        except OSError:
            return
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for line in self.proc.stdout:
            try:
                v = int(line.strip()) << 20
            except ValueError:
                continue
            self.peak = v if self.peak is None else max(self.peak, v)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.thread.join(timeout=5)
        return self.peak


def torch_ready():
    p = subprocess.run([sys.executable, "-c", "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 3)"],
                       capture_output=True, text=True, timeout=300)
    if p.returncode == 3:
        return "torch has no CUDA device"
    if p.returncode != 0:
        return "torch not importable (%s)" % (p.stderr.strip().splitlines() or ["?"])[-1]
    return None


# name, PYTORCH_CUDA_ALLOC_CONF, PYTORCH_NO_CUDA_MEMORY_CACHING, shim
CONFIGS = [("native", None, False, False), ("expandable", "expandable_segments:True", False, False),
           ("async", "backend:cudaMallocAsync", False, False), ("async_arena", "backend:cudaMallocAsync", False, True),
           ("nocache", None, True, False), ("nocache_arena", None, True, True)]
PAIRS = [("async_arena", "async"), ("nocache_arena", "nocache")]

reason = torch_ready()
if reason:
    skipped.append("PyTorch: " + reason)
else:
    script = os.path.join(work, "arena_workload.py")
    with open(script, "w") as f:
        f.write(WORKLOAD)
    results = {}
    for name, conf, nocache, preload in CONFIGS:
        env = dict(os.environ, CUBLAS_WORKSPACE_CONFIG=":4096:8")
        for k in ("LD_PRELOAD", "VRAMSHIM_TRACE", "PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_NO_CUDA_MEMORY_CACHING"):
            env.pop(k, None)
        if conf:
            env["PYTORCH_CUDA_ALLOC_CONF"] = conf
        if nocache:
            env["PYTORCH_NO_CUDA_MEMORY_CACHING"] = "1"
        if preload:
            env.update(LD_PRELOAD=shim, VRAMSHIM_MODE="arena", VRAMSHIM_LOG="info")
        res = os.path.join(work, name + ".json")
        sampler = Sampler()
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, script, res], env=env, capture_output=True, text=True, timeout=900)
        elapsed = time.monotonic() - t0
        peak_used = sampler.stop()
        with open(os.path.join(work, name + ".log"), "w") as f:
            f.write("--- stdout\n%s--- stderr\n%s--- exit %d\n" % (p.stdout, p.stderr, p.returncode))
        if p.returncode != 0:
            problems.append("torch %s: exit %d (see 30-arena/%s.log)" % (name, p.returncode, name))
            continue
        r = json.load(open(res))
        fig = {"wall_s": round(r["wall_s"], 4), "process_s": round(elapsed, 2),
               "peak_allocated": r["peak_allocated"], "peak_reserved": r["peak_reserved"], "vmm_backed": r["vmm_backed"]}
        if peak_used is not None:
            fig["peak_device"] = peak_used - r["used_after_init"]
            if r["peak_allocated"] and fig["peak_device"] > 0:
                fig["utilisation"] = round(r["peak_allocated"] / fig["peak_device"], 4)
        if preload:
            fallback = [l for l in p.stderr.splitlines() if "serving memory from the driver" in l]
            if fallback:
                problems.append("torch %s: the arena fell back: %s" % (name, fallback[0]))
            elif not r["vmm_backed"]:
                problems.append("torch %s: tensors are not in arena memory" % name)
            summary = [l for l in p.stderr.splitlines() if "vramshim: summary:" in l]
            if summary:
                fig["shim_summary"] = summary[-1].replace('"', "'")
        figures["torch_version"] = r["torch"]
        figures["torch_" + name] = fig
        results[name] = r
    for arena, plain in PAIRS:
        if arena in results and plain in results:
            a, b = results[arena]["outputs"], results[plain]["outputs"]
            same = a == b
            figures["bitwise_" + arena] = same
            if not same:
                problems.append("torch %s: outputs differ from %s without the shim (%s)" % (
                    arena, plain, ", ".join(k for k in b if a.get(k) != b[k])))
            wa, wb = results[arena]["wall_s"], results[plain]["wall_s"]
            figures["wall_ratio_" + arena] = round(wa / wb, 3) if wb else None
    if "native" in results and "async_arena" in results:
        figures["bitwise_async_arena_vs_native"] = results["async_arena"]["outputs"] == results["native"]["outputs"]
    if all(figures.get("torch_" + n, {}).get("peak_device") is None for n, _, _, _ in CONFIGS):
        skipped.append("no nvidia-smi samples: peak device memory not measured")

ran = pair_rc == 0 or any(k.startswith("torch_") and k != "torch_version" for k in figures)
status = "fail" if problems else ("pass" if ran else "skip")
detail = "; ".join(problems + skipped)
if not detail:
    ratio = figures["pair"].get("async_ratio")
    detail = ("PyTorch served by the arena (cudaMallocAsync backend and no caching) bitwise equal to the driver; "
              "arena stream-ordered pair %sx the driver's" % ratio)
json.dump({"name": "arena", "status": status, "figures": figures, "detail": detail.replace('"', "'")},
          open(out_json, "w"))
print(json.dumps(figures))
PY
[ -s "$json" ] || check_result arena fail '{}' "the check script failed (see 30-arena.log)"
