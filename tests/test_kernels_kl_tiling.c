/* Tiled AutoencoderKL decode on a small generated model (3 up blocks, x4 upscale, attention,
 * shortcuts, 4 groups) at an odd latent size: exact mode equals the monolithic decode for many
 * tilings (tiles smaller than the halo, odd sizes, one tile); blend mode stays within a stated
 * tolerance; the planner's prediction matches the measured peak and the budget is respected. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/kl_decoder.h"
#include "kernels/kl_program.h"
#include "kernels/plan.h"
#include "tests/golden_weights.h"

/* odd size for the equality tests; a larger one for memory, where tiles must be well above
 * the halo (8 latent px) to save anything */
#define LH 9
#define LW 13
#define BIG_H 48
#define BIG_W 40

static struct vs_kl_decoder dec;
static struct vs_program prog;
static float latent[4 * BIG_H * BIG_W];

static void setup(void)
{
    static const int widths[3] = {8, 16, 16};
    char path[] = "/tmp/vs_kl_tiling_XXXXXX", msg[256];
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    char *man = gw_kl_manifest(4, 3, widths, 1, 1, 1);
    cr_assert_eq(gw_write_safetensors(path, man, "{\"norm_num_groups\": 4}", msg, sizeof msg), 0,
                 "%s", msg);
    free(man);
    struct vs_err err;
    cr_assert_eq(vs_kl_load(&dec, path, VS_ARCH_AUTO, &err), 0, "%s", err.msg);
    unlink(path);
    cr_assert_eq(vs_program_build(&prog, &dec, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < sizeof latent / sizeof latent[0]; i++)
        latent[i] = (float)sin(0.37 * (double)i) * 1.5f;
}

static void teardown(void)
{
    vs_program_free(&prog);
    vs_kl_free(&dec);
}

TestSuite(kl_tiling, .init = setup, .fini = teardown);

struct result {
    int h, w;
    float *img;
    size_t predicted_work, measured_work, predicted_park, measured_park;
    struct vs_plan plan;
};

static size_t img_len(const struct result *r)
{
    return (size_t)3 * r->h * dec.upscale * r->w * dec.upscale;
}

static struct result decode_at(int h, int w, enum vs_decode_mode mode, int tile, size_t budget)
{
    struct result r = {.h = h, .w = w};
    struct vs_err err;
    struct vs_mem mem;
    vs_mem_init(&mem, 0);
    cr_assert_eq(vs_plan_make(&r.plan, &prog, h, w, mode, tile, budget, &err), 0, "%s", err.msg);
    float *out;
    cr_assert_eq(vs_plan_run(&r.plan, &prog, latent, &out, &mem, NULL, &err), 0, "%s", err.msg);
    r.img = malloc(img_len(&r) * sizeof *r.img);
    memcpy(r.img, out, img_len(&r) * sizeof *r.img);
    vs_mem_free(&mem, out);
    cr_assert_eq(mem.cur[VS_POOL_WORK] + mem.cur[VS_POOL_PARK], 0, "decode leaked counted memory");
    r.predicted_work = r.plan.predicted_work;
    r.measured_work = mem.peak[VS_POOL_WORK];
    r.predicted_park = r.plan.predicted_park;
    r.measured_park = mem.peak[VS_POOL_PARK];
    return r;
}

static struct result decode(enum vs_decode_mode mode, int tile, size_t budget)
{
    return decode_at(LH, LW, mode, tile, budget);
}

static void done(struct result *r)
{
    free(r->img);
    vs_plan_free(&r->plan);
}

static double max_abs(const struct result *a, const struct result *b)
{
    double m = 0;
    for (size_t i = 0; i < img_len(a); i++)
        m = fmax(m, fabs((double)a->img[i] - b->img[i]));
    return m;
}

/* Output values whose bits differ. */
static size_t differing(const struct result *a, const struct result *b)
{
    size_t n = 0;
    for (size_t i = 0; i < img_len(a); i++)
        n += memcmp(&a->img[i], &b->img[i], sizeof a->img[i]) != 0;
    return n;
}

static double mean_abs(const struct result *a, const struct result *b)
{
    double s = 0;
    for (size_t i = 0; i < img_len(a); i++)
        s += fabs((double)a->img[i] - b->img[i]);
    return s / (double)img_len(a);
}

Test(kl_tiling, halo_matches_receptive_field)
{
    /* widths [8,16,16], 2 ResNets per up block: RF at full res = conv_out 1 + 4 + up conv 1 = 6
     * -> 3 @1/2; +4 +1 = 8 -> 4 @1/4; +4 = 8 at the cut (latent resolution) */
    cr_assert_eq(dec.upscale, 4);
    cr_assert_eq(prog.halo, 8);
    cr_assert_eq(prog.norms_tiled, 2 * 3 * 2 + 1);
}

Test(kl_tiling, exact_equals_monolithic_for_many_tilings)
{
    struct result mono = decode(VS_DECODE_MONOLITHIC, 0, 0);
    static const int tiles[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 40};
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        struct result r = decode(VS_DECODE_EXACT, tiles[i], 0);
        size_t n = differing(&r, &mono);
        printf("exact tile %2d latent px (%dx%d tiles): %zu values differ from monolithic "
               "(max-abs %.3g)\n", tiles[i], r.plan.tiling.ntx, r.plan.tiling.nty, n,
               max_abs(&r, &mono));
        cr_expect_eq(n, 0, "tile %d: %zu values differ from the monolithic decode", tiles[i], n);
        done(&r);
    }
    done(&mono);
}

/* The digest of the statistics every synchronised norm of a decode used (tile_exec.h). */
static uint64_t norm_digest(int h, int w, enum vs_decode_mode mode, int tile, size_t budget)
{
    struct vs_plan plan;
    struct vs_err err;
    struct vs_mem mem;
    struct vs_exec_stats st;
    float *out;
    vs_mem_init(&mem, 0);
    cr_assert_eq(vs_plan_make(&plan, &prog, h, w, mode, tile, budget, &err), 0, "%s", err.msg);
    cr_assert_eq(vs_exec_decode(&prog, mode == VS_DECODE_MONOLITHIC ? NULL : &plan.tiling, latent,
                                h, w, &out, &mem, NULL, &st, &err), 0, "%s", err.msg);
    vs_mem_free(&mem, out);
    vs_plan_free(&plan);
    return st.norm_digest;
}

/* Output rounding hides most last-bit differences of the statistics; the digest does not. */
Test(kl_tiling, exact_tiles_normalise_with_the_monolithic_statistics_bit_for_bit)
{
    const uint64_t mono = norm_digest(BIG_H, BIG_W, VS_DECODE_MONOLITHIC, 0, 0);
    static const int tiles[] = {1, 3, 5, 7, 16, 23, 40};
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++)
        cr_expect_eq(norm_digest(BIG_H, BIG_W, VS_DECODE_EXACT, tiles[i], 0), mono,
                     "tile %d: the norms saw other statistics than the monolithic decode's",
                     tiles[i]);
    cr_expect_eq(norm_digest(LH, LW, VS_DECODE_EXACT, 2, 0),
                 norm_digest(LH, LW, VS_DECODE_MONOLITHIC, 0, 0), "odd size, tile 2");
    cr_expect_neq(norm_digest(BIG_H, BIG_W, VS_DECODE_EXACT, 3, 0),
                  norm_digest(LH, LW, VS_DECODE_EXACT, 3, 0), "the digest tells decodes apart");
}

Test(kl_tiling, blend_is_close_and_one_tile_is_exact)
{
    struct result mono = decode(VS_DECODE_MONOLITHIC, 0, 0);
    struct result one = decode(VS_DECODE_BLEND, 64, 0);
    cr_assert_leq(max_abs(&one, &mono), 1e-5, "a single blend tile is the whole image");
    struct result r = decode(VS_DECODE_BLEND, 5, 0);
    double mx = max_abs(&r, &mono), mean = mean_abs(&r, &mono);
    printf("blend tile 5 latent px: max-abs %.3g, mean-abs %.3g vs monolithic\n", mx, mean);
    /* stated tolerance of blend mode on this model: mean-abs <= 0.05, max-abs <= 0.5 */
    cr_assert_leq(mean, 0.05);
    cr_assert_leq(mx, 0.5);
    cr_assert_gt(mx, 1e-5, "tile-local statistics cannot reproduce the image exactly");
    done(&r);
    done(&one);
    done(&mono);
}

Test(kl_tiling, predicted_peak_matches_measured)
{
    struct { enum vs_decode_mode mode; int tile; } cases[] = {
        {VS_DECODE_MONOLITHIC, 0}, {VS_DECODE_EXACT, 3}, {VS_DECODE_EXACT, 16},
        {VS_DECODE_BLEND, 8}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct result r = decode_at(BIG_H, BIG_W, cases[i].mode, cases[i].tile, 0);
        double ratio = (double)r.predicted_work / (double)r.measured_work;
        printf("%s tile %d: predicted %zu B, measured %zu B (ratio %.3f)\n",
               vs_decode_mode_name(cases[i].mode), cases[i].tile, r.predicted_work, r.measured_work,
               ratio);
        cr_assert(ratio >= 0.9 && ratio <= 1.1);
        cr_assert_eq(r.predicted_park, r.measured_park, "host (parked) memory");
        done(&r);
    }
}

Test(kl_tiling, host_memory_counts_the_statistics_cells)
{
    /* monolithic: the image and one statistics cell per latent pixel and group (16 bytes) */
    struct result r = decode_at(BIG_H, BIG_W, VS_DECODE_MONOLITHIC, 0, 0);
    size_t cells = (size_t)BIG_H * BIG_W * dec.groups * 2 * sizeof(double);
    cr_assert_eq(r.predicted_park, img_len(&r) * sizeof(float) + cells, "predicted %zu B",
                 r.predicted_park);
    cr_assert_eq(r.measured_park, r.predicted_park);
    done(&r);
}

Test(kl_tiling, budget_picks_tiles_that_fit_and_stay_exact)
{
    struct result mono = decode_at(BIG_H, BIG_W, VS_DECODE_MONOLITHIC, 0, 0);
    size_t budget = mono.measured_work / 2;
    struct result r = decode_at(BIG_H, BIG_W, VS_DECODE_EXACT, 0, budget);
    printf("budget %zu B (monolithic %zu B): %dx%d tiles of %d latent px, measured %zu B\n",
           budget, mono.measured_work, r.plan.tiling.ntx, r.plan.tiling.nty, r.plan.tile,
           r.measured_work);
    cr_assert_leq(r.measured_work, budget);
    cr_assert_gt(r.plan.tiling.ntx * r.plan.tiling.nty, 1);
    cr_assert_eq(differing(&r, &mono), 0);
    done(&r);
    done(&mono);
}

Test(kl_tiling, every_budget_between_floor_and_monolithic_is_respected)
{
    struct result mono = decode_at(BIG_H, BIG_W, VS_DECODE_MONOLITHIC, 0, 0);
    struct vs_plan floor_plan;
    struct vs_err err;
    cr_assert_eq(vs_plan_make(&floor_plan, &prog, BIG_H, BIG_W, VS_DECODE_EXACT, 1, 0, &err), 0,
                 "%s", err.msg);
    size_t lo = floor_plan.full_frame_work, hi = mono.measured_work, prev_tile = 0;
    vs_plan_free(&floor_plan);
    for (int i = 1; i <= 4; i++) {
        size_t budget = lo + (hi - lo) * i / 5;
        for (int m = 0; m < 2; m++) {
            enum vs_decode_mode mode = m ? VS_DECODE_BLEND : VS_DECODE_EXACT;
            struct vs_plan plan;
            if (vs_plan_make(&plan, &prog, BIG_H, BIG_W, mode, 0, budget, &err)) {
                /* allowed only when even 1 px tiles exceed the budget */
                cr_assert(strstr(err.msg, "too small"), "%s", err.msg);
                continue;
            }
            struct vs_mem mem;
            vs_mem_init(&mem, 0);
            float *out;
            cr_assert_eq(vs_plan_run(&plan, &prog, latent, &out, &mem, NULL, &err), 0, "%s",
                         err.msg);
            printf("%s budget %zu: tile %d, predicted %zu, measured %zu\n",
                   vs_decode_mode_name(mode), budget, plan.tile, plan.predicted_work,
                   mem.peak[VS_POOL_WORK]);
            cr_assert_leq(mem.peak[VS_POOL_WORK], budget);
            cr_assert_eq(plan.predicted_work, mem.peak[VS_POOL_WORK]);
            if (mode == VS_DECODE_EXACT) {
                cr_assert_geq((size_t)plan.tile, prev_tile,
                              "a larger budget never gets smaller tiles");
                prev_tile = (size_t)plan.tile;
            }
            vs_mem_free(&mem, out);
            vs_plan_free(&plan);
        }
    }
    done(&mono);
}

Test(kl_tiling, budget_too_small_is_a_precise_error)
{
    struct vs_plan plan;
    struct vs_err err;
    cr_assert_eq(vs_plan_make(&plan, &prog, LH, LW, VS_DECODE_EXACT, 0, 1024, &err), -1);
    cr_assert(strstr(err.msg, "budget 1.00 KiB is too small: the full-frame part (conv_in and the "
                              "mid block with its attention) alone needs"), "%s", err.msg);
    cr_assert_eq(vs_plan_make(&plan, &prog, LH, LW, VS_DECODE_EXACT, 4, 1024, &err), -1);
    cr_assert(strstr(err.msg, "tile 16 px needs"), "%s", err.msg);
    cr_assert(strstr(err.msg, "over the budget of 1.00 KiB"), "%s", err.msg);
}
