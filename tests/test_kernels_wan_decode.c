/* Wan decoder executor: spatially tiled decodes equal the untiled decode for many tilings
 * (tiles smaller than the halo, odd sizes, one tile), a video decoded in temporal chunks equals
 * the one-pass decode (caches carried across chunks), and the planner's predicted peak matches
 * the measured one and respects the budget. Weights: generator v1 on a narrow Wan 2.1 decoder. */
#include <math.h>
#include <stdio.h>

#include "kernels/wan_stream.h"
#include "tests/wan_fixture.h"

enum { BASE = 4, Z = 4, T = 3, LH = 5, LW = 7 };

static struct wf_case g_case;

static float *decode(int tile, size_t budget, struct vs_wan_stats *stats)
{
    return wf_decode(&g_case, tile, budget, stats);
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

static void setup(void)
{
    wf_case_open(&g_case, BASE, Z, 21, T, LH, LW, 7);
}

static void teardown(void)
{
    wf_case_close(&g_case);
}

TestSuite(wan_decode, .init = setup, .fini = teardown);

Test(wan_decode, shape_and_clamp)
{
    cr_expect_eq(vs_wan_spatial_scale(g_case.m), 8);
    cr_expect_eq(vs_wan_out_frames(g_case.m, T), 1 + 4 * (T - 1));
    cr_expect_eq(g_case.ref_stats.plan.tiles_y * g_case.ref_stats.plan.tiles_x, 1);
    wf_expect_clamped_and_varied(&g_case);
}

Test(wan_decode, tiled_equals_untiled)
{
    /* Output is 40 x 56: tiles of 1 latent px, odd sizes, smaller than the halo, uneven
     * last tiles, one tile. */
    const int tiles[] = {8, 16, 24, 3, 5, 13, 17, 40, 1000};
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        struct vs_wan_stats st;
        float *out = decode(tiles[i], 0, &st);
        double d = max_abs_diff(out, g_case.ref, g_case.out_n);
        printf("wan tiled tile=%d px (%dx%d tiles, halo %d latent px, overhead %.2fx): "
               "max-abs %.3g\n", tiles[i], st.plan.tiles_y, st.plan.tiles_x, st.plan.halo,
               st.plan.halo_overhead, d);
        cr_expect_leq(d, 1e-5, "tile %d px: max-abs %g vs untiled", tiles[i], d);
        free(out);
    }
}

Test(wan_decode, halo_is_the_computed_receptive_field)
{
    /* Tiles aligned to latent pixels: 3 ResNets + resample conv per level, 13 latent px at the
     * cut after the mid block (ANCHORS 3.3); a 64 px tile leaves interior edges in a 40x56 frame
     * only on the x axis, where the halo is reached. */
    struct vs_wan_opts opts = {.tile = 16};
    struct vs_wan_plan plan;
    struct vs_err err = {{0}};
    cr_assert_eq(vs_wan_plan(g_case.m, T, 40, 40, &opts, &plan, &err), 0, "%s", err.msg);
    cr_expect_eq(plan.halo, 13);
    cr_expect_gt(plan.halo_overhead, 1.0);
}

Test(wan_decode, halos_per_level_match_the_receptive_field_table)
{
    /* Backward interval propagation from an interior 64 px tile of a 640 px frame gives the
     * halos of ANCHORS 3.3 at each level: 13 latent px after the mid block, 7 at the first
     * upsampler's input (@1/8), 6 at the second's (@1/4), 4 at the last one's (@1/2), and 1 at
     * conv_out's input. */
    const struct vs_wan_model *m = g_case.m;
    const int n = m->n_stages - m->cut;
    struct vs_window win[64];
    cr_assert_lt(n, 64);
    struct vs_window out = {320, 320, 64, 64, 640, 640};
    vs_wan_tile_windows(m, &out, win);
    int expect[] = {13, 7, 6, 4, 1}, got[5], k = 0;
    for (int i = m->cut; i < m->n_stages; i++) {
        const struct vs_wan_stage *s = &m->stages[i];
        if (i == m->cut || s->kind == VS_WAN_RESAMPLE || s->kind == VS_WAN_HEAD) {
            const struct vs_window *w = &win[i - m->cut];
            int own = 64 * w->H / 640, own0 = 320 * w->H / 640;
            cr_assert_eq(w->h, w->w);
            cr_expect_eq(w->y0, w->x0);
            cr_expect_eq(w->h, own + 2 * (own0 - w->y0), "stage %s: asymmetric halo", s->name);
            got[k++] = own0 - w->y0;
        }
    }
    cr_assert_eq(k, 5);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(got[i], expect[i], "level %d: halo %d, expected %d", i, got[i], expect[i]);
}

static void chunked(const int *chunks, int n_chunks, int tile)
{
    float *out = wf_decode_chunked(&g_case, chunks, n_chunks, tile);
    double d = max_abs_diff(out, g_case.ref, g_case.out_n);
    printf("wan chunked (%d chunks, tile %d): max-abs %.3g vs one pass\n", n_chunks, tile, d);
    cr_expect_leq(d, 1e-6, "chunks of %d..., tile %d: max-abs %g vs one pass", chunks[0], tile, d);
    free(out);
}

Test(wan_decode, temporal_chunks_equal_one_pass)
{
    const int a[] = {1, 2}, b[] = {2, 1}, c[] = {1, 1, 1};
    chunked(a, 2, 0);
    chunked(b, 2, 0);
    chunked(c, 3, 0);
    chunked(c, 3, 16);
}

struct progress_log {
    long calls, last_done, total;
    bool monotonic;
};

static void on_progress(void *ctx, long done, long total)
{
    struct progress_log *p = ctx;
    p->monotonic = p->monotonic && done == p->last_done + 1 && (p->total == 0 || total == p->total);
    p->calls++;
    p->last_done = done;
    p->total = total;
}

Test(wan_decode, progress_counts_frames_of_every_tile)
{
    struct progress_log log = {.monotonic = true};
    struct vs_wan_opts opts = {.tile = 24, .progress = on_progress, .progress_ctx = &log};
    struct vs_wan_stats st;
    struct vs_err err = {{0}};
    float *out = malloc(g_case.out_n * sizeof *out);
    cr_assert_eq(vs_wan_decode(g_case.m, g_case.latents, T, LH, LW, &opts, out, &st, &err), 0, "%s",
                 err.msg);
    /* One step per latent frame for the full-frame part, then one per tile and latent frame. */
    long tiles = (long)st.plan.tiles_y * st.plan.tiles_x;
    cr_expect_eq(tiles, 6);
    cr_expect_eq(log.total, T * (1 + tiles));
    cr_expect_eq(log.calls, log.total);
    cr_expect_eq(log.last_done, log.total);
    cr_expect(log.monotonic);
    free(out);
}

Test(wan_decode, push_past_the_end_is_an_error)
{
    struct vs_wan_opts opts = {0};
    struct vs_wan_stream *s;
    struct vs_err err = {{0}};
    cr_assert_eq(vs_wan_stream_open(g_case.m, 1, LH, LW, &opts, &s, &err), 0, "%s", err.msg);
    float *out = malloc(g_case.out_n * sizeof *out);
    cr_expect_eq(vs_wan_stream_push(s, g_case.latents, 2, out, &err), -1);
    cr_expect(strstr(err.msg, "pushed 2 latent frames to a Wan decode of 1 frames with 1 left"),
              "%s", err.msg);
    vs_wan_stream_close(s, NULL);
    free(out);
}

Test(wan_decode, planner_predicts_peak_and_respects_budget)
{
    double ratio =
        (double)g_case.ref_stats.plan.predicted_peak / (double)g_case.ref_stats.measured_peak;
    printf("wan one tile: predicted %zu B, measured %zu B\n", g_case.ref_stats.plan.predicted_peak,
           g_case.ref_stats.measured_peak);
    cr_expect(ratio > 0.9 && ratio < 1.1, "predicted/measured = %g", ratio);

    size_t budget = g_case.ref_stats.measured_peak * 3 / 4;
    struct vs_wan_stats st;
    float *out = decode(0, budget, &st);
    printf("wan budget %zu B: tile %d px, predicted %zu B, measured %zu B\n", budget,
           st.plan.tile_h, st.plan.predicted_peak, st.measured_peak);
    cr_expect_lt(st.plan.tile_h * st.plan.tile_w, 40 * 56);
    cr_expect_leq(st.measured_peak, budget);
    cr_expect_leq(max_abs_diff(out, g_case.ref, g_case.out_n), 1e-5);
    free(out);

    struct vs_wan_opts opts = {.budget = 1024};
    struct vs_wan_plan plan;
    struct vs_err err = {{0}};
    cr_expect_eq(vs_wan_plan(g_case.m, T, LH, LW, &opts, &plan, &err), -1);
    cr_expect(strstr(err.msg, "too small for this Wan decode"), "%s", err.msg);
}
