/* A host process as the shim meets it in Python with PyTorch: it reaches the driver by dlopen
 * (as cudart does) and allocates, then dlopens a C++ library (tests/progs/guest_cxx.cc) and
 * times a loop of caught C++ exceptions.
 *
 * Usage: guest_host N. Prints "caught N", "ns_per_exception X" and one "lib NAME" line per
 * shared object mapped at the end (base names, from /proc/self/maps), for tests and
 * bench/bench_guest.c to compare runs with and without the shim.
 */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef CUresult (*init_fn)(unsigned);
typedef CUresult (*device_fn)(CUdevice *, int);
typedef CUresult (*retain_fn)(CUcontext *, CUdevice);
typedef CUresult (*current_fn)(CUcontext);
typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*free_fn)(CUdeviceptr);

static void *need(void *handle, const char *name)
{
    void *p = dlsym(handle, name);
    if (!p) {
        fprintf(stderr, "guest_host: %s: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

static int use_driver(void)
{
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!cuda) {
        fprintf(stderr, "guest_host: %s\n", dlerror());
        return -1;
    }
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr p;
    if (((init_fn)need(cuda, "cuInit"))(0) != CUDA_SUCCESS ||
        ((device_fn)need(cuda, "cuDeviceGet"))(&dev, 0) != CUDA_SUCCESS ||
        ((retain_fn)need(cuda, "cuDevicePrimaryCtxRetain"))(&ctx, dev) != CUDA_SUCCESS ||
        ((current_fn)need(cuda, "cuCtxSetCurrent"))(ctx) != CUDA_SUCCESS ||
        ((alloc_fn)need(cuda, "cuMemAlloc_v2"))(&p, 1 << 20) != CUDA_SUCCESS ||
        ((free_fn)need(cuda, "cuMemFree_v2"))(p) != CUDA_SUCCESS) {
        fprintf(stderr, "guest_host: the driver calls failed\n");
        return -1;
    }
    return 0;
}

static void print_libs(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096], seen[8192] = "";
    while (f && fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (!path || !strstr(path, ".so"))
            continue;
        path[strcspn(path, "\n")] = '\0';
        const char *base = strrchr(path, '/') + 1;
        char key[300];
        snprintf(key, sizeof key, "|%s|", base);
        if (strstr(seen, key) || strlen(seen) + strlen(key) >= sizeof seen)
            continue;
        strcat(seen, key);
        printf("lib %s\n", base);
    }
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    if (n <= 0 || use_driver() != 0)
        return 1;
    void *cxx = dlopen(VS_BUILD_DIR "/tests/progs/libguest_cxx.so", RTLD_NOW | RTLD_LOCAL);
    if (!cxx) {
        fprintf(stderr, "guest_host: %s\n", dlerror());
        return 1;
    }
    long (*throw_catch)(long) = (long (*)(long))need(cxx, "vs_cxx_throw_catch");
    throw_catch(1); /* binds the unwinder's symbols before timing */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long caught = throw_catch(n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("caught %ld\nns_per_exception %.1f\n", caught, ns / (double)n);
    print_libs();
    return caught == n ? 0 : 1;
}
