"""The stand-in models: a diffusers model's decoder tensors under the names ComfyUI's own
classes give them (LDM names for AutoencoderKL, original Wan names for WanVAE), in place
(tools/golden/make_golden.py's key maps), and decode(z) by the diffusers model."""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tools/golden")
import make_golden  # noqa: E402


class Named(torch.nn.Module):
    def __init__(self, diffusers_vae, rename):
        super().__init__()
        self._vae = diffusers_vae
        decoder = {k: v for k, v in diffusers_vae.named_parameters()
                   if k.startswith(("decoder.", "post_quant_conv."))}
        self._named = {k.removeprefix("first_stage_model."): v
                       for k, v in rename(decoder, diffusers_vae.config).items()}

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return iter(self._named.items())

    def decode(self, z):
        return self._vae.decode(z).sample

