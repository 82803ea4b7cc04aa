/* Fetches allocation entry points with dlsym from every kind of handle: the driver's own
 * handle, RTLD_DEFAULT and RTLD_NEXT (the driver is opened RTLD_GLOBAL so both find it without
 * the shim too), and uses each for one allocation and free. Also checks that a look-up of a
 * symbol the shim does not hook returns exactly the driver's function.
 */
#include <cudaTypedefs.h>

#include "interpose_prog.h"

static void pair(void *handle, const char *label)
{
    PFN_cuMemAlloc_v3020 alloc = (PFN_cuMemAlloc_v3020)dlsym(handle, "cuMemAlloc_v2");
    PFN_cuMemFree_v3020 release = (PFN_cuMemFree_v3020)dlsym(handle, "cuMemFree_v2");
    if (!alloc || !release) {
        fprintf(stderr, "dlsym(%s) found no cuMemAlloc_v2/cuMemFree_v2\n", label);
        exit(1);
    }
    CUdeviceptr p;
    CK(CALLED("cuMemAlloc_v2", alloc(&p, 8192)));
    CK(CALLED("cuMemFree_v2", release(p)));
    printf("dlsym %s ok\n", label);
}

int main(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        exit(1);
    }
    PFN_cuInit_v2000 init = (PFN_cuInit_v2000)dlsym(lib, "cuInit");
    printf("unhooked same %d\n", init == (PFN_cuInit_v2000)dlsym(RTLD_DEFAULT, "cuInit"));
    printf("missing null %d\n", dlsym(lib, "cuNoSuchEntryPoint") == NULL);
    CK(init(0));
    CUdevice dev;
    CUcontext ctx;
    CK(((PFN_cuDeviceGet_v2000)dlsym(lib, "cuDeviceGet"))(&dev, 0));
    CK(((PFN_cuDevicePrimaryCtxRetain_v7000)dlsym(lib, "cuDevicePrimaryCtxRetain"))(&ctx, dev));
    CK(((PFN_cuCtxSetCurrent_v4000)dlsym(lib, "cuCtxSetCurrent"))(ctx));

    pair(lib, "handle");
    pair(RTLD_DEFAULT, "default");
    pair(RTLD_NEXT, "next");
    print_calls(lib);
    return 0;
}
