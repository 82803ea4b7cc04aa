/* The conv3d versions (kernels/cpu/conv3d.c) on the Wan 2.1 decoder's layer shapes, planes cut so
 * that the scalar generic version takes about a second each: every version this CPU supports is
 * checked against generic (must be bit-identical, on the whole frame and on an interior window
 * with its halo) and timed, best of REPEAT on all threads, in process CPU seconds (bench_util.h);
 * times are ratios against generic measured in the same run, GFLOP/s is per CPU second (one core).
 * Then the decoder's full-size planes (16x3x32x32 latent -> 9 frames of 256x256, every time tap
 * live as after the first frames), where generic would take minutes: the SIMD versions only,
 * checked against and timed as ratios to the first of them. Exits 1 when a version differs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "kernels/cpu/conv3d.h"
#include "kernels/cpu/parallel.h"

#define REPEAT 2

struct shape {
    const char *what;
    int cin, cout, kt, k, h, w;
    int full; /* decode-sized: SIMD versions only, no zero frame */
};

int main(void)
{
    /* Wan 2.1 decoder layers (base_dim 96: 384 ch at the latent size, 192 at x2 and x4, 96 at
     * x8), the planes cut to a few rows */
    static const struct shape shapes[] = {
        {"res 3x3x3 384->384", 384, 384, 3, 3, 8, 32, 0},
        {"res 3x3x3 192->192", 192, 192, 3, 3, 8, 128, 0},
        {"res 3x3x3 96->96", 96, 96, 3, 3, 16, 256, 0},
        {"time_conv 3x1x1 384->768", 384, 768, 3, 1, 8, 32, 0},
        {"upsample 1x3x3 192->96", 192, 96, 1, 3, 16, 128, 0},
        {"shortcut 1x1x1 192->96", 192, 96, 1, 1, 16, 256, 0},
        {"odd 3x3x3 37->19, w 45", 37, 19, 3, 3, 13, 45, 0},
        {"res 3x3x3 384->384 32x32", 384, 384, 3, 3, 32, 32, 1},
        {"res 3x3x3 384->384 64x64", 384, 384, 3, 3, 64, 64, 1},
        {"res 3x3x3 192->192 128^2", 192, 192, 3, 3, 128, 128, 1},
        {"res 3x3x3 96->96 256x256", 96, 96, 3, 3, 256, 256, 1},
        {"time 3x1x1 384->768 64^2", 384, 768, 3, 1, 64, 64, 1},
        {"up 1x3x3 384->192 128^2", 384, 192, 1, 3, 128, 128, 1},
        {"up 1x3x3 192->96 256x256", 192, 96, 1, 3, 256, 256, 1},
        {"short 1x1x1 192->384 64^2", 192, 384, 1, 1, 64, 64, 1},
        {"head 3x3x3 96->3 256x256", 96, 3, 3, 3, 256, 256, 1},
    };
    int failed = 0;
    printf("conv3d versions, %d threads; CPU s: process CPU seconds; time x = CPU s / the first "
           "version's\n"
           "(lower is faster); GFLOP/s per CPU second\n",
           vs_threads());
    printf("  %-26s %-8s %9s %8s %9s %s\n", "layer", "version", "CPU s", "time x", "GFLOP/s",
           "bits vs generic or, full size, avx2 (frame, window)");
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const struct shape *sh = &shapes[si];
        struct vs_conv3d c = {sh->cout, sh->cin, sh->kt, sh->k, NULL, NULL, NULL};
        float *weight = rnd((size_t)sh->cout * sh->cin * sh->kt * sh->k * sh->k, 1 + si, 1.0f);
        float *bias = rnd((size_t)sh->cout, 100 + si, 1.0f);
        c.weight = weight, c.bias = bias;
        const size_t plane = (size_t)sh->h * sh->w, fsz = (size_t)sh->cin * plane;
        const size_t osz = (size_t)sh->cout * plane;
        float *frames = rnd(fsz * sh->kt, 200 + si, 1.0f);
        const float *in[3] = {NULL, NULL, NULL};
        for (int dt = 0; dt < sh->kt; dt++)
            in[dt] = frames + dt * fsz;
        if (!sh->full) /* a zero frame in front, as at the first frames */
            in[0] = sh->kt > 1 ? NULL : in[0];
        const struct vs_window frame = {0, 0, sh->h, sh->w, sh->h, sh->w};
        /* an interior window, its input the same frame's window with the halo */
        const struct vs_window wout = {sh->h / 3, 5, sh->h / 2, sh->w - 9, sh->h, sh->w};
        const struct vs_window win = vs_window_grow(&wout, (sh->k - 1) / 2);
        float *crops = malloc(fsz * sh->kt * sizeof *crops);
        const float *cin[3];
        for (int dt = 0; dt < sh->kt; dt++) {
            cin[dt] = in[dt] ? crops + dt * fsz : NULL;
            for (int ch = 0; in[dt] && ch < sh->cin; ch++)
                for (int y = 0; y < win.h; y++)
                    memcpy(crops + dt * fsz + ((size_t)ch * win.h + y) * win.w,
                           in[dt] + (size_t)ch * plane + (size_t)(win.y0 + y) * sh->w + win.x0,
                           (size_t)win.w * sizeof(float));
        }
        float *want = malloc(osz * sizeof *want), *got = malloc(osz * sizeof *got);
        float *wwin = malloc(osz * sizeof *wwin), *gwin = malloc(osz * sizeof *gwin);
        const size_t wsz = (size_t)sh->cout * vs_window_area(&wout);
        const int live = sh->kt > 1 && !in[0] ? sh->kt - 1 : sh->kt; /* a NULL frame is free */
        double gflop = 2.0 * sh->cout * sh->cin * live * sh->k * sh->k * plane / 1e9;
        double base = 0;
        const int first = sh->full ? VS_CONV3D_AVX2 : VS_CONV3D_GENERIC; /* the baseline */
        for (int impl = first; impl < VS_CONV3D_IMPLS; impl++) {
            if (!vs_conv3d_impl_supported(impl)) {
                printf("  %-26s %-8s (not supported by this CPU)\n", sh->what,
                       vs_conv3d_impl_name(impl));
                continue;
            }
            float *dst = impl == first ? want : got;
            float *dwin = impl == first ? wwin : gwin;
            double t;
            BEST_CPU_S(t, REPEAT, vs_conv3d_frame_impl(impl, &c, in, &frame, dst, &frame));
            vs_conv3d_frame_impl(impl, &c, cin, &win, dwin, &wout);
            base = impl == first ? t : base;
            /* the window's pixels are the frame's, bit for bit */
            int same_win = 1;
            for (int o = 0; o < sh->cout; o++)
                for (int y = 0; y < wout.h; y++)
                    same_win &= !memcmp(dwin + ((size_t)o * wout.h + y) * wout.w,
                                        want + (size_t)o * plane + (size_t)(wout.y0 + y) * sh->w +
                                            wout.x0,
                                        (size_t)wout.w * sizeof(float));
            int same = impl == first || !memcmp(got, want, osz * sizeof *got);
            same_win &= impl == first || !memcmp(gwin, wwin, wsz * sizeof *gwin);
            printf("  %-26s %-8s %9.4f %8.3f %9.1f %s, %s\n", sh->what, vs_conv3d_impl_name(impl),
                   t, t / base, gflop / t, same ? "identical" : "DIFFERENT",
                   same_win ? "identical" : "DIFFERENT");
            failed |= !same || !same_win;
        }
        free(weight), free(bias), free(frames), free(crops);
        free(want), free(got), free(wwin), free(gwin);
    }
    if (failed)
        printf("bench_conv3d: a version differs from the first\n");
    return failed;
}
