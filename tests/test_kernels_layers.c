/* Every C decoder layer against a direct naive implementation (kernels/cpu/), plus the file
 * readers' number conversion: conv2d (full frame, 1x1; tiles: test_kernels_conv2d), GroupNorm
 * (one shot, and per-tile statistics merged = one pass over the image), attention (online softmax
 * vs an explicit score matrix, head dims 24 to 1024), upsample, SiLU, linear, crop/add,
 * transpose, thread-count independence, F16/BF16 decoding and .npy round trips. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/array_io.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/groupnorm.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/region.h"
#include "kernels/cpu/silu.h"
#include "kernels/cpu/upsample.h"
#include "kernels/safetensors.h"

static float *rnd(size_t n, unsigned seed)
{
    float *p = malloc(n * sizeof *p);
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    return p;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* zero-padded 'same' conv, double accumulation */
static void naive_conv(const float *in, float *out, const float *w, const float *b, int cin,
                       int cout, int k, int h, int wd)
{
    int r = k / 2;
    for (int co = 0; co < cout; co++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < wd; x++) {
                double s = b[co];
                for (int ci = 0; ci < cin; ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = y + ky - r, ix = x + kx - r;
                            if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
                                s += (double)w[((co * cin + ci) * k + ky) * k + kx] *
                                     in[(ci * h + iy) * wd + ix];
                        }
                out[(co * h + y) * wd + x] = (float)s;
            }
}

Test(layers, conv2d_3x3_and_1x1_match_naive)
{
    const int cin = 5, cout = 7, h = 11, w = 9;
    for (int k = 1; k <= 3; k += 2) {
        float *in = rnd((size_t)cin * h * w, 1), *wt = rnd((size_t)cout * cin * k * k, 2);
        float *b = rnd((size_t)cout, 3), *out = malloc(sizeof(float) * cout * h * w);
        float *ref = malloc(sizeof(float) * cout * h * w);
        struct vs_conv2d_geom g = {cin, cout, k, h, w, k / 2, k / 2, k / 2, k / 2};
        cr_assert_eq(vs_conv2d_out_h(&g), h);
        vs_conv2d(in, out, wt, b, &g);
        naive_conv(in, ref, wt, b, cin, cout, k, h, w);
        cr_assert_leq(max_diff(out, ref, (size_t)cout * h * w), 1e-5, "k=%d", k);
        free(in), free(wt), free(b), free(out), free(ref);
    }
}

Test(layers, conv2d_result_does_not_depend_on_thread_count)
{
    const int cin = 6, cout = 9, h = 13, w = 7;
    float *in = rnd((size_t)cin * h * w, 7), *wt = rnd((size_t)cout * cin * 9, 8);
    float *b = rnd((size_t)cout, 9);
    float *a = malloc(sizeof(float) * cout * h * w), *c = malloc(sizeof(float) * cout * h * w);
    struct vs_conv2d_geom g = {cin, cout, 3, h, w, 1, 1, 1, 1};
    vs_set_threads(1);
    vs_conv2d(in, a, wt, b, &g);
    vs_set_threads(4);
    vs_conv2d(in, c, wt, b, &g);
    vs_set_threads(0);
    cr_assert_eq(memcmp(a, c, sizeof(float) * cout * h * w), 0);
    free(in), free(wt), free(b), free(a), free(c);
}

static void naive_groupnorm(const float *x, float *out, int c, size_t plane, int groups, float eps,
                            const float *gamma, const float *beta)
{
    int cpg = c / groups;
    for (int g = 0; g < groups; g++) {
        double s = 0, s2 = 0, n = (double)cpg * plane;
        for (size_t i = g * cpg * plane; i < (g + 1) * cpg * plane; i++)
            s += x[i];
        double mean = s / n;
        for (size_t i = g * cpg * plane; i < (g + 1) * cpg * plane; i++)
            s2 += (x[i] - mean) * (x[i] - mean);
        double rstd = 1 / sqrt(s2 / n + eps);
        for (int ci = g * cpg; ci < (g + 1) * cpg; ci++)
            for (size_t i = 0; i < plane; i++)
                out[ci * plane + i] =
                    (float)((x[ci * plane + i] - mean) * rstd * gamma[ci] + beta[ci]);
    }
}

Test(layers, groupnorm_matches_naive_with_and_without_silu)
{
    const int c = 12, h = 7, w = 9, groups = 4;
    size_t n = (size_t)c * h * w;
    float *x = rnd(n, 10), *gamma = rnd((size_t)c, 11), *beta = rnd((size_t)c, 12);
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] * 3 + 5; /* offset mean: the two-pass variance must not cancel */
    float *ref = malloc(n * sizeof *ref), *y = malloc(n * sizeof *y);
    naive_groupnorm(x, ref, c, (size_t)h * w, groups, 1e-6f, gamma, beta);
    memcpy(y, x, n * sizeof *y);
    vs_groupnorm(y, c, h, w, groups, 1e-6f, gamma, beta, 0);
    cr_assert_leq(max_diff(y, ref, n), 1e-5);
    memcpy(y, x, n * sizeof *y);
    vs_groupnorm(y, c, h, w, groups, 1e-6f, gamma, beta, 1);
    for (size_t i = 0; i < n; i++)
        ref[i] = ref[i] / (1 + expf(-ref[i]));
    cr_assert_leq(max_diff(y, ref, n), 1e-5);
    free(x), free(gamma), free(beta), free(ref), free(y);
}

Test(layers, groupnorm_cells_are_the_same_bits_in_any_tile_and_merge_to_the_whole)
{
    const int c = 8, h = 12, w = 15, groups = 2, cell = 3, ncy = h / cell, ncx = w / cell;
    float *x = rnd((size_t)c * h * w, 13);
    for (size_t i = 0; i < (size_t)c * h * w; i++)
        x[i] = x[i] * 0.01f + 100; /* large mean, small spread */
    const size_t n = (size_t)ncy * ncx * groups;
    struct vs_gn_cell *whole = calloc(n, sizeof *whole), *tiled = calloc(n, sizeof *tiled);
    vs_gn_cell_stats(x, c, (size_t)h * w, (struct vs_window){0, 0, h, w, h, w}, cell, cell, groups,
                     whole, (size_t)ncx * groups);
    /* an uneven partition into 5 cell-aligned rectangles, each a tile's buffer with a halo */
    const struct vs_window parts[5] = {{0, 0, 3, 3, h, w}, {0, 3, 3, 12, h, w}, {3, 0, 9, 3, h, w},
                                       {3, 3, 9, 9, h, w}, {3, 12, 9, 3, h, w}};
    for (int i = 0; i < 5; i++) {
        const struct vs_window p = parts[i];
        /* the tile's buffer: its part grown by 1 pixel, clipped */
        int y0 = p.y0 ? p.y0 - 1 : 0, x0 = p.x0 ? p.x0 - 1 : 0;
        int y1 = p.y0 + p.h < h ? p.y0 + p.h + 1 : h, x1 = p.x0 + p.w < w ? p.x0 + p.w + 1 : w;
        size_t bplane = (size_t)(y1 - y0) * (x1 - x0);
        float *buf = malloc(c * bplane * sizeof *buf);
        for (int ci = 0; ci < c; ci++)
            for (int y = y0; y < y1; y++)
                memcpy(buf + ci * bplane + (size_t)(y - y0) * (x1 - x0),
                       x + ((size_t)ci * h + y) * w + x0, (size_t)(x1 - x0) * sizeof *buf);
        vs_gn_cell_stats(buf, c, bplane,
                         (struct vs_window){p.y0 - y0, p.x0 - x0, p.h, p.w, y1 - y0, x1 - x0}, cell,
                         cell, groups, tiled + ((size_t)p.y0 / cell * ncx + p.x0 / cell) * groups,
                         (size_t)ncx * groups);
        free(buf);
    }
    cr_assert_eq(memcmp(tiled, whole, n * sizeof *whole), 0,
                 "a cell's statistics depend on its tile");
    struct vs_gn_stats merged[2], region[2];
    vs_gn_merge_cells(groups, whole, (size_t)ncy * ncx, (double)c / groups * cell * cell, merged);
    vs_gn_region_stats(x, c, (size_t)h * w, (struct vs_window){0, 0, h, w, h, w}, groups, region);
    for (int g = 0; g < groups; g++) {
        /* naive one pass in long double as the reference */
        long double s = 0, s2 = 0, cnt = (long double)c / groups * h * w;
        for (size_t i = (size_t)g * c / groups * h * w; i < (size_t)(g + 1) * c / groups * h * w;
             i++)
            s += x[i];
        long double mean = s / cnt;
        for (size_t i = (size_t)g * c / groups * h * w; i < (size_t)(g + 1) * c / groups * h * w;
             i++)
            s2 += (x[i] - mean) * (x[i] - mean);
        for (int k = 0; k < 2; k++) {
            const struct vs_gn_stats *st = k ? &region[g] : &merged[g];
            cr_assert_eq(st->count, (double)cnt);
            cr_assert_leq(fabs(st->mean - (double)mean), 1e-12 * fabs((double)mean));
            cr_assert_leq(fabs(st->m2 - (double)s2), 1e-9 * (double)s2, "%s M2 %.17g vs %.17Lg",
                          k ? "region" : "merged cells", st->m2, s2);
        }
    }
    free(whole), free(tiled), free(x);
}

static void naive_attention(const float *q, const float *k, const float *v, float *out, int n,
                            int d)
{
    double *s = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < n; j++) {
            double t = 0;
            for (int c = 0; c < d; c++)
                t += (double)q[i * d + c] * k[j * d + c];
            s[j] = t / sqrt(d);
            mx = fmax(mx, s[j]);
        }
        for (int j = 0; j < n; j++)
            sum += s[j] = exp(s[j] - mx);
        for (int c = 0; c < d; c++) {
            double o = 0;
            for (int j = 0; j < n; j++)
                o += s[j] * v[j * d + c];
            out[i * d + c] = (float)(o / sum);
        }
    }
    free(s);
}

Test(layers, attention_online_softmax_matches_explicit_scores)
{
    const int cases[4][2] = {{150, 24}, {70, 512}, {3, 384}, {20, 1024}};
    for (int t = 0; t < 3; t++) {
        int n = cases[t][0], d = cases[t][1];
        float *q = rnd((size_t)n * d, 20), *k = rnd((size_t)n * d, 21), *v = rnd((size_t)n * d, 22);
        for (size_t i = 0; i < (size_t)n * d; i++)
            q[i] *= 4; /* peaked softmax: exercises the running-max rescale */
        float *o = malloc(sizeof(float) * n * d), *ref = malloc(sizeof(float) * n * d);
        cr_assert_eq(vs_attention(q, k, v, o, (size_t)n, d, 1.0f / sqrtf((float)d)), 0);
        naive_attention(q, k, v, ref, n, d);
        double m = max_diff(o, ref, (size_t)n * d);
        cr_assert_leq(m, 2e-6, "n=%d d=%d max-abs %g", n, d, m);
        free(q), free(k), free(v), free(o), free(ref);
    }
    float dummy[1];
    cr_assert_eq(vs_attention(dummy, dummy, dummy, dummy, 1, VS_ATTN_MAX_D + 1, 1), -1);
}

Test(layers, upsample_silu_linear_transpose_crop_add)
{
    const int c = 3, h = 4, w = 5;
    float *x = rnd((size_t)c * h * w, 30), *up = malloc(sizeof(float) * c * 4 * h * w);
    vs_upsample_nearest2x(x, up, c, h, w);
    for (int ci = 0; ci < c; ci++)
        for (int y = 0; y < 2 * h; y++)
            for (int xx = 0; xx < 2 * w; xx++)
                cr_assert_eq(up[(ci * 2 * h + y) * 2 * w + xx], x[(ci * h + y / 2) * w + xx / 2]);

    float s[4] = {-100, -1, 0, 3};
    vs_silu(s, 4);
    cr_assert_leq(fabsf(s[0]), 1e-30f);
    cr_assert_float_eq(s[1], -1 / (1 + expf(1)), 1e-7);
    cr_assert_eq(s[2], 0);
    cr_assert_float_eq(s[3], 3 / (1 + expf(-3)), 1e-6);

    const int n = 9, cin = 6, cout = 4;
    float *tok = rnd((size_t)n * cin, 31), *wt = rnd((size_t)cout * cin, 32),
          *b = rnd((size_t)cout, 33);
    float y[9 * 4];
    vs_linear(tok, wt, b, y, n, cin, cout);
    for (int t = 0; t < n; t++)
        for (int co = 0; co < cout; co++) {
            double r = b[co];
            for (int ci = 0; ci < cin; ci++)
                r += (double)wt[co * cin + ci] * tok[t * cin + ci];
            cr_assert_float_eq(y[t * cout + co], (float)r, 1e-5);
        }

    float tr[9 * 6];
    vs_transpose(tok, tr, n, cin);
    for (int t = 0; t < n; t++)
        for (int ci = 0; ci < cin; ci++)
            cr_assert_eq(tr[ci * n + t], tok[t * cin + ci]);

    float crop[3 * 2 * 3], sum[3 * 2 * 3];
    vs_crop(x, c, h, w, 1, 2, crop, 2, 3);
    memcpy(sum, crop, sizeof crop);
    vs_add_crop(sum, c, 2, 3, x, h, w, 1, 2);
    for (int ci = 0; ci < c; ci++)
        for (int yy = 0; yy < 2; yy++)
            for (int xx = 0; xx < 3; xx++) {
                float v = x[(ci * h + yy + 1) * w + xx + 2];
                cr_assert_eq(crop[(ci * 2 + yy) * 3 + xx], v);
                cr_assert_eq(sum[(ci * 2 + yy) * 3 + xx], 2 * v);
            }
    free(x), free(up), free(tok), free(wt), free(b);
}

Test(layers, f16_and_bf16_decode_exactly)
{
    static const struct { uint16_t bits; float value; } f16[] = {
        {0x3c00, 1.0f}, {0xc000, -2.0f}, {0x0001, 5.9604644775390625e-08f}, {0x7bff, 65504.0f},
        {0x0400, 6.103515625e-05f}, {0x03ff, 6.097555160522461e-05f}, {0x8000, -0.0f}};
    for (size_t i = 0; i < sizeof f16 / sizeof f16[0]; i++)
        cr_assert_eq(vs_f16_to_f32(f16[i].bits), f16[i].value, "0x%04x", f16[i].bits);
    cr_assert(isinf(vs_f16_to_f32(0x7c00)));
    cr_assert(isnan(vs_f16_to_f32(0x7e00)));

    /* a BF16 tensor through the safetensors reader */
    char path[] = "/tmp/vs_bf16_XXXXXX";
    int fd = mkstemp(path);
    const char hdr[] = "{\"t\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}";
    unsigned char len8[8] = {sizeof hdr - 1};
    const unsigned char data[6] = {0x80, 0x3f, 0x40, 0xc0, 0x49, 0x40}; /* 1, -3, 3.140625 */
    cr_assert(write(fd, len8, 8) == 8 &&
              write(fd, hdr, sizeof hdr - 1) == (ssize_t)sizeof hdr - 1 && write(fd, data, 6) == 6);
    close(fd);
    struct vs_st_file f;
    struct vs_err err;
    cr_assert_eq(vs_st_open(&f, path, &err), 0, "%s", err.msg);
    float out[3];
    cr_assert_eq(vs_st_read_f32(&f, vs_st_find(&f, "t"), out, &err), 0);
    cr_assert(out[0] == 1.0f && out[1] == -3.0f && out[2] == 3.140625f);
    vs_st_close(&f);
    unlink(path);
}

Test(layers, npy_round_trip)
{
    char path[] = "/tmp/vs_npy_XXXXXX.npy";
    int fd = mkstemps(path, 4);
    close(fd);
    float *x = rnd(2 * 3 * 5, 40);
    int64_t shape[3] = {2, 3, 5};
    struct vs_err err;
    cr_assert_eq(vs_npy_write(path, x, 3, shape, &err), 0, "%s", err.msg);
    struct vs_array a;
    cr_assert_eq(vs_array_load(path, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(a.ndim, 3);
    cr_assert(a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 5);
    cr_assert_eq(memcmp(a.data, x, sizeof(float) * 30), 0);
    vs_array_free(&a);
    free(x);
    unlink(path);
}

/* The decoder's exp against libm over the float range (sampled every few ulp near 0 and across
 * the exponents), with its limits; SiLU of it. */
Test(layers, exp_is_within_2_ulp_of_libm_and_saturates)
{
    double worst = 0;
    for (float x = -103.0f; x < 88.7f; x = x + fmaxf(fabsf(x) * 1e-4f, 1e-6f)) {
        double want = exp((double)x), got = vs_expf(x);
        double ulp = ldexp(1.0, ilogb(want) - 23); /* ulp of the float nearest want */
        if (want >= 0x1p-126)
            worst = fmax(worst, fabs(got - want) / ulp);
        else
            cr_assert_leq(fabs(got - want), 0x1p-149, "exp(%a) = %a", x, (float)got);
    }
    cr_expect_leq(worst, 2.0, "worst %.3g ulp", worst);
    cr_expect_eq(vs_expf(0.0f), 1.0f);
    cr_expect_eq(vs_expf(-104.5f), 0.0f);
    cr_expect_eq(vs_expf(-INFINITY), 0.0f);
    cr_expect(isinf(vs_expf(89.0f)) && isinf(vs_expf(INFINITY)));
    cr_expect(isnan(vs_expf(NAN)));
    float s[] = {-INFINITY, -1000.0f, INFINITY, 1000.0f};
    vs_silu(s, 4);
    cr_expect(isnan(s[0])); /* -inf / (1 + inf), as x * sigmoid(x) = -inf * 0 */
    cr_expect(s[1] == 0.0f && s[2] == INFINITY && s[3] == 1000.0f);
}

/* Every exp/SiLU version gives the generic version's bits, for every length 0 .. 40 (the vector
 * tails) and for values across the range, the limits and NaN included. */
Test(layers, exp_and_silu_versions_give_identical_bits)
{
    enum { N = 4000 };
    float *x = rnd(N, 40);
    for (size_t i = 0; i < N; i++)
        x[i] *= (float)(i % 300) * 0.4f; /* -120 .. 120 */
    const float special[] = {0.0f, -0.0f, 88.7f, 88.8f, 88.9f, -103.9f, -104.0f, -104.1f,
                             INFINITY, -INFINITY, NAN, 1e-30f, -1e-30f};
    memcpy(x, special, sizeof special);
    float *want = malloc(N * sizeof *want), *got = malloc((N + 1) * sizeof *got);
    for (int silu = 0; silu < 2; silu++)
        for (size_t n = 0; n <= N; n = n < 40 ? n + 1 : N) {
            memcpy(want, x, n * sizeof *want);
            vs_silu_run(VS_SILU_GENERIC, want, n, silu);
            for (int impl = 0; impl < VS_SILU_IMPLS; impl++) {
                if (!vs_silu_impl_supported(impl))
                    continue;
                memcpy(got, x, n * sizeof *got);
                got[n] = 7.0f; /* past the end: untouched */
                vs_silu_run(impl, got, n, silu);
                cr_assert_arr_eq(got, want, n * sizeof *got, "%s, silu %d, n %zu",
                                 vs_silu_impl_name(impl), silu, n);
                cr_assert_eq(got[n], 7.0f);
            }
            if (n == N)
                break;
        }
    free(x), free(want), free(got);
}
