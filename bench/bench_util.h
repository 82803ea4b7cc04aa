/* What the kernel benchmarks (bench_conv.c, bench_conv3d.c) share: reproducible inputs and the
 * timing. Times are process CPU seconds (all threads together), which other load on a shared
 * machine inflates far less than wall time. */
#ifndef VS_BENCH_UTIL_H
#define VS_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* n floats uniform in [-scale, scale), the same for the same seed s; exits 2 without memory */
static float *rnd(size_t n, uint64_t s, float scale)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench: out of memory for %zu floats\n", n);
        exit(2);
    }
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1) * scale;
    }
    return p;
}

/* Sets secs to the least CPU seconds of `repeat` runs of the statement run. */
#define BEST_CPU_S(secs, repeat, run)                                                              \
    do {                                                                                           \
        (secs) = 1e30;                                                                             \
        for (int r_ = 0; r_ < (repeat); r_++) {                                                    \
            double t0_ = cpu_s();                                                                  \
            run;                                                                                   \
            double t_ = cpu_s() - t0_;                                                             \
            (secs) = t_ < (secs) ? t_ : (secs);                                                    \
        }                                                                                          \
    } while (0)

#endif
