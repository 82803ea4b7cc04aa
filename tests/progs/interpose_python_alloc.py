"""Allocates and frees device memory from a Python method through ctypes.PyDLL, which keeps the
GIL during the call, so the trace's call site can name the Python line.
Prints "ok" when the driver accepted every call."""
import ctypes
import sys

cuda = ctypes.PyDLL("libcuda.so.1")


def check(result):
    if result != 0:
        sys.exit("driver error %d" % result)


class Model:
    def allocate(self, size):
        ptr = ctypes.c_uint64()
        check(cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(size)))  # traced call site
        return ptr


dev, ctx = ctypes.c_int(), ctypes.c_void_p()
check(cuda.cuInit(0))
check(cuda.cuDeviceGet(ctypes.byref(dev), 0))
check(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev))
check(cuda.cuCtxSetCurrent(ctx))
check(cuda.cuMemFree_v2(Model().allocate(1 << 20)))
print("ok")
