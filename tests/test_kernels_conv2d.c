/* Every conv2d version (kernels/cpu/conv2d.c) this CPU supports: against a double-precision naive
 * conv on random shapes (widths that are and are not multiples of the 8- and 16-float vectors and
 * of the 64-pixel strip, every combination of per-edge padding, channel counts that are not
 * multiples of the 6-channel block); generic, avx2 and avx512 bit-identical to each other; and a
 * tile equal to the full frame bit for bit with every exact version, with tile edges inside
 * vectors and strips. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/region.h"

static uint64_t g_seed = 12345;

static unsigned next(void)
{
    g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(g_seed >> 33);
}

static float *rnd(size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)next() / 2147483648.0f * 2 - 1;
    return p;
}

/* out = bias + taps in double, padding from g */
static void naive(const float *in, double *out, const float *w, const float *b,
                  const struct vs_conv2d_geom *g)
{
    const int oh = vs_conv2d_out_h(g), ow = vs_conv2d_out_w(g), k = g->k;
    for (int co = 0; co < g->cout; co++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double s = b ? b[co] : 0;
                for (int ci = 0; ci < g->cin; ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = y + ky - g->pad_top, ix = x + kx - g->pad_left;
                            if (iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w)
                                s += (double)w[((co * g->cin + ci) * k + ky) * k + kx] *
                                     in[((size_t)ci * g->in_h + iy) * g->in_w + ix];
                        }
                out[((size_t)co * oh + y) * ow + x] = s;
            }
}

Test(conv2d, every_version_matches_naive_and_exact_versions_agree_bit_for_bit)
{
    static const int widths[] = {1, 5, 8, 15, 16, 17, 31, 33, 63, 64, 65, 70, 97, 130};
    for (int t = 0; t < 40; t++) {
        const int k = t % 4 == 3 ? 1 : 3, pads = k == 3 ? t % 16 : 0;
        struct vs_conv2d_geom g = {1 + (int)(next() % 14), 1 + (int)(next() % 14), k,
                                   k + (int)(next() % 9), widths[t % 14] + k - 1,
                                   pads & 1, pads >> 1 & 1, pads >> 2 & 1, pads >> 3 & 1};
        if (g.in_w < k)
            g.in_w = k;
        const int oh = vs_conv2d_out_h(&g), ow = vs_conv2d_out_w(&g);
        const size_t n = (size_t)g.cout * oh * ow;
        float *in = rnd((size_t)g.cin * g.in_h * g.in_w), *w = rnd((size_t)g.cout * g.cin * k * k);
        float *b = t % 5 == 4 ? NULL : rnd((size_t)g.cout);
        double *want = malloc(n * sizeof *want);
        naive(in, want, w, b, &g);
        float *exact = NULL;
        for (int v = 0; v < VS_CONV2D_IMPLS; v++) {
            if (!vs_conv2d_impl_supported(v))
                continue;
            float *out = malloc(n * sizeof *out);
            vs_conv2d_impl(v, in, out, w, b, &g);
            for (size_t i = 0; i < n; i++)
                cr_assert_leq(fabs(out[i] - want[i]), 1e-5, "%s case %d: %g vs %g at %zu",
                              vs_conv2d_impl_name(v), t, out[i], want[i], i);
            if (v == VS_CONV2D_REF) {
                free(out);
                continue;
            }
            if (!exact)
                exact = out;
            else {
                cr_assert_eq(memcmp(out, exact, n * sizeof *out), 0, "%s differs from generic, case %d",
                             vs_conv2d_impl_name(v), t);
                free(out);
            }
        }
        free(exact), free(want), free(in), free(w), free(b);
    }
}

/* More input channels than one band holds (partial sums wait in the output between bands; the
 * last band partial), several bands per row, groups of channel blocks with a partial last block */
Test(conv2d, exact_versions_agree_across_channel_bands_and_column_bands)
{
    static const struct vs_conv2d_geom shapes[] = {
        {70, 13, 3, 5, 130, 1, 1, 1, 1},
        {33, 7, 3, 4, 200, 0, 1, 1, 0},
        {65, 11, 1, 3, 129, 0, 0, 0, 0},
    };
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        const struct vs_conv2d_geom *g = &shapes[t];
        const size_t n = (size_t)g->cout * vs_conv2d_out_h(g) * vs_conv2d_out_w(g);
        float *in = rnd((size_t)g->cin * g->in_h * g->in_w);
        float *w = rnd((size_t)g->cout * g->cin * g->k * g->k), *b = t == 1 ? NULL : rnd(g->cout);
        float *want = malloc(n * sizeof *want), *out = malloc(n * sizeof *out);
        vs_conv2d_impl(VS_CONV2D_GENERIC, in, want, w, b, g);
        for (int v = VS_CONV2D_GENERIC + 1; v < VS_CONV2D_IMPLS; v++) {
            if (!vs_conv2d_impl_supported(v))
                continue;
            vs_conv2d_impl(v, in, out, w, b, g);
            cr_assert_eq(memcmp(out, want, n * sizeof *out), 0, "%s differs from generic, shape %zu",
                         vs_conv2d_impl_name(v), t);
        }
        free(in), free(w), free(b), free(want), free(out);
    }
}

Test(conv2d, a_tile_equals_the_full_frame_with_every_exact_version)
{
    const int cin = 7, cout = 8, h = 9, wd = 150;
    float *in = rnd((size_t)cin * h * wd), *w = rnd((size_t)cout * cin * 9), *b = rnd(cout);
    /* output rectangles y0 x0 y1 x1: edges at lane 5 of a vector, mid-strip, the right border */
    static const int tiles[][4] = {{0, 0, 4, 21}, {2, 21, 7, 85}, {3, 69, 9, 150}, {0, 130, 9, 150}};
    for (int v = VS_CONV2D_GENERIC; v < VS_CONV2D_IMPLS; v++) {
        if (!vs_conv2d_impl_supported(v))
            continue;
        struct vs_conv2d_geom g = {cin, cout, 3, h, wd, 1, 1, 1, 1};
        float *full = malloc(sizeof(float) * cout * h * wd);
        vs_conv2d_impl(v, in, full, w, b, &g);
        for (size_t t = 0; t < sizeof tiles / sizeof *tiles; t++) {
            int y0 = tiles[t][0], x0 = tiles[t][1], y1 = tiles[t][2], x1 = tiles[t][3];
            int by0 = y0 > 0 ? y0 - 1 : 0, bx0 = x0 > 0 ? x0 - 1 : 0;
            int by1 = y1 < h ? y1 + 1 : h, bx1 = x1 < wd ? x1 + 1 : wd;
            float *buf = malloc(sizeof(float) * cin * (by1 - by0) * (bx1 - bx0));
            vs_crop(in, cin, h, wd, by0, bx0, buf, by1 - by0, bx1 - bx0);
            struct vs_conv2d_geom tg = {cin, cout, 3, by1 - by0, bx1 - bx0,
                                        y0 == 0, y1 == h, x0 == 0, x1 == wd};
            size_t n = (size_t)cout * (y1 - y0) * (x1 - x0);
            float *out = malloc(n * sizeof *out), *want = malloc(n * sizeof *want);
            vs_conv2d_impl(v, buf, out, w, b, &tg);
            vs_crop(full, cout, h, wd, y0, x0, want, y1 - y0, x1 - x0);
            cr_assert_eq(memcmp(out, want, n * sizeof *out), 0, "%s tile %zu",
                         vs_conv2d_impl_name(v), t);
            free(buf), free(out), free(want);
        }
        free(full);
    }
    free(in), free(w), free(b);
}

Test(conv2d, the_default_is_the_best_supported_exact_version)
{
    enum vs_conv2d_impl best = vs_conv2d_best();
    cr_assert(vs_conv2d_impl_supported(best));
    cr_assert_neq(best, VS_CONV2D_REF);
    for (int v = best + 1; v < VS_CONV2D_IMPLS; v++)
        cr_assert(!vs_conv2d_impl_supported(v), "%s is supported but not chosen", vs_conv2d_impl_name(v));
}
