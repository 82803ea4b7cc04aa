"""Stand-in for ComfyUI's `comfy` package (tests only), following comfyanonymous/ComfyUI's
comfy/sd.py as of mid-2025 (the `VAE.decode(samples_in, vae_options={})` /
`decode_tiled(samples, tile_x, tile_y, overlap, tile_t, overlap_t)` signatures, with
`force_full_load=self.disable_offload`). Only what vramshim.decode relies on: see sd.py."""
