"""Stand-in for the stock VAE Decode nodes of ComfyUI's nodes.py (tests only), as of mid-2025
(v0.3.4x). VAEDecode.decode(vae, samples) calls vae.decode(samples["samples"]) and flattens
video frames into one image batch; VAEDecodeTiled.decode(vae, samples, tile_size, overlap,
temporal_size, temporal_overlap) calls vae.decode_tiled with the sizes divided by the VAE's
compression (8 here: spatial_compression_decode() of an SD or Wan VAE) and flattens likewise."""


def _flatten(images):
    return images.reshape(-1, *images.shape[-3:]) if images.dim() == 5 else images


class VAEDecode:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"

    def decode(self, vae, samples):
        return (_flatten(vae.decode(samples["samples"])),)


class VAEDecodeTiled:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"

    def decode(self, vae, samples, tile_size, overlap=64, temporal_size=64, temporal_overlap=8):
        compression = 8
        return (_flatten(vae.decode_tiled(
            samples["samples"], tile_x=tile_size // compression, tile_y=tile_size // compression,
            overlap=overlap // compression, tile_t=temporal_size,
            overlap_t=temporal_overlap)),)


NODE_CLASS_MAPPINGS = {"VAEDecode": VAEDecode, "VAEDecodeTiled": VAEDecodeTiled}
