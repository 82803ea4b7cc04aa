/* Loading the driver for the demo generators (see cu.h). */
#include "tools/demo/lib/cu.h"

#include <dlfcn.h>
#include <stdio.h>

/* The toolkit version the generators pretend to be built with: cuGetProcAddress picks each
 * entry point's version (cuMemAlloc -> cuMemAlloc_v2, ...) from it, as for cudart 12. */
enum { VS_DEMO_CUDA_VERSION = 12000 };

static int vs_demo_lookup(PFN_cuGetProcAddress_v12000 gpa, const char *name, void **fn, char *err,
                          size_t errlen)
{
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult r = gpa(name, fn, VS_DEMO_CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &found);
    if (r != CUDA_SUCCESS || found != CU_GET_PROC_ADDRESS_SUCCESS || !*fn) {
        snprintf(err, errlen, "cuGetProcAddress(\"%s\") found nothing (CUresult %d)", name, (int)r);
        return -1;
    }
    return 0;
}

int vs_demo_cu_open(struct vs_demo_cu *cu, char *err, size_t errlen)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, errlen, "cannot load the CUDA driver: %s", dlerror());
        return -1;
    }
    PFN_cuGetProcAddress_v12000 gpa =
        (PFN_cuGetProcAddress_v12000)dlsym(lib, "cuGetProcAddress_v2");
    PFN_cuInit_v2000 init = (PFN_cuInit_v2000)dlsym(lib, "cuInit");
    if (!gpa || !init) {
        snprintf(err, errlen, "libcuda.so.1 lacks cuGetProcAddress_v2 or cuInit (driver too old)");
        return -1;
    }
    *(void **)&cu->physical_in_use = dlsym(lib, "simcuda_physical_in_use");
    CUresult r = init(0);
    if (r != CUDA_SUCCESS) {
        snprintf(err, errlen, "cuInit failed (CUresult %d)", (int)r);
        return -1;
    }
    PFN_cuDeviceGet_v2000 device_get;
    PFN_cuDevicePrimaryCtxRetain_v7000 ctx_retain;
    PFN_cuCtxSetCurrent_v4000 ctx_set_current;
    const struct {
        const char *name;
        void **fn;
    } entries[] = {
        {"cuDeviceGet", (void **)&device_get},
        {"cuDevicePrimaryCtxRetain", (void **)&ctx_retain},
        {"cuCtxSetCurrent", (void **)&ctx_set_current},
        {"cuMemGetInfo", (void **)&cu->mem_get_info},
        {"cuMemAlloc", (void **)&cu->mem_alloc},
        {"cuMemFree", (void **)&cu->mem_free},
        {"cuMemAllocAsync", (void **)&cu->mem_alloc_async},
        {"cuMemFreeAsync", (void **)&cu->mem_free_async},
        {"cuStreamCreate", (void **)&cu->stream_create},
        {"cuStreamSynchronize", (void **)&cu->stream_synchronize},
        {"cuMemcpyHtoDAsync", (void **)&cu->memcpy_htod_async},
        {"cuMemcpyDtoHAsync", (void **)&cu->memcpy_dtoh_async},
        {"cuMemcpyDtoDAsync", (void **)&cu->memcpy_dtod_async},
        {"cuMemsetD32Async", (void **)&cu->memset_d32_async},
        {"cuGetErrorName", (void **)&cu->get_error_name},
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if (vs_demo_lookup(gpa, entries[i].name, entries[i].fn, err, errlen))
            return -1;
    CUdevice dev;
    CUcontext ctx;
    if ((r = device_get(&dev, 0)) != CUDA_SUCCESS || (r = ctx_retain(&ctx, dev)) != CUDA_SUCCESS ||
        (r = ctx_set_current(ctx)) != CUDA_SUCCESS) {
        char name[64];
        snprintf(err, errlen, "cannot make device 0's context current: %s",
                 vs_demo_cu_error(cu, r, name, sizeof name));
        return -1;
    }
    return 0;
}

const char *vs_demo_cu_error(const struct vs_demo_cu *cu, CUresult r, char *buf, size_t len)
{
    const char *name = NULL;
    if (cu->get_error_name && cu->get_error_name(r, &name) == CUDA_SUCCESS && name)
        return name;
    snprintf(buf, len, "CUresult %d", (int)r);
    return buf;
}
