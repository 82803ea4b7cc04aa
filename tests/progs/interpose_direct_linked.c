/* Calls every hooked family by name, as a program linked with -lcuda does (cuda.h maps
 * cuMemAlloc to cuMemAlloc_v2 and so on), and prints what it sees. Run with and without the shim,
 * the output must be identical; with VRAMSHIM_TRACE each allocation appears exactly once.
 */
#include "interpose_prog.h"

static void queries(CUdeviceptr a)
{
    size_t free_b = 0, total_b = 0;
    CK(CALLED("cuMemGetInfo_v2", cuMemGetInfo(&free_b, &total_b)));
    printf("meminfo ok %d\n", free_b <= total_b && total_b > 0);
    printf("meminfo null_free %d\n", (int)CALLED("cuMemGetInfo_v2", cuMemGetInfo(NULL, &total_b)));
    printf("meminfo null_total %d\n", (int)CALLED("cuMemGetInfo_v2", cuMemGetInfo(&free_b, NULL)));

    CUdeviceptr base;
    size_t range;
    CK(CALLED("cuMemGetAddressRange_v2", cuMemGetAddressRange(&base, &range, a + 100)));
    printf("range base_ok %d size %zu\n", base == a, range);
    unsigned int mem_type = 0;
    CK(CALLED("cuPointerGetAttribute",
              cuPointerGetAttribute(&mem_type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a)));
    printf("attribute memory_type %u\n", mem_type);
    CUpointer_attribute attrs[2] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                    CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL};
    int ordinal = -1;
    void *data[2] = {&mem_type, &ordinal};
    CK(CALLED("cuPointerGetAttributes", cuPointerGetAttributes(2, attrs, data, a)));
    printf("attributes memory_type %u ordinal %d\n", mem_type, ordinal);
}

static void stream_ordered(CUdevice dev)
{
    CUstream s;
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr b, c;
    CK(CALLED("cuMemAllocAsync", cuMemAllocAsync(&b, 3 << 20, s)));
    CUmemoryPool pool;
    CK(cuDeviceGetDefaultMemPool(&pool, dev));
    CK(CALLED("cuMemAllocFromPoolAsync", cuMemAllocFromPoolAsync(&c, 5000, pool, s)));
    CK(CALLED("cuMemFreeAsync", cuMemFreeAsync(b, s)));
    CK(CALLED("cuMemFreeAsync", cuMemFreeAsync(c, s)));
    CK(cuStreamSynchronize(s));
    CK(cuStreamDestroy(s));
    printf("async ok 1\n");
}

/* The application's own VMM, as PyTorch's expandable segments use it. */
__attribute__((noinline)) static void own_vmm(CUdevice dev)
{
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev}};
    size_t gran = 0;
    CK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    CUmemGenericAllocationHandle h;
    CUdeviceptr va;
    CK(CALLED("cuMemCreate", cuMemCreate(&h, 2 * gran, &prop, 0)));
    CK(cuMemAddressReserve(&va, 4 * gran, 0, 0, 0));
    CK(CALLED("cuMemMap", cuMemMap(va + gran, 2 * gran, 0, h, 0)));
    CUmemAccessDesc access = {.location = prop.location,
                              .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CK(cuMemSetAccess(va + gran, 2 * gran, &access, 1));
    CK(cuMemsetD8(va + gran, 7, 2 * gran));
    unsigned char host[4];
    CK(cuMemcpyDtoH(host, va + gran + 5, sizeof host));
    printf("vmm data %d\n", host[3] == 7);
    CK(CALLED("cuMemUnmap", cuMemUnmap(va + gran, 2 * gran)));
    CK(CALLED("cuMemRelease", cuMemRelease(h)));
    CK(cuMemAddressFree(va, 4 * gran));
}

int main(void)
{
    CUdevice dev = setup_primary();

    CUdeviceptr a, p;
    CK(CALLED("cuMemAlloc_v2", cuMemAlloc(&a, 1 << 20)));
    CK(cuMemsetD8(a, 0x5a, 1 << 20));
    unsigned char host[16];
    CK(cuMemcpyDtoH(host, a + 4096, sizeof host));
    printf("alloc data %d\n", host[0] == 0x5a && host[15] == 0x5a);
    size_t pitch = 0;
    CK(CALLED("cuMemAllocPitch_v2", cuMemAllocPitch(&p, &pitch, 1000, 7, 4)));
    printf("pitch ok %d\n", pitch >= 1000);

    queries(a);
    stream_ordered(dev);
    own_vmm(dev);

    printf("free null %d\n", (int)CALLED("cuMemFree_v2", cuMemFree(0)));
    CK(CALLED("cuMemFree_v2", cuMemFree(p)));
    CK(CALLED("cuMemFree_v2", cuMemFree(a)));
    printf("free twice %d\n", (int)CALLED("cuMemFree_v2", cuMemFree(a)));
    print_calls(RTLD_DEFAULT);
    return 0;
}
