"""The bundled decoder's CPU path against PyTorch's own CPU decode, in one run (issue 11):
`python bench_decode_torch.py VRAMSHIM_CLI` (bench/run.sh runs it with each test environment;
it measures under Python 3.11 only, the figure does not depend on the interpreter). An
AutoencoderKL with SDXL's decoder widths (128, 256, 512, 512; random weights), 64x64 latents
-> 512x512, both on as many threads as the library uses (all CPUs): diffusers' decode, then
vramshim.decode.decode (exact, one tile), the best of two runs each; prints the wall times, the
CPU times (process CPU seconds over all threads: the issue's target, at most 1.2x PyTorch's, is on
CPU time at the same thread count, which other load on the machine inflates less than wall
time), their ratios and the max-abs difference."""
import os
import sys
import time

if sys.version_info[:2] != (3, 11):
    print("skipped: measured once, under Python 3.11")
    sys.exit(0)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402
from diffusers import AutoencoderKL  # noqa: E402

import vramshim.decode as vd  # noqa: E402

threads = os.cpu_count()  # the library's default (kernels/cpu/parallel.c)
torch.set_num_threads(threads)
torch.manual_seed(0)
vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                    norm_num_groups=32, latent_channels=4,
                    down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4).eval()
z = torch.randn(1, 4, 64, 64)


def best(f):
    """(wall s, CPU s, output) of the run with the least CPU time, of two"""
    runs, out = [], None
    for _ in range(2):
        wall, cpu = time.perf_counter(), time.process_time()
        out = f()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall, cpu = min(runs, key=lambda r: r[1])
    return wall, cpu, out


with torch.no_grad():
    w_torch, c_torch, want = best(lambda: vae.decode(z).sample)
    w_ours, c_ours, got = best(lambda: vd.decode(vae, z, budget="64GiB"))
print("SDXL-width decoder, latent 64x64 -> 512x512, %d threads:" % threads)
print("  PyTorch %s  wall %.2f s  CPU %.2f s" % (torch.__version__, w_torch, c_torch))
print("  vramshim CPU  wall %.2f s (x%.2f PyTorch)  CPU %.2f s (x%.2f PyTorch)  max-abs %.2g" % (
    w_ours, w_ours / w_torch, c_ours, c_ours / c_torch, (got - want).abs().max().item()))
