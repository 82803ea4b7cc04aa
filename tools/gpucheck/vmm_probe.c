/* Real-GPU probe for the bundle: does the driver load, does VMM reserve/create/map work on
 * device memory, and does host-NUMA cuMemCreate work (what demotion needs)?
 *
 * Loads libcuda.so.1 with dlopen like cudart does (so it runs against simcuda too, which the
 * tests use) and prints one JSON object on stdout. Exit status 0 when the driver and device VMM
 * work; host-NUMA support is reported, not required. "library" is the file cuInit came from and
 * "simulated" says whether it is simcuda (which exports simcuda_* functions), so a check can
 * refuse a run that never reached the real driver.
 */
#include <cuda.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_FUNCS(X)                                                      \
    X(cuInit) X(cuDriverGetVersion) X(cuDeviceGet) X(cuDeviceGetName)       \
    X(cuDeviceTotalMem_v2) X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain) \
    X(cuCtxSetCurrent) X(cuMemAddressReserve) X(cuMemAddressFree)           \
    X(cuMemCreate) X(cuMemRelease) X(cuMemMap) X(cuMemUnmap)                \
    X(cuMemSetAccess) X(cuMemGetAllocationGranularity) X(cuMemcpyHtoD_v2)   \
    X(cuMemcpyDtoH_v2) X(cuGetErrorName)

static struct {
#define PROBE_FIELD(name) __typeof__(&name) name;
    PROBE_FUNCS(PROBE_FIELD)
#undef PROBE_FIELD
} cu;

static const char *err_name(CUresult r)
{
    const char *s = NULL;
    if (cu.cuGetErrorName && cu.cuGetErrorName(r, &s) == CUDA_SUCCESS && s)
        return s;
    return "unknown error";
}

/* Maps one granule of `prop` memory at a fresh reservation, writes a pattern through the
 * driver, reads it back. Returns NULL on success, else a static description of the failure. */
static const char *roundtrip(CUdevice dev, const CUmemAllocationProp *prop, size_t gran,
                             char *why, size_t why_len)
{
    CUdeviceptr va = 0;
    CUmemGenericAllocationHandle h = 0;
    int mapped = 0, reserved = 0, created = 0;
    const char *fail = NULL;
    CUresult r;
    unsigned char *out = malloc(gran), *back = malloc(gran);

#define STEP(call, what)                                                       \
    if ((r = (call)) != CUDA_SUCCESS) {                                        \
        snprintf(why, why_len, "%s failed: %s", what, err_name(r));            \
        fail = why;                                                            \
        goto done;                                                             \
    }
    if (!out || !back) {
        snprintf(why, why_len, "out of host memory");
        fail = why;
        goto done;
    }
    STEP(cu.cuMemAddressReserve(&va, 4 * gran, gran, 0, 0), "cuMemAddressReserve");
    reserved = 1;
    STEP(cu.cuMemCreate(&h, gran, prop, 0), "cuMemCreate");
    created = 1;
    STEP(cu.cuMemMap(va + gran, gran, 0, h, 0), "cuMemMap");
    mapped = 1;
    CUmemAccessDesc access = {.location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev},
                              .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    STEP(cu.cuMemSetAccess(va + gran, gran, &access, 1), "cuMemSetAccess");
    for (size_t i = 0; i < gran; i++)
        out[i] = (unsigned char)(i * 131u + 7u);
    STEP(cu.cuMemcpyHtoD_v2(va + gran, out, gran), "cuMemcpyHtoD");
    STEP(cu.cuMemcpyDtoH_v2(back, va + gran, gran), "cuMemcpyDtoH");
    if (memcmp(out, back, gran)) {
        snprintf(why, why_len, "data read back differs from data written");
        fail = why;
    }
#undef STEP
done:
    if (mapped)
        cu.cuMemUnmap(va + gran, gran);
    if (created)
        cu.cuMemRelease(h);
    if (reserved)
        cu.cuMemAddressFree(va, 4 * gran);
    free(out);
    free(back);
    return fail;
}

int main(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        printf("{\"driver_loaded\":false,\"error\":\"dlopen libcuda.so.1: %s\"}\n", dlerror());
        return 1;
    }
#define PROBE_LOAD(name)                                                          \
    if (!(cu.name = (__typeof__(&name))dlsym(lib, #name))) {                      \
        printf("{\"driver_loaded\":false,\"error\":\"missing symbol %s\"}\n", #name); \
        return 1;                                                                 \
    }
    PROBE_FUNCS(PROBE_LOAD)
#undef PROBE_LOAD
    Dl_info where;
    const char *library = dladdr((void *)cu.cuInit, &where) && where.dli_fname ? where.dli_fname
                                                                              : "unknown";
    bool simulated = dlsym(lib, "simcuda_call_count") != NULL;

    CUresult r;
    CUdevice dev;
    CUcontext ctx;
    int version = 0, vmm = 0, host_numa_vmm = 0, numa_id = -1;
    char name[256] = "";
    size_t total = 0;
    if ((r = cu.cuInit(0)) != CUDA_SUCCESS || (r = cu.cuDeviceGet(&dev, 0)) != CUDA_SUCCESS ||
        (r = cu.cuDevicePrimaryCtxRetain(&ctx, dev)) != CUDA_SUCCESS ||
        (r = cu.cuCtxSetCurrent(ctx)) != CUDA_SUCCESS) {
        printf("{\"driver_loaded\":true,\"library\":\"%s\",\"simulated\":%s,\"device\":false,"
               "\"error\":\"%s\"}\n", library, simulated ? "true" : "false", err_name(r));
        return 1;
    }
    cu.cuDriverGetVersion(&version);
    cu.cuDeviceGetName(name, sizeof name, dev);
    cu.cuDeviceTotalMem_v2(&total, dev);
    cu.cuDeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev);
    cu.cuDeviceGetAttribute(&host_numa_vmm,
                            CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev);
    cu.cuDeviceGetAttribute(&numa_id, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, dev);

    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev}};
    size_t gran = 0;
    char dev_why[160] = "", host_why[160] = "";
    const char *dev_fail = "cuMemGetAllocationGranularity failed";
    if (cu.cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) ==
        CUDA_SUCCESS)
        dev_fail = roundtrip(dev, &prop, gran, dev_why, sizeof dev_why);

    /* Demotion maps host-NUMA physical memory where device granules were. */
    CUmemAllocationProp host = prop;
    host.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
    host.location.id = numa_id < 0 ? 0 : numa_id;
    const char *host_fail = gran ? roundtrip(dev, &host, gran, host_why, sizeof host_why)
                                 : "no granularity";

    printf("{\"driver_loaded\":true,\"library\":\"%s\",\"simulated\":%s,\"driver_version\":%d,"
           "\"gpu\":\"%s\",\"total_bytes\":%zu,\"granularity\":%zu,\"vmm_attribute\":%d,\"vmm_ok\":"
           "%s,\"vmm_error\":\"%s\","
           "\"host_numa_attribute\":%d,\"host_numa_id\":%d,\"host_numa_ok\":%s,"
           "\"host_numa_error\":\"%s\"}\n",
           library, simulated ? "true" : "false", version, name, total, gran, vmm,
           dev_fail ? "false" : "true", dev_fail ? dev_fail : "", host_numa_vmm, numa_id,
           host_fail ? "false" : "true", host_fail ? host_fail : "");
    return dev_fail ? 1 : 0;
}
