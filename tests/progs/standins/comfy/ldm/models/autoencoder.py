"""Stand-in for comfy.ldm.models.autoencoder.AutoencoderKL: parameters decoder.* (LDM names)
and post_quant_conv.*; decode(z) takes unscaled latents."""
from .._named import Named, make_golden


class AutoencoderKL(Named):
    def __init__(self, diffusers_vae):
        super().__init__(diffusers_vae, make_golden.to_ldm_keys)
