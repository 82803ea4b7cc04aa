#!/usr/bin/env python3
"""Writes PyTorch memory snapshots in the format torch.cuda.memory._dump_snapshot() writes
(the dict torch/cuda/_memory_viz.py reads), with the standard library's pickle only, for the
import-torch tests. Usage: torch_snapshot.py DIR

DIR/good.pickle     a small diffusion-like run on device 0: UNet weights allocated before the
                    recorded window (only in `segments`), a latent freed in the window without
                    its alloc (the ring buffer dropped it), activations allocated and freed
                    from Python call sites, and an out-of-memory at the end
DIR/notimes.pickle  the same without time_us
DIR/protocol2.pickle the same written with pickle protocol 2
DIR/list.pickle     a pickled list: not a snapshot
DIR/global.pickle   a snapshot holding a class instance (a GLOBAL opcode)
DIR/truncated.pickle the good one cut in half
DIR/shared.pickle   one trace list shared 1000 times through the memo, each 20000 entries long:
                    a few hundred KiB that would unfold into 20 million entries
DIR/expected.json   what a correct import must give: allocation and free counts, peak live
                    bytes, live bytes at the OOM, all computed here from the same events
"""
import collections
import json
import os
import pickle
import sys

MIB = 1 << 20
GIB = 1 << 30


def frames(*user):
    """Innermost first, as torch records them: the allocator's C++ frame, torch's Python, then
    the program's own functions."""
    out = [{"filename": "??", "line": 0,
            "name": "c10::cuda::CUDACachingAllocator::Native::DeviceCachingAllocator::malloc"},
           {"filename": "/usr/lib/python3/dist-packages/torch/nn/modules/conv.py", "line": 549,
            "name": "_conv_forward"}]
    for i, name in enumerate(user):
        out.append({"filename": "/home/me/gen.py", "line": 10 * (i + 1), "name": name})
    return out


def build(with_times=True):
    weights = 0x7f0000000000
    latent = 0x7f0040000000
    acts = [0x7f0050000000 + i * 0x10000000 for i in range(3)]
    trace = []
    t = [1_700_000_000_000_000]

    def entry(action, addr, size, fr=None, **extra):
        e = {"action": action, "addr": addr, "size": size, "stream": 0,
             "frames": fr if fr is not None else []}
        if with_times:
            e["time_us"] = t[0]
            t[0] += 250
        e.update(extra)
        return e

    trace.append(entry("segment_alloc", acts[0], 768 * MIB))
    # the latent's alloc fell out of the ring buffer: only its free is recorded
    trace.append(entry("free_requested", latent, 256 * MIB, frames("Pipeline.prepare_latents")))
    trace.append(entry("free_completed", latent, 256 * MIB, frames("Pipeline.prepare_latents")))
    for i, a in enumerate(acts):
        trace.append(entry("alloc", a, 256 * MIB, frames("UNet.forward", "Pipeline.denoise", "main")))
    for a in acts[:2]:
        trace.append(entry("free_requested", a, 256 * MIB, frames("UNet.forward")))
        trace.append(entry("free_completed", a, 256 * MIB, frames("UNet.forward")))
    trace.append(entry("alloc", acts[0], 512 * MIB, frames("VAE.decode", "Pipeline.decode", "main")))
    oom = entry("oom", 0, 3 * GIB, frames("VAE.decode", "Pipeline.decode", "main"),
                device_free=1 * GIB)
    del oom["addr"]  # torch records no address for an OOM
    trace.append(oom)
    trace.append(entry("snapshot", 0, 0))
    segments = [
        {"device": 0, "address": weights, "total_size": GIB, "allocated_size": GIB,
         "active_size": GIB, "requested_size": GIB, "stream": 0, "segment_type": "large",
         "segment_pool_id": (0, 0), "is_expandable": False, "frames": [],
         "blocks": [{"address": weights, "size": GIB, "requested_size": GIB,
                     "state": "active_allocated", "frames": frames("UNet.load", "main")}]},
        {"device": 0, "address": acts[0], "total_size": 768 * MIB, "allocated_size": 768 * MIB,
         "active_size": 768 * MIB, "requested_size": 768 * MIB, "stream": 0,
         "segment_type": "large", "segment_pool_id": (0, 0), "is_expandable": False,
         "frames": [],
         "blocks": [{"address": acts[0], "size": 512 * MIB, "requested_size": 512 * MIB,
                     "state": "active_allocated", "frames": frames("VAE.decode")},
                    {"address": acts[0] + 512 * MIB, "size": 256 * MIB,
                     "requested_size": 256 * MIB, "state": "inactive", "frames": []}]},
    ]
    snap = {"segments": segments, "device_traces": [trace],
            "allocator_settings": {"PYTORCH_CUDA_ALLOC_CONF": None}}
    return snap, trace


def expected(trace):
    """Live bytes as a correct import counts them: weights and the latent from the start."""
    live = GIB + 256 * MIB
    peak, at_oom, allocs, frees = live, None, 2, 0
    for e in trace:
        if e["action"] == "alloc":
            live += e["size"]
            allocs += 1
            peak = max(peak, live)
        elif e["action"] == "free_completed":
            live -= e["size"]
            frees += 1
        elif e["action"] == "oom":
            at_oom = live
    return {"allocations": allocs, "frees": frees, "peak_live_bytes": peak,
            "live_at_oom_bytes": at_oom, "before": 2}


def main():
    out = sys.argv[1]
    snap, trace = build()
    with open(os.path.join(out, "good.pickle"), "wb") as f:
        pickle.dump(snap, f)
    with open(os.path.join(out, "protocol2.pickle"), "wb") as f:
        pickle.dump(snap, f, protocol=2)
    with open(os.path.join(out, "notimes.pickle"), "wb") as f:
        pickle.dump(build(with_times=False)[0], f)
    with open(os.path.join(out, "list.pickle"), "wb") as f:
        pickle.dump([1, 2, 3], f)
    odd = dict(snap)
    odd["allocator_settings"] = collections.OrderedDict(a=1)
    with open(os.path.join(out, "global.pickle"), "wb") as f:
        pickle.dump(odd, f)
    data = pickle.dumps(snap)
    with open(os.path.join(out, "truncated.pickle"), "wb") as f:
        f.write(data[: len(data) // 2])
    entry = {"action": "alloc", "addr": 1, "size": 1, "stream": 0, "frames": []}
    one = [entry] * 20000
    with open(os.path.join(out, "shared.pickle"), "wb") as f:
        pickle.dump({"segments": [], "device_traces": [one] * 1000}, f)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected(trace), f)


if __name__ == "__main__":
    main()
