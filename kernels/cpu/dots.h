/* Blocks of dot products, the inner loop of linear layers and attention scores:
 * c[i * ldc + j] = dot(a + i * lda, b + j * ldb) over d floats, for i < m, j < n.
 * Every dot has one fixed order whatever m, n, i, j or the version: 16 partial sums, lane l
 * taking one fused multiply-add per element l, l + 16, ... (a zero pair past d), then the lanes
 * added pairwise (l + 8, then + 4, + 2, + 1). Versions: generic (scalar fmaf, the fallback) and
 * avx512 (4 x 4 dots in registers), bit-identical; vs_dots runs the best the CPU has. */
#ifndef VS_KERNELS_CPU_DOTS_H
#define VS_KERNELS_CPU_DOTS_H

#include <stdbool.h>
#include <stddef.h>

enum vs_dots_impl { VS_DOTS_GENERIC, VS_DOTS_AVX512, VS_DOTS_IMPLS };

bool vs_dots_impl_supported(enum vs_dots_impl impl);
void vs_dots_impl(enum vs_dots_impl impl, const float *a, size_t lda, size_t m, const float *b,
                  size_t ldb, size_t n, int d, float *c, size_t ldc);
void vs_dots(const float *a, size_t lda, size_t m, const float *b, size_t ldb, size_t n, int d,
             float *c, size_t ldc);

#endif
