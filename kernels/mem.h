/* Counted allocation interface for decoder buffers (activations, tile state, outputs).
 *
 * Every buffer a decode needs goes through vs_mem so its working-memory peak can be measured and
 * compared with the planner's prediction. Two pools mirror a GPU deployment: WORK is what the
 * accelerator would hold (the budget applies to it), PARK is tile state parked between GroupNorm
 * synchronisation points (host memory on a GPU). vs_mem_move re-files a buffer between pools.
 *
 * A vs_mem in dry-run mode (dry = 1) allocates nothing: it hands out a sentinel pointer and only
 * counts, so the planner predicts a plan's peak by running the executor without computing.
 * Not thread-safe: only the thread driving a decode allocates; layers never do.
 */
#ifndef VS_KERNELS_MEM_H
#define VS_KERNELS_MEM_H

#include <stddef.h>

enum vs_pool { VS_POOL_WORK = 0, VS_POOL_PARK = 1, VS_POOL_COUNT };

struct vs_mem {
    int dry;
    size_t cur[VS_POOL_COUNT];
    size_t peak[VS_POOL_COUNT];
    size_t peak_total; /* peak of WORK + PARK together */
};

void vs_mem_init(struct vs_mem *m, int dry);
/* n floats in pool, 64-byte aligned; NULL when the host is out of memory. */
float *vs_mem_floats(struct vs_mem *m, size_t n, enum vs_pool pool);
void vs_mem_free(struct vs_mem *m, float *p);
void vs_mem_move(struct vs_mem *m, float *p, enum vs_pool to);

#endif
