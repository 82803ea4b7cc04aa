"""A tiny StableDiffusionPipeline from random-weight components (test_python_autohook.c):
`py_sd_pipeline.py DIR OUT` builds it (UNet2DConditionModel, AutoencoderKL, CLIPTextModel and a
CLIPTokenizer from a byte-level vocabulary written here: nothing is downloaded), saves it to
DIR, loads it back with from_pretrained, generates one 16x16 image in 2 steps on the CPU and
writes the image's float32 bytes to OUT. The same seed gives the same bytes on every run."""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionPipeline,  # noqa: E402
                       UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402


def byte_level_tokenizer(folder):
    """CLIP's BPE with a vocabulary of single byte-level characters, with and without the
    end-of-word mark, and no merges."""
    # The printable stand-ins for bytes 0-255 that byte-level BPE uses.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + \
        list(range(0xAE, 0x100))
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    vocab = {}
    for c in chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab[c] = len(vocab)
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    return CLIPTokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"),
                         model_max_length=16), len(vocab)


def build(folder):
    torch.manual_seed(0)
    os.makedirs(folder, exist_ok=True)
    tokenizer, vocab_size = byte_level_tokenizer(folder)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=16, projection_dim=16,
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=8, cross_attention_dim=16,
        attention_head_dim=2, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    vae = AutoencoderKL(
        block_out_channels=(8, 16), norm_num_groups=8, latent_channels=4, sample_size=16,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                            scheduler=scheduler, safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(folder)


def main():
    folder, out = sys.argv[1], sys.argv[2]
    build(folder)
    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True,
                                                   safety_checker=None)
    pipe = pipe.to("cpu")
    pipe.set_progress_bar_config(disable=True)
    image = pipe("a red cube", height=16, width=16, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0), output_type="np").images
    with open(out, "wb") as f:
        f.write(image.astype("float32").tobytes())
    print("image %s" % "x".join(str(d) for d in image.shape))


main()
