/* Pass-through replay: every event goes straight to simcuda, as an unshimmed program's calls
 * would (cuMemAllocAsync/cuMemFreeAsync for stream-ordered events, cuMemAlloc_v2/cuMemFree_v2
 * otherwise). The default pool keeps what is freed (release threshold UINT64_MAX), as PyTorch's
 * cudaMallocAsync backend sets it. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/trace/replay_backend.h"

static int vs_pt_open(struct vs_simcuda *sim, void **state, char *err, size_t errlen)
{
    PFN_cuDeviceGetDefaultMemPool_v11020 get_pool =
        (PFN_cuDeviceGetDefaultMemPool_v11020)dlsym(sim->lib, "cuDeviceGetDefaultMemPool");
    PFN_cuMemPoolSetAttribute_v11020 set_attr =
        (PFN_cuMemPoolSetAttribute_v11020)dlsym(sim->lib, "cuMemPoolSetAttribute");
    CUmemoryPool pool;
    cuuint64_t keep_all = UINT64_MAX;
    if (!get_pool || !set_attr || get_pool(&pool, sim->dev) != CUDA_SUCCESS ||
        set_attr(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep_all) != CUDA_SUCCESS) {
        snprintf(err, errlen, "%s: cannot set the default pool's release threshold", sim->path);
        return -1;
    }
    *state = sim;
    return 0;
}

static CUresult vs_pt_alloc(void *state, const struct vs_tracefile_event *ev, CUstream s,
                            CUdeviceptr *p)
{
    struct vs_simcuda *sim = state;
    return ev->async ? sim->cuMemAllocAsync(p, ev->size, s) : sim->drv.cuMemAlloc_v2(p, ev->size);
}

static CUresult vs_pt_free(void *state, const struct vs_tracefile_event *ev, CUstream s,
                           CUdeviceptr p)
{
    struct vs_simcuda *sim = state;
    return ev->async ? sim->cuMemFreeAsync(p, s) : sim->drv.cuMemFree_v2(p);
}

static void vs_pt_settle(void *state)
{
    struct vs_simcuda *sim = state;
    sim->drv.cuCtxSynchronize();
}

static const char *vs_pt_last_log(void *state)
{
    (void)state;
    return "";
}

const struct vs_replay_backend vs_replay_passthrough_backend = {
    vs_pt_open, vs_pt_alloc, vs_pt_free, vs_pt_settle, vs_pt_last_log, NULL,
};
