#!/bin/bash
# Interposer on the real driver (pass-through mode). Writes $OUT/20-interpose.json.
#  1. The interposer's test programs (bin/interpose_*) against the real driver: the output is
#     identical with and without the shim, and the trace holds each allocation call once under the
#     exact entry point the program used (cudart-like cuGetProcAddress look-ups, direct linking,
#     dlsym, _ptsz, 8 threads).
#  2. Unmodified PyTorch under the shim for PYTORCH_CUDA_ALLOC_CONF unset,
#     expandable_segments:True and backend:cudaMallocAsync: a small model forward pass and a
#     decode-like convolution stack give bitwise the same outputs as without the shim, and the
#     trace's allocations made from libc10_cuda agree with torch.cuda.memory_stats().
# Skips (with the reason) what cannot run: no python3, no torch, no CUDA in torch.
set -u
. "$BUNDLE/check-lib.sh"
check_begin 20-interpose
if ! have_python3; then
  check_result interpose skip '{}' "python3 missing: cannot check traces"
  exit 0
fi
BUNDLE="$BUNDLE" OUT="$OUT" WORK="$work" JSON="$json" python3 - <<'PY'
import hashlib, json, os, subprocess, sys

bundle, work, out_json = os.environ["BUNDLE"], os.environ["WORK"], os.environ["JSON"]
shim = os.path.join(bundle, "bin", "libvramshim.so")
figures, problems, skipped = {}, [], []


def run(argv, preload, env_extra, name):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("VRAMSHIM_TRACE", None)
    env.update(env_extra)
    if preload:
        env["LD_PRELOAD"] = shim
        env["VRAMSHIM_MODE"] = "passthrough"
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    with open(os.path.join(work, name + ".log"), "w") as f:
        f.write("$ %s\n--- stdout\n%s--- stderr\n%s--- exit %d\n" % (" ".join(argv), p.stdout, p.stderr, p.returncode))
    return p


def load_trace(path):
    """Header, {site id: frames}, events; raises on a line that is not JSON."""
    with open(path) as f:
        lines = [json.loads(l) for l in f]
    if not lines or lines[0].get("vramshim_trace") != 1:
        raise ValueError("%s: no trace header" % path)
    sites = {l["site"]: l["frames"] for l in lines[1:] if l.get("ev") == "site"}
    events = [l for l in lines[1:] if l.get("ev") != "site"]
    return lines[0], sites, events


def called(stdout):
    calls = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "called":
            calls[parts[1]] = int(parts[2])
    return calls


# --- 1. test programs -------------------------------------------------------------------------
ALLOC_EVENTS = {"cuMemAlloc_v2": "alloc", "cuMemAllocPitch_v2": "alloc", "cuMemAllocAsync": "alloc",
                "cuMemAllocAsync_ptsz": "alloc", "cuMemAllocFromPoolAsync": "alloc",
                "cuMemAllocFromPoolAsync_ptsz": "alloc", "cuMemCreate": "create", "cuMemMap": "map",
                "cuMemUnmap": "unmap", "cuMemRelease": "release"}
PROGRAMS = [("interpose_direct_linked", {}), ("interpose_cudart_like", {}), ("interpose_dlsym", {}),
            ("interpose_ptsz_linked", {}), ("interpose_threads_linked", {"VS_SECONDS": "2"})]
progs_ok = 0
for prog, extra in PROGRAMS:
    path = os.path.join(bundle, "bin", prog)
    if not os.access(path, os.X_OK):
        problems.append("%s missing from the bundle" % prog)
        continue
    trace = os.path.join(work, prog + ".jsonl")
    plain = run([path], False, extra, prog + ".plain")
    hooked = run([path], True, dict(extra, VRAMSHIM_TRACE=trace), prog + ".shim")
    if plain.returncode != 0:
        problems.append("%s fails without the shim (exit %d)" % (prog, plain.returncode))
        continue
    if hooked.returncode != 0:
        problems.append("%s fails under the shim (exit %d)" % (prog, hooked.returncode))
        continue
    # The threads program's call counts depend on timing; the others' output must match exactly.
    if prog != "interpose_threads_linked" and plain.stdout != hooked.stdout:
        problems.append("%s: output differs under the shim" % prog)
        continue
    try:
        _, _, events = load_trace(trace)
    except (OSError, ValueError) as e:
        problems.append("%s: %s" % (prog, e))
        continue
    bad = []
    for api, n in called(hooked.stdout).items():
        ev = ALLOC_EVENTS.get(api)
        if ev:
            seen = sum(1 for e in events if e.get("ev") == ev and e.get("api") == api)
            if seen != n:
                bad.append("%s %d calls, %d traced" % (api, n, seen))
    if bad:
        problems.append("%s: %s" % (prog, "; ".join(bad)))
    else:
        progs_ok += 1
    os.remove(trace)
figures["programs_ok"] = progs_ok
figures["programs"] = len(PROGRAMS)

# --- 2. PyTorch -----------------------------------------------------------------------------------
TORCH_SCRIPT = r'''
import hashlib, json, os, sys
import torch
torch.manual_seed(0)
torch.backends.cudnn.benchmark = False
torch.backends.cudnn.deterministic = True
torch.use_deterministic_algorithms(True)
dev = torch.device("cuda")

def digest(t):
    t = t.detach().cpu().contiguous()
    try:
        raw = t.view(torch.uint8).numpy().tobytes()
    except Exception:
        raw = bytes(t.view(torch.uint8).flatten().tolist())
    return hashlib.sha256(raw).hexdigest()

class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n1, self.c1 = torch.nn.GroupNorm(32, c), torch.nn.Conv2d(c, c, 3, padding=1)
        self.n2, self.c2 = torch.nn.GroupNorm(32, c), torch.nn.Conv2d(c, c, 3, padding=1)
    def forward(self, x):
        h = self.c1(torch.nn.functional.silu(self.n1(x)))
        return x + self.c2(torch.nn.functional.silu(self.n2(h)))

outputs = {}
with torch.no_grad():
    # A small model forward pass: MLP + one transformer encoder layer.
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256),
        torch.nn.TransformerEncoderLayer(256, 4, 1024, batch_first=True, dropout=0.0)).to(dev).eval()
    x = torch.randn(8, 128, 256, device=dev)
    outputs["model"] = digest(model(x))
    # A decode-like stack: latent -> conv_in -> resblocks with 2x nearest upsampling -> RGB.
    layers = [torch.nn.Conv2d(4, 128, 3, padding=1)]
    for _ in range(3):
        layers += [Block(128), torch.nn.Upsample(scale_factor=2, mode="nearest"),
                   torch.nn.Conv2d(128, 128, 3, padding=1)]
    layers += [torch.nn.GroupNorm(32, 128), torch.nn.SiLU(), torch.nn.Conv2d(128, 3, 3, padding=1)]
    decoder = torch.nn.Sequential(*layers).to(dev).eval()
    z = torch.randn(1, 4, 64, 64, device=dev)
    for dtype in (torch.float32, torch.float16):
        outputs["decode_" + str(dtype).split(".")[1]] = digest(decoder.to(dtype)(z.to(dtype)))
    del model, decoder, x, z
torch.cuda.synchronize()
stats = {k: v for k, v in torch.cuda.memory_stats().items() if isinstance(v, (int, float))}
json.dump({"outputs": outputs, "stats": stats, "torch": torch.__version__}, open(sys.argv[1], "w"))
'''


def torch_ready():
    p = subprocess.run([sys.executable, "-c", "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 3)"],
                       capture_output=True, text=True, timeout=300)
    if p.returncode == 3:
        return "torch has no CUDA device"
    if p.returncode != 0:
        return "torch not importable (%s)" % (p.stderr.strip().splitlines() or ["?"])[-1]
    return None


def from_torch(sites, e):
    return any("libc10_cuda" in f for f in sites.get(e.get("site"), []))


CONFIGS = [("default", None), ("expandable", "expandable_segments:True"), ("async", "backend:cudaMallocAsync")]
reason = torch_ready()
if reason:
    skipped.append("PyTorch: " + reason)
else:
    script = os.path.join(work, "torch_workload.py")
    with open(script, "w") as f:
        f.write(TORCH_SCRIPT)
    torch_ok = 0
    for name, conf in CONFIGS:
        env = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
        if conf:
            env["PYTORCH_CUDA_ALLOC_CONF"] = conf
        base, shimmed = os.path.join(work, name + ".plain.json"), os.path.join(work, name + ".shim.json")
        trace = os.path.join(work, "torch_" + name + ".jsonl")
        p = run([sys.executable, script, base], False, env, "torch_" + name + ".plain")
        q = run([sys.executable, script, shimmed], True, dict(env, VRAMSHIM_TRACE=trace), "torch_" + name + ".shim")
        if p.returncode or q.returncode:
            problems.append("torch %s: exit %d without, %d with the shim" % (name, p.returncode, q.returncode))
            continue
        a, b = json.load(open(base)), json.load(open(shimmed))
        figures["torch_version"] = a["torch"]
        if a["outputs"] != b["outputs"]:
            problems.append("torch %s: outputs differ under the shim (%s)" % (name, ", ".join(
                k for k in a["outputs"] if a["outputs"][k] != b["outputs"].get(k))))
            continue
        try:
            _, sites, events = load_trace(trace)
        except (OSError, ValueError) as e:
            problems.append("torch %s: %s" % (name, e))
            continue
        mine = [e for e in events if from_torch(sites, e)]
        st = b["stats"]
        count = lambda ev, apis: sum(1 for e in mine if e["ev"] == ev and e["api"] in apis)
        fig = {"events": len(events), "c10_events": len(mine)}
        if name == "default":
            # The caching allocator's segments are its cudaMalloc calls (cuMemAlloc_v2).
            fig["traced_allocs"], fig["torch_num_device_alloc"] = count("alloc", ("cuMemAlloc_v2",)), st.get("num_device_alloc")
            fig["traced_bytes"] = sum(e["size"] for e in mine if e["ev"] == "alloc")
            fig["torch_reserved_allocated"] = st.get("reserved_bytes.all.allocated")
            # (num_device_alloc exists from torch 2.1 on; older versions are checked by bytes.)
            ok = fig["traced_allocs"] > 0 and fig["traced_bytes"] == fig["torch_reserved_allocated"] and \
                fig["torch_num_device_alloc"] in (None, fig["traced_allocs"])
        elif name == "async":
            # One cudaMallocAsync per tensor allocation.
            apis = ("cuMemAllocAsync", "cuMemAllocAsync_ptsz", "cuMemAllocFromPoolAsync", "cuMemAllocFromPoolAsync_ptsz")
            fig["traced_allocs"], fig["torch_allocations"] = count("alloc", apis), st.get("allocation.all.allocated")
            ok = fig["traced_allocs"] > 0 and fig["torch_allocations"] in (None, fig["traced_allocs"])
        else:
            # Expandable segments map physical chunks into reserved ranges: mapped bytes are
            # what torch reports as reserved.
            fig["traced_mapped_bytes"] = sum(e["size"] for e in mine if e["ev"] == "map")
            fig["traced_creates"] = count("create", ("cuMemCreate",))
            fig["torch_reserved_allocated"] = st.get("reserved_bytes.all.allocated")
            ok = fig["traced_creates"] > 0 and fig["traced_mapped_bytes"] == fig["torch_reserved_allocated"]
        figures["torch_" + name] = fig
        if ok:
            torch_ok += 1
        else:
            problems.append("torch %s: trace and memory_stats disagree (%s)" % (name, json.dumps(fig)))
        os.remove(trace)
    figures["torch_configs_ok"] = torch_ok

status = "fail" if problems else ("skip" if skipped and progs_ok == 0 else "pass")
detail = "; ".join(problems + skipped) or "programs and PyTorch (3 allocator configurations) identical under the shim, traces agree"
if not problems and skipped:
    detail = "programs ok on the real driver; " + "; ".join(skipped)
json.dump({"name": "interpose", "status": status, "figures": figures, "detail": detail.replace('"', "'")},
          open(out_json, "w"))
print(json.dumps(figures))
PY
[ -s "$json" ] || check_result interpose fail '{}' "the check script failed (see 20-interpose.log)"
