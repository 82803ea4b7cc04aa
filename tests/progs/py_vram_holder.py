"""Holds device memory, as another process on a shared GPU would, so that about FREE_BYTES stay
free on device 0: `python3 py_vram_holder.py FREE_BYTES`. Allocates in 256 MiB blocks, prints
"ready FREE" (the free bytes left) and holds them until its standard input closes. Run it
without the shim (it stands for another program)."""
import ctypes
import sys

cu = ctypes.CDLL("libcuda.so.1")


def check(result, what):
    if result != 0:
        sys.exit("py_vram_holder: %s failed: error %d" % (what, result))


def free_bytes():
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    check(cu.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)), "cuMemGetInfo_v2")
    return free.value


target = int(sys.argv[1])
dev, ctx = ctypes.c_int(), ctypes.c_void_p()
check(cu.cuInit(0), "cuInit")
check(cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
check(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
check(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
block, held = 256 << 20, []
while free_bytes() > target:
    ptr = ctypes.c_uint64()
    size = min(block, free_bytes() - target)
    if size < (2 << 20) or cu.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(size)) != 0:
        break
    held.append(ptr)
print("ready %d" % free_bytes(), flush=True)
sys.stdin.read()
