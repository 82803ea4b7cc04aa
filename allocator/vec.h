/* A growable array of pointer-sized values (host memory), used for the allocator's free lists:
 * device memory is not host-accessible on a real GPU, so no list may live inside the blocks.
 * Invariant: n <= cap; v is NULL exactly when cap == 0.
 */
#ifndef VS_ALLOCATOR_VEC_H
#define VS_ALLOCATOR_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct vs_vec {
    uintptr_t *v;
    size_t n, cap;
};

/* 0, or -1 when host memory ran out (the vector is unchanged). */
static inline int vs_vec_push(struct vs_vec *x, uintptr_t val)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 16;
        uintptr_t *v = realloc(x->v, cap * sizeof *v);
        if (!v)
            return -1;
        x->v = v;
        x->cap = cap;
    }
    x->v[x->n++] = val;
    return 0;
}

/* Pushes a pair of values, both or neither: 0, or -1 as vs_vec_push. */
static inline int vs_vec_push2(struct vs_vec *x, uintptr_t a, uintptr_t b)
{
    if (vs_vec_push(x, a) != 0)
        return -1;
    if (vs_vec_push(x, b) != 0) {
        x->n--;
        return -1;
    }
    return 0;
}

/* qsort comparison of values. */
static inline int vs_uintptr_cmp(const void *x, const void *y)
{
    uintptr_t p = *(const uintptr_t *)x, q = *(const uintptr_t *)y;
    return (p > q) - (p < q);
}

static inline void vs_vec_free(struct vs_vec *x)
{
    free(x->v);
    x->v = NULL;
    x->n = x->cap = 0;
}

#endif
