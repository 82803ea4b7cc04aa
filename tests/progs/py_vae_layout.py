"""Prints the layout of vramshim._vae's ctypes mirrors of include/vramshim_vae.h's structs, for
tests/test_python_vae_layout.c: "STRUCT size N" per struct, then "STRUCT.FIELD OFFSET SIZE" per
field, under the C names."""
import ctypes

from vramshim import _vae

MIRRORS = {"vramshim_vae_tensor": _vae.Tensor, "vramshim_vae_allocator": _vae.Allocator,
           "vramshim_vae_decode_args": _vae.DecodeArgs, "vramshim_vae_plan": _vae.Plan}

for c_name, mirror in MIRRORS.items():
    print("%s size %d" % (c_name, ctypes.sizeof(mirror)))
    for field, *_ in mirror._fields_:
        desc = getattr(mirror, field)
        print("%s.%s %d %d" % (c_name, field, desc.offset, desc.size))
