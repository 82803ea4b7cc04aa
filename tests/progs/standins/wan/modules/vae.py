"""Stand-in for `wan.modules.vae` of the Wan2.1 repository (Wan-Video/Wan2.1 at commit
f1f7c882d6c8f5c710ac0511856492f4e9eec39e), which is not on PyPI. It reproduces what
vramshim.decode relies on, written here from that source's behaviour:

- `WanVAE(z_dim=16, ..., dtype, device)`: `self.dtype`, `self.device`, `self.mean`/`self.std`
  (16 per-channel statistics), `self.scale = [mean, 1 / std]`, `self.model` (a `WanVAE_`);
- `WanVAE.decode(zs)`: for each CTHW latent `u` of the list, under autocast to `self.dtype`,
  `self.model.decode(u.unsqueeze(0), self.scale).float().clamp_(-1, 1).squeeze(0)`; a list back;
- `WanVAE_`: an nn.Module whose parameters carry the original Wan names (`conv2.*` for the
  post-quantisation conv, `decoder.conv1.*`, `decoder.middle.*`, `decoder.upsamples.*`,
  `decoder.head.*`), `z_dim`, and `decode(z, scale)`, which unscales `z / scale[1] + scale[0]`
  per channel and decodes causally frame by frame.

The decoder itself is diffusers' AutoencoderKLWan (the same network; diffusers converts the
original checkpoints to it), whose tensors are exposed under the original names in place."""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tools/golden")
from make_golden import to_wan_original_keys  # noqa: E402


class WanVAE_(torch.nn.Module):
    def __init__(self, diffusers_vae):
        super().__init__()
        self._vae = diffusers_vae
        self.z_dim = diffusers_vae.config.z_dim
        decoder = {k: v for k, v in diffusers_vae.named_parameters()
                   if k.startswith(("decoder.", "post_quant_conv."))}
        self._original = to_wan_original_keys(decoder, diffusers_vae.config)

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return iter(self._original.items())

    def decode(self, z, scale):
        z = z / scale[1].view(1, self.z_dim, 1, 1, 1) + scale[0].view(1, self.z_dim, 1, 1, 1)
        # diffusers clamps to [-1, 1] too; WanVAE.decode clamps again, as upstream does
        return self._vae.decode(z).sample


class WanVAE:
    def __init__(self, diffusers_vae, dtype=torch.float, device="cpu"):
        self.dtype, self.device = dtype, device
        g = torch.Generator().manual_seed(1)
        self.mean = (torch.rand(16, generator=g) * 2 - 1).to(dtype)
        self.std = (torch.rand(16, generator=g) * 2 + 1).to(dtype)
        self.scale = [self.mean, 1.0 / self.std]
        self.model = WanVAE_(diffusers_vae).eval().requires_grad_(False)

    def decode(self, zs):
        with torch.autocast("cpu", dtype=self.dtype, enabled=self.dtype != torch.float):
            return [self.model.decode(u.unsqueeze(0), self.scale).float().clamp_(-1, 1).squeeze(0)
                    for u in zs]
