/* Shared by the stage test programs (tests/progs/stages_*.c): the public API looked up with
 * dlsym(RTLD_DEFAULT), as a program that also runs without the shim would, and a device context
 * on simcuda. */
#ifndef VS_STAGES_PROG_H
#define VS_STAGES_PROG_H

#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "interpose_prog.h"
#include "vramshim.h"

static struct {
    int (*stage_begin)(const char *);
    int (*stage_end)(const char *);
    int (*tag)(CUdeviceptr, const char *);
    int (*demote)(const char *);
    int (*promote)(const char *);
    int (*stats_json)(char *, size_t);
    int (*match_function)(const char *, const char *, char *, size_t);
    int (*patterns_json)(char *, size_t);
} vs_api;

#define VS_LOOKUP(field, name)                                                     \
    do {                                                                           \
        *(void **)&vs_api.field = dlsym(RTLD_DEFAULT, name);                       \
        if (!vs_api.field) {                                                       \
            fprintf(stderr, "%s not found: is the shim preloaded?\n", name);       \
            exit(3);                                                               \
        }                                                                          \
    } while (0)

static inline void vs_api_lookup(void)
{
    VS_LOOKUP(stage_begin, "vramshim_stage_begin");
    VS_LOOKUP(stage_end, "vramshim_stage_end");
    VS_LOOKUP(tag, "vramshim_tag");
    VS_LOOKUP(demote, "vramshim_demote");
    VS_LOOKUP(promote, "vramshim_promote");
    VS_LOOKUP(stats_json, "vramshim_stats_json");
    VS_LOOKUP(match_function, "vramshim_policy_match_function");
    VS_LOOKUP(patterns_json, "vramshim_policy_patterns_json");
}

static inline CUcontext vs_prog_context(void)
{
    CUcontext ctx;
    CK(cuInit(0));
    CUdevice dev;
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    return ctx;
}

/* Prints "stats JSON" with the shim's status. */
static inline void vs_print_stats(void)
{
    int n = vs_api.stats_json(NULL, 0);
    if (n < 0) {
        printf("stats-error %d\n", n);
        return;
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf || vs_api.stats_json(buf, (size_t)n + 1) != n)
        exit(4);
    printf("stats %s\n", buf);
    free(buf);
}

#endif
