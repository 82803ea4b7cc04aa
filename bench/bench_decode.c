/* Tiled VAE decode on the CPU, same run, same latents:
 *  - AutoencoderKL (small SD-style config, generated weights): exact tiled and blend against
 *    the monolithic decode: time ratio, peak working memory ratio, halo overhead (tile input
 *    pixels at the cut / image pixels; interior edges shrink conv by conv, so the convolution
 *    work ratio is given too), and max-abs difference to monolithic;
 *  - Wan 2.1 (tests/golden/wan_small weights): spatially tiled against one tile.
 * Figures are ratios against the monolithic decode measured here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/kl_decoder.h"
#include "kernels/kl_program.h"
#include "kernels/plan.h"
#include "kernels/wan.h"
#include "tests/golden_weights.h"

#define LAT 32
#define REPEAT 2

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct run {
    double seconds;
    size_t work;
    double overhead, conv;
    float *img;
};

static int kl_run(const struct vs_program *p, const float *lat, enum vs_mode mode, int tile,
                  struct run *r, size_t n)
{
    struct vs_plan plan;
    struct vs_err err;
    struct vs_mem mem;
    vs_mem_init(&mem, 0);
    float *out;
    if (vs_plan_make(&plan, p, LAT, LAT, mode, tile, 0, &err))
        return fprintf(stderr, "bench_decode: %s\n", err.msg), -1;
    /* best of REPEAT: the machine is shared, the minimum is the least disturbed run */
    r->seconds = 1e30;
    for (int k = 0; k < REPEAT; k++) {
        double t0 = now_s();
        if (vs_plan_run(&plan, p, lat, &out, &mem, NULL, &err))
            return fprintf(stderr, "bench_decode: %s\n", err.msg), -1;
        r->seconds = fmin(r->seconds, now_s() - t0);
        if (k + 1 < REPEAT)
            vs_mem_free(&mem, out);
    }
    r->work = mem.peak[VS_POOL_WORK];
    r->overhead = plan.halo_overhead;
    r->conv = plan.conv_overhead;
    r->img = malloc(n * sizeof *r->img);
    memcpy(r->img, out, n * sizeof *r->img);
    vs_mem_free(&mem, out);
    vs_plan_free(&plan);
    return 0;
}

static double max_abs(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static int bench_kl(void)
{
    static const int widths[3] = {32, 64, 64};
    char path[] = "/tmp/vs_bench_kl_XXXXXX", msg[256];
    close(mkstemp(path));
    char *man = gw_kl_manifest(4, 3, widths, 1, 1, 1);
    int rc = gw_write_safetensors(path, man, "{\"norm_num_groups\": 8}", msg, sizeof msg);
    free(man);
    if (rc)
        return fprintf(stderr, "bench_decode: %s\n", msg), -1;
    struct vs_kl_decoder d;
    struct vs_program p;
    struct vs_err err;
    rc = vs_kl_load(&d, path, VS_ARCH_AUTO, &err);
    unlink(path);
    if (rc || vs_program_build(&p, &d, &err))
        return fprintf(stderr, "bench_decode: %s\n", err.msg), -1;
    float *lat = malloc(sizeof(float) * 4 * LAT * LAT);
    for (int i = 0; i < 4 * LAT * LAT; i++)
        lat[i] = (float)sin(0.37 * i);
    size_t n = (size_t)3 * LAT * d.upscale * LAT * d.upscale;
    struct run mono, ex, bl;
    const int tile = 16;
    if (kl_run(&p, lat, VS_MODE_MONOLITHIC, 0, &mono, n) || kl_run(&p, lat, VS_MODE_EXACT, tile, &ex, n) ||
        kl_run(&p, lat, VS_MODE_BLEND, tile, &bl, n))
        return -1;
    printf("AutoencoderKL widths [32,64,64], latent %dx%d -> %dx%d, tiles of %d px (halo %d px):\n",
           LAT, LAT, LAT * d.upscale, LAT * d.upscale, tile * d.upscale, p.halo * d.upscale);
    printf("  %-10s %8s %8s %12s %9s %10s %16s\n", "mode", "time s", "time x", "work peak x",
           "overhead", "conv work", "max-abs vs mono");
    const struct { const char *name; struct run *r; } rows[] = {{"monolithic", &mono}, {"exact", &ex}, {"blend", &bl}};
    for (int i = 0; i < 3; i++)
        printf("  %-10s %8.3f %8.2f %12.3f %8.2fx %9.2fx %16.3g\n", rows[i].name, rows[i].r->seconds,
               rows[i].r->seconds / mono.seconds, (double)rows[i].r->work / (double)mono.work,
               rows[i].r->overhead, rows[i].r->conv, max_abs(rows[i].r->img, mono.img, n));
    free(mono.img), free(ex.img), free(bl.img), free(lat);
    vs_program_free(&p);
    vs_kl_free(&d);
    return 0;
}

static int wan_run(const struct vs_wan_model *m, const float *lat, int T, int h, int w, int tile,
                   float *out, double *secs, struct vs_wan_stats *st)
{
    struct vs_err err;
    struct vs_wan_opts opts = {.tile = tile};
    double t0 = now_s();
    if (vs_wan_decode(m, lat, T, h, w, &opts, out, st, &err))
        return fprintf(stderr, "bench_decode: %s\n", err.msg), -1;
    *secs = now_s() - t0;
    return 0;
}

static int bench_wan(void)
{
    struct vs_wan_model *m;
    struct vs_err err;
    if (vs_wan_load(VS_SOURCE_DIR "/tests/golden/wan_small.vae.safetensors", &m, &err))
        return fprintf(stderr, "bench_decode: %s\n", err.msg), -1;
    const int T = 3, h = 16, w = 16, S = vs_wan_spatial_scale(m), T2 = vs_wan_out_frames(m, T);
    int C = vs_wan_latent_channels(m);
    float *lat = malloc(sizeof(float) * C * T * h * w);
    for (int i = 0; i < C * T * h * w; i++)
        lat[i] = (float)sin(0.21 * i);
    size_t n = (size_t)3 * T2 * h * S * w * S;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double ta, tb;
    struct vs_wan_stats sa, sb;
    int rc = wan_run(m, lat, T, h, w, 0, a, &ta, &sa) || wan_run(m, lat, T, h, w, 8 * S / 2 * 2, b, &tb, &sb);
    if (!rc) {
        printf("Wan 2.1 (wan_small weights), latent %dx%dx%d -> %d frames of %dx%d:\n", T, h, w,
               T2, h * S, w * S);
        printf("  one tile: %.3f s; tiled %dx%d: time x%.2f, work peak x%.3f, overhead %.2fx, "
               "max-abs %.3g\n", ta, sb.plan.tiles_x, sb.plan.tiles_y, tb / ta,
               (double)sb.measured_peak / (double)sa.measured_peak, sb.plan.halo_overhead,
               max_abs(a, b, n));
    }
    free(a), free(b), free(lat);
    vs_wan_free(m);
    return rc ? -1 : 0;
}

int main(void)
{
    if (bench_kl())
        return 1;
    return bench_wan() ? 1 : 0;
}
