/* simcuda initialisation: cuInit, cuDriverGetVersion and the global device table.
 *
 * Invariants:
 * - cuInit runs the setup once; its result (success or the configuration error) is sticky, as the
 *   driver's is. Devices, their backings and primary contexts live until process exit.
 * - `initialized` is published with release semantics after the tables are complete, so any
 *   thread that sees it set sees complete devices.
 * - The init lock is held across setup() (which takes the memory and context locks), so it comes
 *   first in the global lock order (fork.c).
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>

struct vs_sim_config vs_sim_cfg = {.granule = VS_SIM_GRANULE_DEFAULT};
struct vs_sim_device vs_sim_devices[VS_SIM_MAX_DEVICES];
struct vs_sim_backing *vs_sim_host_backing;

pthread_mutex_t vs_sim_init_lock = PTHREAD_MUTEX_INITIALIZER;
static int initialized;     /* atomic */
static bool init_attempted; /* under vs_sim_init_lock */
static CUresult init_result;

static bool is_initialized(void)
{
    return __atomic_load_n(&initialized, __ATOMIC_ACQUIRE) != 0;
}

CUresult vs_sim_check_init(void)
{
    return is_initialized() ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

struct vs_sim_device *vs_sim_device(CUdevice dev)
{
    if (!is_initialized() || dev < 0 || dev >= vs_sim_cfg.devices)
        return NULL;
    return &vs_sim_devices[dev];
}

static CUresult setup(void)
{
    if (vs_sim_config_load(&vs_sim_cfg) != 0 || vs_sim_shared_attach(&vs_sim_cfg) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    vs_sim_host_backing = vs_sim_backing_create("simcuda-host-numa0", vs_sim_cfg.host_mem);
    CUresult rc = vs_sim_host_backing ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
    for (int i = 0; rc == CUDA_SUCCESS && i < vs_sim_cfg.devices; i++) {
        struct vs_sim_device *d = &vs_sim_devices[i];
        char name[32];
        snprintf(name, sizeof name, "simcuda-device%d", i);
        d->ordinal = i;
        d->total = vs_sim_cfg.vram;
        d->taken = vs_sim_cfg.vram_taken;
        d->backing = vs_sim_backing_create(name, vs_sim_cfg.vram);
        if (!d->backing)
            rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&vs_sim_mem_lock);
    for (int i = 0; rc == CUDA_SUCCESS && i < vs_sim_cfg.devices; i++) {
        struct vs_sim_device *d = &vs_sim_devices[i];
        d->primary = vs_sim_ctx_new(d, true);
        d->default_pool = vs_sim_pool_create_default(d);
        d->current_pool = d->default_pool;
        if (!d->primary || !d->default_pool)
            rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (rc == CUDA_SUCCESS)
        vs_sim_log(VS_SIM_LOG_INFO, "%d device(s) of %zu MiB (%zu MiB taken), host-NUMA %zu MiB",
                   vs_sim_cfg.devices, vs_sim_cfg.vram >> 20, vs_sim_cfg.vram_taken >> 20,
                   vs_sim_cfg.host_mem >> 20);
    return rc;
}

CUresult CUDAAPI cuInit(unsigned int Flags)
{
    VS_SIM_ENTER("cuInit");
    if (Flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_init_lock);
    if (!init_attempted) {
        init_attempted = true;
        init_result = setup();
        if (init_result == CUDA_SUCCESS)
            __atomic_store_n(&initialized, 1, __ATOMIC_RELEASE);
    }
    CUresult rc = init_result;
    pthread_mutex_unlock(&vs_sim_init_lock);
    return rc;
}

CUresult CUDAAPI cuDriverGetVersion(int *driverVersion)
{
    VS_SIM_ENTER("cuDriverGetVersion");
    if (!driverVersion)
        return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = VS_SIM_DRIVER_VERSION;
    return CUDA_SUCCESS;
}
