"""ComfyUI custom node "VAE Decode (vramshim)": link this folder into ComfyUI/custom_nodes/
(`ln -s /path/to/vramshim/integrations/comfyui ComfyUI/custom_nodes/vramshim`).

The node decodes like the stock VAE Decode, with the bundled tiled decoder in place of the
VAE's own decode (docs/hooks.md): `mode` exact or blend, `budget` its working memory ("2GiB";
empty: the device's free memory less a margin). Whatever the decoder cannot take runs ComfyUI's
own decode after one `vramshim:` line.

The stock VAE Decode nodes go through the same decoder when the setting "vramshim > Decode >
Substitute in the stock VAE Decode nodes" is exact or blend (registered by web/vramshim.js,
read from ComfyUI's settings file at load and for every prompt: vramshim.comfyui), or when
ComfyUI runs under `vramshim run --decode exact -- python main.py`.

vramshim's Python package is taken from the environment (`pip install ./python`), else from
beside this folder: ../python in a `make install` tree (PREFIX/lib/vramshim/comfyui), else
../../python in the checkout (integrations/comfyui)."""
import os
import sys

try:
    import vramshim.decode as _decode
except ImportError:
    _here = os.path.dirname(os.path.abspath(__file__))
    _beside = [os.path.normpath(os.path.join(_here, *up, "python")) for up in (("..",),
                                                                             ("..", ".."))]
    _found = [p for p in _beside if os.path.isfile(os.path.join(p, "vramshim", "decode.py"))]
    if not _found:
        raise ImportError("vramshim: the vramshim Python package is neither installed (pip "
                          "install /path/to/vramshim/python) nor in %s" % " or ".join(_beside))
    sys.path.append(_found[0])
    import vramshim.decode as _decode
from vramshim import comfyui as _comfyui


class VAEDecodeVramshim:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "samples": ("LATENT",),
            "vae": ("VAE",),
            "mode": (list(_decode.MODES), {"default": "exact"}),
            "budget": ("STRING", {"default": "", "tooltip": "working memory, e.g. 2GiB; "
                                  "empty: free device memory less a margin"}),
        }}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"
    CATEGORY = "latent"
    DESCRIPTION = "VAE Decode through vramshim's tiled decoder: exact under a memory budget."

    def decode(self, vae, samples, mode="exact", budget=""):
        with _decode.install(mode, budget.strip() or None):
            images = vae.decode(samples["samples"])
        if images.dim() == 5:  # video: frames of every batch item as one image batch
            images = images.reshape(-1, *images.shape[-3:])
        return (images,)


NODE_CLASS_MAPPINGS = {"VAEDecodeVramshim": VAEDecodeVramshim}
NODE_DISPLAY_NAME_MAPPINGS = {"VAEDecodeVramshim": "VAE Decode (vramshim)"}
WEB_DIRECTORY = "./web"

stock_decode = _comfyui.attach()
