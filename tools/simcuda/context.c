/* simcuda contexts: primary contexts, created contexts and the per-thread current-context stack.
 *
 * Invariants:
 * - Context objects are never freed (a destroyed one stays in the table marked destroyed), so a
 *   stale CUcontext is answered with CUDA_ERROR_INVALID_CONTEXT instead of a crash.
 * - The current-context stack is thread-local; the top is the current context.
 */
#include "sim.h"

#include <stdlib.h>

#define MAX_CONTEXTS 1024
#define STACK_DEPTH 64

pthread_mutex_t vs_sim_ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vs_sim_ctx *contexts[MAX_CONTEXTS];
static size_t context_count;
static unsigned long long next_id = 1;

static __thread struct vs_sim_ctx *stack[STACK_DEPTH];
static __thread int depth;

struct vs_sim_ctx *vs_sim_ctx_new(struct vs_sim_device *device, bool primary)
{
    struct vs_sim_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->device = device;
    ctx->primary = primary;
    pthread_mutex_lock(&vs_sim_ctx_lock);
    if (context_count == MAX_CONTEXTS) {
        pthread_mutex_unlock(&vs_sim_ctx_lock);
        free(ctx);
        return NULL;
    }
    ctx->id = next_id++;
    contexts[context_count++] = ctx;
    pthread_mutex_unlock(&vs_sim_ctx_lock);
    return ctx;
}

bool vs_sim_ctx_valid(struct vs_sim_ctx *ctx)
{
    bool ok = false;
    pthread_mutex_lock(&vs_sim_ctx_lock);
    for (size_t i = 0; i < context_count && !ok; i++)
        ok = contexts[i] == ctx && !ctx->destroyed;
    pthread_mutex_unlock(&vs_sim_ctx_lock);
    return ok;
}

static struct vs_sim_ctx *current_ctx(void)
{
    struct vs_sim_ctx *ctx = depth ? stack[depth - 1] : NULL;
    return ctx && !__atomic_load_n(&ctx->destroyed, __ATOMIC_ACQUIRE) ? ctx : NULL;
}

CUresult vs_sim_ctx_require(struct vs_sim_ctx **out)
{
    VS_SIM_REQUIRE_INIT();
    *out = current_ctx();
    return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

/* Resolves an explicit-or-current context argument (NULL = current). */
static CUresult ctx_or_current(CUcontext handle, struct vs_sim_ctx **out)
{
    VS_SIM_REQUIRE_INIT();
    if (!handle)
        return vs_sim_ctx_require(out);
    *out = (struct vs_sim_ctx *)handle;
    return vs_sim_ctx_valid(*out) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

static CUresult push(struct vs_sim_ctx *ctx)
{
    if (depth == STACK_DEPTH)
        return CUDA_ERROR_OUT_OF_MEMORY;
    stack[depth++] = ctx;
    return CUDA_SUCCESS;
}

/* ---- primary contexts ------------------------------------------------------------------------ */

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    VS_SIM_ENTER("cuDevicePrimaryCtxRetain");
    VS_SIM_REQUIRE_INIT();
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_device *d = vs_sim_device(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&vs_sim_ctx_lock);
    d->primary->primary_refs++;
    pthread_mutex_unlock(&vs_sim_ctx_lock);
    *pctx = (CUcontext)d->primary;
    return CUDA_SUCCESS;
}

static CUresult primary_release(CUdevice dev)
{
    VS_SIM_DEVICE_ENTRY(dev, d);
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&vs_sim_ctx_lock);
    if (d->primary->primary_refs == 0)
        rc = CUDA_ERROR_INVALID_CONTEXT;
    else
        d->primary->primary_refs--;
    pthread_mutex_unlock(&vs_sim_ctx_lock);
    return rc;
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    VS_SIM_ENTER("cuDevicePrimaryCtxRelease_v2");
    return primary_release(dev);
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev)
{
    VS_SIM_ENTER("cuDevicePrimaryCtxRelease");
    return primary_release(dev);
}

/* Reset waits for the context's work; memory stays allocated (the simulator keeps no per-context
 * allocation list to tear down). */
static CUresult primary_reset(CUdevice dev)
{
    VS_SIM_DEVICE_ENTRY(dev, d);
    vs_sim_streams_drain_ctx(d->primary);
    pthread_mutex_lock(&vs_sim_ctx_lock);
    d->primary->primary_refs = 0;
    d->primary->flags = 0;
    pthread_mutex_unlock(&vs_sim_ctx_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    VS_SIM_ENTER("cuDevicePrimaryCtxReset_v2");
    return primary_reset(dev);
}

CUresult CUDAAPI cuDevicePrimaryCtxReset(CUdevice dev)
{
    VS_SIM_ENTER("cuDevicePrimaryCtxReset");
    return primary_reset(dev);
}

CUresult CUDAAPI cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    VS_SIM_ENTER("cuDevicePrimaryCtxGetState");
    VS_SIM_REQUIRE_INIT();
    if (!flags || !active)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_device *d = vs_sim_device(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&vs_sim_ctx_lock);
    *flags = d->primary->flags;
    *active = d->primary->primary_refs > 0;
    pthread_mutex_unlock(&vs_sim_ctx_lock);
    return CUDA_SUCCESS;
}

static CUresult primary_set_flags(CUdevice dev, unsigned int flags)
{
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (flags & ~(unsigned)(CU_CTX_SCHED_MASK | CU_CTX_LMEM_RESIZE_TO_MAX | CU_CTX_MAP_HOST |
                            CU_CTX_SYNC_MEMOPS))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_ctx_lock);
    d->primary->flags = flags;
    pthread_mutex_unlock(&vs_sim_ctx_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    VS_SIM_ENTER("cuDevicePrimaryCtxSetFlags_v2");
    return primary_set_flags(dev, flags);
}

CUresult CUDAAPI cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
    VS_SIM_ENTER("cuDevicePrimaryCtxSetFlags");
    return primary_set_flags(dev, flags);
}

/* ---- created contexts ------------------------------------------------------------------------ */

static CUresult ctx_create(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    VS_SIM_REQUIRE_INIT();
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_device *d = vs_sim_device(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    struct vs_sim_ctx *ctx = vs_sim_ctx_new(d, false);
    if (!ctx)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ctx->flags = flags;
    CUresult rc = push(ctx);
    if (rc != CUDA_SUCCESS) {
        ctx->destroyed = true;
        return rc;
    }
    *pctx = (CUcontext)ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    VS_SIM_ENTER("cuCtxCreate_v2");
    return ctx_create(pctx, flags, dev);
}

CUresult CUDAAPI cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
                                CUdevice dev)
{
    VS_SIM_ENTER("cuCtxCreate_v4");
    if (params && (params->numExecAffinityParams || params->cigParams))
        VS_SIM_UNSUPPORTED("cuCtxCreate_v4 with execution affinity or CIG parameters");
    return ctx_create(pctx, flags, dev);
}

CUresult CUDAAPI cuCtxDestroy_v2(CUcontext handle)
{
    VS_SIM_ENTER("cuCtxDestroy_v2");
    VS_SIM_REQUIRE_INIT();
    struct vs_sim_ctx *ctx = (struct vs_sim_ctx *)handle;
    if (!handle || !vs_sim_ctx_valid(ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx->primary)
        return CUDA_ERROR_INVALID_CONTEXT;
    vs_sim_streams_drain_ctx(ctx);
    __atomic_store_n(&ctx->destroyed, true, __ATOMIC_RELEASE);
    /* Drop it from this thread's stack (other threads see it destroyed). */
    int kept = 0;
    for (int i = 0; i < depth; i++)
        if (stack[i] != ctx)
            stack[kept++] = stack[i];
    depth = kept;
    return CUDA_SUCCESS;
}

/* ---- current context ------------------------------------------------------------------------- */

CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx)
{
    VS_SIM_ENTER("cuCtxGetCurrent");
    VS_SIM_REQUIRE_INIT();
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = (CUcontext)current_ctx();
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext handle)
{
    VS_SIM_ENTER("cuCtxSetCurrent");
    VS_SIM_REQUIRE_INIT();
    struct vs_sim_ctx *ctx = (struct vs_sim_ctx *)handle;
    if (ctx && !vs_sim_ctx_valid(ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (!ctx) {
        if (depth)
            depth--;
        return CUDA_SUCCESS;
    }
    if (depth)
        stack[depth - 1] = ctx;
    else
        stack[depth++] = ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxPushCurrent_v2(CUcontext handle)
{
    VS_SIM_ENTER("cuCtxPushCurrent_v2");
    VS_SIM_REQUIRE_INIT();
    struct vs_sim_ctx *ctx = (struct vs_sim_ctx *)handle;
    if (!ctx || !vs_sim_ctx_valid(ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    return push(ctx);
}

CUresult CUDAAPI cuCtxPopCurrent_v2(CUcontext *pctx)
{
    VS_SIM_ENTER("cuCtxPopCurrent_v2");
    VS_SIM_REQUIRE_INIT();
    if (!depth)
        return CUDA_ERROR_INVALID_CONTEXT;
    struct vs_sim_ctx *ctx = stack[--depth];
    if (pctx)
        *pctx = (CUcontext)ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetDevice(CUdevice *device)
{
    VS_SIM_ENTER("cuCtxGetDevice");
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_ctx *ctx;
    CUresult rc = vs_sim_ctx_require(&ctx);
    if (rc == CUDA_SUCCESS)
        *device = ctx->device->ordinal;
    return rc;
}

CUresult CUDAAPI cuCtxGetDevice_v2(CUdevice *device, CUcontext handle)
{
    VS_SIM_ENTER("cuCtxGetDevice_v2");
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_ctx *ctx;
    CUresult rc = ctx_or_current(handle, &ctx);
    if (rc == CUDA_SUCCESS)
        *device = ctx->device->ordinal;
    return rc;
}

static CUresult ctx_synchronize(CUcontext handle)
{
    struct vs_sim_ctx *ctx;
    CUresult rc = ctx_or_current(handle, &ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    vs_sim_streams_drain_ctx(ctx);
    vs_sim_pools_trim_to_threshold();
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSynchronize(void)
{
    VS_SIM_ENTER("cuCtxSynchronize");
    return ctx_synchronize(NULL);
}

CUresult CUDAAPI cuCtxSynchronize_v2(CUcontext ctx)
{
    VS_SIM_ENTER("cuCtxSynchronize_v2");
    return ctx_synchronize(ctx);
}

CUresult CUDAAPI cuCtxGetFlags(unsigned int *flags)
{
    VS_SIM_ENTER("cuCtxGetFlags");
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_ctx *ctx;
    CUresult rc = vs_sim_ctx_require(&ctx);
    if (rc == CUDA_SUCCESS)
        *flags = ctx->flags;
    return rc;
}

CUresult CUDAAPI cuCtxGetApiVersion(CUcontext handle, unsigned int *version)
{
    VS_SIM_ENTER("cuCtxGetApiVersion");
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_ctx *ctx;
    CUresult rc = ctx_or_current(handle, &ctx);
    if (rc == CUDA_SUCCESS)
        *version = 3020;
    return rc;
}

CUresult CUDAAPI cuCtxGetId(CUcontext handle, unsigned long long *ctxId)
{
    VS_SIM_ENTER("cuCtxGetId");
    if (!ctxId)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_ctx *ctx;
    CUresult rc = ctx_or_current(handle, &ctx);
    if (rc == CUDA_SUCCESS)
        *ctxId = ctx->id;
    return rc;
}

CUresult CUDAAPI cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    VS_SIM_ENTER("cuCtxGetStreamPriorityRange");
    VS_SIM_REQUIRE_INIT();
    if (leastPriority)
        *leastPriority = 0;
    if (greatestPriority)
        *greatestPriority = -5;
    return CUDA_SUCCESS;
}
