"""The bundled decoder's CPU path against PyTorch's own CPU decode, in one run (issue 11):
`python bench_decode_torch.py VRAMSHIM_CLI` (bench/run.sh runs it with each test environment;
it measures under Python 3.11 only, the figure does not depend on the interpreter). An
AutoencoderKL with SDXL's decoder widths (128, 256, 512, 512; random weights), 64x64 latents
-> 512x512, both on as many threads as the library uses (all CPUs): diffusers' decode, then
vramshim.decode.decode (exact, one tile), the best of two runs each by CPU time
(bench/_torch_bench.py); prints the wall times, the CPU times (process CPU seconds over all
threads: the issue's target, at most 1.2x PyTorch's, is on CPU time at the same thread count,
which other load on the machine inflates less than wall time), their ratios and the max-abs
difference."""
import os

import _torch_bench

threads = _torch_bench.start()
import torch  # noqa: E402
from diffusers import AutoencoderKL  # noqa: E402

vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                    norm_num_groups=32, latent_channels=4,
                    down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4).eval()
z = torch.randn(1, 4, 64, 64)
print("SDXL-width decoder, latent 64x64 -> 512x512, %d threads, load %.2f:" % (
    threads, os.getloadavg()[0]))
_torch_bench.compare(vae, z)
