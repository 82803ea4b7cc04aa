#!/usr/bin/env python3
"""Write the golden VAE-decoder cases in tests/golden/ (format: tools/golden/FORMAT.md).

The reference outputs come from diffusers itself (AutoencoderKL, AutoencoderKLWan) on the CPU in
float32, so the C decoder is checked against code no one on this project wrote. Weight values come
from "generator v1", a name-seeded counter-based generator the C tests reimplement, so the
full-width cases need no multi-hundred-MB weight files.

  python3 tools/golden/make_golden.py                 # (re)write every case
  python3 tools/golden/make_golden.py --verify        # reload and re-decode every case
  python3 tools/golden/make_golden.py --vectors       # print generator test vectors
"""
import argparse
import json
import math
import os
import sys

# The reference packages (versions: tools/golden/README.md); without them, say what to install.
REQUIREMENTS = "torch==2.15.0 diffusers==0.42.1 safetensors==0.8.0 numpy==2.4.6"
try:
    import numpy as np
    import safetensors
    import torch
    import diffusers
    from diffusers import AutoencoderKL, AutoencoderKLWan
    from diffusers.loaders.single_file_utils import (
        convert_ldm_vae_checkpoint,
        convert_wan_vae_to_diffusers,
    )
except ImportError as e:
    sys.exit("make_golden.py: the Python package '%s' is missing (%s). It needs:\n"
             "    pip install %s\n(see tools/golden/README.md)" % (
                 (e.name or "?").split(".")[0], e, REQUIREMENTS))

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
MASK64 = (1 << 64) - 1

# ---------------------------------------------------------------- generator v1

def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


def splitmix64(z):
    """Vectorised splitmix64 finaliser on a uint64 array (numpy wraps modulo 2^64)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def is_norm_scale(name):
    return name.endswith(".gamma") or ("norm" in name and name.endswith(".weight"))


def generator_v1(name, shape):
    """The generator v1 values of tensor `name` with `shape`, as float32 (FORMAT.md)."""
    k = int(np.prod(shape, dtype=np.int64))
    with np.errstate(over="ignore"):
        idx = np.arange(k, dtype=np.uint64) + np.uint64(fnv1a64(name))
        x = splitmix64(idx)
    u = (x >> np.uint64(40)).astype(np.float64) * (2.0 ** -24) * 2.0 - 1.0
    if is_norm_scale(name):
        v = 1.0 + 0.1 * u
    elif len(shape) >= 2:
        v = u * (1.0 / math.sqrt(k // shape[0]))
    else:
        v = 0.1 * u
    return v.astype(np.float32).reshape(shape)


def is_decoder_key(key):
    return key.startswith("decoder.") or key.startswith("post_quant_conv.")


def decoder_state(model):
    return {k: v for k, v in model.state_dict().items() if is_decoder_key(k)}


def fill_generator_v1(model, round_dtype=None):
    """Overwrite the decoder part of `model` with generator v1 values (rounded through
    `round_dtype` when the case stores F16/BF16 weights, so the output matches the file)."""
    new = {}
    for k, v in decoder_state(model).items():
        t = torch.from_numpy(generator_v1(k, tuple(v.shape)))
        if round_dtype is not None:
            t = t.to(round_dtype).to(torch.float32)
        new[k] = t
    missing = model.load_state_dict(new, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    return new

# ---------------------------------------------------------------- key styles

def to_ldm_keys(sd, config):
    """diffusers AutoencoderKL decoder keys -> original LDM names with `first_stage_model.`
    (the reverse of diffusers' convert_ldm_vae_checkpoint)."""
    n_up = len(config["up_block_types"])
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    out = {}
    for key, t in sd.items():
        parts = key.split(".")
        if key.startswith("post_quant_conv."):
            new = key
        elif parts[1] in ("conv_in", "conv_out"):
            new = key
        elif parts[1] == "conv_norm_out":
            new = "decoder.norm_out." + parts[2]
        elif parts[1] == "mid_block" and parts[2] == "resnets":
            new = "decoder.mid.block_%d.%s" % (int(parts[3]) + 1, ".".join(parts[4:]))
        elif parts[1] == "mid_block" and parts[2] == "attentions":
            layer = ".".join(parts[4:-1])
            new = "decoder.mid.attn_1.%s.%s" % (attn[layer], parts[-1])
            if layer != "group_norm" and t.dim() == 2:
                t = t[:, :, None, None]  # LDM stores the projections as 1x1 convs
        elif parts[1] == "up_blocks":
            ldm_level = n_up - 1 - int(parts[2])
            if parts[3] == "resnets":
                rest = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
                new = "decoder.up.%d.block.%s.%s" % (ldm_level, parts[4], rest)
            else:  # upsamplers.0.conv.*
                new = "decoder.up.%d.upsample.%s" % (ldm_level, ".".join(parts[5:]))
        else:
            raise KeyError("no LDM name for " + key)
        out["first_stage_model." + new] = t.contiguous()
    return out


WAN_RES = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3", "conv2": "residual.6",
           "conv_shortcut": "shortcut"}


def to_wan_original_keys(sd, config):
    """diffusers AutoencoderKLWan decoder keys -> original Wan 2.1 names as in ComfyUI's
    wan_2.1_vae.safetensors (the reverse of diffusers' convert_wan_vae_to_diffusers)."""
    stride = config["num_res_blocks"] + 2  # resnets, then the resample, per up level
    res = WAN_RES
    out = {}
    for key, t in sd.items():
        parts = key.split(".")
        if key.startswith("post_quant_conv."):
            new = "conv2." + parts[1]
        elif parts[1] == "conv_in":
            new = "decoder.conv1." + parts[2]
        elif parts[1] == "norm_out":
            new = "decoder.head.0.gamma"
        elif parts[1] == "conv_out":
            new = "decoder.head.2." + parts[2]
        elif parts[1] == "mid_block" and parts[2] == "resnets":
            new = "decoder.middle.%d.%s.%s" % (2 * int(parts[3]), res[parts[4]], parts[5])
        elif parts[1] == "mid_block" and parts[2] == "attentions":
            new = "decoder.middle.1." + ".".join(parts[4:])
        elif parts[1] == "up_blocks" and parts[3] == "resnets":
            flat = int(parts[2]) * stride + int(parts[4])
            new = "decoder.upsamples.%d.%s.%s" % (flat, res[parts[5]], parts[6])
        elif parts[1] == "up_blocks" and parts[3] == "upsamplers":
            flat = int(parts[2]) * stride + stride - 1
            new = "decoder.upsamples.%d.%s" % (flat, ".".join(parts[5:]))
        else:
            raise KeyError("no original Wan name for " + key)
        out[new] = t.contiguous()
    return out


def to_wan22_original_keys(sd, config):
    """diffusers AutoencoderKLWan (is_residual) decoder keys -> original Wan 2.2 names as in
    Wan2.2's vae2_2.py and ComfyUI's wan2.2_vae.safetensors: up block I is decoder.upsamples.I,
    its ResNets upsamples.I.upsamples.J and its resample upsamples.I.upsamples.<num_res_blocks + 1>
    (DupUp3D has no weights)."""
    out = {}
    for key, t in sd.items():
        parts = key.split(".")
        if parts[0] == "decoder" and parts[1] == "up_blocks":
            i = int(parts[2])
            if parts[3] == "resnets":
                new = "decoder.upsamples.%d.upsamples.%s.%s.%s" % (i, parts[4], WAN_RES[parts[5]], parts[6])
            else:  # upsampler.{resample.1,time_conv}.*
                new = "decoder.upsamples.%d.upsamples.%d.%s" % (i, config["num_res_blocks"] + 1,
                                                             ".".join(parts[4:]))
            out[new] = t.contiguous()
        else:
            out.update(to_wan_original_keys({key: t}, config))
    return out


def from_wan22_original_keys(sd, config):
    """The inverse of to_wan22_original_keys (diffusers ships no Wan 2.2 converter): checked by
    the round trip in --verify, the C loader reads the original names on its own."""
    inverse = {}
    for key in decoder_keys_for(config):
        inverse.update({k: key for k in to_wan22_original_keys({key: torch.zeros(1)}, config)})
    return {inverse[k]: v for k, v in sd.items()}


def decoder_keys_for(config):
    return list(decoder_state(build(AutoencoderKLWan, config)))


def to_original(arch, weights, config):
    if arch == "wan22":
        return to_wan22_original_keys(weights, config)
    if arch == "wan21":
        return to_wan_original_keys(weights, config)
    return to_ldm_keys(weights, config)


def from_original_keys(arch, sd, config):
    """Original names -> diffusers names, by diffusers' own converters (used to check ours)."""
    if arch == "wan22":
        return from_wan22_original_keys(sd, config)
    if arch == "wan21":
        return convert_wan_vae_to_diffusers(sd)
    return convert_ldm_vae_checkpoint(sd, config)

# ---------------------------------------------------------------- cases

SDXL_CONFIG = dict(  # stabilityai/sdxl-vae vae/config.json
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    layers_per_block=2, norm_num_groups=32, act_fn="silu", sample_size=1024,
    scaling_factor=0.13025, force_upcast=True)
SMALL_KL = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[16, 32],
    down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
    layers_per_block=1, norm_num_groups=8, act_fn="silu", sample_size=128,
    scaling_factor=0.18215)
SMALL_FLUX = dict(SMALL_KL, latent_channels=16, use_quant_conv=False, use_post_quant_conv=False,
                  scaling_factor=0.3611, shift_factor=0.1159)
SMALL_WAN = dict(base_dim=4, z_dim=16)  # everything else: diffusers' Wan 2.1 defaults
FULL_WAN = dict(base_dim=96, z_dim=16)  # = Wan 2.1 (AutoencoderKLWan defaults)
# Wan 2.2 (Wan-AI/Wan2.2-TI2V-5B-Diffusers vae/config.json): residual up blocks, patch 2, 16x.
WAN22 = dict(base_dim=160, decoder_base_dim=256, z_dim=48, is_residual=True, patch_size=2,
             in_channels=12, out_channels=12, scale_factor_spatial=16, scale_factor_temporal=4,
             temperal_downsample=[False, True, True])
SMALL_WAN22 = dict(WAN22, base_dim=8, decoder_base_dim=4, z_dim=8)  # decoder dims [16,16,16,8,4]

# name: (arch, class, config, key_style, weights storage dtype or None for generator, latent shape, seed)
CASES = {
    "sd_small":           ("sd", AutoencoderKL, SMALL_KL, "diffusers", torch.float32, (1, 4, 8, 12), 1),
    "sd_small_original":  ("sd", AutoencoderKL, SMALL_KL, "original", torch.float32, (1, 4, 8, 12), 1),
    "flux_small":         ("flux", AutoencoderKL, SMALL_FLUX, "diffusers", torch.bfloat16, (1, 16, 8, 12), 2),
    "sdxl_full":          ("sdxl", AutoencoderKL, SDXL_CONFIG, "diffusers", None, (1, 4, 8, 8), 3),
    "wan_small":          ("wan21", AutoencoderKLWan, SMALL_WAN, "diffusers", torch.float16, (1, 16, 3, 6, 8), 4),
    "wan_small_original": ("wan21", AutoencoderKLWan, SMALL_WAN, "original", torch.float16, (1, 16, 3, 6, 8), 4),
    "wan_full":           ("wan21", AutoencoderKLWan, FULL_WAN, "diffusers", None, (1, 16, 2, 4, 4), 5),
    "wan22_small":        ("wan22", AutoencoderKLWan, SMALL_WAN22, "diffusers", torch.float16, (1, 8, 3, 3, 4), 6),
    "wan22_small_original": ("wan22", AutoencoderKLWan, SMALL_WAN22, "original", torch.float16, (1, 8, 3, 3, 4), 6),
    "wan22_full":         ("wan22", AutoencoderKLWan, WAN22, "diffusers", None, (1, 48, 2, 1, 2), 7),
}
# wan_small stores F32 copies of F16-rounded values, so it shares its output with wan_small_original.
FILE_DTYPE = {"wan_small": torch.float32}


ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def save_safetensors(path, tensors, metadata):
    """safetensors writer with a canonical header (keys sorted, tensors in name order), so a
    regeneration with the same versions rewrites byte-identical files (the library's writer
    orders the metadata differently on every run)."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        blob = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def config_json(model):
    cfg = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    return json.dumps(cfg, sort_keys=True)


def build(cls, config):
    torch.manual_seed(0)  # only the encoder keeps torch's init, and nothing uses it
    return cls.from_config(config).eval()  # float32 parameters


def decode(model, latents):
    with torch.no_grad():
        return model.decode(latents).sample.contiguous()


def draw_latents(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float32)


def versions():
    return {"diffusers_version": diffusers.__version__, "torch_version": torch.__version__}


def make_case(name, outdir):
    arch, cls, config, key_style, wdtype, lshape, seed = CASES[name]
    model = build(cls, config)
    weights = fill_generator_v1(model, round_dtype=wdtype if wdtype not in (None, torch.float32) else None)
    latents = draw_latents(lshape, seed)
    output = decode(model, latents)
    cfg = config_json(model)
    meta = dict(versions(), case=name, arch=arch, config=cfg, key_style=key_style, seed=str(seed))
    clamped = cls is AutoencoderKLWan
    meta["output_clamped"] = "[-1,1]" if clamped else "none"
    meta["output_clamped_fraction"] = "%.6f" % ((output.abs() == 1.0).float().mean().item() if clamped else 0.0)
    meta["output_max_abs"] = "%.9g" % output.abs().max().item()
    if wdtype is None:
        meta["weights"] = "generator:v1"
        meta["weights_manifest"] = json.dumps({k: list(v.shape) for k, v in weights.items()})
    else:
        meta["weights"] = "file:%s.vae.safetensors" % name
        sd = weights if key_style == "diffusers" else to_original(arch, weights, dict(model.config))
        store = FILE_DTYPE.get(name, wdtype)
        sd = {k: v.to(store).contiguous() for k, v in sd.items()}
        wmeta = dict(versions(), arch=arch, config=cfg, key_style=key_style)
        save_safetensors(os.path.join(outdir, name + ".vae.safetensors"), sd, wmeta)
    save_safetensors(os.path.join(outdir, name + ".io.safetensors"), {"latents": latents, "output": output}, meta)
    print("%-20s latents %-18s output %-20s max|out| %s clamped %s" % (
        name, list(latents.shape), list(output.shape), meta["output_max_abs"], meta["output_clamped_fraction"]))

# ---------------------------------------------------------------- verification

def load_meta(path):
    with safetensors.safe_open(path, "pt") as f:
        return f.metadata(), {k: f.get_tensor(k) for k in f.keys()}


def verify_case(name, outdir):
    """Rebuild the model from the files alone (config + weights file or generator), decode again,
    and compare with the stored output. Returns the max-abs difference."""
    arch, cls, _, key_style, _, _, _ = CASES[name]
    meta, io = load_meta(os.path.join(outdir, name + ".io.safetensors"))
    config = json.loads(meta["config"])
    model = build(cls, config)
    if meta["weights"] == "generator:v1":
        weights = fill_generator_v1(model)
        manifest = json.loads(meta["weights_manifest"])
        assert manifest == {k: list(v.shape) for k, v in weights.items()}, name + ": manifest differs"
    else:
        wmeta, sd = load_meta(os.path.join(outdir, meta["weights"][len("file:"):]))
        assert wmeta["key_style"] == key_style and wmeta["config"] == meta["config"]
        assert all(is_decoder_key(k) or k.startswith(("first_stage_model.", "conv2.")) for k in sd)
        sd = {k: v.to(torch.float32) for k, v in sd.items()}
        if key_style == "original":
            sd = from_original_keys(arch, sd, config)
        expected = set(decoder_state(model))
        assert set(sd) == expected, "%s: keys differ: %s" % (name, sorted(set(sd) ^ expected)[:8])
        model.load_state_dict(sd, strict=False)
    if meta["diffusers_version"] != diffusers.__version__:
        print("%s: made with diffusers %s, checking with %s" % (name, meta["diffusers_version"],
                                                                 diffusers.__version__), file=sys.stderr)
    out = decode(model, io["latents"])
    assert out.shape == io["output"].shape
    return (out - io["output"]).abs().max().item()


def print_vectors():
    names = [("decoder.conv_in.weight", (512, 4, 3, 3)),
             ("decoder.mid_block.resnets.0.norm1.weight", (512,)),
             ("decoder.conv_out.bias", (3,)),
             ("decoder.norm_out.gamma", (96, 1, 1, 1))]
    print("| tensor | shape | FNV-1a-64(name) | splitmix64(seed+0) | values[0..3] (float32, %.9g) |")
    print("|---|---|---|---|---|")
    for n, s in names:
        h = fnv1a64(n)
        x0 = int(splitmix64(np.array([h], dtype=np.uint64))[0])
        v = generator_v1(n, s).reshape(-1)[:4]
        print("| `%s` | %s | `0x%016x` | `0x%016x` | %s |" % (
            n, list(s), h, x0, ", ".join("%.9g" % f for f in v)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.normpath(GOLDEN_DIR))
    ap.add_argument("--verify", action="store_true", help="re-decode the stored cases and compare")
    ap.add_argument("--vectors", action="store_true", help="print generator v1 test vectors")
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    names = args.cases or list(CASES)
    if args.vectors:
        print_vectors()
        return 0
    if args.verify:
        worst = 0.0
        for n in names:
            d = verify_case(n, args.out)
            worst = max(worst, d)
            print("%-20s re-decode max-abs diff %.3g" % (n, d))
        return 0 if worst <= 1e-6 else 1
    os.makedirs(args.out, exist_ok=True)
    for n in names:
        make_case(n, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
