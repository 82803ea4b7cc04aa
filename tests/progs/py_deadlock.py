"""The deadlock that reading Python frames from inside an allocation could cause, set up on
purpose: the main thread allocates (GIL released) while holding a lock of the program, and a
second thread holds the GIL while it waits for that lock, as a PyTorch allocation made under
the caching allocator's mutex meets a tensor freed from Python. The shim must not wait for the
GIL forever: the program prints "ok" and exits.

The lock is the dynamic loader's: dl_iterate_phdr() holds it while it calls its callback once
per loaded object, and the callback here is cuMemAlloc_v2 itself (its arguments line up: the
object's info record receives the device pointer, the record's size is the size), so the
whole sequence is one C call. The waiter runs Python (holding the GIL) and takes the same lock
in a loop, so it blocks on it, with the GIL, while the main thread is inside."""
import ctypes
import sys
import threading
import time

cuda = ctypes.CDLL("libcuda.so.1")
libc_nogil = ctypes.CDLL("libc.so.6")
libc_gil = ctypes.PyDLL("libc.so.6")  # keeps the GIL while it blocks


def check(result):
    if result != 0:
        sys.exit("driver error %d" % result)


dev, ctx = ctypes.c_int(), ctypes.c_void_p()
check(cuda.cuInit(0))
check(cuda.cuDeviceGet(ctypes.byref(dev), 0))
check(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev))
check(cuda.cuCtxSetCurrent(ctx))
warm = ctypes.c_uint64()
check(cuda.cuMemAlloc_v2(ctypes.byref(warm), ctypes.c_size_t(1 << 20)))  # starts the shim's helper

stop_iteration = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                                  ctypes.c_void_p)(lambda info, size, data: 1)
done = False


def waits_for_the_lock_holding_the_gil():
    # Keeps the GIL (but for switches) and takes the loader's lock over and over: once the
    # main thread holds that lock, this thread blocks on it with the GIL held.
    while not done:
        libc_gil.dl_iterate_phdr(stop_iteration, None)


waiter = threading.Thread(target=waits_for_the_lock_holding_the_gil)
waiter.start()
time.sleep(0.01)
libc_nogil.dl_iterate_phdr(cuda.cuMemAlloc_v2, None)  # the loader's lock held, the GIL not
done = True
waiter.join()
print("ok")
