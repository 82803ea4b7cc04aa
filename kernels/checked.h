/* Checked arithmetic for sizes read from files, flags or the environment. Every product of such
 * numbers (shapes, element counts, byte sizes, offsets) goes through these, so an overflow is an
 * error the caller reports instead of a wrapped size that passes a later bounds check. */
#ifndef VS_KERNELS_CHECKED_H
#define VS_KERNELS_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* *out = a * b; false (and *out unspecified) when the product does not fit a size_t. */
static inline bool vs_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* *out = a * b * c, checked like vs_mul_size. */
static inline bool vs_mul3_size(size_t a, size_t b, size_t c, size_t *out)
{
    return vs_mul_size(a, b, out) && vs_mul_size(*out, c, out);
}

/* Largest extent of one dimension: the decoder indexes with int. */
#define VS_DIM_MAX INT32_MAX

/* Element count of a shape. False when an extent is negative or above VS_DIM_MAX, or when the
 * product of the nonzero extents overflows a size_t (a zero extent must not hide huge ones). */
static inline bool vs_shape_numel(const int64_t *shape, int ndim, size_t *out)
{
    size_t nonzero = 1;
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || shape[i] > VS_DIM_MAX)
            return false;
        if (!shape[i])
            empty = true;
        else if (!vs_mul_size(nonzero, (size_t)shape[i], &nonzero))
            return false;
    }
    *out = empty ? 0 : nonzero;
    return true;
}

#endif
