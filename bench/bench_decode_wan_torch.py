"""The bundled decoder's CPU path on a Wan 2.1 VAE against PyTorch's own CPU decode, in one run
(issue 11): `python bench_decode_wan_torch.py VRAMSHIM_CLI` (bench/run.sh runs it with each test
environment; it measures under Python 3.11 only, the figure does not depend on the interpreter).
diffusers' AutoencoderKLWan in its Wan 2.1 configuration (base_dim 96, dim_mult 1, 2, 4, 4, random
weights), a 16 x 3 x 32 x 32 latent -> 9 frames of 256x256, both on as many threads as the library
uses (all CPUs): diffusers' decode, then vramshim.decode.decode (exact, one tile), the best of two
runs each by wall time; prints wall and process CPU time of each side, both ratios and the max-abs
difference. VS_BENCH_WAN_LATENT=T,H,W changes the latent's frames and size."""
import os
import sys
import time

if sys.version_info[:2] != (3, 11):
    print("skipped: measured once, under Python 3.11")
    sys.exit(0)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402
from diffusers import AutoencoderKLWan  # noqa: E402

import vramshim.decode as vd  # noqa: E402

t, h, w = (int(v) for v in os.environ.get("VS_BENCH_WAN_LATENT", "3,32,32").split(","))
threads = os.cpu_count()  # the library's default (kernels/cpu/parallel.c)
torch.set_num_threads(threads)
torch.manual_seed(0)
vae = AutoencoderKLWan(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                       temperal_downsample=[False, True, True]).eval()
z = torch.randn(1, 16, t, h, w)


def best(f):
    """(wall s, process CPU s) of the faster of two runs, and its output."""
    runs, out = [], None
    for _ in range(2):
        wall, cpu = time.perf_counter(), time.process_time()
        out = f()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs), out


with torch.no_grad():
    (w_torch, c_torch), want = best(lambda: vae.decode(z).sample)
    (w_ours, c_ours), got = best(lambda: vd.decode(vae, z, budget="64GiB"))
print("Wan 2.1 VAE decoder, latent 16x%dx%dx%d -> %d frames of %dx%d, %d threads, load %.2f:" % (
    t, h, w, 1 + 4 * (t - 1), 8 * h, 8 * w, threads, os.getloadavg()[0]))
print("  PyTorch %s  wall %.2f s  CPU %.2f s" % (torch.__version__, w_torch, c_torch))
print("  vramshim CPU  wall %.2f s  CPU %.2f s  (wall x%.2f, CPU x%.2f PyTorch)  max-abs %.2g" % (
    w_ours, c_ours, w_ours / w_torch, c_ours / c_torch, (got - want).abs().max().item()))
