/* Wan 2.2 decoder executor (residual up blocks with DupUp3D shortcuts, unpatchify): spatially
 * tiled decodes equal the monolithic decode bit for bit for many tilings (tiles cutting patches
 * and shortcut cells, smaller than the halo, one tile), temporal chunks equal one pass bit for
 * bit (every cache and the shortcut's first-chunk frame carried), the planner's prediction holds
 * and the budget is respected, and malformed Wan 2.2 files are refused naming the tensor.
 * Weights: generator v1 on a narrow Wan 2.2 decoder. */
#include <stdio.h>
#include <string.h>

#include "kernels/cpu/space.h"
#include "kernels/wan_model.h"
#include "kernels/wan_stream.h"
#include "tests/wan_fixture.h"

enum { BASE = 4, Z = 8, T = 3, LH = 3, LW = 5 };

static struct wf_case g_case;

static float *decode(int tile, size_t budget, struct vs_wan_stats *stats)
{
    return wf_decode(&g_case, tile, budget, stats);
}

static void setup(void)
{
    wf_case_open(&g_case, BASE, Z, 22, T, LH, LW, 11);
}

static void teardown(void)
{
    wf_case_close(&g_case);
}

TestSuite(wan22_decode, .init = setup, .fini = teardown);

Test(wan22_decode, architecture_and_shape)
{
    const struct vs_wan_model *m = g_case.m;
    cr_expect_eq(m->version, 22);
    cr_expect_eq(vs_wan_latent_channels(m), Z);
    cr_expect_eq(vs_wan_spatial_scale(m), 16);
    cr_expect_eq(vs_wan_out_frames(m, T), 1 + 4 * (T - 1));
    /* each of the three up blocks with a resample adds its input through DupUp3D */
    int shortcuts = 0;
    for (int i = 0; i < m->n_stages; i++) {
        const struct vs_wan_stage *s = &m->stages[i];
        if (s->kind != VS_WAN_RESAMPLE)
            continue;
        cr_expect_geq(s->skip, m->cut, "%s: the shortcut starts in the tiled part", s->name);
        cr_expect_eq(s->skip_repeats, s->out_ch * (s->temporal ? 8 : 4) / m->stages[s->skip].in_ch);
        shortcuts++;
    }
    cr_expect_eq(shortcuts, 3);
    const struct vs_wan_stage *last = &m->stages[m->n_stages - 1];
    cr_expect_eq(last->kind, VS_WAN_UNPATCH);
    cr_expect_eq(last->in_ch, 12);
    cr_expect_eq(last->out_ch, 3);
    wf_expect_clamped_and_varied(&g_case);
}

Test(wan22_decode, tiled_equals_monolithic_bit_for_bit)
{
    /* Output 48 x 80: latent-aligned tiles, tiles cutting a 2x2 patch and a shortcut cell
     * (odd), smaller than the halo, uneven last tiles, one tile. */
    const int tiles[] = {16, 32, 8, 24, 17, 7, 33, 48, 1000};
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        struct vs_wan_stats st;
        float *out = decode(tiles[i], 0, &st);
        printf("wan22 tiled tile=%d px (%dx%d tiles, halo %d latent px, overhead %.2fx): %s\n",
               tiles[i], st.plan.tiles_y, st.plan.tiles_x, st.plan.halo, st.plan.halo_overhead,
               memcmp(out, g_case.ref, g_case.out_n * sizeof *out) ? "differs" : "bit-identical");
        cr_expect_eq(memcmp(out, g_case.ref, g_case.out_n * sizeof *out), 0, "tile %d px differs",
                     tiles[i]);
        free(out);
    }
}

static void chunked(const int *chunks, int n_chunks, int tile)
{
    float *out = wf_decode_chunked(&g_case, chunks, n_chunks, tile);
    cr_expect_eq(memcmp(out, g_case.ref, g_case.out_n * sizeof *out), 0, "chunks differ (tile %d)",
                 tile);
    free(out);
}

Test(wan22_decode, temporal_chunks_equal_one_pass_bit_for_bit)
{
    const int ones[] = {1, 1, 1}, two_one[] = {2, 1}, one_two[] = {1, 2};
    chunked(ones, 3, 0);
    chunked(two_one, 2, 16);
    chunked(one_two, 2, 24);
}

Test(wan22_decode, planner_predicts_peak_and_respects_budget)
{
    double ratio =
        (double)g_case.ref_stats.plan.predicted_peak / (double)g_case.ref_stats.measured_peak;
    printf("wan22 one tile: predicted %zu B, measured %zu B\n",
           g_case.ref_stats.plan.predicted_peak, g_case.ref_stats.measured_peak);
    cr_expect(ratio > 0.9 && ratio < 1.1, "predicted/measured = %g", ratio);

    size_t budget = g_case.ref_stats.measured_peak * 3 / 4;
    struct vs_wan_stats st;
    float *out = decode(0, budget, &st);
    printf("wan22 budget %zu B: tile %d px, predicted %zu B, measured %zu B\n", budget,
           st.plan.tile_h, st.plan.predicted_peak, st.measured_peak);
    cr_expect_lt(st.plan.tile_h * st.plan.tile_w, 48 * 80);
    cr_expect_leq(st.measured_peak, budget);
    ratio = (double)st.plan.predicted_peak / (double)st.measured_peak;
    cr_expect(ratio > 0.9 && ratio < 1.1, "tiled: predicted/measured = %g", ratio);
    cr_expect_eq(memcmp(out, g_case.ref, g_case.out_n * sizeof *out), 0);
    free(out);

    struct vs_wan_opts opts = {.budget = 1024};
    struct vs_wan_plan plan;
    struct vs_err err = {{0}};
    cr_expect_eq(vs_wan_plan(g_case.m, T, LH, LW, &opts, &plan, &err), -1);
    cr_expect(strstr(err.msg, "too small for this Wan decode"), "%s", err.msg);
}

Test(wan22_decode, shortcut_windows_are_planned)
{
    /* Every resample's shortcut source window (the block's input) holds the pixels DupUp3D
     * reads for the resample's output window, for interior and edge tiles. */
    const struct vs_wan_model *m = g_case.m;
    struct vs_window win[64];
    cr_assert_lt(m->n_stages - m->cut, 64);
    const struct vs_window outs[] = {{320, 320, 64, 64, 640, 640}, {0, 5, 17, 33, 640, 640},
                                     {623, 600, 17, 40, 640, 640}};
    for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
        vs_wan_tile_windows(m, &outs[k], win);
        for (int i = m->cut; i < m->n_stages; i++) {
            const struct vs_wan_stage *s = &m->stages[i];
            if (s->kind != VS_WAN_RESAMPLE || s->skip < 0)
                continue;
            struct vs_window need = vs_to_space_src(&win[i + 1 - m->cut], 2);
            cr_expect(vs_window_covers(&win[s->skip - m->cut], &need, 0), "%s, tile %zu",
                      s->name, k);
        }
    }
}

static const char *load_error(void (*edit)(json_t *man))
{
    static char msg[sizeof((struct vs_err *)0)->msg];
    json_t *man = wf_manifest_v(BASE, Z, 22);
    edit(man);
    const char *path = wf_write(man);
    json_decref(man);
    struct vs_wan_model *m;
    struct vs_err err = {{0}};
    int rc = vs_wan_load(path, &m, &err);
    unlink(path);
    cr_assert_eq(rc, -1, "the file loaded");
    snprintf(msg, sizeof msg, "%s", err.msg);
    return msg;
}

static void rgb_head(json_t *man)
{
    wf_conv(man, "decoder.conv_out", 3, BASE, 3, 3);
}

static void narrow_resample(json_t *man)
{
    /* up block 0: 16 -> 3 channels, which DupUp3D cannot spread from 16 */
    wf_conv(man, "decoder.up_blocks.0.upsampler.resample.1", 3, 4 * BASE, 0, 3);
}

static void stray_shortcut(json_t *man)
{
    wf_conv(man, "decoder.up_blocks.0.avg_shortcut.conv", 4, 4, 1, 1);
}

Test(wan22_decode, malformed_files_name_the_tensor)
{
    const char *m = load_error(rgb_head);
    cr_expect(strstr(m, "'decoder.conv_out.weight' has 3 output channels, expected 3 * p * p"),
              "%s", m);
    m = load_error(narrow_resample);
    cr_expect(strstr(m, "decoder.up_blocks.0.resnets.0.conv1.weight") ||
                  strstr(m, "decoder.up_blocks.0.upsampler has 3 output channels, which DupUp3D"),
              "%s", m);
    m = load_error(stray_shortcut);
    cr_expect(strstr(m, "unexpected tensor 'decoder.up_blocks.0.avg_shortcut.conv.weight'") &&
                  strstr(m, "Wan 2.2 decoder"), "%s", m);
}
