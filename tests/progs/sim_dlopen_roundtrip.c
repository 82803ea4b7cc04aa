/* Loads libcuda.so.1 by name, as cudart does, and allocates, copies, maps and frees through it.
 * Run with LD_LIBRARY_PATH=build/sim to get simcuda. Prints one line per step; exit status 0 when
 * every step worked and the data came back intact. */
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static PFN_cuGetProcAddress_v12000 get_proc;

/* Every call goes through cuGetProcAddress_v2 at the toolkit's version. */
#define CALL(name, type, ...)                                                                      \
    do {                                                                                           \
        void *fn_ = NULL;                                                                          \
        CUresult rc_ = get_proc(#name, &fn_, CUDA_VERSION, 0, NULL);                               \
        if (rc_ == CUDA_SUCCESS)                                                                   \
            rc_ = ((type)fn_)(__VA_ARGS__);                                                        \
        if (rc_ != CUDA_SUCCESS) {                                                                 \
            fprintf(stderr, "sim_dlopen_roundtrip: %s failed: %d\n", #name, (int)rc_);             \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

typedef CUresult (*init_t)(unsigned int);
typedef CUresult (*retain_t)(CUcontext *, CUdevice);
typedef CUresult (*set_ctx_t)(CUcontext);
typedef CUresult (*alloc_t)(CUdeviceptr *, size_t);
typedef CUresult (*free_t)(CUdeviceptr);
typedef CUresult (*htod_t)(CUdeviceptr, const void *, size_t);
typedef CUresult (*dtoh_t)(void *, CUdeviceptr, size_t);
typedef CUresult (*dtod_t)(CUdeviceptr, CUdeviceptr, size_t);
typedef CUresult (*create_t)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *,
                             unsigned long long);
typedef CUresult (*release_t)(CUmemGenericAllocationHandle);
typedef CUresult (*reserve_t)(CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long);
typedef CUresult (*addr_free_t)(CUdeviceptr, size_t);
typedef CUresult (*map_t)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle,
                          unsigned long long);
typedef CUresult (*unmap_t)(CUdeviceptr, size_t);
typedef CUresult (*access_t)(CUdeviceptr, size_t, const CUmemAccessDesc *, size_t);

int main(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "sim_dlopen_roundtrip: %s\n", dlerror());
        return 1;
    }
    get_proc = (PFN_cuGetProcAddress_v12000)dlsym(lib, "cuGetProcAddress_v2");
    if (!get_proc) {
        fprintf(stderr, "sim_dlopen_roundtrip: no cuGetProcAddress_v2\n");
        return 1;
    }
    printf("driver: %s\n", dlsym(lib, "simcuda_physical_in_use") ? "simcuda" : "other");

    CUcontext ctx;
    CALL(cuInit, init_t, 0);
    CALL(cuDevicePrimaryCtxRetain, retain_t, &ctx, 0);
    CALL(cuCtxSetCurrent, set_ctx_t, ctx);

    static unsigned char src[1 << 20], back[1 << 20];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (unsigned char)(i * 7);
    CUdeviceptr buf;
    CALL(cuMemAlloc, alloc_t, &buf, sizeof src);
    CALL(cuMemcpyHtoD, htod_t, buf, src, sizeof src);
    printf("allocated and copied %zu bytes\n", sizeof src);

    size_t size = 2 << 20;
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {CU_MEM_LOCATION_TYPE_DEVICE, 0}};
    CUmemAccessDesc rw = {prop.location, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CUmemGenericAllocationHandle handle;
    CUdeviceptr va;
    CALL(cuMemCreate, create_t, &handle, size, &prop, 0);
    CALL(cuMemAddressReserve, reserve_t, &va, size, 0, 0, 0);
    CALL(cuMemMap, map_t, va, size, 0, handle, 0);
    CALL(cuMemSetAccess, access_t, va, size, &rw, 1);
    CALL(cuMemcpyDtoD, dtod_t, va, buf, sizeof src);
    CALL(cuMemcpyDtoH, dtoh_t, back, va, sizeof back);
    printf("mapped %zu bytes and copied through them\n", size);

    CALL(cuMemUnmap, unmap_t, va, size);
    CALL(cuMemAddressFree, addr_free_t, va, size);
    CALL(cuMemRelease, release_t, handle);
    CALL(cuMemFree, free_t, buf);
    if (memcmp(src, back, sizeof src) != 0) {
        fprintf(stderr, "sim_dlopen_roundtrip: data differs after the round trip\n");
        return 1;
    }
    printf("freed; data intact\n");
    return 0;
}
