/* simcuda error handling: driver error codes for bad input, configuration messages, error names. */
#include "test_sim_common.h"

#include <string.h>

Test(sim_errors, calls_before_cuinit_are_not_initialized)
{
    CUdevice d;
    CUdeviceptr p;
    CUcontext c;
    CUmemGenericAllocationHandle h;
    CUmemAllocationProp prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    cr_assert_eq(cuDeviceGet(&d, 0), CUDA_ERROR_NOT_INITIALIZED);
    cr_assert_eq(cuMemAlloc_v2(&p, 1), CUDA_ERROR_NOT_INITIALIZED);
    cr_assert_eq(cuDevicePrimaryCtxRetain(&c, 0), CUDA_ERROR_NOT_INITIALIZED);
    cr_assert_eq(cuMemCreate(&h, GRANULE, &prop, 0), CUDA_ERROR_NOT_INITIALIZED);
    int v;
    CU_OK(cuDriverGetVersion(&v)); /* allowed before cuInit */
    cr_assert_eq(v, 13000);
    cr_assert_eq(cuInit(1), CUDA_ERROR_INVALID_VALUE);
}

Test(sim_errors, null_out_pointers_are_invalid_value)
{
    sim_start();
    cr_assert_eq(cuDeviceGet(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuDeviceTotalMem_v2(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuDeviceGetAttribute(NULL, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0),
                 CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuCtxGetCurrent(NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuDriverGetVersion(NULL), CUDA_ERROR_INVALID_VALUE);
    CUmemAllocationProp prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    cr_assert_eq(cuMemCreate(NULL, GRANULE, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    CUmemGenericAllocationHandle h;
    cr_assert_eq(cuMemCreate(&h, GRANULE, NULL, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemAddressReserve(NULL, GRANULE, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuPointerGetAttribute(NULL, CU_POINTER_ATTRIBUTE_CONTEXT, 0),
                 CUDA_ERROR_INVALID_VALUE);
}

Test(sim_errors, bad_devices_and_handles)
{
    sim_start();
    CUdevice d;
    char name[64];
    size_t bytes;
    cr_assert_eq(cuDeviceGet(&d, 1), CUDA_ERROR_INVALID_DEVICE);
    cr_assert_eq(cuDeviceGetName(name, sizeof name, 7), CUDA_ERROR_INVALID_DEVICE);
    cr_assert_eq(cuDeviceTotalMem_v2(&bytes, -1), CUDA_ERROR_INVALID_DEVICE);
    CUmemAllocationProp prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 3);
    CUmemGenericAllocationHandle h;
    cr_assert_eq(cuMemCreate(&h, GRANULE, &prop, 0), CUDA_ERROR_INVALID_DEVICE);
    prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    cr_assert_eq(cuMemCreate(&h, GRANULE + 4096, &prop, 0), CUDA_ERROR_INVALID_VALUE,
                 "not granular");
    cr_assert_eq(cuMemRelease(0x12345678), CUDA_ERROR_INVALID_VALUE);
    CUmemAllocationProp out;
    cr_assert_eq(cuMemGetAllocationPropertiesFromHandle(&out, 0x12345678),
                 CUDA_ERROR_INVALID_VALUE);
    int junk[8];
    cr_assert_eq(cuCtxSetCurrent((CUcontext)junk), CUDA_ERROR_INVALID_CONTEXT);
    cr_assert_eq(cuCtxPushCurrent_v2((CUcontext)junk), CUDA_ERROR_INVALID_CONTEXT);
    cr_assert_eq(cuCtxDestroy_v2((CUcontext)junk), CUDA_ERROR_INVALID_CONTEXT);
    int v;
    cr_assert_eq(cuDeviceGetAttribute(&v, (CUdevice_attribute)100000, 0), CUDA_ERROR_INVALID_VALUE);
}

Test(sim_errors, copies_into_unmapped_device_memory_are_invalid_value)
{
    sim_start();
    CUdeviceptr va;
    CU_OK(cuMemAddressReserve(&va, GRANULE, 0, 0, 0));
    char buf[64] = {0};
    cr_assert_eq(cuMemcpyHtoD_v2(va, buf, sizeof buf), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoH_v2(buf, va, sizeof buf), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD8_v2(va, 0, 64), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyHtoD_v2((CUdeviceptr)buf, buf, 1), CUDA_ERROR_INVALID_VALUE,
                 "host memory is not a device destination");
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, GRANULE));
    cr_assert_eq(cuMemcpyHtoD_v2(p + GRANULE - 8, buf, 16), CUDA_ERROR_INVALID_VALUE,
                 "runs past the mapping");
    CU_OK(cuMemcpyHtoD_v2(p, buf, 0)); /* empty copies succeed */
}

Test(sim_errors, context_stack)
{
    CU_OK(cuInit(0));
    CUcontext primary, created, popped, cur;
    CU_OK(cuDevicePrimaryCtxRetain(&primary, 0));
    CU_OK(cuCtxPushCurrent_v2(primary));
    CU_OK(cuCtxCreate_v4(&created, NULL, 0, 0));
    CU_OK(cuCtxGetCurrent(&cur));
    cr_assert_eq(cur, created);
    CU_OK(cuCtxPopCurrent_v2(&popped));
    cr_assert_eq(popped, created);
    CU_OK(cuCtxGetCurrent(&cur));
    cr_assert_eq(cur, primary);
    CU_OK(cuCtxDestroy_v2(created));
    cr_assert_eq(cuCtxPushCurrent_v2(created), CUDA_ERROR_INVALID_CONTEXT);
    cr_assert_eq(cuCtxDestroy_v2(primary), CUDA_ERROR_INVALID_CONTEXT,
                 "primary is released, not destroyed");
    unsigned int flags;
    int active;
    CU_OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    cr_assert_eq(active, 1);
    CU_OK(cuDevicePrimaryCtxRelease_v2(0));
    CU_OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    cr_assert_eq(active, 0);
    cr_assert_eq(cuDevicePrimaryCtxRelease_v2(0), CUDA_ERROR_INVALID_CONTEXT);
}

Test(sim_errors, error_names_and_strings)
{
    const char *s;
    CU_OK(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &s));
    cr_assert_str_eq(s, "CUDA_ERROR_OUT_OF_MEMORY");
    CU_OK(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
    cr_assert_str_eq(s, "out of memory");
    CU_OK(cuGetErrorName(CUDA_ERROR_NOT_READY, &s));
    cr_assert_str_eq(s, "CUDA_ERROR_NOT_READY");
    cr_assert_eq(cuGetErrorName((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
    cr_assert_null(s);
    cr_assert_eq(cuGetErrorString(CUDA_SUCCESS, NULL), CUDA_ERROR_INVALID_VALUE);
}

static void bad_vram(void)
{
    setenv("SIMCUDA_VRAM", "12XB", 1);
}

Test(sim_errors, bad_size_fails_cuinit_naming_the_variable, .init = bad_vram)
{
    cr_redirect_stderr();
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE, "the failure is sticky");
    fflush(stderr);
    cr_assert_stderr_eq_str(
        "simcuda: SIMCUDA_VRAM=\"12XB\": unknown unit \"XB\" (use KiB, MiB, GiB, "
        "TiB or plain bytes)\n");
}

static void bad_devices(void)
{
    setenv("SIMCUDA_DEVICES", "0", 1);
}

Test(sim_errors, bad_device_count_is_reported, .init = bad_devices)
{
    cr_redirect_stderr();
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE);
    fflush(stderr);
    cr_assert_stderr_eq_str("simcuda: SIMCUDA_DEVICES=\"0\": expected a count from 1 to 16\n");
}

static void sizes(void)
{
    setenv("SIMCUDA_VRAM", "1536MiB", 1);
    setenv("SIMCUDA_VRAM_TAKEN", "524288KiB", 1);
    setenv("SIMCUDA_DEVICES", "2", 1);
}

Test(sim_errors, sizes_accept_units_and_devices_are_separate, .init = sizes)
{
    sim_start();
    size_t free_b, total_b;
    CU_OK(cuMemGetInfo_v2(&free_b, &total_b));
    cr_assert_eq(total_b, 1536 * MiB);
    cr_assert_eq(free_b, 1024 * MiB);
    int count;
    CU_OK(cuDeviceGetCount(&count));
    cr_assert_eq(count, 2);
    CUcontext c1;
    CU_OK(cuDevicePrimaryCtxRetain(&c1, 1));
    CU_OK(cuCtxSetCurrent(c1));
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 100 * MiB));
    cr_assert_eq(simcuda_physical_in_use(1), 100 * MiB);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
    CUdevice d;
    CU_OK(cuCtxGetDevice(&d));
    cr_assert_eq(d, 1);
}

Test(sim_errors, unsupported_call_is_logged_once)
{
    sim_start();
    /* The 32-bit cuMemAlloc, as a program built against CUDA 3.0 resolves it. */
    CUresult (*alloc_v1)(unsigned int *, unsigned int);
    CU_OK(cuGetProcAddress_v2("cuMemAlloc", (void **)&alloc_v1, 3000, 0, NULL));
    unsigned int p;
    cr_redirect_stderr();
    cr_assert_eq(alloc_v1(&p, 1), CUDA_ERROR_NOT_SUPPORTED);
    cr_assert_eq(alloc_v1(&p, 1), CUDA_ERROR_NOT_SUPPORTED);
    fflush(stderr);
    cr_assert_stderr_eq_str(
        "simcuda: cuMemAlloc (32-bit device pointers; use cuMemAlloc_v2) is not "
        "supported by the simulated driver\n");
}

static void debug_log(void)
{
    setenv("SIMCUDA_LOG", "debug", 1);
}

Test(sim_errors, debug_log_names_every_call_and_resolution, .init = debug_log)
{
    cr_redirect_stderr();
    void *fn;
    CU_OK(cuGetProcAddress_v2("cuMemAllocAsync", &fn, 12000,
                              CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, NULL));
    fflush(stderr);
    cr_assert_stderr_eq_str("simcuda: call cuGetProcAddress_v2\n"
                            "simcuda: cuGetProcAddress(cuMemAllocAsync, 12000, 2) -> "
                            "cuMemAllocAsync_ptsz\n");
}
