/* The conv2d versions (kernels/cpu/conv2d.c) on the SDXL decoder's layer shapes: first scaled down
 * to a few seconds, where each version supported by this CPU is checked against the reference
 * (max-abs difference relative to the output's largest value) and against the other exact versions
 * (must be bit-identical), and timed (generic, the scalar fallback, only on the smallest shape);
 * times are ratios against the reference (the previous C implementation) measured in the same run,
 * best of REPEAT, on all threads. Times are process CPU seconds (bench_util.h); GFLOP/s is per CPU
 * second (one core). Then the decoder's full-size planes (64x64 latent -> 512x512),
 * where the reference would take minutes: the SIMD versions only, checked against each other, time
 * x against the first of them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/parallel.h"

#define REPEAT 2

struct shape {
    const char *what;
    int cin, cout, k, h, w;
    int full; /* decode-sized: SIMD versions only */
};

int main(void)
{
    /* SDXL decoder layers (64x64 latent: 512 ch at 64..128, 256 ch at 256, 128 ch at 512 px),
     * with the planes cut so that the reference runs each in about a second on two threads */
    static const struct shape shapes[] = {
        {"mid 3x3 512->512", 512, 512, 3, 16, 64, 0},
        {"up 3x3 256->256", 256, 256, 3, 32, 256, 0},
        {"up 3x3 128->128", 128, 128, 3, 32, 512, 0},
        {"shortcut 1x1 256->128", 256, 128, 1, 64, 512, 0},
        {"conv_out 3x3 128->3", 128, 3, 3, 64, 512, 0},
        {"odd 3x3 37->19, w 45", 37, 19, 3, 33, 45, 0},
        {"mid 3x3 512->512 64x64", 512, 512, 3, 64, 64, 1},
        {"up 3x3 512->512 128x128", 512, 512, 3, 128, 128, 1},
        {"up 3x3 256->256 256x256", 256, 256, 3, 256, 256, 1},
        {"up 3x3 128->128 512x512", 128, 128, 3, 512, 512, 1},
    };
    int failed = 0;
    printf("conv2d versions, %d threads; CPU s: process CPU seconds; time x = CPU s / first row's\n"
           "(lower is faster); GFLOP/s per CPU second\n", vs_threads());
    printf("  %-24s %-8s %9s %8s %10s %12s\n", "layer", "version", "CPU s", "time x", "GFLOP/s",
           "max-abs/ref");
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const struct shape *sh = &shapes[si];
        const int p = sh->k / 2;
        struct vs_conv2d_geom g = {sh->cin, sh->cout, sh->k, sh->h, sh->w, p, p, p, p};
        const size_t nin = (size_t)sh->cin * sh->h * sh->w, nout = (size_t)sh->cout * sh->h * sh->w;
        float *in = rnd(nin, si + 1, 1.0f);
        float *wt = rnd((size_t)sh->cout * sh->cin * sh->k * sh->k, si + 100,
                        1.0f / sqrtf((float)sh->cin * sh->k * sh->k));
        float *b = rnd((size_t)sh->cout, si + 200, 0.1f);
        float *out[VS_CONV2D_IMPLS] = {0};
        double secs[VS_CONV2D_IMPLS] = {0};
        const double flop = 2.0 * sh->cin * sh->k * sh->k * (double)nout;
        for (int v = 0; v < VS_CONV2D_IMPLS; v++) {
            if (!vs_conv2d_impl_supported(v))
                continue;
            if (v == VS_CONV2D_GENERIC && flop > 1e9)
                continue;
            if (sh->full && (v == VS_CONV2D_REF || v == VS_CONV2D_GENERIC))
                continue;
            out[v] = malloc(nout * sizeof(float));
            BEST_CPU_S(secs[v], REPEAT, vs_conv2d_impl(v, in, out[v], wt, b, &g));
        }
        int exact = -1; /* the first exact version that ran: the others must equal it */
        int base = sh->full ? VS_CONV2D_AVX2 : VS_CONV2D_REF; /* what time x and max-abs use */
        while (base < VS_CONV2D_IMPLS && !out[base])
            base++;
        if (base == VS_CONV2D_IMPLS) { /* no SIMD version on this CPU */
            free(in), free(wt), free(b);
            continue;
        }
        double big = 0;
        for (size_t i = 0; i < nout; i++)
            big = fmax(big, fabs(out[base][i]));
        for (int v = 0; v < VS_CONV2D_IMPLS; v++) {
            if (!out[v])
                continue;
            double m = 0;
            for (size_t i = 0; i < nout; i++)
                m = fmax(m, fabs((double)out[v][i] - out[base][i]));
            const char *note = "";
            if (v != VS_CONV2D_REF && exact < 0)
                exact = v;
            if (exact >= 0 && memcmp(out[v], out[exact], nout * sizeof(float)))
                note = "  DIFFERS FROM OTHER EXACT VERSION", failed = 1;
            if (m / big > 1e-5)
                note = "  TOO FAR FROM REF", failed = 1;
            printf("  %-24s %-8s %9.3f %8.3f %10.1f %12.2g%s\n", v == base ? sh->what : "",
                   vs_conv2d_impl_name(v), secs[v], secs[v] / secs[base], flop / secs[v] * 1e-9,
                   m / big, note);
        }
        for (int v = 0; v < VS_CONV2D_IMPLS; v++)
            free(out[v]);
        free(in), free(wt), free(b);
    }
    return failed;
}
