/* Single-head scaled dot-product attention with an online softmax: out = softmax(q k^T * scale) v
 * computed over blocks of keys with a running max and sum, so no n x n score matrix exists.
 * q, k, v, out are token-major [n][d]; d <= VS_ATTN_MAX_D (1024 covers Wan 2.2's mid block,
 * 512 the SD family's head, 384 Wan 2.1's). Threads split the queries; each query's result does not
 * depend on the split. */
#ifndef VS_KERNELS_CPU_ATTENTION_H
#define VS_KERNELS_CPU_ATTENTION_H

#include <stddef.h>

#define VS_ATTN_MAX_D 1024

/* Returns -1 (computing nothing) when d is out of range. */
int vs_attention(const float *q, const float *k, const float *v, float *out, size_t n, int d,
                 float scale);

#endif
