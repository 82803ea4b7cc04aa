/* simcuda chunks: blocks carved out of mapped physical chunks. The driver does not give every
 * allocation its own 2 MiB page: small cudaMalloc requests share pages, and stream-ordered pools
 * carve allocations out of the physical memory they reserved. Heaps model both (memalloc.c and
 * mempool.c choose the policy: which requests may share, when empty chunks go).
 *
 * Invariants (all functions expect vs_sim_mem_lock held):
 * - A chunk owns its VA reservation and mapping; the mapping holds the only reference on the
 *   chunk's physical handle, so releasing the chunk gives its capacity back. Capacity is counted
 *   per chunk: a shared page counts once however many blocks it holds, and a request fails with
 *   CUDA_ERROR_OUT_OF_MEMORY only when it needs a new chunk that does not fit.
 * - A chunk's blocks are sorted and never overlap; max_gap is its largest free gap (between
 *   blocks or at either end), recomputed whenever its blocks change.
 * - Whole OS pages of a free gap are hole-punched, so freed space costs no host RAM.
 * - heap->reserved is the sum of its chunks' sizes.
 */
#include "sim.h"

#include <stdlib.h>

#define OS_PAGE ((size_t)4096)

static uintptr_t chunk_base(const struct vs_sim_chunk *c)
{
    return c->reservation->range.base;
}

/* Free gap i of a chunk: the space before block i (i == count: after the last block). */
static void gap_at(const struct vs_sim_chunk *c, size_t i, uintptr_t *start, size_t *len)
{
    const struct vs_sim_range *prev = i ? c->blocks.items[i - 1] : NULL;
    uintptr_t lo = prev ? prev->base + prev->size : chunk_base(c);
    uintptr_t hi = i < c->blocks.count ? c->blocks.items[i]->base : chunk_base(c) + c->size;
    *start = lo;
    *len = hi - lo;
}

static void update_max_gap(struct vs_sim_chunk *c)
{
    c->max_gap = 0;
    for (size_t i = 0; i <= c->blocks.count; i++) {
        uintptr_t start;
        size_t len;
        gap_at(c, i, &start, &len);
        if (len > c->max_gap)
            c->max_gap = len;
    }
}

static struct vs_sim_alloc *carve(struct vs_sim_chunk *c, uintptr_t base, size_t span)
{
    struct vs_sim_alloc *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->range.base = base;
    a->range.size = span;
    a->chunk = c;
    a->buffer_id = vs_sim_buffer_id_next();
    if (vs_sim_ranges_insert(&c->blocks, &a->range) != 0) {
        free(a);
        return NULL;
    }
    update_max_gap(c);
    return a;
}

struct vs_sim_alloc *vs_sim_heap_fit(struct vs_sim_heap *h, size_t span)
{
    /* Best fit, approximated: the chunk whose largest gap fits most tightly, then the tightest
     * gap inside it (lowest address on ties). */
    struct vs_sim_chunk *best = NULL;
    for (struct vs_sim_chunk *c = h->chunks; c; c = c->next)
        if (c->shared && c->max_gap >= span && (!best || c->max_gap < best->max_gap))
            best = c;
    if (!best)
        return NULL;
    uintptr_t at = 0;
    size_t at_len = SIZE_MAX;
    for (size_t i = 0; i <= best->blocks.count && at_len > span; i++) {
        uintptr_t start;
        size_t len;
        gap_at(best, i, &start, &len);
        if (len >= span && len < at_len) {
            at = start;
            at_len = len;
        }
    }
    return carve(best, at, span);
}

struct vs_sim_alloc *vs_sim_block_split(struct vs_sim_alloc *a, size_t span)
{
    size_t whole = a->range.size;
    a->range.size = span;
    struct vs_sim_alloc *rest = carve(a->chunk, a->range.base + span, whole - span);
    if (!rest)
        a->range.size = whole;
    return rest;
}

static void chunk_release(struct vs_sim_chunk *c)
{
    struct vs_sim_heap *h = c->heap;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->chunks = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->reserved -= c->size;
    vs_sim_va_unmap_range(chunk_base(c), c->size); /* drops the last reference on the handle */
    vs_sim_va_free(c->reservation);
    free(c->blocks.items);
    free(c);
}

CUresult vs_sim_heap_grow(struct vs_sim_heap *h, struct vs_sim_device *dev, size_t span,
                          bool shared, struct vs_sim_alloc **out)
{
    if (span == 0 || span > SIZE_MAX - VS_SIM_GRANULE)
        return CUDA_ERROR_INVALID_VALUE;
    size_t size = (span + VS_SIM_GRANULE - 1) / VS_SIM_GRANULE * VS_SIM_GRANULE;
    struct vs_sim_chunk *c = calloc(1, sizeof *c);
    if (!c)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {CU_MEM_LOCATION_TYPE_DEVICE, dev->ordinal}};
    CUmemAccessDesc access = {prop.location, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    struct vs_sim_phys *phys = NULL;
    CUresult rc = vs_sim_phys_create(&prop, size, &phys);
    if (rc == CUDA_SUCCESS)
        rc = vs_sim_va_reserve(size, 0, 0, VS_SIM_OWNER_ALLOC, &c->reservation);
    if (rc == CUDA_SUCCESS)
        rc = vs_sim_va_map(c->reservation->range.base, size, 0, phys, &c->mapping);
    if (rc == CUDA_SUCCESS)
        rc = vs_sim_va_set_access(c->reservation->range.base, size, &access, 1);
    if (phys)
        vs_sim_phys_release(phys); /* the mapping keeps it alive */
    if (rc != CUDA_SUCCESS) {
        if (c->mapping)
            vs_sim_va_unmap_range(c->reservation->range.base, size);
        if (c->reservation)
            vs_sim_va_free(c->reservation);
        free(c);
        return rc;
    }
    c->reservation->chunk = c;
    c->heap = h;
    c->size = size;
    c->shared = shared;
    c->next = h->chunks;
    if (h->chunks)
        h->chunks->prev = c;
    h->chunks = c;
    h->reserved += size;
    struct vs_sim_alloc *a = carve(c, chunk_base(c), span);
    if (!a) {
        chunk_release(c);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = a;
    return CUDA_SUCCESS;
}

/* Gives the whole OS pages of [start, start+len) back to the host. */
static void punch(const struct vs_sim_chunk *c, uintptr_t start, size_t len)
{
    size_t lo = (start - chunk_base(c) + OS_PAGE - 1) / OS_PAGE * OS_PAGE;
    size_t hi = (start - chunk_base(c) + len) / OS_PAGE * OS_PAGE;
    if (hi <= lo)
        return;
    const struct vs_sim_phys *phys = c->mapping->phys;
    off_t at = phys->offset + (off_t)c->mapping->phys_offset + (off_t)lo;
    vs_sim_phys_punch(phys, at, hi - lo);
}

void vs_sim_heap_fork_child(struct vs_sim_heap *h)
{
    for (struct vs_sim_chunk *c = h->chunks; c; c = c->next)
        c->shared = false;
}

void vs_sim_block_free(struct vs_sim_alloc *a)
{
    struct vs_sim_chunk *c = a->chunk;
    uintptr_t base = a->range.base;
    vs_sim_ranges_remove(&c->blocks, &a->range);
    free(a);
    if (c->blocks.count == 0 && !c->heap->keep_empty) {
        chunk_release(c);
        return;
    }
    uintptr_t start;
    size_t len;
    gap_at(c, vs_sim_ranges_lower(&c->blocks, base), &start, &len);
    punch(c, start, len);
    update_max_gap(c);
}

void vs_sim_heap_trim(struct vs_sim_heap *h, size_t keep)
{
    for (struct vs_sim_chunk *c = h->chunks, *next; c && h->reserved > keep; c = next) {
        next = c->next;
        if (c->blocks.count == 0)
            chunk_release(c);
    }
}

struct vs_sim_alloc *vs_sim_alloc_find(uintptr_t addr)
{
    struct vs_sim_reservation *res = vs_sim_reservation_find(addr);
    if (!res || res->owner != VS_SIM_OWNER_ALLOC)
        return NULL;
    return (struct vs_sim_alloc *)vs_sim_ranges_find(&res->chunk->blocks, addr);
}
