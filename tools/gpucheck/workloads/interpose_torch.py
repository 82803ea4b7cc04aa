"""20-interpose's PyTorch workload: a small model forward pass and a decode-like stack in fp32
and fp16. Writes {"outputs": {name: sha256}, "stats": memory_stats numbers, "backend", ...}."""
import sys

import torch

import torchwork

dev = torchwork.setup()
outputs = {}
with torch.no_grad():
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256),
        torch.nn.TransformerEncoderLayer(256, 4, 1024, batch_first=True, dropout=0.0)).to(dev).eval()
    x = torch.randn(8, 128, 256, device=dev)
    outputs["model"] = torchwork.digest(model(x))
    dec = torchwork.decoder(128, dev)
    z = torch.randn(1, 4, 64, 64, device=dev)
    for dtype in (torch.float32, torch.float16):
        outputs["decode_" + str(dtype).split(".")[1]] = torchwork.digest(dec.to(dtype)(z.to(dtype)))
    del model, dec, x, z
torch.cuda.synchronize()
torchwork.write(sys.argv[1], {"outputs": outputs, "stats": torchwork.counters()})
