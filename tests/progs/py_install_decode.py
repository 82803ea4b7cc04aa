"""For tests/test_python_install.c: decodes a small random-weight diffusers AutoencoderKL through
the vramshim package as installed (`make install` or `pip install ./python`) and prints where
the package and libvramshim_vae.so were loaded from.

    py_install_decode.py direct   vramshim.decode.decode() against the original decode
    py_install_decode.py hooked   under `vramshim run --decode exact`: vae.decode() substituted
"""
import os
import sys

import torch
from diffusers import AutoencoderKL

import vramshim
import vramshim.decode as vd

torch.manual_seed(0)
vae = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=8, layers_per_block=1,
                    down_block_types=("DownEncoderBlock2D",) * 2,
                    up_block_types=("UpDecoderBlock2D",) * 2).eval()
z = torch.randn(1, 4, 16, 16)
with torch.no_grad():
    if sys.argv[1] == "direct":
        want, got = vae.decode(z).sample, vd.decode(vae, z, budget="300KiB")
    else:
        assert hasattr(AutoencoderKL.decode, "__vramshim_original__"), "not substituted"
        want, got = AutoencoderKL.decode.__wrapped__(vae, z).sample, vae.decode(z).sample
err = (got - want).abs().max().item()
assert got.shape == want.shape and err <= 1e-4, (got.shape, want.shape, err)
print("package", os.path.dirname(os.path.abspath(vramshim.__file__)))
with open("/proc/self/maps") as maps:
    print("library", *sorted({line.split()[-1] for line in maps
                              if line.rstrip().endswith("/libvramshim_vae.so")}))
print("decode max-abs below 0.0001")
