/* simcuda cuGetProcAddress: version and per-thread-flag resolution to exact exported symbols. */
#include "test_sim_common.h"

#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <string.h>

static void *driver;

static void open_driver(void)
{
    driver = dlopen(VS_BUILD_DIR "/sim/libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    cr_assert_not_null(driver, "the test links simcuda: %s", dlerror());
}

/* Resolves and checks the pointer is exactly the exported `expect` (also by dladdr name). */
static void expect_symbol(const char *name, int version, cuuint64_t flags, const char *expect)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult status = 99;
    cr_assert_eq(cuGetProcAddress_v2(name, &fn, version, flags, &status), CUDA_SUCCESS,
                 "%s at %d", name, version);
    cr_assert_eq(status, CU_GET_PROC_ADDRESS_SUCCESS);
    void *exact = dlsym(driver, expect);
    cr_assert_not_null(exact, "%s is exported", expect);
    cr_assert_eq(fn, exact, "%s at %d (flags %llu) should be %s", name, version,
                 (unsigned long long)flags, expect);
    Dl_info info;
    cr_assert(dladdr(fn, &info) && info.dli_sname);
    cr_assert_str_eq(info.dli_sname, expect);
}

Test(sim_procaddr, version_picks_the_symbol, .init = open_driver)
{
    expect_symbol("cuMemAlloc", 3000, 0, "cuMemAlloc");
    expect_symbol("cuMemAlloc", 3020, 0, "cuMemAlloc_v2");
    expect_symbol("cuMemAlloc", 13000, 0, "cuMemAlloc_v2");
    expect_symbol("cuMemFree", 12000, 0, "cuMemFree_v2");
    expect_symbol("cuMemGetInfo", 12000, 0, "cuMemGetInfo_v2");
    expect_symbol("cuGetProcAddress", 11030, 0, "cuGetProcAddress");
    expect_symbol("cuGetProcAddress", 12000, 0, "cuGetProcAddress_v2");
    expect_symbol("cuCtxCreate", 12050, 0, "cuCtxCreate_v4");
    expect_symbol("cuStreamDestroy", 4000, 0, "cuStreamDestroy_v2");
    expect_symbol("cuEventElapsedTime", 12080, 0, "cuEventElapsedTime_v2");
    expect_symbol("cuDevicePrimaryCtxRelease", 11000, 0, "cuDevicePrimaryCtxRelease_v2");
}

Test(sim_procaddr, per_thread_flag_picks_ptsz_and_ptds, .init = open_driver)
{
    cuuint64_t ptds = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
    expect_symbol("cuMemAllocAsync", 12000, 0, "cuMemAllocAsync");
    expect_symbol("cuMemAllocAsync", 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, "cuMemAllocAsync");
    expect_symbol("cuMemAllocAsync", 12000, ptds, "cuMemAllocAsync_ptsz");
    expect_symbol("cuMemFreeAsync", 12000, ptds, "cuMemFreeAsync_ptsz");
    expect_symbol("cuMemcpyHtoD", 12000, ptds, "cuMemcpyHtoD_v2_ptds");
    expect_symbol("cuMemcpyHtoDAsync", 12000, ptds, "cuMemcpyHtoDAsync_v2_ptsz");
    expect_symbol("cuMemcpyHtoDAsync", 12000, 0, "cuMemcpyHtoDAsync_v2");
    expect_symbol("cuStreamSynchronize", 12000, ptds, "cuStreamSynchronize_ptsz");
    expect_symbol("cuEventRecord", 12000, ptds, "cuEventRecord_ptsz");
    /* Per-thread forms appeared in 7000: older versions get the legacy symbol. */
    expect_symbol("cuMemcpyHtoD", 6050, ptds, "cuMemcpyHtoD_v2");
    /* Names without a per-thread form resolve normally under the flag. */
    expect_symbol("cuMemCreate", 12000, ptds, "cuMemCreate");
}

Test(sim_procaddr, unknown_or_too_old_is_not_found, .init = open_driver)
{
    void *fn = (void *)1;
    CUdriverProcAddressQueryResult status;
    cr_assert_eq(cuGetProcAddress_v2("cuNoSuchCall", &fn, 13000, 0, &status), CUDA_ERROR_NOT_FOUND);
    cr_assert_eq(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    cr_assert_null(fn);
    cr_assert_eq(cuGetProcAddress_v2("cuMemAllocAsync", &fn, 11010, 0, &status),
                 CUDA_ERROR_NOT_FOUND);
    cr_assert_eq(status, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    /* Exact versioned names are not lookup keys, as with the driver. */
    cr_assert_eq(cuGetProcAddress_v2("cuMemAlloc_v2", &fn, 13000, 0, &status),
                 CUDA_ERROR_NOT_FOUND);
    /* A version simcuda does not implement never falls back to an older signature. */
    cr_assert_eq(cuGetProcAddress_v2("cuCtxCreate", &fn, 11040, 0, &status), CUDA_ERROR_NOT_FOUND);
    cr_assert_eq(cuGetProcAddress_v2("cuMemMap", NULL, 13000, 0, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuGetProcAddress_v2("cuMemMap", &fn, 13000, 4, NULL), CUDA_ERROR_INVALID_VALUE);
}

/* cudart 11.x calls the 4-argument symbol the driver still exports. */
Test(sim_procaddr, four_argument_form_resolves_the_same, .init = open_driver)
{
    PFN_cuGetProcAddress_v11030 old =
        (PFN_cuGetProcAddress_v11030)dlsym(driver, "cuGetProcAddress");
    cr_assert_not_null(old);
    void *fn = NULL;
    cr_assert_eq(old("cuMemFreeAsync", &fn, 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM),
                 CUDA_SUCCESS);
    cr_assert_eq(fn, dlsym(driver, "cuMemFreeAsync_ptsz"));
    cr_assert_eq(old("cuNoSuchCall", &fn, 11020, 0), CUDA_ERROR_NOT_FOUND);
    cr_assert_eq(simcuda_call_count("cuGetProcAddress"), 2);
}

Test(sim_procaddr, resolved_functions_work_and_are_counted, .init = open_driver)
{
    sim_start();
    void *fn;
    CU_OK(cuGetProcAddress_v2("cuMemAlloc", &fn, 12000, 0, NULL));
    simcuda_reset_call_counts();
    CUdeviceptr p;
    CU_OK(((CUresult(*)(CUdeviceptr *, size_t))fn)(&p, 100));
    cr_assert_eq(simcuda_call_count("cuMemAlloc_v2"), 1);
    cr_assert_eq(simcuda_call_count("cuMemAlloc"), 0);
}

Test(sim_procaddr, every_exported_entry_point_has_its_own_address, .init = open_driver)
{
    static const char *const names[] = {
        "cuMemAlloc", "cuMemAlloc_v2", "cuMemAllocAsync", "cuMemAllocAsync_ptsz",
        "cuMemFreeAsync", "cuMemFreeAsync_ptsz", "cuStreamSynchronize", "cuStreamSynchronize_ptsz",
        "cuMemcpyHtoD_v2", "cuMemcpyHtoD_v2_ptds", "cuEventDestroy", "cuEventDestroy_v2",
        "cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxRelease_v2", "cuGetProcAddress",
        "cuGetProcAddress_v2", "cuStreamDestroy", "cuStreamDestroy_v2", "cuDeviceGetUuid",
        "cuDeviceGetUuid_v2"};
    size_t n = sizeof names / sizeof names[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_assert_neq(dlsym(driver, names[i]), dlsym(driver, names[j]),
                          "%s and %s share an address", names[i], names[j]);
}

/* The whole export list, read with nm: only driver and control names, each at its own address. */
Test(sim_procaddr, exports_are_distinct_driver_symbols)
{
    FILE *nm = popen("nm -D --defined-only " VS_BUILD_DIR "/sim/libcuda.so.1", "r");
    cr_assert_not_null(nm);
    char line[256], names[400][80];
    unsigned long long addrs[400];
    size_t n = 0;
    while (fgets(line, sizeof line, nm) && n < 400) {
        char type;
        if (sscanf(line, "%llx %c %79s", &addrs[n], &type, names[n]) != 3)
            continue;
        cr_assert(strncmp(names[n], "cu", 2) == 0 || strncmp(names[n], "simcuda_", 8) == 0,
                  "unexpected export %s", names[n]);
        for (size_t k = 0; k < n; k++)
            cr_assert_neq(addrs[k], addrs[n], "%s and %s share an address", names[k], names[n]);
        n++;
    }
    pclose(nm);
    cr_assert_gt(n, 150, "nm listed %zu symbols", n);
}

Test(sim_procaddr, export_table_is_not_supported_and_does_not_initialise)
{
    const void *table = (const void *)0x1234;
    CUuuid id = {{0}};
    cr_assert_eq(cuGetExportTable(&table, &id), CUDA_ERROR_NOT_SUPPORTED);
    cr_assert_eq(table, (const void *)0x1234);
    int count;
    cr_assert_eq(cuDeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED);
}
