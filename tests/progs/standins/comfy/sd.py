"""Stand-in for comfy.sd.VAE. Attributes the hook relies on, as ComfyUI sets them:
first_stage_model, patcher, vae_dtype, device, output_device, disable_offload,
memory_used_decode(shape, dtype), process_output (clamp((x + 1) / 2, 0, 1)),
throw_exception_if_invalid(). decode(samples_in, vae_options={}) loads the patcher
(model_management.load_models_gpu), decodes in the VAE's dtype on its device, applies
process_output in float on the output device and returns channels last (NHWC, or NTHWC for
video); decode_tiled(samples, tile_x, tile_y, overlap, tile_t, overlap_t) does the same through
cross-faded tiles (here: two overlapping halves along the width, averaged where they overlap)."""
import torch

from . import model_management


class VAE:
    def __init__(self, first_stage_model, dtype=torch.float32):
        self.first_stage_model = first_stage_model
        self.patcher = object()
        self.vae_dtype = dtype
        self.device = torch.device("cpu")
        self.output_device = torch.device("cpu")
        self.disable_offload = False
        self.memory_used_decode = lambda shape, dtype: 2178 * shape[-1] * shape[-2] * 64 * 4
        self.process_output = lambda image: torch.clamp((image + 1.0) / 2.0, min=0.0, max=1.0)

    def throw_exception_if_invalid(self):
        if self.first_stage_model is None:
            raise RuntimeError("invalid VAE")

    def _load(self, samples):
        self.throw_exception_if_invalid()
        model_management.load_models_gpu(
            [self.patcher], memory_required=self.memory_used_decode(samples.shape, self.vae_dtype),
            force_full_load=self.disable_offload)

    def _pixels(self, samples, **options):
        out = self.first_stage_model.decode(samples.to(self.vae_dtype).to(self.device), **options)
        return self.process_output(out.to(self.output_device).float())

    def decode(self, samples_in, vae_options={}):
        self._load(samples_in)
        return self._pixels(samples_in, **vae_options).movedim(1, -1)

    def decode_tiled(self, samples, tile_x=None, tile_y=None, overlap=None, tile_t=None,
                     overlap_t=None):
        self._load(samples)
        w = samples.shape[-1]
        half = w // 2 + 1
        left, right = self._pixels(samples[..., :half]), self._pixels(samples[..., w - half:])
        scale = left.shape[-1] // half
        out = torch.zeros(left.shape[:-1] + (w * scale,))
        weight = torch.zeros(w * scale)
        out[..., :half * scale] += left
        weight[:half * scale] += 1
        out[..., (w - half) * scale:] += right
        weight[(w - half) * scale:] += 1
        return (out / weight).movedim(1, -1)
