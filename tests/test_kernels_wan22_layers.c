/* Wan 2.2's channel-to-space layer (kernels/cpu/space.h) against direct naive transcriptions of
 * diffusers' DupUp3D (repeat_interleave, view, permute, first-chunk slice) and unpatchify (view,
 * permute), on whole frames and gathered tile by tile over windows at odd offsets: bit for bit. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/space.h"
#include "tests/wan_fixture.h"

/* DupUp3D on x[cin][T][h][w] -> out[cout][T * ft - (first ? ft - 1 : 0)][h * fs][w * fs]:
 * the repeated tensor R[k] = x[k / repeats] viewed as [cout][ft][fs][fs][T][h][w] and permuted
 * to [cout][T][ft][h][fs][w][fs]. */
static float *naive_dup_up(const float *x, int cin, int cout, int ft, int fs, int T, int h, int w,
                           int first, int *frames)
{
    const int repeats = cout * ft * fs * fs / cin, skip = first ? ft - 1 : 0;
    const int TO = T * ft - skip, H = h * fs, W = w * fs;
    float *out = malloc((size_t)cout * TO * H * W * sizeof *out);
    for (int c = 0; c < cout; c++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < ft; i++)
                for (int y = 0; y < h; y++)
                    for (int j = 0; j < fs; j++)
                        for (int xx = 0; xx < w; xx++)
                            for (int k = 0; k < fs; k++) {
                                int tf = t * ft + i - skip;
                                if (tf < 0)
                                    continue;
                                int r = ((c * ft + i) * fs + j) * fs + k;
                                out[(((size_t)c * TO + tf) * H + y * fs + j) * W + xx * fs + k] =
                                    x[(((size_t)(r / repeats) * T + t) * h + y) * w + xx];
                            }
    *frames = TO;
    return out;
}

/* unpatchify: x[c * p * p][F][h][w] viewed as [c][p(a)][p(b)][F][h][w], permuted to
 * [c][F][h][b][w][a]. */
static float *naive_unpatchify(const float *x, int c, int p, int F, int h, int w)
{
    const int H = h * p, W = w * p;
    float *out = malloc((size_t)c * F * H * W * sizeof *out);
    for (int ci = 0; ci < c; ci++)
        for (int a = 0; a < p; a++)
            for (int b = 0; b < p; b++)
                for (int f = 0; f < F; f++)
                    for (int y = 0; y < h; y++)
                        for (int xx = 0; xx < w; xx++)
                            out[(((size_t)ci * F + f) * H + y * p + b) * W + xx * p + a] =
                                x[((((size_t)(ci * p + a) * p + b) * F + f) * h + y) * w + xx];
    return out;
}

/* Frame `t` of a [C][T][h][w] tensor, cropped to window `win`. */
static float *frame_window(const float *x, int C, int T, int t, const struct vs_window *win)
{
    float *out = malloc((size_t)C * vs_window_area(win) * sizeof *out);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < win->h; y++)
            memcpy(out + ((size_t)c * win->h + y) * win->w,
                   x + (((size_t)c * T + t) * win->H + win->y0 + y) * win->W + win->x0,
                   (size_t)win->w * sizeof *out);
    return out;
}

/* Gathers frame `tf` of the output in tiles of th x tw and compares each with `want`; `add`
 * adds onto a base frame of `base` (the block's main path) instead. */
static void check_tiles(const float *src, int cin, int T, int t, const float *want, int cout,
                        int TO, int tf, int H, int W, int f, struct vs_to_space g, int th, int tw)
{
    for (int y0 = 0; y0 < H; y0 += th)
        for (int x0 = 0; x0 < W; x0 += tw) {
            struct vs_window d = {y0, x0, y0 + th > H ? H - y0 : th, x0 + tw > W ? W - x0 : tw,
                                  H, W};
            struct vs_window s = vs_to_space_src(&d, f);
            float *in = frame_window(src, cin, T, t, &s);
            float *exp = frame_window(want, cout, TO, tf, &d);
            float *got = g.add ? wf_latents((size_t)cout * vs_window_area(&d), 9) : calloc(
                                     (size_t)cout * vs_window_area(&d), sizeof *got);
            float *base = malloc((size_t)cout * vs_window_area(&d) * sizeof *base);
            memcpy(base, got, (size_t)cout * vs_window_area(&d) * sizeof *base);
            vs_to_space(got, &d, in, &s, &g);
            for (size_t i = 0; i < (size_t)cout * vs_window_area(&d); i++)
                cr_assert_eq(got[i], g.add ? base[i] + exp[i] : exp[i],
                             "tile %d,%d %dx%d, frame %d: value %zu", y0, x0, d.h, d.w, tf, i);
            free(in);
            free(exp);
            free(got);
            free(base);
        }
}

Test(wan22_layers, dup_up_matches_diffusers_dupup3d_on_tiles)
{
    /* (cin, cout, ft): Wan 2.2's 1024->1024 temporal (repeats 8), 1024->512 spatial
     * (repeats 2), scaled down, and a case where one source channel spans several outputs. */
    const struct { int cin, cout, ft; } cases[] = {{8, 8, 2}, {8, 4, 1}, {6, 3, 2}, {4, 2, 1}};
    const int fs = 2, T = 3, h = 5, w = 7, H = h * fs, W = w * fs;
    const int tiles[][2] = {{H, W}, {3, 5}, {4, 4}, {1, 13}, {7, 2}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int cin = cases[k].cin, cout = cases[k].cout, ft = cases[k].ft;
        float *x = wf_latents((size_t)cin * T * h * w, (unsigned)k + 1);
        int TO, TO1;
        float *want = naive_dup_up(x, cin, cout, ft, fs, T, h, w, 0, &TO);
        for (int t = 0; t < T; t++)
            for (int i = 0; i < ft; i++) {
                struct vs_to_space g = {cout, fs, ft * fs * fs, i * fs * fs, fs, 1,
                                        cout * ft * fs * fs / cin, i % 2 == 1};
                for (size_t q = 0; q < sizeof tiles / sizeof tiles[0]; q++)
                    check_tiles(x, cin, T, t, want, cout, TO, t * ft + i, H, W, fs, g,
                                tiles[q][0], tiles[q][1]);
            }
        /* The first chunk's frame is sub-frame ft - 1 of frame 0 (diffusers' slice). */
        float *x0 = frame_window(x, cin, T, 0, &(struct vs_window){0, 0, h, w, h, w});
        float *first = naive_dup_up(x0, cin, cout, ft, fs, 1, h, w, 1, &TO1);
        cr_assert_eq(TO1, 1, "the first chunk keeps one frame");
        struct vs_to_space g = {cout, fs, ft * fs * fs, (ft - 1) * fs * fs, fs, 1,
                                cout * ft * fs * fs / cin, false};
        check_tiles(x0, cin, 1, 0, first, cout, 1, 0, H, W, fs, g, 3, 4);
        free(x0);
        free(x);
        free(want);
        free(first);
    }
}

Test(wan22_layers, unpatchify_matches_diffusers_on_tiles)
{
    const int c = 3, p = 2, F = 2, h = 5, w = 6, H = h * p, W = w * p;
    float *x = wf_latents((size_t)c * p * p * F * h * w, 5);
    float *want = naive_unpatchify(x, c, p, F, h, w);
    struct vs_to_space g = {c, p, p * p, 0, 1, p, 1, false};
    const int tiles[][2] = {{H, W}, {3, 5}, {1, 1}, {7, 12}, {10, 3}};
    for (int f = 0; f < F; f++)
        for (size_t q = 0; q < sizeof tiles / sizeof tiles[0]; q++)
            check_tiles(x, c * p * p, F, f, want, c, F, f, H, W, p, g, tiles[q][0], tiles[q][1]);
    free(x);
    free(want);
}

Test(wan22_layers, source_window_of_odd_offsets)
{
    struct vs_window d = {3, 4, 4, 1, 20, 14};
    struct vs_window s = vs_to_space_src(&d, 2);
    cr_expect_eq(s.y0, 1);
    cr_expect_eq(s.h, 3); /* rows 3..6 read source rows 1..3 */
    cr_expect_eq(s.x0, 2);
    cr_expect_eq(s.w, 1);
    cr_expect_eq(s.H, 10);
    cr_expect_eq(s.W, 7);
}
