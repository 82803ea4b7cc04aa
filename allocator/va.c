/* VA reservations of one arena.
 *
 * Invariants: reservations are only ever added (published with release order, so lock-free
 * readers such as vs_arena_owns see complete ones) and removed only by vs_va_release_all at
 * destruction; each is a multiple of the granule, granule-aligned, and tiled by blocks from its
 * first byte to its last (large.c).
 */
#include <stdlib.h>

#include "allocator/internal.h"

CUresult vs_va_grow(struct vs_arena *a, size_t min_size)
{
    size_t size = a->opt.va_chunk ? a->opt.va_chunk : 2 * a->total;
    if (size < min_size)
        size = min_size;
    size = (size + a->gran - 1) / a->gran * a->gran;

    struct vs_reservation *r = calloc(1, sizeof *r);
    struct vs_block *whole = calloc(1, sizeof *whole);
    struct vs_slot *slots = calloc(size / a->gran, sizeof *slots);
    CUresult err = CUDA_ERROR_OUT_OF_MEMORY;
    if (!r || !whole || !slots) {
        vs_log(VS_LOG_WARN, "arena: out of host memory reserving %zu bytes of VA", size);
        goto fail;
    }
    err = a->drv->cuMemAddressReserve(&r->base, size, a->gran, 0, 0);
    if (err != CUDA_SUCCESS) {
        char b[32];
        vs_log(VS_LOG_WARN, "arena: cuMemAddressReserve(%s) failed (error %d)",
               vs_size_format(size, b, sizeof b), err);
        goto fail;
    }
    r->size = size;
    r->nslots = size / a->gran;
    r->slots = slots;
    r->next = a->res;
    vs_large_init_reservation(a, r, whole);
    __atomic_store_n(&a->res, r, __ATOMIC_RELEASE);
    return CUDA_SUCCESS;
fail:
    free(r);
    free(whole);
    free(slots);
    return err;
}

void vs_va_release_all(struct vs_arena *a)
{
    struct vs_reservation *r = a->res;
    a->res = NULL;
    while (r) {
        struct vs_reservation *next = r->next;
        for (struct vs_block *b = r->slots[0].first, *bn; b; b = bn) {
            bn = b->next;
            free(b);
        }
        a->drv->cuMemAddressFree(r->base, r->size);
        for (size_t i = 0; i < r->nslots; i++) {
            _Atomic(struct vs_page *) *pages = r->slots[i].pages;
            for (size_t u = 0; pages && u < a->gran / VS_PAGE_MIN; u++)
                if (pages[u] && (u == 0 || pages[u] != pages[u - 1]))
                    free(pages[u]); /* a page's entries are contiguous */
            free((void *)pages);
        }
        free(r->slots);
        free(r);
        r = next;
    }
}
