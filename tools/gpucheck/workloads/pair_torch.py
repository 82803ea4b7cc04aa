"""30-arena's alloc+free pair through PyTorch: torch.cuda.caching_allocator_alloc/delete, i.e.
whatever allocator PyTorch runs with (its caching allocator natively, the driver's pool with
backend:cudaMallocAsync, the arena when that runs under the shim), with the sizes of
bin/arena_pair_cost and 64 blocks live, best of 3. Every configuration makes the same Python
calls, so the ratio of two configurations' figures is their allocators'."""
import sys
import time

import torch

import torchwork

SIZES = [64, 200, 512, 1000, 2048, 4000, 8192, 12000, 16384, 30000, 65536, 100000, 131072,
         200000, 250000, 777]
WINDOW = 64
PAIRS = 20000

dev = torchwork.setup()
stream = torch.cuda.current_stream(dev)


def run(pairs):
    """Wall ns per alloc+free pair."""
    ring = [0] * WINDOW
    t0 = time.perf_counter()
    for i in range(pairs):
        k = i % WINDOW
        if ring[k]:
            torch.cuda.caching_allocator_delete(ring[k])
        ring[k] = torch.cuda.caching_allocator_alloc(SIZES[i % len(SIZES)], dev, stream)
    ns = (time.perf_counter() - t0) * 1e9 / pairs
    for p in ring:
        if p:
            torch.cuda.caching_allocator_delete(p)
    torch.cuda.synchronize()
    return ns


run(PAIRS // 10)  # warm the caches
torchwork.write(sys.argv[1], {"pair_ns": round(min(run(PAIRS) for _ in range(3)), 1)})
