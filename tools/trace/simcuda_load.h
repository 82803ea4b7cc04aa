/* Loading the simulated driver (build/sim/libcuda.so.1) into a process that does not link
 * libcuda: where it is, and the entry points replay needs from it.
 *
 * Search order: $VRAMSHIM_SIMCUDA, then next to the running executable: DIR/sim/libcuda.so.1
 * (the build tree: build/vramshim, build/sim/) and DIR/lib/libcuda.so.1 (the GPU bundle).
 * SIMCUDA_VRAM must be set before vs_simcuda_open(): simcuda reads it at cuInit.
 */
#ifndef VS_TRACE_SIMCUDA_LOAD_H
#define VS_TRACE_SIMCUDA_LOAD_H

#include <stddef.h>

#include <cuda.h>
#include <cudaTypedefs.h>

#include "allocator/driver.h"

struct vs_simcuda {
    void *lib;
    char path[4096];
    struct vs_driver drv; /* the allocator's table, filled from simcuda */
    PFN_cuStreamCreate_v2000 cuStreamCreate;
    PFN_cuMemAllocAsync_v11020 cuMemAllocAsync;
    PFN_cuMemFreeAsync_v11020 cuMemFreeAsync;
    PFN_cuGetErrorName_v6000 cuGetErrorName;
    size_t (*physical_in_use)(int device);
    CUdevice dev;
    CUcontext ctx; /* the primary context of device 0, current on the calling thread */
};

/* Finds simcuda (see above), dlopens it, resolves every entry point, initialises it and makes
 * device 0's primary context current. Returns 0, or -1 with a message in err. */
int vs_simcuda_open(struct vs_simcuda *sim, char *err, size_t errlen);

/* Writes the path simcuda would be loaded from into buf; -1 when none exists. */
int vs_simcuda_locate(char *buf, size_t len) __attribute__((nonnull));

/* "CUDA_ERROR_OUT_OF_MEMORY" for r, or "CUresult N" when simcuda cannot name it. */
const char *vs_simcuda_error_name(const struct vs_simcuda *sim, CUresult r, char *buf, size_t len);

#endif
