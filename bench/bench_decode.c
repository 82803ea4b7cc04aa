/* Tiled VAE decode on the CPU, same run, same latents:
 *  - AutoencoderKL (small SD-style config, generated weights): exact tiled and blend against
 *    the monolithic decode: time ratio, peak working memory ratio, halo overhead (tile input
 *    pixels at the cut / image pixels; interior edges shrink conv by conv, so the convolution
 *    work ratio is given too), and max-abs difference to monolithic;
 *  - Wan 2.1 (tests/golden/wan_small weights): spatially tiled against one tile;
 *  - Wan 2.2 (tests/golden/wan22_small weights): exact tiled against one tile (time, working
 *    memory, bit-identical output), and the planner's predicted peak for the real decoder
 *    (TI2V-5B widths, tests/golden/wan22_full's manifest) at 1280x704x121 (and Ovi's 720x720x121)
 *    under budgets of 2, 4 and 8 GiB: feasible or not, tile grid, halo overhead (a dry run:
 *    nothing is computed).
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
#include "kernels/st_memory.h"
#include "kernels/wan.h"
#include "kernels/weights.h"
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

static int kl_run(const struct vs_program *p, const float *lat, enum vs_decode_mode mode, int tile,
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
    if (kl_run(&p, lat, VS_DECODE_MONOLITHIC, 0, &mono, n) ||
        kl_run(&p, lat, VS_DECODE_EXACT, tile, &ex, n) ||
        kl_run(&p, lat, VS_DECODE_BLEND, tile, &bl, n))
        return -1;
    printf("AutoencoderKL widths [32,64,64], latent %dx%d -> %dx%d, tiles of %d px (halo %d px):\n",
           LAT, LAT, LAT * d.upscale, LAT * d.upscale, tile * d.upscale, p.halo * d.upscale);
    printf("  %-10s %8s %8s %12s %9s %10s %16s\n", "mode", "time s", "time x", "work peak x",
           "overhead", "conv work", "max-abs vs mono");
    const struct {
        const char *name;
        struct run *r;
    } rows[] = {{"monolithic", &mono}, {"exact", &ex}, {"blend", &bl}};
    for (int i = 0; i < 3; i++)
        printf("  %-10s %8.3f %8.2f %12.3f %8.2fx %9.2fx %16.3g\n", rows[i].name,
               rows[i].r->seconds, rows[i].r->seconds / mono.seconds,
               (double)rows[i].r->work / (double)mono.work, rows[i].r->overhead, rows[i].r->conv,
               max_abs(rows[i].r->img, mono.img, n));
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
    int rc = wan_run(m, lat, T, h, w, 0, a, &ta, &sa) ||
             wan_run(m, lat, T, h, w, 8 * S / 2 * 2, b, &tb, &sb);
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

static int bench_wan22_small(void)
{
    struct vs_wan_model *m;
    struct vs_err err;
    if (vs_wan_load(VS_SOURCE_DIR "/tests/golden/wan22_small.vae.safetensors", &m, &err))
        return fprintf(stderr, "bench_decode: %s\n", err.msg), -1;
    const int T = 3, h = 8, w = 8, S = vs_wan_spatial_scale(m), T2 = vs_wan_out_frames(m, T);
    const int C = vs_wan_latent_channels(m);
    float *lat = malloc(sizeof(float) * C * T * h * w);
    for (int i = 0; i < C * T * h * w; i++)
        lat[i] = (float)sin(0.21 * i);
    size_t n = (size_t)3 * T2 * h * S * w * S;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double ta, tb;
    struct vs_wan_stats sa, sb;
    int rc = wan_run(m, lat, T, h, w, 0, a, &ta, &sa);
    printf("Wan 2.2 (wan22_small weights), latent %dx%dx%d -> %d frames of %dx%d:\n", T, h, w,
           T2, h * S, w * S);
    const int tiles[] = {64, 48, 40};
    for (size_t k = 0; k < sizeof tiles / sizeof tiles[0] && !rc; k++) {
        rc = wan_run(m, lat, T, h, w, tiles[k], b, &tb, &sb);
        if (!rc)
            printf("  one tile %.3f s; exact tiles of %d px (%dx%d): time x%.2f, work peak x%.3f "
                   "(predicted/measured %.3f), overhead %.2fx, %s\n", ta, tiles[k],
                   sb.plan.tiles_x, sb.plan.tiles_y, tb / ta,
                   (double)sb.measured_peak / (double)sa.measured_peak,
                   (double)sb.plan.predicted_peak / (double)sb.measured_peak,
                   sb.plan.halo_overhead,
                   memcmp(a, b, n * sizeof *a) ? "OUTPUT DIFFERS" : "bit-identical");
        if (!rc && memcmp(a, b, n * sizeof *a))
            rc = -1;
    }
    free(a), free(b), free(lat);
    vs_wan_free(m);
    return rc ? -1 : 0;
}

/* The real Wan 2.2 decoder's layer list from wan22_full's manifest, over one shared zero buffer
 * (the planner reads shapes only). */
static int real_wan22(struct vs_wan_model **m)
{
    struct vs_err err;
    struct vs_st_file io;
    if (vs_st_open(&io, VS_SOURCE_DIR "/tests/golden/wan22_full.io.safetensors", &err))
        return fprintf(stderr, "bench_decode: %s\n", err.msg), -1;
    json_t *man = json_loads(vs_st_meta(&io, "weights_manifest"), 0, NULL);
    vs_st_close(&io);
    if (!json_is_object(man))
        return fprintf(stderr, "bench_decode: wan22_full has no weights_manifest\n"), -1;
    size_t n = json_object_size(man), i = 0, biggest = 1;
    struct vs_st_mem_tensor *ts = calloc(n, sizeof *ts);
    int64_t(*shapes)[VS_ST_MAX_DIMS] = calloc(n, sizeof *shapes);
    const char *key;
    json_t *shape;
    json_object_foreach(man, key, shape) {
        size_t numel = 1;
        for (size_t d = 0; d < json_array_size(shape) && d < VS_ST_MAX_DIMS; d++)
            numel *= (size_t)(shapes[i][d] = json_integer_value(json_array_get(shape, d)));
        biggest = numel > biggest ? numel : biggest;
        ts[i] = (struct vs_st_mem_tensor){key, NULL, VS_DT_F32, (int)json_array_size(shape),
                                          shapes[i]};
        i++;
    }
    float *zeros = calloc(biggest, sizeof *zeros);
    for (i = 0; i < n; i++)
        ts[i].data = zeros;
    struct vs_st_file f;
    struct vs_weights w;
    int rc = vs_st_from_memory(&f, "wan22 real widths", ts, n, NULL, &err) ||
             vs_weights_adopt(&w, &f, &err);
    if (!rc) {
        rc = vs_wan_load_weights(&w, m, &err);
        vs_weights_close(&w);
    }
    if (rc)
        fprintf(stderr, "bench_decode: %s\n", err.msg);
    free(zeros), free(shapes), free(ts);
    json_decref(man);
    return rc ? -1 : 0;
}

static void wan22_real_plan(const struct vs_wan_model *m, int W, int H, int frames)
{
    const int S = vs_wan_spatial_scale(m), T = 1 + (frames - 1) / 4, h = H / S, w = W / S;
    printf("Wan 2.2 real decoder (z %d, 16x, TI2V-5B widths), %dx%dx%d (latent %dx%dx%d), "
           "predicted peak working memory (fp32, outputs excluded):\n", vs_wan_latent_channels(m),
           W, H, frames, T, h, w);
    const size_t gib = 1ull << 30, budgets[] = {0, 8 * gib, 4 * gib, 2 * gib};
    for (size_t k = 0; k < sizeof budgets / sizeof budgets[0]; k++) {
        struct vs_wan_opts opts = {.budget = budgets[k]};
        struct vs_wan_plan plan;
        struct vs_err err;
        int rc = vs_wan_plan(m, T, h, w, &opts, &plan, &err);
        if (k == 0)
            printf("  no budget (one tile): %.2f GiB predicted\n",
                   (double)plan.predicted_peak / (double)gib);
        else if (rc)
            printf("  budget %zu GiB: not feasible: %s\n", budgets[k] / gib, err.msg);
        else
            printf("  budget %zu GiB: feasible, %dx%d tiles of %dx%d px, halo %d px, overhead "
                   "%.2fx, predicted %.2f GiB\n", budgets[k] / gib, plan.tiles_x, plan.tiles_y,
                   plan.tile_w, plan.tile_h, plan.halo * S, plan.halo_overhead,
                   (double)plan.predicted_peak / (double)gib);
    }
}

/* TI2V-5B's default 1280x704x121, and Ovi's 720x720x121. */
static int bench_wan22_real_plan(void)
{
    struct vs_wan_model *m;
    if (real_wan22(&m))
        return -1;
    wan22_real_plan(m, 1280, 704, 121);
    wan22_real_plan(m, 720, 720, 121);
    vs_wan_free(m);
    return 0;
}

int main(void)
{
    if (bench_kl() || bench_wan() || bench_wan22_small())
        return 1;
    return bench_wan22_real_plan() ? 1 : 0;
}
