/* Parallel for over [0, n) with pthreads: fn(ctx, begin, end) runs on contiguous chunks, one per
 * thread. The thread count is process-wide (vs_set_threads; default: online CPUs). Each chunk
 * computes the same values a single thread would, so results never depend on the thread count. */
#ifndef VS_KERNELS_CPU_PARALLEL_H
#define VS_KERNELS_CPU_PARALLEL_H

#include <stddef.h>

typedef void (*vs_range_fn)(void *ctx, size_t begin, size_t end);

void vs_set_threads(int n);
int vs_threads(void);
void vs_parallel_for(size_t n, vs_range_fn fn, void *ctx);

#endif
