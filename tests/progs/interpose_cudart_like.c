/* Reaches the driver the way cudart does: dlopen("libcuda.so.1"), dlsym of cuGetProcAddress_v2,
 * cuInit, cuDriverGetVersion and cuGetExportTable, then cuGetProcAddress for everything else,
 * with several cudaVersion values and stream flags (and the CUDA 11.3 cuGetProcAddress). Each
 * entry point obtained is used for one allocation (and its free).
 */
#include <cudaTypedefs.h>

#include "interpose_prog.h"

static void *lib;
static PFN_cuGetProcAddress_v12000 get_proc;

static void *lookup(PFN_cuGetProcAddress_v12000 gpa, const char *symbol, int version,
                    cuuint64_t flags)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult status;
    CK(gpa(symbol, &fn, version, flags, &status));
    if (status != CU_GET_PROC_ADDRESS_SUCCESS || !fn) {
        fprintf(stderr, "cuGetProcAddress(%s, %d, %llu) found nothing\n", symbol, version,
                (unsigned long long)flags);
        exit(1);
    }
    return fn;
}

static void setup(void)
{
    lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        exit(1);
    }
    get_proc = (PFN_cuGetProcAddress_v12000)dlsym(lib, "cuGetProcAddress_v2");
    PFN_cuInit_v2000 init = (PFN_cuInit_v2000)dlsym(lib, "cuInit");
    PFN_cuDriverGetVersion_v2020 version =
        (PFN_cuDriverGetVersion_v2020)dlsym(lib, "cuDriverGetVersion");
    void *export_table = dlsym(lib, "cuGetExportTable");
    if (!get_proc || !init || !version || !export_table) {
        fprintf(stderr, "dlsym: missing driver entry points\n");
        exit(1);
    }
    int v = 0;
    CK(init(0));
    CK(version(&v));
    /* cudart then fetches cuGetExportTable through cuGetProcAddress: it must be the driver's. */
    printf("export_table untouched %d\n",
           lookup(get_proc, "cuGetExportTable", v, 0) == export_table);

    CUdevice dev;
    CUcontext ctx;
    CK(((PFN_cuDeviceGet_v2000)lookup(get_proc, "cuDeviceGet", 12000, 0))(&dev, 0));
    CK(((PFN_cuDevicePrimaryCtxRetain_v7000)lookup(get_proc, "cuDevicePrimaryCtxRetain", 12000, 0))(
        &ctx, dev));
    CK(((PFN_cuCtxSetCurrent_v4000)lookup(get_proc, "cuCtxSetCurrent", 12000, 0))(ctx));
}

static void sync_pair(PFN_cuGetProcAddress_v12000 gpa, int version, cuuint64_t flags)
{
    PFN_cuMemAlloc_v3020 alloc = (PFN_cuMemAlloc_v3020)lookup(gpa, "cuMemAlloc", version, flags);
    PFN_cuMemFree_v3020 release = (PFN_cuMemFree_v3020)lookup(gpa, "cuMemFree", version, flags);
    CUdeviceptr p;
    CK(CALLED("cuMemAlloc_v2", alloc(&p, 4096)));
    CK(CALLED("cuMemFree_v2", release(p)));
}

static void async_pair(int version, cuuint64_t flags, const char *alloc_name, const char *free_name)
{
    PFN_cuMemAllocAsync_v11020 alloc =
        (PFN_cuMemAllocAsync_v11020)lookup(get_proc, "cuMemAllocAsync", version, flags);
    PFN_cuMemFreeAsync_v11020 release =
        (PFN_cuMemFreeAsync_v11020)lookup(get_proc, "cuMemFreeAsync", version, flags);
    PFN_cuStreamSynchronize_v2000 sync =
        (PFN_cuStreamSynchronize_v2000)lookup(get_proc, "cuStreamSynchronize", version, flags);
    CUdeviceptr p;
    CK(CALLED(alloc_name, alloc(&p, 1 << 16, 0)));
    CK(CALLED(free_name, release(p, 0)));
    CK(sync(0));
}

int main(void)
{
    setup();
    sync_pair(get_proc, 3020, CU_GET_PROC_ADDRESS_DEFAULT);
    sync_pair(get_proc, 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM);
    sync_pair(get_proc, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    async_pair(11020, CU_GET_PROC_ADDRESS_LEGACY_STREAM, "cuMemAllocAsync", "cuMemFreeAsync");
    async_pair(12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuMemAllocAsync_ptsz",
               "cuMemFreeAsync_ptsz");

    /* cuGetProcAddress can hand out itself; what it returns must keep routing. */
    sync_pair((PFN_cuGetProcAddress_v12000)lookup(get_proc, "cuGetProcAddress", 12000, 0), 12000,
              0);

    /* CUDA 11.3-11.8 runtimes use the 4-argument cuGetProcAddress. */
    PFN_cuGetProcAddress_v11030 get_proc_v1 =
        (PFN_cuGetProcAddress_v11030)dlsym(lib, "cuGetProcAddress");
    void *fn = NULL;
    CK(get_proc_v1("cuMemAlloc", &fn, 11030, 0));
    CUdeviceptr p;
    CK(CALLED("cuMemAlloc_v2", ((PFN_cuMemAlloc_v3020)fn)(&p, 512)));
    CK(get_proc_v1("cuMemFree", &fn, 11030, 0));
    CK(CALLED("cuMemFree_v2", ((PFN_cuMemFree_v3020)fn)(p)));

    PFN_cuMemGetInfo_v3020 info =
        (PFN_cuMemGetInfo_v3020)lookup(get_proc, "cuMemGetInfo", 12000, 0);
    size_t total = 0;
    printf("meminfo null_free %d\n", (int)CALLED("cuMemGetInfo_v2", info(NULL, &total)));
    print_calls(lib);
    return 0;
}
