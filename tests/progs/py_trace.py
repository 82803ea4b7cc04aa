"""Allocates device memory from Python methods through the three ways a Python program reaches
the driver, so test_python_trace.c can check each call site's Python frames:
  ctypes.PyDLL keeps the GIL during the call (the thread's own frames are read),
  ctypes.CDLL releases it, like PyTorch's operators (a helper takes the GIL to read them),
  the same from a second thread.
Each call line ends in a "# site:NAME" comment the test looks for. Prints "ok"."""
import ctypes
import sys
import threading

keeps_gil = ctypes.PyDLL("libcuda.so.1")
drops_gil = ctypes.CDLL("libcuda.so.1")


def check(result):
    if result != 0:
        sys.exit("driver error %d" % result)


class Model:
    def load_holding_gil(self):
        ptr = ctypes.c_uint64()
        check(keeps_gil.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(1 << 20)))  # site:held
        return ptr

    def load_releasing_gil(self):
        ptr = ctypes.c_uint64()
        check(drops_gil.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(2 << 20)))  # site:released
        return ptr

    def load_in_thread(self, out):
        ptr = ctypes.c_uint64()
        check(drops_gil.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(3 << 20)))  # site:thread
        out.append(ptr)


def main():
    dev, ctx = ctypes.c_int(), ctypes.c_void_p()
    check(drops_gil.cuInit(0))
    check(drops_gil.cuDeviceGet(ctypes.byref(dev), 0))
    check(drops_gil.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev))
    check(drops_gil.cuCtxSetCurrent(ctx))
    model = Model()
    ptrs = [model.load_holding_gil(), model.load_releasing_gil()]
    out = []

    def worker():
        check(drops_gil.cuCtxSetCurrent(ctx))
        model.load_in_thread(out)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    for p in ptrs + out:
        check(drops_gil.cuMemFree_v2(p))
    print("ok")


main()
