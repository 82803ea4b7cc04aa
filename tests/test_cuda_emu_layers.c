/* The decoder's own CUDA kernels (the .cu files of kernels/cuda), run on the CPU emulation
 * (kernels/cuda/emu/cuda_emu.h), against their C twins in kernels/cpu/: small inputs, odd sizes,
 * regions at tile edges. fp32 results within 1e-5 of the output's scale (max-abs difference over
 * max-abs value); moves, casts and blends bit for bit. Emulated device memory is host memory. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cast.h"
#include "kernels/cpu/groupnorm.h"
#include "kernels/cpu/region.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/silu.h"
#include "kernels/cpu/space.h"
#include "kernels/cpu/upsample.h"
#include "kernels/cuda/launch.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24)) * 4.0f - 2.0f;
}

static float *rand_buf(size_t n, float offset)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand() + offset;
    return p;
}

static float *copy_of(const float *p, size_t n)
{
    float *q = malloc((n ? n : 1) * sizeof *q);
    memcpy(q, p, n * sizeof *q);
    return q;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return s > 0 ? d / s : d;
}

Test(cuda_emu, groupnorm_statistics_over_regions)
{
    /* odd plane, region touching edges or not, groups of 1..4 channels, a region large enough
     * that every thread of the block sums several values */
    const struct { int c, groups, h, w; struct vs_window r; } cases[] = {
        {12, 4, 7, 9, {2, 1, 4, 5, 7, 9}},
        {12, 3, 7, 9, {0, 0, 7, 9, 7, 9}},
        {6, 6, 5, 3, {4, 2, 1, 1, 5, 3}},
        {8, 2, 33, 41, {0, 3, 33, 38, 33, 41}},
        {4, 1, 3, 3, {1, 1, 2, 0, 3, 3}}, /* empty region */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const size_t plane = (size_t)cases[k].h * cases[k].w;
        float *x = rand_buf(cases[k].c * plane, 3.0f); /* mean far from 0: tests the two passes */
        struct vs_gn_stats want[8], got[8];
        float scratch[3 * 8];
        vs_gn_region_stats(x, cases[k].c, plane, cases[k].r, cases[k].groups, want);
        cr_assert_eq(vs_cuda_gn_region_stats(x, cases[k].c, plane, cases[k].r, cases[k].groups,
                                             got, scratch, NULL), 0);
        for (int g = 0; g < cases[k].groups; g++) {
            cr_assert_eq(got[g].count, want[g].count, "case %zu group %d", k, g);
            cr_assert_leq(fabs(got[g].mean - want[g].mean), 1e-5 * fmax(fabs(want[g].mean), 1),
                          "case %zu group %d mean %g vs %g", k, g, got[g].mean, want[g].mean);
            cr_assert_leq(fabs(got[g].m2 - want[g].m2), 1e-5 * fmax(want[g].m2, 1e-30),
                          "case %zu group %d M2 %g vs %g", k, g, got[g].m2, want[g].m2);
        }
        free(x);
    }
}

Test(cuda_emu, groupnorm_cell_statistics_have_the_c_twins_bits)
{
    /* cells of 1x1 to 3x3 and non-square ones, regions inside a buffer with a halo, rows of cells
     * with a gap after them (row_stride), cells across the C twin's 256-column chunks, one cell
     * over a whole region */
    const struct { int c, groups, h, w; struct vs_window r; int ch, cw, gap; } cases[] = {
        {12, 4, 9, 11, {1, 2, 6, 8, 9, 11}, 2, 2, 3},
        {8, 2, 7, 7, {0, 0, 6, 6, 7, 7}, 3, 3, 0},
        {6, 3, 5, 4, {0, 0, 5, 4, 5, 4}, 1, 1, 1},
        {4, 2, 3, 302, {1, 1, 2, 300, 3, 302}, 1, 3, 0},
        {8, 4, 6, 9, {0, 0, 4, 9, 6, 9}, 2, 3, 2},
        {8, 2, 33, 41, {0, 3, 33, 38, 33, 41}, 33, 38, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const size_t plane = (size_t)cases[k].h * cases[k].w;
        const int ncy = cases[k].r.h / cases[k].ch, ncx = cases[k].r.w / cases[k].cw;
        const size_t stride = (size_t)(ncx + cases[k].gap) * cases[k].groups;
        const size_t n = (size_t)ncy * stride;
        float *x = rand_buf(cases[k].c * plane, 3.0f);
        struct vs_gn_cell *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        memset(want, 0x5a, n * sizeof *want); /* the gaps must stay as they are */
        memset(got, 0x5a, n * sizeof *got);
        vs_gn_cell_stats(x, cases[k].c, plane, cases[k].r, cases[k].ch, cases[k].cw,
                         cases[k].groups, want, stride);
        cr_assert_eq(vs_cuda_gn_cell_stats(x, cases[k].c, plane, cases[k].r, cases[k].ch,
                                           cases[k].cw, cases[k].groups, got, stride, NULL), 0);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(memcmp(&got[i], &want[i], sizeof *got), 0,
                         "case %zu slot %zu: mean %.17g M2 %.17g, C twin %.17g %.17g", k, i,
                         got[i].mean, got[i].m2, want[i].mean, want[i].m2);
        free(x), free(want), free(got);
    }
}

Test(cuda_emu, groupnorm_apply_with_and_without_silu)
{
    const int c = 6, groups = 3;
    const size_t plane = 5 * 7;
    float mean[3] = {0.5f, -1.0f, 2.0f}, rstd[3] = {1.5f, 0.25f, 3.0f};
    float *gamma = rand_buf(c, 0), *beta = rand_buf(c, 0), scratch[6];
    for (int silu = 0; silu < 2; silu++) {
        float *x = rand_buf(c * plane, 0), *y = copy_of(x, c * plane);
        vs_gn_apply(x, c, plane, groups, mean, rstd, gamma, beta, silu);
        cr_assert_eq(vs_cuda_gn_apply(y, c, plane, groups, mean, rstd, gamma, beta, silu, scratch,
                                      NULL), 0);
        cr_assert_leq(rel_err(y, x, c * plane), 1e-5, "silu %d", silu);
        free(x);
        free(y);
    }
    free(gamma);
    free(beta);
}

Test(cuda_emu, rmsnorm_and_silu)
{
    const int cs[] = {1, 5, 16};
    const size_t ns[] = {1, 37, 300};
    for (int i = 0; i < 3; i++) {
        const int c = cs[i];
        const size_t n = ns[i];
        float *gamma = rand_buf(c, 0);
        for (int silu = 0; silu < 2; silu++) {
            float *x = rand_buf(c * n, 0), *want = malloc(c * n * sizeof *want),
                  *got = malloc(c * n * sizeof *got);
            vs_rmsnorm(x, want, c, n, gamma, silu);
            cr_assert_eq(vs_cuda_rmsnorm(x, got, c, n, gamma, silu, NULL), 0);
            cr_assert_leq(rel_err(got, want, c * n), 1e-5, "c %d n %zu silu %d", c, n, silu);
            free(x);
            free(want);
            free(got);
        }
        free(gamma);
    }
    float *x = rand_buf(1000, 0), *y = copy_of(x, 1000);
    vs_silu(x, 1000);
    cr_assert_eq(vs_cuda_silu_f32(y, 1000, NULL), 0);
    cr_assert_leq(rel_err(y, x, 1000), 1e-5);
    free(x);
    free(y);
}

Test(cuda_emu, upsample_is_exact)
{
    const int c = 3, h = 5, w = 7;
    float *x = rand_buf(c * h * w, 0), *want = malloc(4 * c * h * w * sizeof *want),
          *got = malloc(4 * c * h * w * sizeof *got);
    vs_upsample_nearest2x(x, want, c, h, w);
    cr_assert_eq(vs_cuda_upsample2x(x, got, c, h, w, NULL), 0);
    cr_assert_eq(memcmp(got, want, 4 * c * h * w * sizeof *got), 0);
    free(x);
    free(want);
    free(got);
}

Test(cuda_emu, to_space_is_exact)
{
    /* DupUp3D-style gather added onto a tile at odd offsets, and an unpatchify store */
    const struct vs_to_space gs[] = {{4, 2, 8, 4, 2, 1, 8, true}, {3, 2, 4, 0, 1, 2, 1, false}};
    const int cin[] = {4, 12};
    const struct vs_window d = {3, 5, 7, 6, 20, 18};
    const struct vs_window s = {1, 1, 5, 6, 10, 9};
    for (int k = 0; k < 2; k++) {
        const size_t nd = (size_t)gs[k].c * vs_window_area(&d);
        float *src = rand_buf((size_t)cin[k] * vs_window_area(&s), 0);
        float *want = rand_buf(nd, 0), *got = copy_of(want, nd);
        vs_to_space(want, &d, src, &s, &gs[k]);
        cr_assert_eq(vs_cuda_to_space(got, &d, src, &s, &gs[k], NULL), 0);
        cr_assert_eq(memcmp(got, want, nd * sizeof *got), 0, "case %d", k);
        free(src);
        free(want);
        free(got);
    }
}

Test(cuda_emu, region_moves_are_exact)
{
    const int c = 3, sh = 11, sw = 13, dh = 6, dw = 5, y0 = 4, x0 = 7;
    float *src = rand_buf(c * sh * sw, 0);
    float *a = rand_buf(c * dh * dw, 0), *b = copy_of(a, c * dh * dw);
    vs_crop(src, c, sh, sw, y0, x0, a, dh, dw);
    cr_assert_eq(vs_cuda_crop(src, c, sh, sw, y0, x0, b, dh, dw, NULL), 0);
    cr_assert_eq(memcmp(a, b, c * dh * dw * sizeof *a), 0, "crop");
    vs_add_crop(a, c, dh, dw, src, sh, sw, y0 - 1, x0 - 2);
    cr_assert_eq(vs_cuda_add_crop(b, c, dh, dw, src, sh, sw, y0 - 1, x0 - 2, NULL), 0);
    cr_assert_eq(memcmp(a, b, c * dh * dw * sizeof *a), 0, "add_crop");
    for (int clamp = 0; clamp < 2; clamp++) {
        float *d1 = rand_buf(c * sh * sw, 0), *d2 = copy_of(d1, c * sh * sw);
        a[3] = NAN;
        b[3] = NAN;
        vs_paste(d1, c, sh, sw, 5, 8, a, dh, dw, 1, 0, 4, 5, clamp);
        cr_assert_eq(vs_cuda_paste(d2, c, sh, sw, 5, 8, b, dh, dw, 1, 0, 4, 5, clamp, NULL), 0);
        cr_assert_eq(memcmp(d1, d2, c * sh * sw * sizeof *d1), 0, "paste clamp %d", clamp);
        free(d1);
        free(d2);
    }
    /* transposes across 32x32 tile edges and smaller than one tile */
    const size_t shapes[][2] = {{37, 70}, {1, 5}, {64, 32}, {33, 1}};
    for (int i = 0; i < 4; i++) {
        size_t r = shapes[i][0], k = shapes[i][1];
        float *in = rand_buf(r * k, 0), *t1 = malloc(r * k * sizeof *t1),
              *t2 = malloc(r * k * sizeof *t2);
        vs_transpose(in, t1, r, k);
        cr_assert_eq(vs_cuda_transpose(in, t2, r, k, NULL), 0);
        cr_assert_eq(memcmp(t1, t2, r * k * sizeof *t1), 0, "transpose %zux%zu", r, k);
        free(in);
        free(t1);
        free(t2);
    }
    free(src);
    free(a);
    free(b);
}

Test(cuda_emu, blend_is_exact)
{
    const int c = 3, H = 9, W = 11, h = 6, w = 7;
    float *o1 = rand_buf(c * H * W, 0), *o2 = copy_of(o1, c * H * W);
    float *s1 = rand_buf(H * W, 2), *s2 = copy_of(s1, H * W);
    float *src = rand_buf(c * h * w, 0), *wy = rand_buf(h, 2), *wx = rand_buf(w, 2);
    vs_blend_acc(o1, s1, c, H, W, 2, 3, src, h, w, wy, wx);
    cr_assert_eq(vs_cuda_blend_acc(o2, s2, c, H, W, 2, 3, src, h, w, wy, wx, NULL), 0);
    cr_assert_eq(memcmp(s1, s2, H * W * sizeof *s1), 0);
    cr_assert_eq(memcmp(o1, o2, c * H * W * sizeof *o1), 0);
    vs_blend_div(o1, s1, c, (size_t)H * W);
    cr_assert_eq(vs_cuda_blend_div(o2, s2, c, (size_t)H * W, NULL), 0);
    cr_assert_eq(memcmp(o1, o2, c * H * W * sizeof *o1), 0);
    free(o1), free(o2), free(s1), free(s2), free(src), free(wy), free(wx);
}

/* Every half and bfloat16 value widened, then a spread of floats (specials, subnormals, ties)
 * narrowed: the same bits as the C twin. */
Test(cuda_emu, casts_match_the_c_twin_bit_for_bit)
{
    uint16_t *h = malloc(65536 * sizeof *h);
    float *f1 = malloc(65536 * sizeof *f1), *f2 = malloc(65536 * sizeof *f2);
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    for (int dt = VS_DT_F16; dt <= VS_DT_BF16; dt++) {
        vs_cast(f1, VS_DT_F32, h, dt, 65536);
        cr_assert_eq(vs_cuda_cast(f2, VS_DT_F32, h, dt, 65536, NULL), 0);
        cr_assert_eq(memcmp(f1, f2, 65536 * sizeof *f1), 0, "widening dtype %d", dt);
    }
    for (uint32_t i = 0; i < 65536; i++) {
        uint32_t bits = (uint32_t)i * 65537u ^ (i << 7); /* all exponents, many mantissas */
        memcpy(&f1[i], &bits, 4);
    }
    uint16_t *n1 = malloc(65536 * sizeof *n1), *n2 = malloc(65536 * sizeof *n2);
    for (int dt = VS_DT_F16; dt <= VS_DT_BF16; dt++) {
        vs_cast(n1, dt, f1, VS_DT_F32, 65536);
        cr_assert_eq(vs_cuda_cast(n2, dt, f1, VS_DT_F32, 65536, NULL), 0);
        for (int i = 0; i < 65536; i++)
            cr_assert_eq(n1[i], n2[i], "narrowing to dtype %d of %a", dt, f1[i]);
    }
    free(h), free(f1), free(f2), free(n1), free(n2);
}

/* The attention's softmax step against a direct double-precision softmax: rows shorter and
 * longer than a block, large score ranges. */
Test(cuda_emu, softmax_rows)
{
    const size_t shapes[][2] = {{3, 1}, {2, 7}, {4, 300}, {1, 1000}};
    for (int k = 0; k < 4; k++) {
        const size_t rows = shapes[k][0], n = shapes[k][1];
        float *s = rand_buf(rows * n, 0), *want = malloc(rows * n * sizeof *want);
        for (size_t i = 0; i < rows * n; i++)
            s[i] *= 20.0f;
        for (size_t r = 0; r < rows; r++) {
            double m = -INFINITY, sum = 0;
            for (size_t i = 0; i < n; i++)
                m = fmax(m, s[r * n + i]);
            for (size_t i = 0; i < n; i++)
                sum += exp(s[r * n + i] - m);
            for (size_t i = 0; i < n; i++)
                want[r * n + i] = (float)(exp(s[r * n + i] - m) / sum);
        }
        cr_assert_eq(vs_cuda_softmax_rows(s, rows, n, NULL), 0);
        for (size_t r = 0; r < rows; r++)
            cr_assert_leq(rel_err(s + r * n, want + r * n, n), 1e-5, "%zux%zu row %zu", rows, n, r);
        free(s);
        free(want);
    }
}

Test(cuda_emu, bias_rows)
{
    const size_t rows = 37;
    const int cols = 11;
    float *y = rand_buf(rows * cols, 0), *b = rand_buf(cols, 0), *want = copy_of(y, rows * cols);
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            want[r * cols + c] += b[c];
    cr_assert_eq(vs_cuda_bias_rows(y, b, rows, cols, NULL), 0);
    cr_assert_eq(memcmp(y, want, rows * cols * sizeof *y), 0);
    free(y), free(b), free(want);
}
