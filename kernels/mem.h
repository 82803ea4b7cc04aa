/* Counted allocation interface for decoder buffers (activations, tile state, outputs).
 *
 * Every buffer a decode needs goes through vs_mem so its working-memory peak can be measured and
 * compared with the planner's prediction. Two pools mirror a GPU deployment: WORK is what the
 * accelerator holds (the budget applies to it), PARK is tile state parked between GroupNorm
 * synchronisation points (host memory on a GPU). vs_mem_move re-files a buffer between pools;
 * on a backend whose memory is not host memory (kernels/backend.h) it copies the buffer to host
 * memory or back and returns the new address.
 *
 * WORK storage comes from the backend's allocator or the caller's (vs_mem_init_on); PARK storage
 * of a device backend is host memory from the backend's park_allocator. The bookkeeping (size,
 * pool of each live block) is kept on the host beside the blocks, so device blocks need no
 * header.
 *
 * A vs_mem in dry-run mode (dry = 1) allocates nothing: it hands out distinct sentinel addresses
 * that are never dereferenced and only counts, so the planner predicts a plan's peak by running
 * the executor without computing. Not thread-safe: only the thread driving a decode allocates;
 * layers never do.
 */
#ifndef VS_KERNELS_MEM_H
#define VS_KERNELS_MEM_H

#include <stddef.h>

#include "kernels/backend.h"

enum vs_pool { VS_POOL_WORK = 0, VS_POOL_PARK = 1, VS_POOL_COUNT };

struct vs_mem_block {
    void *p;
    size_t bytes;
    int pool;
    int on_host; /* storage is the park allocator's host memory (a parked device buffer) */
};

struct vs_mem {
    int dry;
    const struct vs_backend *be;
    struct vs_allocator allocator;
    size_t cur[VS_POOL_COUNT];
    size_t peak[VS_POOL_COUNT];
    size_t peak_total; /* peak of WORK + PARK together */
    struct vs_mem_block *blocks; /* live blocks; released when the last one is freed */
    size_t n_blocks, cap_blocks;
    size_t dry_seq;
};

/* The CPU backend with its own allocator. */
void vs_mem_init(struct vs_mem *m, int dry);
/* Backend be; allocator NULL: the backend's. */
void vs_mem_init_on(struct vs_mem *m, int dry, const struct vs_backend *be,
                    const struct vs_allocator *allocator);
/* n floats in pool, 64-byte aligned on the CPU backend; NULL when out of memory. */
float *vs_mem_floats(struct vs_mem *m, size_t n, enum vs_pool pool);
void vs_mem_free(struct vs_mem *m, float *p);
/* Re-files p into pool `to`; returns its (possibly new) address, NULL when out of memory (p is
 * then still valid in its old pool). */
float *vs_mem_move(struct vs_mem *m, float *p, enum vs_pool to);

#endif
