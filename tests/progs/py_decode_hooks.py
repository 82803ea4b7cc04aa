"""Cases of tests/test_python_decode.c: `py_decode_hooks.py CASE` with python/ on PYTHONPATH and
VRAMSHIM_LOG=info. Real diffusers models with small random weights decode on the CPU with and
without vramshim.decode; each case raises on a mismatch and prints one line per check."""
import sys

import torch
from diffusers import AutoencoderKL, AutoencoderKLWan

import vramshim.decode as vd

TOL = 1e-4


def kl(latent_channels=4, dtype=torch.float32, widths=(8, 16), groups=8, **config):
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=widths, norm_num_groups=groups, layers_per_block=1,
                        latent_channels=latent_channels,
                        down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, **config)
    return vae.eval() if dtype is torch.float32 else vae.eval().to(dtype)


def wan():
    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=4, z_dim=16).eval()


def wan22():
    """tools/golden/make_golden.py's wan22_small: Wan 2.2's layout (residual up blocks, patch 2,
    16x) at decoder widths [16, 16, 16, 8, 4]."""
    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=8, decoder_base_dim=4, z_dim=8, is_residual=True,
                            patch_size=2, in_channels=12, out_channels=12,
                            scale_factor_spatial=16, scale_factor_temporal=4,
                            temperal_downsample=[False, True, True]).eval()


def compare(name, got, want, tol=TOL):
    err = (got.float() - want.float()).abs().max().item()
    if got.shape != want.shape or got.dtype != want.dtype or got.device != want.device:
        raise AssertionError("%s: %s %s %s, original %s %s %s" % (
            name, tuple(got.shape), got.dtype, got.device, tuple(want.shape), want.dtype,
            want.device))
    if not err <= tol:
        raise AssertionError("%s: max-abs %.3g above %g" % (name, err, tol))
    print("%s max-abs below %g" % (name, tol))


# (name, model, latents shape, budget forcing several tiles)
KL_CONFIGS = [
    ("sd 4ch post_quant_conv", lambda: kl(4), (1, 4, 32, 24), "400KiB"),
    ("flux 16ch no post_quant_conv shift", lambda: kl(
        16, use_quant_conv=False, use_post_quant_conv=False, scaling_factor=0.3611,
        shift_factor=0.1159), (2, 16, 32, 24), "400KiB"),
    ("sd3 16ch post_quant_conv shift", lambda: kl(16, scaling_factor=1.5305,
                                                  shift_factor=0.0609), (1, 16, 24, 32),
     "400KiB"),
]


def case_exact():
    for name, make, shape, budget in KL_CONFIGS:
        vae = make()
        z = torch.randn(shape)
        with torch.no_grad():
            want = vae.decode(z).sample
            with vd.install("exact", budget):
                out = vae.decode(z)
                tup = vae.decode(z, return_dict=False)
                vae.enable_tiling()
                vae.tile_sample_min_size, vae.tile_latent_min_size = 32, 16
                vae.enable_slicing()
                tiled = vae.decode(z).sample
        assert type(out).__name__ == "DecoderOutput" and isinstance(tup, tuple) \
            and len(tup) == 1, (type(out), type(tup))
        compare(name, out.sample, want)
        compare(name + " return_dict=False", tup[0], want)
        compare(name + " after enable_tiling and enable_slicing", tiled, want)


def case_bf16():
    vae = kl(4, torch.bfloat16)
    ref = kl(4).float()
    ref.load_state_dict({k: v.float() for k, v in vae.state_dict().items()})
    z = torch.randn(1, 4, 32, 24).bfloat16()
    with torch.no_grad():
        want = ref.decode(z.float()).sample.bfloat16()
        with vd.install("exact", "400KiB"):
            out = vae.decode(z).sample
    # fp32 compute on bf16 weights: the fp32 decode rounded to bf16, within one bf16 step of 2.
    compare("sd 4ch bf16 against fp32 compute", out, want, tol=2 ** -6)


def case_wan():
    vae = wan()
    z = torch.randn(1, 16, 3, 6, 8)
    with torch.no_grad():
        want = vae.decode(z).sample
        with vd.install("exact", "700KiB"):
            out = vae.decode(z).sample
            vae.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=32)
            tiled = vae.decode(z, return_dict=False)[0]
    compare("wan2.1 small", out, want)
    compare("wan2.1 small after enable_tiling", tiled, want)


def case_wan22():
    vae = wan22()
    z = torch.randn(1, 8, 3, 6, 8)
    with torch.no_grad():
        want = vae.decode(z).sample
        with vd.install("exact", "1MiB"):
            out = vae.decode(z).sample
            vae.enable_tiling(tile_sample_min_height=64, tile_sample_min_width=64,
                              tile_sample_stride_height=48, tile_sample_stride_width=48)
            tiled = vae.decode(z, return_dict=False)[0]
    assert want.shape == (1, 3, 9, 96, 128), want.shape  # 3 * patch^2 channels unpatchified
    compare("wan2.2 small", out, want)
    compare("wan2.2 small after enable_tiling", tiled, want)


def case_direct():
    vae = kl(4)
    z = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        compare("decode() direct", vd.decode(vae, z, budget="300KiB"), vae.decode(z).sample)
    try:
        vd.decode(torch.nn.Linear(2, 2), z)
    except vd.Unsupported as e:
        print("direct refused: %s" % e)


def case_identity():
    originals = {c: c.__dict__["decode"] for c in (AutoencoderKL, AutoencoderKLWan)}
    outer = vd.install()
    with vd.install("blend", "1GiB"):
        assert all(c.__dict__["decode"] is not f for c, f in originals.items())
    assert all(c.__dict__["decode"] is not f for c, f in originals.items()), "inner remove"
    outer.remove()
    outer.remove()
    assert all(c.__dict__["decode"] is f for c, f in originals.items()), "not restored"
    print("install/remove restore the original methods")


def case_fallback():
    vae = kl(4, act_fn="gelu")
    z = torch.randn(1, 4, 8, 8)
    with torch.no_grad(), vd.install():
        for _ in range(2):
            compare("gelu falls back", vae.decode(z).sample, vae.decode.__wrapped__(vae, z).sample,
                    tol=0)
        with vd.install("exact", 1000):
            compare("too small a budget falls back", kl(4).decode(z).sample,
                    kl(4).decode.__wrapped__(kl(4), z).sample, tol=0)


def case_wan_repo():
    """The Wan2.1 repository's WanVAE.decode, on its stand-in (tests/progs/standins)."""
    sys.path.insert(0, __file__.rsplit("/", 1)[0] + "/standins")
    from wan.modules import vae as wan_vae
    original = wan_vae.WanVAE.__dict__["decode"]
    vae = wan_vae.WanVAE(wan())
    zs = [torch.randn(16, 3, 6, 8), torch.randn(16, 2, 4, 4)]
    with torch.no_grad():
        want = vae.decode(zs)
        with vd.install("exact", "700KiB"):
            got = vae.decode(zs)
    assert wan_vae.WanVAE.__dict__["decode"] is original, "not restored"
    assert isinstance(got, list) and len(got) == 2
    for i in range(2):
        compare("Wan2.1 WanVAE.decode video %d" % i, got[i], want[i])


def case_comfy():
    """ComfyUI's VAE.decode and decode_tiled on its stand-in (tests/progs/standins/comfy)."""
    sys.path.insert(0, __file__.rsplit("/", 1)[0] + "/standins")
    from comfy import model_management, sd
    from comfy.ldm.models.autoencoder import AutoencoderKL as LdmKL
    from comfy.ldm.wan.vae import WanVAE
    originals = {m: sd.VAE.__dict__[m] for m in ("decode", "decode_tiled")}
    # ComfyUI's LDM decoder normalises in 32 groups
    cases = [("ldm AutoencoderKL", LdmKL(kl(4, widths=(32, 32), groups=32)),
              torch.randn(2, 4, 32, 24)),
             ("ldm AutoencoderKL flux", LdmKL(kl(16, widths=(32, 32), groups=32,
                                                 use_quant_conv=False,
                                                 use_post_quant_conv=False)),
              torch.randn(1, 16, 24, 32)),
             ("WanVAE", WanVAE(wan()), torch.randn(1, 16, 3, 6, 8))]
    for name, model, z in cases:
        vae = sd.VAE(model)
        with torch.no_grad():
            want = vae.decode(z)
            with vd.install("exact", "700KiB"):
                got = vae.decode(z)
                tiled = vae.decode_tiled(z, tile_x=16, tile_y=16, overlap=4)
        compare("ComfyUI VAE.decode %s" % name, got, want)
        compare("ComfyUI VAE.decode_tiled %s (exact, not blended)" % name, tiled, want)
    assert all(sd.VAE.__dict__[m] is f for m, f in originals.items()), "not restored"
    assert len(model_management.calls) == 9, model_management.calls


def case_comfy_node():
    """integrations/comfyui's node on the ComfyUI stand-in."""
    import importlib.util
    here = __file__.rsplit("/", 1)[0]
    sys.path.insert(0, here + "/standins")
    from comfy import sd
    from comfy.ldm.wan.vae import WanVAE
    spec = importlib.util.spec_from_file_location(
        "vramshim_comfyui", here + "/../../integrations/comfyui/__init__.py")
    node_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(node_module)
    node = node_module.NODE_CLASS_MAPPINGS["VAEDecodeVramshim"]()
    print(node_module.NODE_DISPLAY_NAME_MAPPINGS["VAEDecodeVramshim"])
    assert node.INPUT_TYPES()["required"]["mode"][0] == ["exact", "blend"]
    original = sd.VAE.__dict__["decode"]
    vae = sd.VAE(WanVAE(wan()))
    z = torch.randn(1, 16, 3, 6, 8)
    with torch.no_grad():
        want = vae.decode(z)
        (got,) = node.decode(vae, {"samples": z}, "exact", "700KiB")
    assert sd.VAE.__dict__["decode"] is original, "not restored"
    compare("node", got, want.reshape(-1, *want.shape[-3:]))



def case_comfy_settings():
    """The stock VAE Decode nodes under the setting of integrations/comfyui (web/vramshim.js,
    vramshim.comfyui), on the ComfyUI stand-in: the settings file is read when the node loads
    and for every prompt (the server's on-prompt handlers)."""
    import importlib.util
    import json
    import os
    import shutil
    import tempfile
    here = __file__.rsplit("/", 1)[0]
    sys.path.insert(0, here + "/standins")
    import folder_paths
    import nodes
    import server
    from comfy import sd
    from comfy.ldm.wan.vae import WanVAE
    user = tempfile.mkdtemp()
    folder_paths.set_user_directory(user)
    os.makedirs(user + "/default")

    def settings(text):
        with open(user + "/default/comfy.settings.json", "w") as f:
            f.write(text)

    def prompt():
        data = {"prompt": {}, "client_id": "test"}
        assert server.PromptServer.instance.trigger_on_prompt(data) is data

    original = {m: sd.VAE.__dict__[m] for m in ("decode", "decode_tiled")}
    vae = sd.VAE(WanVAE(wan()))
    z = torch.randn(1, 16, 3, 6, 8)
    with torch.no_grad():
        want = vae.decode(z).reshape(-1, 48, 64, 3)
        settings(json.dumps({"Comfy.UseNewMenu": "Top", "vramshim.SubstituteStockDecode": "exact",
                             "vramshim.StockDecodeBudget": "2MiB"}))
        spec = importlib.util.spec_from_file_location(
            "vramshim_comfyui", here + "/../../integrations/comfyui/__init__.py")
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        (got,) = nodes.VAEDecode().decode(vae, {"samples": z})
        compare("setting exact: stock VAEDecode", got, want)
        (got,) = nodes.VAEDecodeTiled().decode(vae, {"samples": z}, 128, 32)
        compare("setting exact: stock VAEDecodeTiled (exact, not blended)", got, want)
        # off, then malformed files and fields: ComfyUI's own methods, unchanged output
        for text in ('{"vramshim.SubstituteStockDecode": "off"}',
                     '{"vramshim.SubstituteStockDecode": "exakt"}',
                     '{"vramshim.SubstituteStockDecode": "exact",',
                     '["vramshim.SubstituteStockDecode"]',
                     '{"vramshim.SubstituteStockDecode": "exact", '
                     '"vramshim.StockDecodeBudget": "2GB"}'):
            settings(text)
            prompt()
            prompt()  # the same state again: no second line
            assert all(sd.VAE.__dict__[m] is f for m, f in original.items()), text
            (got,) = nodes.VAEDecode().decode(vae, {"samples": z})
            compare("setting %s: stock VAEDecode unchanged" % text, got, want, tol=0)
        # vramshim run --decode takes precedence over the setting
        os.environ["VRAMSHIM_DECODE"] = "exact"
        settings('{"vramshim.SubstituteStockDecode": "blend"}')
        prompt()
        assert all(sd.VAE.__dict__[m] is f for m, f in original.items()), "precedence"
    shutil.rmtree(user)


CASES = {name[5:]: f for name, f in list(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
