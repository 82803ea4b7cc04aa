/* vs_mem: each block carries a 64-byte header (size and pool) so free/move need no lookup table.
 * Dry-run blocks are a small header-only allocation so the bookkeeping path stays identical. */
#include "kernels/mem.h"

#include <stdlib.h>
#include <string.h>

#define HDR 64

struct hdr {
    size_t bytes;
    int pool;
    int dry;
};

void vs_mem_init(struct vs_mem *m, int dry)
{
    memset(m, 0, sizeof *m);
    m->dry = dry;
}

static void account(struct vs_mem *m, int pool, size_t add, size_t sub)
{
    m->cur[pool] = m->cur[pool] + add - sub;
    if (m->cur[pool] > m->peak[pool])
        m->peak[pool] = m->cur[pool];
    size_t total = m->cur[VS_POOL_WORK] + m->cur[VS_POOL_PARK];
    if (total > m->peak_total)
        m->peak_total = total;
}

float *vs_mem_floats(struct vs_mem *m, size_t n, enum vs_pool pool)
{
    size_t bytes = n * sizeof(float);
    size_t alloc = HDR + (m->dry ? 0 : (bytes + HDR - 1) / HDR * HDR);
    unsigned char *raw = aligned_alloc(HDR, alloc);
    if (!raw)
        return NULL;
    struct hdr *h = (struct hdr *)raw;
    h->bytes = bytes;
    h->pool = pool;
    h->dry = m->dry;
    account(m, pool, bytes, 0);
    return (float *)(raw + HDR);
}

void vs_mem_free(struct vs_mem *m, float *p)
{
    if (!p)
        return;
    struct hdr *h = (struct hdr *)((unsigned char *)p - HDR);
    account(m, h->pool, 0, h->bytes);
    free(h);
}

void vs_mem_move(struct vs_mem *m, float *p, enum vs_pool to)
{
    if (!p)
        return;
    struct hdr *h = (struct hdr *)((unsigned char *)p - HDR);
    if (h->pool == (int)to)
        return;
    account(m, h->pool, 0, h->bytes);
    h->pool = to;
    account(m, to, h->bytes, 0);
}
