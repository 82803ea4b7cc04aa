/* Asks for more memory than the device has, once synchronously and once stream-ordered, and
 * passes NULL output pointers to allocation entry points; prints the driver's answers. */
#include "interpose_prog.h"

int main(void)
{
    CUdevice dev = setup_primary();
    size_t total = 0;
    CK(cuDeviceTotalMem(&total, dev));
    CUdeviceptr p;
    printf("oom sync %d\n", (int)CALLED("cuMemAlloc_v2", cuMemAlloc(&p, 2 * total)));
    printf("oom async %d\n", (int)CALLED("cuMemAllocAsync", cuMemAllocAsync(&p, 2 * total, 0)));
    printf("device total %zu\n", total);
    printf("null alloc %d\n", (int)CALLED("cuMemAlloc_v2", cuMemAlloc(NULL, 4096)));
    printf("null pitch %d\n",
           (int)CALLED("cuMemAllocPitch_v2", cuMemAllocPitch(&p, NULL, 1000, 7, 4)));
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev}};
    printf("null create %d\n", (int)CALLED("cuMemCreate", cuMemCreate(NULL, 2 << 20, &prop, 0)));
    print_calls(RTLD_DEFAULT);
    return 0;
}
