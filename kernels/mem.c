/* vs_mem: a host-side list of live blocks (searched from the newest: decoders free mostly in
 * reverse order and hold a few dozen blocks at a time). */
#include "kernels/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void vs_mem_init_on(struct vs_mem *m, int dry, const struct vs_backend *be,
                    const struct vs_allocator *allocator)
{
    memset(m, 0, sizeof *m);
    m->dry = dry;
    m->be = be;
    m->allocator = allocator ? *allocator : be->allocator;
}

void vs_mem_init(struct vs_mem *m, int dry)
{
    vs_mem_init_on(m, dry, &vs_cpu_backend, NULL);
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

static struct vs_mem_block *find(struct vs_mem *m, const void *p)
{
    for (size_t i = m->n_blocks; i-- > 0;)
        if (m->blocks[i].p == p)
            return &m->blocks[i];
    return NULL;
}

/* Device blocks parked in PARK live in host memory; everything else in the allocator's. */
static void *raw_alloc(struct vs_mem *m, size_t bytes, int on_host)
{
    if (m->dry)
        return (void *)(uintptr_t)(64 * ++m->dry_seq);
    size_t n = bytes ? bytes : 1;
    return on_host ? m->be->park_allocator.alloc(m->be->park_allocator.ctx, n)
                   : m->allocator.alloc(m->allocator.ctx, n);
}

static void raw_free(struct vs_mem *m, void *p, int on_host)
{
    if (m->dry)
        return;
    if (on_host)
        m->be->park_allocator.free(m->be->park_allocator.ctx, p);
    else
        m->allocator.free(m->allocator.ctx, p);
}

/* The block table lives while blocks do (a vs_mem has no destructor). */
static void release_table_if_empty(struct vs_mem *m)
{
    if (!m->n_blocks) {
        free(m->blocks);
        m->blocks = NULL;
        m->cap_blocks = 0;
    }
}

float *vs_mem_floats(struct vs_mem *m, size_t n, enum vs_pool pool)
{
    if (n > SIZE_MAX / sizeof(float))
        return NULL;
    if (m->n_blocks == m->cap_blocks) {
        size_t cap = m->cap_blocks ? 2 * m->cap_blocks : 32;
        struct vs_mem_block *b = realloc(m->blocks, cap * sizeof *b);
        if (!b)
            return NULL;
        m->blocks = b;
        m->cap_blocks = cap;
    }
    size_t bytes = n * sizeof(float);
    int on_host = pool == VS_POOL_PARK && !m->be->host_memory;
    void *p = raw_alloc(m, bytes, on_host);
    if (!p) {
        release_table_if_empty(m);
        return NULL;
    }
    m->blocks[m->n_blocks++] = (struct vs_mem_block){p, bytes, pool, on_host};
    account(m, pool, bytes, 0);
    return p;
}

void vs_mem_free(struct vs_mem *m, float *p)
{
    struct vs_mem_block *b = p ? find(m, p) : NULL;
    if (!b)
        return;
    account(m, b->pool, 0, b->bytes);
    raw_free(m, b->p, b->on_host);
    *b = m->blocks[--m->n_blocks];
    release_table_if_empty(m);
}

float *vs_mem_move(struct vs_mem *m, float *p, enum vs_pool to)
{
    struct vs_mem_block *b = p ? find(m, p) : NULL;
    if (!b || b->pool == (int)to)
        return p;
    int on_host = to == VS_POOL_PARK && !m->be->host_memory;
    if (on_host != b->on_host) {
        void *q = raw_alloc(m, b->bytes, on_host);
        if (!q)
            return NULL;
        int rc = m->dry ? 0
                 : on_host ? m->be->to_host(q, b->p, b->bytes)
                           : m->be->from_host(q, b->p, b->bytes);
        if (rc) {
            raw_free(m, q, on_host);
            return NULL;
        }
        raw_free(m, b->p, b->on_host);
        b->p = q;
        b->on_host = on_host;
    }
    account(m, b->pool, 0, b->bytes);
    b->pool = to;
    account(m, to, b->bytes, 0);
    return b->p;
}
