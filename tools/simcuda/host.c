/* simcuda page-locked host memory: cuMemAllocHost, cuMemHostAlloc, cuMemHostRegister and friends.
 *
 * Invariants (guarded by vs_sim_mem_lock):
 * - Host memory is ordinary host memory (nothing is actually pinned) and never counts against
 *   device capacity; the simulator only remembers the ranges so that pointer queries report them
 *   as CU_MEMORYTYPE_HOST and cuMemFreeHost/cuMemHostUnregister can check their argument.
 * - Its device pointer is its host address (unified addressing).
 */
#include "sim.h"

#include <stdlib.h>
#include <sys/mman.h>

static struct vs_sim_ranges host_ranges;

static CUresult host_alloc(void **pp, size_t size, unsigned int flags)
{
    VS_SIM_REQUIRE_INIT();
    struct vs_sim_ctx *ctx;
    CUresult rc = vs_sim_ctx_require(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (!pp || !size ||
        (flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                             CU_MEMHOSTALLOC_WRITECOMBINED)))
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_host *h = calloc(1, sizeof *h);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!h || p == MAP_FAILED) {
        free(h);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *h = (struct vs_sim_host){{(uintptr_t)p, size}, flags, false, ctx};
    pthread_mutex_lock(&vs_sim_mem_lock);
    bool ok = vs_sim_ranges_insert(&host_ranges, &h->range) == 0;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (!ok) {
        munmap(p, size);
        free(h);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

struct vs_sim_host *vs_sim_host_find(uintptr_t addr)
{
    return (struct vs_sim_host *)vs_sim_ranges_find(&host_ranges, addr);
}

CUresult CUDAAPI cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    VS_SIM_ENTER("cuMemAllocHost_v2");
    return host_alloc(pp, bytesize, 0);
}

CUresult CUDAAPI cuMemAllocHost(void **pp, unsigned int bytesize)
{
    VS_SIM_ENTER("cuMemAllocHost");
    return host_alloc(pp, bytesize, 0);
}

CUresult CUDAAPI cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    VS_SIM_ENTER("cuMemHostAlloc");
    return host_alloc(pp, bytesize, Flags);
}

/* Removes the range starting exactly at p (allocated or registered as asked), or fails. */
static CUresult host_forget(void *p, bool registered)
{
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_host *h = vs_sim_host_find((uintptr_t)p);
    bool ok = h && h->range.base == (uintptr_t)p && h->registered == registered;
    if (ok)
        vs_sim_ranges_remove(&host_ranges, &h->range);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (!ok)
        return registered ? CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED : CUDA_ERROR_INVALID_VALUE;
    if (!registered)
        munmap(p, h->range.size);
    free(h);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemFreeHost(void *p)
{
    VS_SIM_ENTER("cuMemFreeHost");
    return host_forget(p, false);
}

static CUresult host_register(void *p, size_t size, unsigned int flags)
{
    VS_SIM_REQUIRE_INIT();
    struct vs_sim_ctx *ctx;
    CUresult rc = vs_sim_ctx_require(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (!p || !size ||
        (flags & ~(unsigned)(CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                             CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY)))
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_host *h = calloc(1, sizeof *h);
    if (!h)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *h = (struct vs_sim_host){{(uintptr_t)p, size}, flags, true, ctx};
    pthread_mutex_lock(&vs_sim_mem_lock);
    if (vs_sim_ranges_overlap(&host_ranges, (uintptr_t)p, size))
        rc = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    else if (vs_sim_mapping_find((uintptr_t)p))
        rc = CUDA_ERROR_INVALID_VALUE; /* device memory */
    else if (vs_sim_ranges_insert(&host_ranges, &h->range) != 0)
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (rc != CUDA_SUCCESS)
        free(h);
    return rc;
}

CUresult CUDAAPI cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    VS_SIM_ENTER("cuMemHostRegister_v2");
    return host_register(p, bytesize, Flags);
}

CUresult CUDAAPI cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags)
{
    VS_SIM_ENTER("cuMemHostRegister");
    return host_register(p, bytesize, Flags);
}

CUresult CUDAAPI cuMemHostUnregister(void *p)
{
    VS_SIM_ENTER("cuMemHostUnregister");
    return host_forget(p, true);
}

CUresult CUDAAPI cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
    VS_SIM_ENTER("cuMemHostGetDevicePointer_v2");
    VS_SIM_REQUIRE_INIT();
    if (!pdptr || Flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    bool known = vs_sim_host_find((uintptr_t)p) != NULL;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (!known)
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = (CUdeviceptr)p;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
    VS_SIM_ENTER("cuMemHostGetFlags");
    VS_SIM_REQUIRE_INIT();
    if (!pFlags)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_host *h = vs_sim_host_find((uintptr_t)p);
    if (h)
        *pFlags = h->flags;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return h ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
