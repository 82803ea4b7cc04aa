"""A PyTorch "generator" that loads a diffusion model, denoises, and then decodes with a VAE
whose decode needs a workspace larger than the memory left: `py_torch_vae.py DEVICE
DIFFUSION_MIB DECODE_MIB` (DEVICE cuda or cpu). On a GPU with less free memory than the model
plus the workspace it runs out of memory, unless vramshim moves the idle diffusion weights to
host memory during VAE.decode (policy py_torch_vae.ini). Prints "video SHA256" of the result,
which must be the same in every run that completes, and "oom STAGE" when it runs out."""
import hashlib
import sys

import torch

WIDTH = 4096


class Diffusion(torch.nn.Module):
    def __init__(self, device, mib):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        layers = max(1, mib * (1 << 20) // (WIDTH * WIDTH * 4))
        self.weights = [(torch.randn(WIDTH, WIDTH, generator=g) / WIDTH ** 0.5).to(device)
                        for _ in range(layers)]

    def forward(self, x, step):
        w = self.weights[step % len(self.weights)]
        return torch.tanh(x @ w)


class VAE:
    def __init__(self, device):
        g = torch.Generator().manual_seed(2)
        self.weight = (torch.randn(WIDTH, WIDTH, generator=g) / WIDTH ** 0.5).to(device)

    def decode(self, latents, workspace_mib):
        # A decoder's large intermediate (a feature cache), written and reduced.
        rows = workspace_mib * (1 << 20) // (WIDTH * 4)
        cache = torch.empty(rows, WIDTH, device=latents.device)
        block = latents @ self.weight
        for start in range(0, rows, block.shape[0]):
            n = min(block.shape[0], rows - start)
            cache[start:start + n] = block[:n] * (1 + start / rows)
        return cache.view(-1, block.shape[0], WIDTH).sum(0)


def main():
    device, diffusion_mib, decode_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    stage = "load"
    try:
        model = Diffusion(device, diffusion_mib)
        vae = VAE(device)
        g = torch.Generator().manual_seed(3)
        x = torch.randn(64, WIDTH, generator=g).to(device)
        stage = "denoise"
        for step in range(8):
            x = model(x, step)
        stage = "decode"
        video = vae.decode(x, decode_mib)
        data = bytes(video.cpu().contiguous().view(torch.uint8).flatten().tolist())
    except getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError):
        print("oom %s" % stage)
        return 3
    print("video %s" % hashlib.sha256(data).hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
