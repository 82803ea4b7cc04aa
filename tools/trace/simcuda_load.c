/* Locating and loading simcuda for replay (see simcuda_load.h). */
#include "tools/trace/simcuda_load.h"

#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const vs_simcuda_dirs[] = {"sim", "lib"};

int vs_simcuda_locate(char *buf, size_t len)
{
    const char *env = getenv("VRAMSHIM_SIMCUDA");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return access(buf, R_OK) ? -1 : 0;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    const char *dir = dirname(exe);
    for (size_t i = 0; i < sizeof vs_simcuda_dirs / sizeof *vs_simcuda_dirs; i++) {
        snprintf(buf, len, "%s/%s/libcuda.so.1", dir, vs_simcuda_dirs[i]);
        if (!access(buf, R_OK))
            return 0;
    }
    snprintf(buf, len, "%s/sim/libcuda.so.1", dir);
    return -1;
}

static void *vs_simcuda_resolve(const char *name, void *lib)
{
    return dlsym(lib, name);
}

#define VS_SIM_CALL(call)                                                                  \
    do {                                                                                   \
        CUresult r_ = (call);                                                              \
        if (r_ != CUDA_SUCCESS) {                                                          \
            char name_[64];                                                                \
            snprintf(err, errlen, "%s: %s failed: %s", sim->path, #call,                   \
                     vs_simcuda_error_name(sim, r_, name_, sizeof name_));                 \
            return -1;                                                                     \
        }                                                                                  \
    } while (0)

int vs_simcuda_open(struct vs_simcuda *sim, char *err, size_t errlen)
{
    memset(sim, 0, sizeof *sim);
    if (vs_simcuda_locate(sim->path, sizeof sim->path)) {
        snprintf(err, errlen, "simulated driver not found at %s (build it with `make sim`, or "
                              "set VRAMSHIM_SIMCUDA=path/to/libcuda.so.1)", sim->path);
        return -1;
    }
    sim->lib = dlopen(sim->path, RTLD_NOW | RTLD_LOCAL);
    if (!sim->lib) {
        snprintf(err, errlen, "cannot load %s: %s", sim->path, dlerror());
        return -1;
    }
    const char *missing = NULL;
    sim->cuStreamCreate = (PFN_cuStreamCreate_v2000)dlsym(sim->lib, "cuStreamCreate");
    sim->cuMemAllocAsync = (PFN_cuMemAllocAsync_v11020)dlsym(sim->lib, "cuMemAllocAsync");
    sim->cuMemFreeAsync = (PFN_cuMemFreeAsync_v11020)dlsym(sim->lib, "cuMemFreeAsync");
    sim->cuGetErrorName = (PFN_cuGetErrorName_v6000)dlsym(sim->lib, "cuGetErrorName");
    *(void **)&sim->physical_in_use = dlsym(sim->lib, "simcuda_physical_in_use");
    if (!sim->cuStreamCreate)
        missing = "cuStreamCreate";
    else if (!sim->cuMemAllocAsync)
        missing = "cuMemAllocAsync";
    else if (!sim->cuMemFreeAsync)
        missing = "cuMemFreeAsync";
    else if (!sim->physical_in_use)
        missing = "simcuda_physical_in_use";
    if (missing || vs_driver_load(&sim->drv, vs_simcuda_resolve, sim->lib, &missing)) {
        snprintf(err, errlen, "%s lacks %s: is it simcuda?", sim->path, missing);
        return -1;
    }
    VS_SIM_CALL(sim->drv.cuInit(0));
    VS_SIM_CALL(sim->drv.cuDeviceGet(&sim->dev, 0));
    VS_SIM_CALL(sim->drv.cuDevicePrimaryCtxRetain(&sim->ctx, sim->dev));
    VS_SIM_CALL(sim->drv.cuCtxSetCurrent(sim->ctx));
    return 0;
}

const char *vs_simcuda_error_name(const struct vs_simcuda *sim, CUresult r, char *buf, size_t len)
{
    const char *name = NULL;
    if (sim->cuGetErrorName && sim->cuGetErrorName(r, &name) == CUDA_SUCCESS && name)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "CUresult %d", (int)r);
    return buf;
}
