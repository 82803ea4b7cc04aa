/* vs_dots (kernels/cpu/dots.c), the linear and attention-score inner loop: every version this CPU
 * supports against double-precision dots, and bit-identical to each other, on block shapes that
 * are and are not multiples of the 4 x 4 register block and lengths that are and are not
 * multiples of 16, with row strides larger than the length. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/dots.h"

static float *rnd(size_t n, uint64_t s)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    return p;
}

Test(dots, every_version_matches_double_and_versions_agree_bit_for_bit)
{
    static const int ds[] = {1, 7, 16, 17, 40, 64, 100, 512};
    for (int t = 0; t < 24; t++) {
        const size_t m = 1 + t % 9, n = 1 + (t * 5) % 11, ld = (size_t)ds[t % 8] + t % 3,
                     ldc = n + 2;
        const int d = ds[t % 8];
        float *a = rnd(m * ld, 2 * t + 1), *b = rnd(n * ld, 2 * t + 2);
        float *first = NULL;
        for (int v = 0; v < VS_DOTS_IMPLS; v++) {
            if (!vs_dots_impl_supported(v))
                continue;
            float *c = calloc(m * ldc, sizeof *c);
            vs_dots_impl(v, a, ld, m, b, ld, n, d, c, ldc);
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < n; j++) {
                    double want = 0;
                    for (int q = 0; q < d; q++)
                        want += (double)a[i * ld + q] * b[j * ld + q];
                    cr_assert_leq(fabs(c[i * ldc + j] - want), 1e-5 * d,
                                  "impl %d case %d (%zu,%zu)", v, t, i, j);
                }
            if (!first)
                first = c;
            else {
                cr_assert_eq(memcmp(c, first, m * ldc * sizeof *c), 0, "impl %d case %d", v, t);
                free(c);
            }
        }
        free(first), free(a), free(b);
    }
}
