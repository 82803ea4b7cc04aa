/* Reaches whatever libcuda.so.1 the library path gives through dlopen, as cudart does, and prints
 * what each call returns. The tests give it a library with only a few driver entry points
 * (tests/stubs/partial_driver.c): the output must be the same with the shim as without. */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>

int main(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    CUresult (*init)(unsigned) = (CUresult(*)(unsigned))dlsym(lib, "cuInit");
    CUresult (*alloc)(CUdeviceptr *, size_t) =
        (CUresult(*)(CUdeviceptr *, size_t))dlsym(lib, "cuMemAlloc_v2");
    CUdeviceptr p = 0;
    printf("cuInit %d\n", init ? (int)init(0) : -1);
    printf("cuMemAlloc_v2 %d\n", alloc ? (int)alloc(&p, 4096) : -1);
    printf("cuMemFree_v2 found %d\n", dlsym(lib, "cuMemFree_v2") != NULL);
    printf("cuMemGetInfo_v2 found %d\n", dlsym(lib, "cuMemGetInfo_v2") != NULL);
    return 0;
}
