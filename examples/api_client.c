/* A program that uses vramshim's C API (include/vramshim.h) and still runs without the shim: it
 * looks the functions up with dlsym(RTLD_DEFAULT, ...), which finds them only when
 * libvramshim.so is preloaded. Build and run (docs/stages.md, "Building against the C API"):
 *
 *   cc -Iinclude -I/usr/local/cuda/include examples/api_client.c -o api_client \
 *      -L/usr/local/cuda/lib64/stubs -lcuda -ldl
 *   LD_LIBRARY_PATH=build/sim LD_PRELOAD=$PWD/build/libvramshim.so ./api_client
 *
 * It allocates 64 MiB in stage "load", tags it "weights", demotes the stage to host memory and
 * prints the shim's status JSON.
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "vramshim.h"

#define CHECK(call)                                                                     \
    do {                                                                                \
        CUresult r_ = (call);                                                           \
        if (r_ != CUDA_SUCCESS) {                                                       \
            fprintf(stderr, "api_client: %s failed with CUresult %d\n", #call, (int)r_); \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

int main(void)
{
    /* The API's types, from the header; NULL when the shim is not loaded. */
    int (*stage_begin)(const char *) =
        (int (*)(const char *))dlsym(RTLD_DEFAULT, "vramshim_stage_begin");
    int (*stage_end)(const char *) =
        (int (*)(const char *))dlsym(RTLD_DEFAULT, "vramshim_stage_end");
    int (*tag)(CUdeviceptr, const char *) =
        (int (*)(CUdeviceptr, const char *))dlsym(RTLD_DEFAULT, "vramshim_tag");
    int (*demote)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "vramshim_demote");
    int (*stats_json)(char *, size_t) =
        (int (*)(char *, size_t))dlsym(RTLD_DEFAULT, "vramshim_stats_json");
    if (!stage_begin || !stage_end || !tag || !demote || !stats_json) {
        printf("vramshim is not loaded: running without it\n");
        stage_begin = stage_end = demote = NULL;
    }

    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr weights;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));

    if (stage_begin)
        printf("stage_begin load: %d\n", stage_begin("load"));
    CHECK(cuMemAlloc(&weights, 64u << 20));
    if (stage_begin) {
        printf("tag weights: %d\n", tag(weights, "weights"));
        printf("stage_end load: %d\n", stage_end("load"));
        int rc = demote("load");
        printf("demote load: %d%s\n", rc,
               rc == VRAMSHIM_EUNSUPPORTED ? " (no arena or eviction in this process)" : "");
        int n = stats_json(NULL, 0);
        char *buf = n > 0 ? malloc((size_t)n + 1) : NULL;
        if (buf && stats_json(buf, (size_t)n + 1) == n)
            printf("status: %s\n", buf);
        free(buf);
    }
    CHECK(cuMemFree(weights));
    return 0;
}
