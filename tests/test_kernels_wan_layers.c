/* Wan layers against direct naive implementations: the causal conv3d with its frame cache
 * (stepped frame by frame, whole frame and windows) vs a 3D conv over the explicitly
 * zero-padded sequence, and the RMS norm vs its formula. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/conv3d.h"
#include "kernels/cpu/conv3d_cache.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rmsnorm.h"

static unsigned long long g_rng = 88172645463325252ull;

static float urand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static float *random_floats(size_t n)
{
    float *p = malloc(n * sizeof *p);
    cr_assert(p);
    for (size_t i = 0; i < n; i++)
        p[i] = urand();
    return p;
}

/* x[t][c][y][x] sequence of T frames; out[t][o][y][x]: causal conv with kt-1 zero frames in front
 * and (k-1)/2 zero pixels around each frame, computed in double. */
static void naive_causal_conv3d(const struct vs_conv3d *c, const float *x, int T, int H, int W,
                                double *out)
{
    int r = (c->k - 1) / 2;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < c->out_ch; o++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    double s = c->bias[o];
                    for (int i = 0; i < c->in_ch; i++)
                        for (int dt = 0; dt < c->kt; dt++) {
                            int ti = t - (c->kt - 1) + dt;
                            if (ti < 0)
                                continue;
                            for (int ky = 0; ky < c->k; ky++)
                                for (int kx = 0; kx < c->k; kx++) {
                                    int iy = y + ky - r, ix = xx + kx - r;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                        continue;
                                    size_t tap = ((size_t)dt * c->k + ky) * c->k + kx;
                                    double wv = c->weight[((size_t)o * c->in_ch + i) *
                                                          c->kt * c->k * c->k + tap];
                                    s += wv * x[(((size_t)ti * c->in_ch + i) * H + iy) * W + ix];
                                }
                        }
                    out[(((size_t)t * c->out_ch + o) * H + y) * W + xx] = s;
                }
}

/* Copies the window win of frame [C][H][W] into [C][win.h][win.w]. */
static void crop(const float *frame, int C, const struct vs_window *win, float *dst)
{
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < win->h; y++)
            memcpy(dst + ((size_t)ch * win->h + y) * win->w,
                   frame + ((size_t)ch * win->H + win->y0 + y) * win->W + win->x0,
                   (size_t)win->w * sizeof(float));
}

/* Steps a cached causal conv over T frames on window wout (input window win) and checks every
 * output pixel against the naive conv; returns the max abs error. */
static double check_conv(int out_ch, int in_ch, int kt, int k, int T, int H, int W,
                         struct vs_window win, struct vs_window wout)
{
    float *wt = random_floats((size_t)out_ch * in_ch * kt * k * k);
    float *bias = random_floats((size_t)out_ch);
    struct vs_conv3d c = {out_ch, in_ch, kt, k, wt, bias, NULL};
    size_t fsz = (size_t)in_ch * H * W;
    float *x = random_floats(fsz * T);
    double *ref = malloc((size_t)T * out_ch * H * W * sizeof *ref);
    naive_causal_conv3d(&c, x, T, H, W, ref);

    cr_assert(vs_window_covers(&win, &wout, (k - 1) / 2));
    size_t wf = (size_t)in_ch * vs_window_area(&win);
    float *store = malloc((vs_conv3d_cache_floats(kt, wf) + 1) * sizeof(float));
    struct vs_conv3d_cache cache;
    vs_conv3d_cache_init(&cache, kt, wf, store);
    float *in = malloc(wf * sizeof(float));
    float *out = malloc((size_t)out_ch * vs_window_area(&wout) * sizeof(float));
    double worst = 0;
    for (int t = 0; t < T; t++) {
        crop(x + (size_t)t * fsz, in_ch, &win, in);
        vs_causal_conv3d_step(&c, &cache, in, &win, out, &wout);
        for (int o = 0; o < out_ch; o++)
            for (int y = 0; y < wout.h; y++)
                for (int xx = 0; xx < wout.w; xx++) {
                    double want =
                        ref[(((size_t)t * out_ch + o) * H + wout.y0 + y) * W + wout.x0 + xx];
                    double got = out[((size_t)o * wout.h + y) * wout.w + xx];
                    worst = fmax(worst, fabs(got - want));
                }
    }
    free(wt), free(bias), free(x), free(ref), free(store), free(in), free(out);
    return worst;
}

Test(wan_conv3d, whole_frame_matches_naive_zero_padded_sequence)
{
    const int H = 7, W = 9;
    struct vs_window full = {0, 0, H, W, H, W};
    cr_expect_leq(check_conv(5, 6, 3, 3, 5, H, W, full, full), 1e-5);
    cr_expect_leq(check_conv(4, 3, 3, 1, 4, H, W, full, full), 1e-5);   /* time_conv (3,1,1) */
    cr_expect_leq(check_conv(6, 4, 1, 1, 3, H, W, full, full), 1e-5);   /* pointwise */
    cr_expect_leq(check_conv(3, 7, 1, 3, 3, H, W, full, full), 1e-5);   /* 2-D conv per frame */
}

Test(wan_conv3d, windows_need_only_their_halo)
{
    const int H = 10, W = 13;
    /* Interior window: halo of 1 on every side. */
    struct vs_window out = {3, 4, 4, 5, H, W}, in = {2, 3, 6, 7, H, W};
    cr_expect_leq(check_conv(5, 4, 3, 3, 4, H, W, in, out), 1e-5);
    /* Corner window: the frame's edge is real zero padding, no halo there. */
    struct vs_window corner = {0, 9, 3, 4, H, W}, corner_in = {0, 8, 4, 5, H, W};
    cr_expect_leq(check_conv(4, 3, 3, 3, 4, H, W, corner_in, corner), 1e-5);
    /* An input window larger than needed is fine too. */
    struct vs_window big_in = {1, 1, 9, 12, H, W};
    cr_expect_leq(check_conv(4, 3, 3, 3, 3, H, W, big_in, out), 1e-5);
}

Test(wan_conv3d, coverage_check_names_missing_halo)
{
    struct vs_window out = {3, 4, 4, 5, 10, 13};
    struct vs_window short_left = {3, 3, 6, 7, 10, 13};
    struct vs_window ok = {2, 3, 6, 7, 10, 13};
    cr_expect(vs_window_covers(&ok, &out, 1));
    cr_expect_not(vs_window_covers(&short_left, &out, 1));
    cr_expect_not(vs_window_covers(&ok, &out, 2));
    struct vs_window edge = {0, 0, 2, 2, 10, 13}, edge_in = {0, 0, 3, 3, 10, 13};
    cr_expect(vs_window_covers(&edge_in, &edge, 1));
}

Test(wan_conv3d, a_window_must_lie_in_its_frame)
{
    const struct vs_window good[] = {{0, 0, 10, 13, 10, 13}, {9, 12, 1, 1, 10, 13},
                                     {4, 4, 0, 0, 10, 13}};
    const struct vs_window bad[] = {{-1, 0, 2, 2, 10, 13}, {0, -1, 2, 2, 10, 13},
                                    {9, 0, 2, 2, 10, 13},  {0, 12, 2, 2, 10, 13},
                                    {0, 0, -1, 2, 10, 13}, {0, 0, 2, 0x7fffffff, 10, 13}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_expect(vs_window_valid(&good[i]), "good[%zu]", i);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_not(vs_window_valid(&bad[i]), "bad[%zu]", i);
}

Test(wan_rmsnorm, matches_formula_with_and_without_silu)
{
    const int C = 7;
    const size_t n = 600; /* more than one block of pixels */
    float *x = random_floats((size_t)C * n), *gamma = random_floats(C);
    for (size_t p = 0; p < n; p++) /* one all-zero pixel: the 1e-12 clamp keeps it finite */
        if (p == 17)
            for (int c = 0; c < C; c++)
                x[(size_t)c * n + p] = 0.0f;
    float *y = malloc((size_t)C * n * sizeof *y), *z = malloc((size_t)C * n * sizeof *z);
    vs_rmsnorm(x, y, C, n, gamma, false);
    memcpy(z, x, (size_t)C * n * sizeof *z);
    vs_rmsnorm(z, z, C, n, gamma, true); /* in place */
    double worst = 0, worst_silu = 0;
    for (size_t p = 0; p < n; p++) {
        double ss = 0;
        for (int c = 0; c < C; c++)
            ss += (double)x[(size_t)c * n + p] * x[(size_t)c * n + p];
        double norm = fmax(sqrt(ss), 1e-12);
        for (int c = 0; c < C; c++) {
            double v = x[(size_t)c * n + p] / norm * sqrt((double)C) * gamma[c];
            worst = fmax(worst, fabs(y[(size_t)c * n + p] - v));
            worst_silu = fmax(worst_silu, fabs(z[(size_t)c * n + p] - v / (1 + exp(-v))));
        }
    }
    cr_expect_leq(worst, 1e-6, "rmsnorm max error %g", worst);
    cr_expect_leq(worst_silu, 1e-6, "rmsnorm+silu max error %g", worst_silu);
    cr_expect_eq(y[17], 0.0f);
    free(x), free(gamma), free(y), free(z);
}

/* Large enough that both layers split their work across threads. */
Test(wan_layers, thread_count_does_not_change_results)
{
    const int C = 16, S = 24;
    const size_t frame = (size_t)C * S * S;
    float *wt = random_floats((size_t)C * C * 27), *bias = random_floats(C);
    float *gamma = random_floats(C);
    struct vs_conv3d c = {C, C, 3, 3, wt, bias, NULL};
    float *x = random_floats(3 * frame);
    const float *in[3] = {x, x + frame, x + 2 * frame};
    struct vs_window win = {0, 0, S, S, S, S};
    float *out[2], *norm[2];
    for (int run = 0; run < 2; run++) {
        vs_set_threads(run ? 3 : 1);
        out[run] = malloc(frame * sizeof(float));
        norm[run] = malloc(3 * frame * sizeof(float));
        vs_conv3d_frame(&c, in, &win, out[run], &win);
        vs_rmsnorm(x, norm[run], C, 3 * (size_t)S * S, gamma, true);
    }
    vs_set_threads(0);
    cr_expect_arr_eq(out[0], out[1], frame * sizeof(float));
    cr_expect_arr_eq(norm[0], norm[1], 3 * frame * sizeof(float));
    for (int run = 0; run < 2; run++)
        free(out[run]), free(norm[run]);
    free(wt), free(bias), free(gamma), free(x);
}

/* Runs version impl over window wout of the frames x (T = kt frames [in_ch][H][W], the first
 * `nulls` of them NULL) with the input cropped to win; returns [out_ch][wout.h][wout.w]. */
static float *run_version(enum vs_conv3d_impl impl, const struct vs_conv3d *c, const float *x,
                          int nulls, struct vs_window win, struct vs_window wout)
{
    const size_t fsz = (size_t)c->in_ch * win.H * win.W,
                 wsz = (size_t)c->in_ch * vs_window_area(&win);
    float *crops = malloc((wsz * c->kt + 1) * sizeof *crops);
    float *out = malloc(((size_t)c->out_ch * vs_window_area(&wout) + 1) * sizeof *out);
    const float *in[3] = {NULL, NULL, NULL};
    for (int dt = 0; dt < c->kt; dt++) {
        if (dt < nulls)
            continue;
        crop(x + dt * fsz, c->in_ch, &win, crops + dt * wsz);
        in[dt] = crops + dt * wsz;
    }
    vs_conv3d_frame_impl(impl, c, in, &win, out, &wout);
    free(crops);
    return out;
}

/* Every version on shapes around the vector and channel-block sizes (widths 1 .. 70, output
 * channels not a multiple of the block, input channels over one band whatever the zero frames),
 * with 0 to kt - 1 zero frames, on the whole frame and on windows at corners, edges and inside,
 * their input window exactly the halo or larger: each output equals generic's bit for bit, and
 * each window's pixels equal the frame's. */
Test(wan_conv3d, every_version_gives_the_same_bits_in_every_window)
{
    static const struct {
        int out_ch, in_ch, kt, k, H, W;
    } shapes[] = {{7, 5, 3, 3, 6, 1},   {13, 3, 3, 3, 5, 17}, {6, 9, 1, 3, 9, 33},
                  {19, 4, 3, 1, 4, 70}, {5, 7, 1, 1, 3, 16},  {12, 6, 3, 3, 11, 64},
                  {1, 2, 3, 3, 7, 65},  {7, 18, 3, 3, 5, 19}, {8, 20, 1, 3, 5, 20}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const int H = shapes[si].H, W = shapes[si].W, k = shapes[si].k, r = (k - 1) / 2;
        struct vs_conv3d c = {shapes[si].out_ch, shapes[si].in_ch, shapes[si].kt, k, NULL, NULL,
                              NULL};
        float *wt = random_floats((size_t)c.out_ch * c.in_ch * c.kt * k * k);
        float *bias = random_floats((size_t)c.out_ch);
        c.weight = wt, c.bias = bias;
        float *x = random_floats((size_t)c.kt * c.in_ch * H * W);
        const struct vs_window frame = {0, 0, H, W, H, W};
        const struct vs_window outs[] = {
            frame,
            {0, 0, (H + 1) / 2, (W + 1) / 2, H, W},                     /* top-left corner */
            {H / 2, W / 2, H - H / 2, W - W / 2, H, W},                 /* bottom-right corner */
            {H / 3, W / 3, H / 3 + 1, W / 3 + 1, H, W},                 /* inside */
            {H - 1, 0, 1, W, H, W},                                     /* last row */
        };
        for (int nulls = 0; nulls < c.kt; nulls++) {
            float *whole = run_version(VS_CONV3D_GENERIC, &c, x, nulls, frame, frame);
            for (size_t wi = 0; wi < 2 * sizeof outs / sizeof *outs; wi++) {
                const struct vs_window wout = outs[wi / 2];
                const struct vs_window win = vs_window_grow(&wout, r + 2 * (int)(wi % 2));
                for (int impl = 0; impl < VS_CONV3D_IMPLS; impl++) {
                    if (!vs_conv3d_impl_supported(impl))
                        continue;
                    float *got = run_version(impl, &c, x, nulls, win, wout);
                    for (int o = 0; o < c.out_ch; o++)
                        for (int y = 0; y < wout.h; y++)
                            cr_assert_arr_eq(got + ((size_t)o * wout.h + y) * wout.w,
                                             whole + ((size_t)o * H + wout.y0 + y) * W + wout.x0,
                                             (size_t)wout.w * sizeof(float),
                                             "shape %zu, window %zu, %s, channel %d, row %d", si,
                                             wi, vs_conv3d_impl_name(impl), o, y);
                    free(got);
                }
            }
            free(whole);
        }
        free(wt), free(bias), free(x);
    }
}

/* generic defines the exact sums: one fmaf per tap in (input channel, dt, ky, kx) order from the
 * bias, a zero frame skipped, taps outside the frame read as 0. */
Test(wan_conv3d, generic_sums_taps_in_the_documented_order)
{
    const int H = 3, W = 4;
    struct vs_conv3d c = {2, 3, 3, 3, NULL, NULL, NULL};
    float *wt = random_floats((size_t)2 * 3 * 27), *bias = random_floats(2);
    c.weight = wt, c.bias = bias;
    float *x = random_floats((size_t)3 * 3 * H * W);
    const struct vs_window frame = {0, 0, H, W, H, W};
    float *got = run_version(VS_CONV3D_GENERIC, &c, x, 1, frame, frame);
    for (int o = 0; o < 2; o++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float acc = bias[o];
                for (int i = 0; i < 3; i++)
                    for (int dt = 1; dt < 3; dt++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = y + ky - 1, ix = xx + kx - 1;
                                float v = iy >= 0 && iy < H && ix >= 0 && ix < W
                                              ? x[(((size_t)dt * 3 + i) * H + iy) * W + ix]
                                              : 0.0f;
                                acc = fmaf(wt[(((size_t)o * 3 + i) * 3 + dt) * 9 + ky * 3 + kx],
                                           v, acc);
                            }
                cr_expect_eq(got[((size_t)o * H + y) * W + xx], acc, "o %d y %d x %d", o, y, xx);
            }
    free(wt), free(bias), free(x), free(got);
}
