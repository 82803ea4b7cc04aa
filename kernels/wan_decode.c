/* Wan decode streams (see wan.h): the full-frame part runs over each pushed chunk of latent
 * frames and parks its outputs (the cut activation, at latent resolution) for the chunk; then
 * each tile runs the rest of the decoder over those frames with its own caches and writes its
 * output window. Parts are closed once the last latent frame of the video went through them,
 * so a one-pass decode holds the caches of one tile at a time.
 *
 * Invariants: the allocation sequence is the same with a dry vs_mem (no computing), so the
 * planner's predicted peak equals the measured one for a one-pass decode; every output pixel
 * is written by exactly one tile (tiles partition the output frame). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/mem.h"
#include "kernels/wan_part.h"
#include "kernels/wan_stream.h"

struct tile {
    struct vs_wan_stream *s;
    struct vs_window *win; /* n_stages - cut + 1 windows */
    struct vs_wan_part part;
    bool open;
    long frames_out;
};

struct vs_wan_stream {
    const struct vs_wan_model *m;
    int T, h, w, H, W, T_out;
    int consumed;
    struct vs_wan_plan plan;
    struct vs_mem mem;
    struct vs_window *full_win; /* cut + 1 whole latent frames */
    struct vs_wan_part full;
    bool full_open;
    struct tile *tiles;
    int n_tiles;
    float *phase;      /* during a push: the full part's output frames */
    int phase_frames;
    float *out;        /* during a push */
    vs_wan_progress_fn progress;
    void *progress_ctx;
    long done, total;
};

static size_t cut_frame_floats(const struct vs_wan_stream *s)
{
    return (size_t)s->m->stages[s->m->cut].in_ch * s->h * s->w;
}

static void emit_full(void *ctx, const float *frame, const struct vs_window *win)
{
    struct vs_wan_stream *s = ctx;
    (void)win;
    s->mem.be->copy(s->phase + (size_t)s->phase_frames++ * cut_frame_floats(s), frame,
                    cut_frame_floats(s) * sizeof(float));
}

/* Writes the tile's output frame into out[3][T_out][H][W], clamped to [-1, 1]. */
static void emit_tile(void *ctx, const float *frame, const struct vs_window *win)
{
    struct tile *t = ctx;
    const struct vs_wan_stream *s = t->s;
    long f = t->frames_out++;
    /* frame f of channel c starts T_out * H rows after channel c: one paste with T_out * H rows */
    s->mem.be->paste(s->out + (size_t)f * s->H * s->W, 3, s->T_out * s->H, s->W, win->y0,
                     win->x0, frame, win->h, win->w, 0, 0, win->h, win->w, true);
}

static void step_done(struct vs_wan_stream *s)
{
    s->done++;
    if (s->progress && !s->mem.dry)
        s->progress(s->progress_ctx, s->done, s->total);
}

int vs_wan_stream_open_plan(const struct vs_wan_model *m, int T, int h, int w,
                            const struct vs_wan_plan *plan, int dry,
                            const struct vs_wan_opts *opts, struct vs_wan_stream **stream,
                            struct vs_err *err)
{
    struct vs_wan_stream *s = calloc(1, sizeof *s);
    *stream = s;
    if (!s)
        return vs_err_set(err, "out of host memory opening a Wan decode");
    const int scale = vs_wan_spatial_scale(m), n = m->n_stages - m->cut;
    s->m = m;
    s->T = T, s->h = h, s->w = w, s->H = h * scale, s->W = w * scale;
    s->T_out = vs_wan_out_frames(m, T);
    s->plan = *plan;
    vs_mem_init_on(&s->mem, dry, opts && opts->backend ? opts->backend : &vs_cpu_backend,
                   opts ? opts->allocator : NULL);
    if (opts) {
        s->progress = opts->progress;
        s->progress_ctx = opts->progress_ctx;
    }
    s->n_tiles = plan->tiles_y * plan->tiles_x;
    s->total = (long)T * (1 + s->n_tiles);
    s->full_win = malloc((size_t)(m->cut + 1) * sizeof *s->full_win);
    s->tiles = calloc((size_t)s->n_tiles, sizeof *s->tiles);
    if (!s->full_win || !s->tiles)
        return vs_err_set(err, "out of host memory opening a Wan decode");
    for (int i = 0; i <= m->cut; i++)
        s->full_win[i] = (struct vs_window){0, 0, h, w, h, w};
    for (int t = 0; t < s->n_tiles; t++) {
        struct tile *tl = &s->tiles[t];
        int y0 = t / plan->tiles_x * plan->tile_h, x0 = t % plan->tiles_x * plan->tile_w;
        struct vs_window out = {y0, x0, (y0 + plan->tile_h > s->H ? s->H : y0 + plan->tile_h) - y0,
                                (x0 + plan->tile_w > s->W ? s->W : x0 + plan->tile_w) - x0,
                                s->H, s->W};
        tl->s = s;
        tl->win = malloc((size_t)(n + 1) * sizeof *tl->win);
        if (!tl->win)
            return vs_err_set(err, "out of host memory opening a Wan decode");
        vs_wan_tile_windows(m, &out, tl->win);
    }
    if (vs_wan_part_open(&s->full, m, 0, m->cut, s->full_win, &s->mem, emit_full, s, err))
        return -1;
    s->full_open = true;
    return 0;
}

int vs_wan_stream_open(const struct vs_wan_model *m, int T, int h, int w,
                       const struct vs_wan_opts *opts, struct vs_wan_stream **stream,
                       struct vs_err *err)
{
    struct vs_wan_plan plan;
    *stream = NULL;
    if (vs_wan_plan(m, T, h, w, opts, &plan, err))
        return -1;
    return vs_wan_stream_open_plan(m, T, h, w, &plan, 0, opts, stream, err);
}

static int run_tile(struct vs_wan_stream *s, struct tile *t, int n, bool last, struct vs_err *err)
{
    const struct vs_wan_model *m = s->m;
    const struct vs_window *in = &t->win[0];
    if (!t->open) {
        if (vs_wan_part_open(&t->part, m, m->cut, m->n_stages, t->win, &s->mem, emit_tile, t, err))
            return -1;
        t->open = true;
    }
    const int ch = m->stages[m->cut].in_ch;
    float *tile_in = vs_mem_floats(&s->mem, (size_t)ch * vs_window_area(in), VS_POOL_WORK);
    if (!tile_in)
        return vs_err_set(err, "out of host memory for a Wan tile's input");
    for (int f = 0; f < n; f++) {
        if (!s->mem.dry) {
            s->mem.be->crop(s->phase + (size_t)f * cut_frame_floats(s), ch, s->h, s->w, in->y0,
                            in->x0, tile_in, in->h, in->w);
            vs_wan_part_push(&t->part, tile_in);
        }
        step_done(s);
    }
    vs_mem_free(&s->mem, tile_in);
    if (last) {
        vs_wan_part_close(&t->part);
        t->open = false;
    }
    return 0;
}

int vs_wan_stream_push(struct vs_wan_stream *s, const float *latents, int n, float *out,
                       struct vs_err *err)
{
    const struct vs_wan_model *m = s->m;
    if (n < 1 || n > s->T - s->consumed)
        return vs_err_set(err, "pushed %d latent frames to a Wan decode of %d frames with %d "
                               "left", n, s->T, s->T - s->consumed);
    const size_t plane = (size_t)s->h * s->w;
    s->out = out;
    s->phase_frames = 0;
    s->phase = vs_mem_floats(&s->mem, (size_t)n * cut_frame_floats(s), VS_POOL_WORK);
    float *frame = vs_mem_floats(&s->mem, (size_t)m->z_dim * plane, VS_POOL_WORK);
    if (!s->phase || !frame) {
        vs_mem_free(&s->mem, frame);
        vs_mem_free(&s->mem, s->phase);
        return vs_err_set(err, "out of host memory for %d Wan latent frames", n);
    }
    for (int f = 0; f < n; f++) {
        if (!s->mem.dry) {
            /* [C][n][h][w] -> frame f's [C][h][w]: channel c is n * h rows further on */
            s->mem.be->crop(latents + f * plane, m->z_dim, n * s->h, s->w, 0, 0, frame, s->h,
                            s->w);
            vs_wan_part_push(&s->full, frame);
        }
        step_done(s);
    }
    vs_mem_free(&s->mem, frame);
    s->consumed += n;
    const bool last = s->consumed == s->T;
    if (last) {
        vs_wan_part_close(&s->full);
        s->full_open = false;
    }
    int rc = 0;
    for (int t = 0; t < s->n_tiles && !rc; t++)
        rc = run_tile(s, &s->tiles[t], n, last, err);
    vs_mem_free(&s->mem, s->phase);
    s->phase = NULL;
    return rc;
}

void vs_wan_stream_close(struct vs_wan_stream *s, struct vs_wan_stats *stats)
{
    if (!s)
        return;
    if (stats) {
        stats->plan = s->plan;
        stats->measured_peak = s->mem.peak_total;
    }
    if (s->full_open)
        vs_wan_part_close(&s->full);
    for (int t = 0; s->tiles && t < s->n_tiles; t++) {
        if (s->tiles[t].open)
            vs_wan_part_close(&s->tiles[t].part);
        free(s->tiles[t].win);
    }
    free(s->tiles);
    free(s->full_win);
    free(s);
}

int vs_wan_decode(const struct vs_wan_model *m, const float *latents, int T, int h, int w,
                  const struct vs_wan_opts *opts, float *out, struct vs_wan_stats *stats,
                  struct vs_err *err)
{
    struct vs_wan_stream *s;
    if (vs_wan_stream_open(m, T, h, w, opts, &s, err)) {
        vs_wan_stream_close(s, NULL);
        return -1;
    }
    int rc = vs_wan_stream_push(s, latents, T, out, err);
    vs_wan_stream_close(s, stats);
    return rc;
}
