#!/usr/bin/env python3
"""Benchmark of the decoder against PyTorch on one GPU (70-decode.sh runs it; it also runs by
hand): diffusers' AutoencoderKL (SDXL and Flux.1 widths) and AutoencoderKLWan (Wan 2.1), random
weights (seeded) at the real widths, the same weights saved to a safetensors file for
libvramshim_vae.so, the same random latents, fp32 on both sides (the library computes in fp32).

For each case: time and peak device memory of
  torch_mono   vae.decode
  torch_tiled  vae.enable_tiling(); vae.decode
  vs_mono      libvramshim_vae monolithic, device pointers, PyTorch's stream
  vs_tiled     libvramshim_vae exact tiled within --budget-frac of torch_mono's peak
and the ratios against torch_mono. Peaks are the growth of torch.cuda.max_memory_allocated over
what was allocated before the decode: the library gets its working memory from PyTorch's
caching allocator (the API's allocator callback), so both sides are counted the same way; the
library's fp32 weight copies (cudaMalloc, made at its first decode) are not in either peak, as
the module's weights are not. Times: the best of --repeat runs after one warm-up.

The library's outputs must be within 1e-3 (max-abs) of PyTorch's: the full-width models' check.
Prints one JSON object on stdout. Exit 0, 1 when a library decode failed or differed, 77 when
it cannot run (the reason on stderr: no torch,
no GPU, diffusers not importable even from the bundled wheels)."""
import argparse
import ctypes as C
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time


def skip(why):
    print(f"vae_bench: skipped: {why}", file=sys.stderr)
    sys.exit(77)


def installed(dist):
    try:
        importlib.metadata.distribution(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def ensure_diffusers(wheels, target):
    """Imports diffusers, first from the environment, else from the bundle's wheels installed
    (without an index) into target: only the wheels whose package is missing and that fit this
    interpreter."""
    try:
        return importlib.import_module("diffusers")
    except ImportError as e:
        first = e
    if not wheels or not os.path.isdir(wheels):
        skip(f"diffusers not importable ({first}) and no bundled wheels")
    os.makedirs(target, exist_ok=True)
    for whl in sorted(os.listdir(wheels)):
        if not whl.endswith(".whl") or installed(whl.split("-")[0]):
            continue  # the environment's own copy wins (torch may have imported it already)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps",
                            "--quiet", "--target", target, os.path.join(wheels, whl)],
                           capture_output=True, text=True)
        if r.returncode:  # built for another Python or platform: the environment may have it
            print(f"vae_bench: {whl} not installed: {r.stderr.strip().splitlines()[-1:]}",
                  file=sys.stderr)
    sys.path.insert(0, target)
    try:
        return importlib.import_module("diffusers")
    except ImportError as e:
        skip(f"diffusers not importable from the bundled wheels either: {e}")


class Allocator(C.Structure):
    _fields_ = [("alloc", C.CFUNCTYPE(C.c_void_p, C.c_void_p, C.c_size_t, C.c_void_p)),
                ("free", C.CFUNCTYPE(None, C.c_void_p, C.c_void_p, C.c_void_p)),
                ("ctx", C.c_void_p)]


class DecodeArgs(C.Structure):  # vramshim_vae_decode_args
    _fields_ = [("latents", C.c_void_p), ("latents_dtype", C.c_int), ("out", C.c_void_p),
                ("out_dtype", C.c_int), ("ndim", C.c_int), ("shape", C.c_int64 * 5),
                ("mode", C.c_int), ("tile_px", C.c_int), ("budget", C.c_size_t),
                ("scaled", C.c_int), ("stream", C.c_void_p),
                ("allocator", C.POINTER(Allocator)), ("device", C.c_int)]


class Plan(C.Structure):  # vramshim_vae_plan
    _fields_ = [("mode", C.c_int), ("tiles_y", C.c_int), ("tiles_x", C.c_int),
                ("tile_h", C.c_int), ("tile_w", C.c_int), ("halo_px", C.c_int),
                ("predicted_peak", C.c_size_t), ("predicted_parked", C.c_size_t),
                ("measured_peak", C.c_size_t), ("description", C.c_char * 320)]


EXACT, MONOLITHIC = 0, 2
MAX_ABS_VS_TORCH = 1e-3


class Library:
    def __init__(self, path, torch):
        self.torch = torch
        self.lib = C.CDLL(path)
        self.lib.vramshim_vae_open_file.argtypes = [C.c_char_p, C.c_int,
                                                    C.POINTER(C.c_void_p), C.c_char_p, C.c_size_t]
        self.lib.vramshim_vae_decode.argtypes = [C.c_void_p, C.POINTER(DecodeArgs),
                                                 C.POINTER(Plan), C.c_char_p, C.c_size_t]
        self.lib.vramshim_vae_close.argtypes = [C.c_void_p]
        self.lib.vramshim_vae_gpu_status.argtypes = [C.c_char_p, C.c_size_t]
        msg = C.create_string_buffer(1024)
        if self.lib.vramshim_vae_gpu_status(msg, 1024):
            skip(f"libvramshim_vae has no GPU: {msg.value.decode()}")
        self.gpu_status = msg.value.decode()
        # working memory from PyTorch's caching allocator, on the decode's stream
        dev = torch.cuda.current_device()

        def alloc(_ctx, nbytes, stream):
            try:
                return torch.cuda.caching_allocator_alloc(nbytes, dev, stream)
            except RuntimeError:
                return None

        def free(_ctx, p, _stream):
            torch.cuda.caching_allocator_delete(p)

        self.allocator = Allocator(Allocator._fields_[0][1](alloc), Allocator._fields_[1][1](free),
                                   None)

    def open(self, path):
        h, msg = C.c_void_p(), C.create_string_buffer(1024)
        if self.lib.vramshim_vae_open_file(path.encode(), 0, C.byref(h), msg, 1024):
            raise RuntimeError(msg.value.decode())
        return h

    def decode(self, h, lat, out, mode, budget):
        a = DecodeArgs(latents=lat.data_ptr(), out=out.data_ptr(), ndim=lat.dim(), mode=mode,
                       budget=budget,
                       stream=self.torch.cuda.current_stream().cuda_stream,
                       allocator=C.pointer(self.allocator))
        for i, s in enumerate(lat.shape):
            a.shape[i] = s
        plan, msg = Plan(), C.create_string_buffer(1024)
        if self.lib.vramshim_vae_decode(h, C.byref(a), C.byref(plan), msg, 1024):
            raise RuntimeError(msg.value.decode())
        return plan


def measure(torch, fn, repeat):
    """(best seconds, peak bytes above the allocation before the call, result of the last run)"""
    fn()  # warm-up: cuDNN autotuning, the library's weight upload
    torch.cuda.synchronize()
    best, peak, out = float("inf"), 0, None
    for _ in range(repeat):
        out = None
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, torch.cuda.max_memory_allocated() - base)
    return best, peak, out


def make_model(diffusers, torch, case):
    torch.manual_seed(0)
    kl = dict(in_channels=3, out_channels=3, layers_per_block=2, norm_num_groups=32,
              block_out_channels=(128, 256, 512, 512), act_fn="silu",
              down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4)
    if case == "sdxl":
        return diffusers.AutoencoderKL(latent_channels=4, scaling_factor=0.13025, **kl), 4, 8
    if case == "flux":
        return diffusers.AutoencoderKL(latent_channels=16, scaling_factor=0.3611,
                                       shift_factor=0.1159, use_quant_conv=False,
                                       use_post_quant_conv=False, **kl), 16, 8
    return diffusers.AutoencoderKLWan(), 16, 8  # the default config is Wan 2.1's


def run_case(args, diffusers, torch, lib, case, width, height, frames):
    from safetensors.torch import save_file
    model, zc, scale = make_model(diffusers, torch, case)
    model = model.to("cuda", torch.float32).eval()
    path = os.path.join(args.work, f"{case}.safetensors")
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(model.config).items()}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path,
              metadata={"config": json.dumps(cfg, default=str)})
    h, w = height // scale, width // scale
    if case == "wan21":
        t = (frames - 1) // 4 + 1
        lat = torch.randn(1, zc, t, h, w, device="cuda")
        out_shape = (1, 3, 1 + 4 * (t - 1), height, width)
    else:
        lat = torch.randn(1, zc, h, w, device="cuda")
        out_shape = (1, 3, height, width)
    r = {"case": case, "width": width, "height": height, "dtype": "fp32"}
    if case == "wan21":
        r["frames"] = out_shape[2]
    with torch.no_grad():
        r["torch_mono_s"], r["torch_mono_peak"], ref = measure(
            torch, lambda: model.decode(lat).sample, args.repeat)
        model.enable_tiling()
        r["torch_tiled_s"], r["torch_tiled_peak"], tiled = measure(
            torch, lambda: model.decode(lat).sample, args.repeat)
        model.disable_tiling()
        r["torch_tiled_max_abs_vs_mono"] = float((tiled - ref).abs().max())
        del tiled
    handle = lib.open(path)
    try:
        out = torch.empty(out_shape, device="cuda")
        for name, mode, budget in (("vs_mono", MONOLITHIC, 0),
                                   ("vs_tiled", EXACT, int(r["torch_mono_peak"] * args.budget_frac))):
            plans = []
            r[f"{name}_s"], r[f"{name}_peak"], _ = measure(
                torch, lambda: plans.append(lib.decode(handle, lat, out, mode, budget)), args.repeat)
            r[f"{name}_plan"] = plans[-1].description.decode()
            r[f"{name}_measured_working"] = plans[-1].measured_peak
            r[f"{name}_max_abs_vs_torch"] = float((out.clamp(-1, 1) - ref.clamp(-1, 1)).abs().max())
        r["vs_tiled_budget"] = int(r["torch_mono_peak"] * args.budget_frac)
    except RuntimeError as e:
        r["vs_error"] = str(e)
    finally:
        lib.lib.vramshim_vae_close(handle)
    for k in ("torch_tiled", "vs_mono", "vs_tiled"):
        if f"{k}_s" in r:
            r[f"{k}_time_over_torch_mono"] = r[f"{k}_s"] / r["torch_mono_s"]
            r[f"{k}_peak_over_torch_mono"] = r[f"{k}_peak"] / max(r["torch_mono_peak"], 1)
    del model, lat, ref
    torch.cuda.empty_cache()
    os.unlink(path)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True, help="libvramshim_vae.so")
    ap.add_argument("--work", required=True, help="scratch directory (model files)")
    ap.add_argument("--wheels", help="directory of wheels to install diffusers from")
    ap.add_argument("--cases", default="sdxl:1024x1024,flux:1024x1024,wan21:832x480x17,"
                    "wan21:1280x720x17", help="CASE:WxH[xFRAMES],...")
    ap.add_argument("--budget-frac", type=float, default=0.3,
                    help="vs_tiled's budget as a fraction of torch_mono's peak (default 0.3)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    try:
        torch = importlib.import_module("torch")
    except ImportError as e:
        skip(f"no torch ({e})")
    if not torch.cuda.is_available():
        skip("torch sees no GPU")
    diffusers = ensure_diffusers(args.wheels, os.path.join(args.work, "pydeps"))
    torch.backends.cudnn.allow_tf32 = False  # fp32 on both sides, as the library
    torch.backends.cuda.matmul.allow_tf32 = False
    lib = Library(args.lib, torch)
    results = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
               "diffusers": diffusers.__version__, "library": lib.gpu_status, "cases": []}
    for spec in args.cases.split(","):
        case, dims = spec.split(":")
        d = [int(x) for x in dims.split("x")]
        try:
            results["cases"].append(run_case(args, diffusers, torch, lib, case, d[0], d[1],
                                             d[2] if len(d) > 2 else 1))
        except torch.cuda.OutOfMemoryError as e:
            results["cases"].append({"case": spec, "error": f"out of memory: {e}"})
            torch.cuda.empty_cache()
    print(json.dumps(results))
    # the same function: the library's decodes against PyTorch's (fp32, no TF32, outputs in
    # [-1, 1]); a library error or a larger difference fails the check
    bad = [f"{r['case']}: {k} = {r[k]:.3g}" for r in results["cases"] for k in r
           if k.endswith("_max_abs_vs_torch") and not r[k] <= MAX_ABS_VS_TORCH]
    bad += [f"{r['case']}: {r['vs_error']}" for r in results["cases"] if "vs_error" in r]
    for line in bad:
        print(f"vae_bench: {line}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
