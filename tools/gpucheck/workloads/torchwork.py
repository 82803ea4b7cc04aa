"""What the bundle's PyTorch workloads share (imported by the scripts beside it, which run as
`python SCRIPT RESULT.json` with the allocator settings of the configuration under test):
deterministic set-up, output digests without numpy, the model pieces, and the result line."""
import ctypes
import hashlib
import json
import os

import torch


def setup():
    """Deterministic kernels and seeds: outputs can then be compared bit for bit across runs."""
    # cuBLAS reads it when its first handle is made, after this: deterministic GEMMs need it.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True)
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    return torch.device("cuda")


def digest(t):
    """sha256 of a tensor's bytes (copied to the host; no numpy needed)."""
    t = t.detach().contiguous().cpu()
    return hashlib.sha256(ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())).hexdigest()


def backend():
    """The allocator PyTorch is really using ("native", "cudaMallocAsync"), or None before 2.0."""
    get = getattr(torch.cuda, "get_allocator_backend", None)
    return get() if get else None


class Block(torch.nn.Module):
    """A VAE decoder's residual block."""

    def __init__(self, c):
        super().__init__()
        self.n1, self.c1 = torch.nn.GroupNorm(32, c), torch.nn.Conv2d(c, c, 3, padding=1)
        self.n2, self.c2 = torch.nn.GroupNorm(32, c), torch.nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        h = self.c1(torch.nn.functional.silu(self.n1(x)))
        return x + self.c2(torch.nn.functional.silu(self.n2(h)))


def decoder(ch, dev):
    """A decode-like stack: latent -> conv_in -> resblocks with 2x upsampling -> RGB."""
    layers = [torch.nn.Conv2d(4, ch, 3, padding=1)]
    for _ in range(3):
        layers += [Block(ch), torch.nn.Upsample(scale_factor=2, mode="nearest"),
                   torch.nn.Conv2d(ch, ch, 3, padding=1)]
    layers += [torch.nn.GroupNorm(32, ch), torch.nn.SiLU(), torch.nn.Conv2d(ch, 3, 3, padding=1)]
    return torch.nn.Sequential(*layers).to(dev).eval()


def counters():
    """torch.cuda.memory_stats() numbers."""
    return {k: v for k, v in torch.cuda.memory_stats().items() if isinstance(v, (int, float))}


def write(path, result):
    result.update(torch=torch.__version__, cuda=torch.version.cuda, backend=backend())
    with open(path, "w") as f:
        json.dump(result, f)
