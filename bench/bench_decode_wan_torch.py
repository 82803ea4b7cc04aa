"""The bundled decoder's CPU path on a Wan 2.1 VAE against PyTorch's own CPU decode, in one run
(issue 11): `python bench_decode_wan_torch.py VRAMSHIM_CLI` (bench/run.sh runs it with each test
environment; it measures under Python 3.11 only, the figure does not depend on the interpreter).
diffusers' AutoencoderKLWan in its Wan 2.1 configuration (base_dim 96, dim_mult 1, 2, 4, 4, random
weights), a 16 x 3 x 32 x 32 latent -> 9 frames of 256x256, both on as many threads as the library
uses (all CPUs): diffusers' decode, then vramshim.decode.decode (exact, one tile), the best of two
runs each by CPU time (bench/_torch_bench.py); prints wall and process CPU time of each side, both
ratios and the max-abs difference. VS_BENCH_WAN_LATENT=T,H,W changes the latent's frames and
size."""
import os

import _torch_bench

threads = _torch_bench.start()
import torch  # noqa: E402
from diffusers import AutoencoderKLWan  # noqa: E402

t, h, w = (int(v) for v in os.environ.get("VS_BENCH_WAN_LATENT", "3,32,32").split(","))
vae = AutoencoderKLWan(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                       temperal_downsample=[False, True, True]).eval()
z = torch.randn(1, 16, t, h, w)
print("Wan 2.1 VAE decoder, latent 16x%dx%dx%d -> %d frames of %dx%d, %d threads, load %.2f:" % (
    t, h, w, 1 + 4 * (t - 1), 8 * h, 8 * w, threads, os.getloadavg()[0]))
_torch_bench.compare(vae, z)
