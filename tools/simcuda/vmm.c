/* simcuda virtual memory management: VA reservations, mappings and access rights.
 *
 * Invariants:
 * - A reservation is an mmap(PROT_NONE, MAP_NORESERVE) range aligned to at least the granule;
 *   mappings lie inside one reservation, never overlap, and are MAP_SHARED|MAP_FIXED views of their
 *   physical slice, so device pointers are host-addressable with the slice's contents.
 * - Host protection of a mapping is the widest access granted to any location (none until
 *   cuMemSetAccess). Unmapping restores the PROT_NONE reservation.
 * - Every mapping holds a reference on its physical allocation.
 * - All vs_sim_va_* functions expect vs_sim_mem_lock held.
 */
#include "sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct vs_sim_ranges reservations;
static struct vs_sim_ranges mappings;
static unsigned long long next_buffer_id = 1;

unsigned long long vs_sim_buffer_id_next(void)
{
    return next_buffer_id++;
}

#define RESERVE_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

static bool is_pow2(size_t x)
{
    return x && !(x & (x - 1));
}

static uintptr_t try_reserve(uintptr_t hint, size_t size, size_t align)
{
    if (hint && hint % align == 0) {
        void *p = mmap((void *)hint, size, PROT_NONE, RESERVE_FLAGS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != MAP_FAILED) {
            if ((uintptr_t)p == hint)
                return hint;
            munmap(p, size); /* kernels without MAP_FIXED_NOREPLACE treat it as a hint */
        }
    }
    if (size + align < size)
        return 0;
    uint8_t *p = mmap(NULL, size + align, PROT_NONE, RESERVE_FLAGS, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    uintptr_t base = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    if (base > (uintptr_t)p)
        munmap(p, base - (uintptr_t)p);
    uintptr_t end = (uintptr_t)p + size + align;
    if (end > base + size)
        munmap((void *)(base + size), end - (base + size));
    return base;
}

CUresult vs_sim_va_reserve(size_t size, size_t alignment, uintptr_t hint, enum vs_sim_owner owner,
                           struct vs_sim_reservation **out)
{
    if (size == 0 || size % (size_t)getpagesize() || (alignment && !is_pow2(alignment)))
        return CUDA_ERROR_INVALID_VALUE;
    size_t align = alignment > VS_SIM_GRANULE ? alignment : VS_SIM_GRANULE;
    struct vs_sim_reservation *res = calloc(1, sizeof *res);
    if (!res)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uintptr_t base = try_reserve(hint, size, align);
    if (!base) {
        free(res);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res->range.base = base;
    res->range.size = size;
    res->owner = owner;
    if (vs_sim_ranges_insert(&reservations, &res->range) != 0) {
        munmap((void *)base, size);
        free(res);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = res;
    return CUDA_SUCCESS;
}

CUresult vs_sim_va_free(struct vs_sim_reservation *res)
{
    if (res->mapped)
        return CUDA_ERROR_INVALID_VALUE;
    munmap((void *)res->range.base, res->range.size);
    vs_sim_ranges_remove(&reservations, &res->range);
    free(res);
    return CUDA_SUCCESS;
}

struct vs_sim_reservation *vs_sim_reservation_find(uintptr_t addr)
{
    return (struct vs_sim_reservation *)vs_sim_ranges_find(&reservations, addr);
}

struct vs_sim_mapping *vs_sim_mapping_find(uintptr_t addr)
{
    return (struct vs_sim_mapping *)vs_sim_ranges_find(&mappings, addr);
}

CUresult vs_sim_va_map(uintptr_t va, size_t size, size_t offset, struct vs_sim_phys *phys,
                       struct vs_sim_mapping **out)
{
    if (!size || va % VS_SIM_GRANULE || size % VS_SIM_GRANULE || offset % VS_SIM_GRANULE ||
        offset > phys->size || size > phys->size - offset || phys->handle_refs == 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_reservation *res = vs_sim_reservation_find(va);
    if (!res || size > res->range.base + res->range.size - va)
        return CUDA_ERROR_INVALID_VALUE;
    if (vs_sim_ranges_overlap(&mappings, va, size))
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_mapping *m = calloc(1, sizeof *m);
    if (!m)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *p = mmap((void *)va, size, PROT_NONE, MAP_SHARED | MAP_FIXED, phys->fd,
                   phys->offset + (off_t)offset);
    if (p == MAP_FAILED) {
        vs_sim_log(VS_SIM_LOG_WARN, "mapping %zu bytes at %#lx: %s", size, (unsigned long)va,
                   strerror(errno));
        free(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    m->range.base = va;
    m->range.size = size;
    m->phys = phys;
    m->phys_offset = offset;
    m->reservation = res;
    m->buffer_id = vs_sim_buffer_id_next();
    if (vs_sim_ranges_insert(&mappings, &m->range) != 0) {
        mmap((void *)va, size, PROT_NONE, RESERVE_FLAGS | MAP_FIXED, -1, 0);
        free(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    vs_sim_phys_ref(phys);
    res->mapped += size;
    if (out)
        *out = m;
    return CUDA_SUCCESS;
}

/* Index range [*first, *first + *count) of the mappings that exactly tile [va, va+size). */
static CUresult cover(uintptr_t va, size_t size, size_t *first, size_t *count)
{
    if (!size)
        return CUDA_ERROR_INVALID_VALUE;
    size_t i = vs_sim_ranges_lower(&mappings, va);
    if (i >= mappings.count || mappings.items[i]->base != va)
        return CUDA_ERROR_INVALID_VALUE;
    uintptr_t end = va + size, at = va;
    size_t j = i;
    while (at < end) {
        if (j >= mappings.count || mappings.items[j]->base != at)
            return CUDA_ERROR_INVALID_VALUE;
        at += mappings.items[j]->size;
        j++;
    }
    if (at != end)
        return CUDA_ERROR_INVALID_VALUE;
    *first = i;
    *count = j - i;
    return CUDA_SUCCESS;
}

CUresult vs_sim_va_unmap_range(uintptr_t va, size_t size)
{
    size_t first, count;
    CUresult rc = cover(va, size, &first, &count);
    if (rc != CUDA_SUCCESS)
        return rc;
    for (size_t k = 0; k < count; k++) {
        struct vs_sim_mapping *m = (struct vs_sim_mapping *)mappings.items[first];
        mmap((void *)m->range.base, m->range.size, PROT_NONE, RESERVE_FLAGS | MAP_FIXED, -1, 0);
        vs_sim_ranges_remove(&mappings, &m->range);
        m->reservation->mapped -= m->range.size;
        vs_sim_phys_unref(m->phys);
        free(m);
    }
    return CUDA_SUCCESS;
}

static int prot_of(CUmemAccess_flags f)
{
    return f == CU_MEM_ACCESS_FLAGS_PROT_READWRITE ? PROT_READ | PROT_WRITE
           : f == CU_MEM_ACCESS_FLAGS_PROT_READ    ? PROT_READ
                                                   : PROT_NONE;
}

CUresult vs_sim_va_set_access(uintptr_t va, size_t size, const CUmemAccessDesc *desc, size_t count)
{
    if (!desc || !count)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t d = 0; d < count; d++) {
        CUmemAccess_flags f = desc[d].flags;
        if (f != CU_MEM_ACCESS_FLAGS_PROT_NONE && f != CU_MEM_ACCESS_FLAGS_PROT_READ &&
            f != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
            return CUDA_ERROR_INVALID_VALUE;
        switch (desc[d].location.type) {
        case CU_MEM_LOCATION_TYPE_DEVICE:
            if (!vs_sim_device(desc[d].location.id))
                return CUDA_ERROR_INVALID_DEVICE;
            break;
        case CU_MEM_LOCATION_TYPE_HOST:
        case CU_MEM_LOCATION_TYPE_HOST_NUMA:
        case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
            break;
        default:
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    size_t first, n;
    CUresult rc = cover(va, size, &first, &n);
    if (rc != CUDA_SUCCESS)
        return rc;
    for (size_t k = first; k < first + n; k++) {
        struct vs_sim_mapping *m = (struct vs_sim_mapping *)mappings.items[k];
        for (size_t d = 0; d < count; d++) {
            if (desc[d].location.type == CU_MEM_LOCATION_TYPE_DEVICE)
                m->access[desc[d].location.id] = desc[d].flags;
            else
                m->host_access = desc[d].flags;
        }
        int prot = prot_of(m->host_access);
        for (int dev = 0; dev < VS_SIM_MAX_DEVICES; dev++)
            prot |= prot_of(m->access[dev]);
        mprotect((void *)m->range.base, m->range.size, prot);
    }
    return CUDA_SUCCESS;
}

size_t simcuda_mapped_bytes(void)
{
    size_t n = 0;
    pthread_mutex_lock(&vs_sim_mem_lock);
    for (size_t i = 0; i < mappings.count; i++)
        if (((struct vs_sim_mapping *)mappings.items[i])->reservation->owner == VS_SIM_OWNER_USER)
            n += mappings.items[i]->size;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return n;
}

/* ---- entry points ---------------------------------------------------------------------------- */

CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                     CUdeviceptr addr, unsigned long long flags)
{
    VS_SIM_ENTER("cuMemAddressReserve");
    VS_SIM_REQUIRE_INIT();
    if (!ptr || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_reservation *res;
    CUresult rc = vs_sim_va_reserve(size, alignment, (uintptr_t)addr, VS_SIM_OWNER_USER, &res);
    if (rc == CUDA_SUCCESS)
        *ptr = (CUdeviceptr)res->range.base;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

CUresult CUDAAPI cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    VS_SIM_ENTER("cuMemAddressFree");
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_reservation *res = vs_sim_reservation_find((uintptr_t)ptr);
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    if (res && res->owner == VS_SIM_OWNER_USER && res->range.base == ptr && res->range.size == size)
        rc = vs_sim_va_free(res);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

CUresult CUDAAPI cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                          CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    VS_SIM_ENTER("cuMemMap");
    VS_SIM_REQUIRE_INIT();
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_phys *phys = vs_sim_phys_lookup(handle);
    struct vs_sim_reservation *res = vs_sim_reservation_find((uintptr_t)ptr);
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    /* Memory of cuMemAlloc and pools is not the program's to remap. */
    if (phys && res && res->owner == VS_SIM_OWNER_USER)
        rc = vs_sim_va_map((uintptr_t)ptr, size, offset, phys, NULL);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

CUresult CUDAAPI cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    VS_SIM_ENTER("cuMemUnmap");
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_reservation *res = vs_sim_reservation_find((uintptr_t)ptr);
    CUresult rc = res && res->owner == VS_SIM_OWNER_USER
                      ? vs_sim_va_unmap_range((uintptr_t)ptr, size)
                      : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

CUresult CUDAAPI cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                size_t count)
{
    VS_SIM_ENTER("cuMemSetAccess");
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_reservation *res = vs_sim_reservation_find((uintptr_t)ptr);
    CUresult rc = res && res->owner == VS_SIM_OWNER_USER
                      ? vs_sim_va_set_access((uintptr_t)ptr, size, desc, count)
                      : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

CUresult CUDAAPI cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location,
                                CUdeviceptr ptr)
{
    VS_SIM_ENTER("cuMemGetAccess");
    VS_SIM_REQUIRE_INIT();
    if (!flags || !location)
        return CUDA_ERROR_INVALID_VALUE;
    if (location->type == CU_MEM_LOCATION_TYPE_DEVICE && !vs_sim_device(location->id))
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_mapping *m = vs_sim_mapping_find((uintptr_t)ptr);
    if (m)
        *flags = location->type == CU_MEM_LOCATION_TYPE_DEVICE ? m->access[location->id]
                                                                : m->host_access;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return m ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
