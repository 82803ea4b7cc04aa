"""Stand-in for comfy.ldm.wan.vae.WanVAE: parameters conv2.* and decoder.* (original Wan 2.1
names, as in wan_2.1_vae.safetensors); decode(z) takes unscaled NCTHW latents."""
from .._named import Named, make_golden


class WanVAE(Named):
    def __init__(self, diffusers_vae):
        super().__init__(diffusers_vae, make_golden.to_wan_original_keys)
