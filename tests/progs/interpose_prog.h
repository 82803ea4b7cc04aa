/* Shared by the interposer's test programs (tests/progs/interpose_*.c): error checks, the
 * calls a program made, the driver's own call counters and the linked programs' set-up.
 *
 * Programs print what they saw on stdout, one fact per line ("called cuMemAlloc_v2 3", "count
 * cuMemAlloc_v2 3"): tests compare these lines between runs with and without the shim and against
 * the trace. Addresses are never printed, they differ between runs.
 */
#ifndef VS_INTERPOSE_PROG_H
#define VS_INTERPOSE_PROG_H

#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(call)                                                                             \
    do {                                                                                     \
        CUresult ck_ = (call);                                                               \
        if (ck_ != CUDA_SUCCESS) {                                                           \
            fprintf(stderr, "%s:%d: %s returned %d\n", __FILE__, __LINE__, #call, (int)ck_); \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

/* The linked programs' start: cuInit, device 0, its primary context made current. */
static inline CUdevice setup_primary(void)
{
    CUdevice dev;
    CUcontext ctx;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    return dev;
}

/* The hooked entry points this program called, by exact driver symbol. */
static struct {
    const char *name;
    unsigned long n;
} called_tab[32];

/* Notes one call of `name` and evaluates to `result`: CALLED("cuMemAlloc_v2", cuMemAlloc(..)). */
#define CALLED(name, call) (called(name), (call))

static inline void called(const char *name)
{
    unsigned i = 0;
    while (called_tab[i].name && strcmp(called_tab[i].name, name) != 0)
        i++;
    called_tab[i].name = name;
    called_tab[i].n++;
}

/* Prints "called NAME N" for every noted symbol and, when the driver is simcuda (its counters
 * found through `handle`, RTLD_DEFAULT for linked programs), "count NAME N" as the driver saw it.
 */
static inline void print_calls(void *handle)
{
    unsigned long (*count)(const char *) =
        (unsigned long (*)(const char *))dlsym(handle, "simcuda_call_count");
    for (unsigned i = 0; called_tab[i].name; i++) {
        printf("called %s %lu\n", called_tab[i].name, called_tab[i].n);
        if (count)
            printf("count %s %lu\n", called_tab[i].name, count(called_tab[i].name));
    }
}

#endif
