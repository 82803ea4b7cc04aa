"""40-evict's PyTorch workload, run under the shim in arena mode: a matmul on a tensor demoted
to host memory (vramshim_tag + vramshim_demote through ctypes) gives the result it gave before,
and again after vramshim_promote. Writes {"tag","demote","promote": return codes,
"demoted_bytes": from the status JSON, "free_delta": device bytes freed by the demote,
"asked_bytes", "equal_demoted", "equal_promoted"} or {"skip": reason}."""
import ctypes
import json
import sys

import torch

import torchwork

lib = ctypes.CDLL(None)
if not hasattr(lib, "vramshim_demote") or not hasattr(lib, "vramshim_tag"):
    torchwork.write(sys.argv[1], {"skip": "the shim does not export vramshim_demote/vramshim_tag"})
    sys.exit(0)
lib.vramshim_tag.argtypes = [ctypes.c_uint64, ctypes.c_char_p]
lib.vramshim_stats_json.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def status():
    buf = ctypes.create_string_buffer(1 << 16)
    lib.vramshim_stats_json(buf, len(buf))
    return json.loads(buf.value.decode())


dev = torchwork.setup()
x = torch.randn(4096, 4096, device=dev)
w = torch.randn(4096, 4096, device=dev)
ref = x @ w
torch.cuda.synchronize()
out = {"asked_bytes": x.numel() * x.element_size()}
out["tag"] = lib.vramshim_tag(x.data_ptr(), b"evict_check")
free_before = torch.cuda.mem_get_info()[0]
out["demote"] = lib.vramshim_demote(b"evict_check")
out["free_delta"] = torch.cuda.mem_get_info()[0] - free_before
out["status_after_demote"] = status()
out["demoted_bytes"] = out["status_after_demote"].get("demoted_bytes")
y = x @ w
torch.cuda.synchronize()
out["equal_demoted"] = bool(torch.equal(y, ref))
out["promote"] = lib.vramshim_promote(b"evict_check")
z = x @ w
torch.cuda.synchronize()
out["equal_promoted"] = bool(torch.equal(z, ref))
torchwork.write(sys.argv[1], out)
