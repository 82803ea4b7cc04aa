/* Planner for the Wan decoder: tile windows by backward interval propagation, the tile grid,
 * and the tile size a memory budget allows (predicted by a dry run of the executor). */
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cpu/space.h"
#include "kernels/wan_stream.h"

/* The smallest window of a's frame holding a and b. */
static struct vs_window hull(const struct vs_window *a, const struct vs_window *b)
{
    int y0 = a->y0 < b->y0 ? a->y0 : b->y0, x0 = a->x0 < b->x0 ? a->x0 : b->x0;
    int y1 = a->y0 + a->h > b->y0 + b->h ? a->y0 + a->h : b->y0 + b->h;
    int x1 = a->x0 + a->w > b->x0 + b->w ? a->x0 + a->w : b->x0 + b->w;
    return (struct vs_window){y0, x0, y1 - y0, x1 - x0, a->H, a->W};
}

void vs_wan_tile_windows(const struct vs_wan_model *m, const struct vs_window *out,
                         struct vs_window *win)
{
    win[m->n_stages - m->cut] = *out;
    for (int i = m->n_stages - 1; i >= m->cut; i--) {
        const struct vs_wan_stage *s = &m->stages[i];
        struct vs_window g = vs_window_grow(&win[i + 1 - m->cut], vs_wan_stage_radius(s));
        if (vs_wan_stage_upscale(s) > 1)
            g = vs_to_space_src(&g, vs_wan_stage_upscale(s));
        /* A residual up block's input also feeds its shortcut (DupUp3D, x2 in space). */
        for (int j = i + 1; j < m->n_stages; j++)
            if (m->stages[j].skip == i) {
                struct vs_window need = vs_to_space_src(&win[j + 1 - m->cut], 2);
                g = hull(&g, &need);
            }
        win[i - m->cut] = g;
    }
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

void vs_wan_plan_geometry(const struct vs_wan_model *m, int h, int w, int tile,
                          struct vs_wan_plan *plan)
{
    const int scale = vs_wan_spatial_scale(m), H = h * scale, W = w * scale;
    const int n = m->n_stages - m->cut;
    plan->tile_h = tile < H ? tile : H;
    plan->tile_w = tile < W ? tile : W;
    plan->tiles_y = (H + plan->tile_h - 1) / plan->tile_h;
    plan->tiles_x = (W + plan->tile_w - 1) / plan->tile_w;
    plan->cut_stage = m->cut;
    plan->halo = 0;
    struct vs_window *win = malloc((size_t)(n + 1) * sizeof *win);
    double computed = 0, frame_px = 0;
    for (int ty = 0; ty < plan->tiles_y && win; ty++)
        for (int tx = 0; tx < plan->tiles_x; tx++) {
            int y0 = ty * plan->tile_h, x0 = tx * plan->tile_w;
            struct vs_window out = {y0, x0, (y0 + plan->tile_h > H ? H : y0 + plan->tile_h) - y0,
                                    (x0 + plan->tile_w > W ? W : x0 + plan->tile_w) - x0, H, W};
            vs_wan_tile_windows(m, &out, win);
            /* Latent pixels the tile owns at the cut, and how far its window reaches past them. */
            int oy0 = out.y0 / scale, ox0 = out.x0 / scale;
            int oy1 = (out.y0 + out.h + scale - 1) / scale;
            int ox1 = (out.x0 + out.w + scale - 1) / scale;
            plan->halo = max_int(plan->halo, max_int(oy0 - win[0].y0, win[0].y0 + win[0].h - oy1));
            plan->halo = max_int(plan->halo, max_int(ox0 - win[0].x0, win[0].x0 + win[0].w - ox1));
            for (int i = 1; i <= n; i++)
                computed += (double)vs_window_area(&win[i]);
        }
    if (win) {
        struct vs_window whole = {0, 0, H, W, H, W};
        vs_wan_tile_windows(m, &whole, win);
        for (int i = 1; i <= n; i++)
            frame_px += (double)vs_window_area(&win[i]);
    }
    plan->halo_overhead = frame_px > 0 ? computed / frame_px : 0;
    free(win);
}

/* Peak working memory of a one-pass decode with output tiles of `tile` pixels. */
static int predict(const struct vs_wan_model *m, int T, int h, int w, struct vs_wan_plan *plan,
                   struct vs_err *err)
{
    struct vs_wan_stream *s;
    struct vs_wan_stats stats;
    if (vs_wan_stream_open_plan(m, T, h, w, plan, 1, NULL, &s, err))
        return -1;
    int rc = vs_wan_stream_push(s, NULL, T, NULL, err);
    vs_wan_stream_close(s, &stats);
    plan->predicted_peak = stats.measured_peak;
    return rc;
}

int vs_wan_plan(const struct vs_wan_model *m, int T, int h, int w,
                const struct vs_wan_opts *opts, struct vs_wan_plan *plan, struct vs_err *err)
{
    if (T < 1 || h < 1 || w < 1)
        return vs_err_set(err, "Wan latents must have at least 1 frame and 1x1 pixels (got T=%d, "
                               "%dx%d)", T, h, w);
    const int scale = vs_wan_spatial_scale(m);
    const int whole = max_int(h, w) * scale;
    if (opts->tile < 0)
        return vs_err_set(err, "tile size %d: must be a positive number of output pixels",
                          opts->tile);
    if (opts->tile > 0 || opts->budget == 0) {
        vs_wan_plan_geometry(m, h, w, opts->tile > 0 ? opts->tile : whole, plan);
        if (predict(m, T, h, w, plan, err))
            return -1;
        if (opts->budget && plan->predicted_peak > opts->budget)
            return vs_err_set(err, "tile %d px needs %.1f MiB of working memory, over the budget "
                                   "of %.1f MiB", opts->tile, plan->predicted_peak / 1048576.0,
                              opts->budget / 1048576.0);
        return 0;
    }
    /* Largest tile (in whole latent pixels) whose predicted peak fits the budget. */
    for (int tile = (whole + scale - 1) / scale * scale; tile >= scale; tile -= scale) {
        vs_wan_plan_geometry(m, h, w, tile, plan);
        if (predict(m, T, h, w, plan, err))
            return -1;
        if (plan->predicted_peak <= opts->budget)
            return 0;
    }
    return vs_err_set(err, "budget of %.1f MiB is too small for this Wan decode: even %d px tiles "
                           "need %.1f MiB", opts->budget / 1048576.0, scale,
                      plan->predicted_peak / 1048576.0);
}

void vs_wan_plan_describe(const struct vs_wan_plan *p, const struct vs_wan_model *m, int T,
                          char *buf, size_t len)
{
    snprintf(buf, len,
             "wan%d causal, %d latent frames -> %d, %dx%d tiles of %dx%d px, halo %d px, "
             "halo overhead %.2fx",
             m->version, T, vs_wan_out_frames(m, T), p->tiles_x, p->tiles_y, p->tile_w, p->tile_h,
             p->halo * vs_wan_spatial_scale(m), p->halo_overhead);
}
