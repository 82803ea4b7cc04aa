/* Budget search walks tile sizes downward and keeps the first whose dry run fits; the dry run
 * is cheap (bookkeeping only), so the prediction is the executor's own allocation sequence. */
#include "kernels/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/size.h"

const char *vs_decode_mode_name(enum vs_decode_mode mode)
{
    return mode == VS_DECODE_EXACT ? "exact" : mode == VS_DECODE_BLEND ? "blend" : "monolithic";
}

static int *split(int n, int tile, int *count)
{
    int k = (n + tile - 1) / tile;
    int *b = malloc((size_t)(k + 1) * sizeof *b);
    if (!b)
        return NULL;
    for (int i = 0; i <= k; i++)
        b[i] = (int)((long)n * i / k);
    *count = k;
    return b;
}

void vs_plan_free(struct vs_plan *plan)
{
    free(plan->tiling.ys);
    free(plan->tiling.xs);
    plan->tiling.ys = plan->tiling.xs = NULL;
}

static int set_tiling(struct vs_plan *plan, const struct vs_program *p, int tile,
                      struct vs_err *err)
{
    vs_plan_free(plan);
    struct vs_tiling *t = &plan->tiling;
    t->standalone = plan->mode == VS_DECODE_BLEND;
    t->margin = t->standalone ? (p->halo + 1) / 2 : p->halo;
    if (!(t->ys = split(plan->lat_h, tile, &t->nty)) ||
        !(t->xs = split(plan->lat_w, tile, &t->ntx)))
        return vs_err_set(err, "out of memory planning tiles");
    /* the grid splits evenly, so the largest owned edge may be below the requested tile */
    int th = (plan->lat_h + t->nty - 1) / t->nty, tw = (plan->lat_w + t->ntx - 1) / t->ntx;
    plan->tile = th > tw ? th : tw;
    double area = 0;
    for (int y = 0; y < t->nty; y++)
        for (int x = 0; x < t->ntx; x++) {
            int y0 = t->ys[y] - t->margin, y1 = t->ys[y + 1] + t->margin;
            int x0 = t->xs[x] - t->margin, x1 = t->xs[x + 1] + t->margin;
            y0 = y0 < 0 ? 0 : y0, x0 = x0 < 0 ? 0 : x0;
            y1 = y1 > plan->lat_h ? plan->lat_h : y1, x1 = x1 > plan->lat_w ? plan->lat_w : x1;
            area += (double)(y1 - y0) * (x1 - x0);
        }
    plan->halo_overhead = area / ((double)plan->lat_h * plan->lat_w);
    return 0;
}

/* Dry run: peaks and convolution work of the plan (tiling NULL: monolithic). */
static int dry_run(const struct vs_plan *plan, const struct vs_program *p,
                   const struct vs_tiling *tiling, struct vs_mem *dry, struct vs_exec_stats *st,
                   struct vs_err *err)
{
    vs_mem_init(dry, 1);
    float *out = NULL;
    if (vs_exec_decode(p, tiling, NULL, plan->lat_h, plan->lat_w, &out, dry, NULL, st, err))
        return -1;
    vs_mem_free(dry, out);
    return 0;
}

static int predict(struct vs_plan *plan, const struct vs_program *p, struct vs_err *err)
{
    struct vs_mem dry;
    struct vs_exec_stats st, mono;
    const struct vs_tiling *t = plan->mode == VS_DECODE_MONOLITHIC ? NULL : &plan->tiling;
    if (dry_run(plan, p, t, &dry, &st, err))
        return -1;
    plan->predicted_work = dry.peak[VS_POOL_WORK];
    plan->predicted_park = dry.peak[VS_POOL_PARK];
    plan->full_frame_work = st.full_frame_peak;
    if (t && dry_run(plan, p, NULL, &dry, &mono, err))
        return -1;
    plan->conv_overhead = t ? st.macs / mono.macs : 1.0;
    return 0;
}

int vs_plan_make(struct vs_plan *plan, const struct vs_program *p, int lat_h, int lat_w,
                 enum vs_decode_mode mode, int tile, size_t budget, struct vs_err *err)
{
    memset(plan, 0, sizeof *plan);
    plan->mode = mode;
    plan->lat_h = lat_h;
    plan->lat_w = lat_w;
    if (lat_h < 1 || lat_w < 1)
        return vs_err_set(err, "latent of %dx%d pixels: nothing to decode", lat_h, lat_w);
    if (mode == VS_DECODE_MONOLITHIC) {
        plan->halo_overhead = 1.0;
        return predict(plan, p, err);
    }
    int biggest = lat_h > lat_w ? lat_h : lat_w;
    if (tile > 0 || !budget) {
        if (set_tiling(plan, p, tile > 0 ? tile : VS_PLAN_DEFAULT_TILE, err) ||
            predict(plan, p, err))
            goto fail;
        if (budget && plan->predicted_work > budget) {
            char a[32], b[32];
            vs_err_set(err,
                       "tile %d px needs %s of working memory, over the budget of %s; "
                       "use a smaller --tile or --tile auto",
                       tile * p->d->upscale, vs_size_format(plan->predicted_work, a, sizeof a),
                       vs_size_format(budget, b, sizeof b));
            goto fail;
        }
        return 0;
    }
    int prev_tiles = -1;
    char a[32], b[32];
    for (int t = biggest; t >= 1; t--) {
        int n = ((lat_h + t - 1) / t) * ((lat_w + t - 1) / t);
        if (n == prev_tiles)
            continue; /* same grid as a larger tile: same plan */
        prev_tiles = n;
        if (set_tiling(plan, p, t, err) || predict(plan, p, err))
            goto fail;
        if (plan->predicted_work <= budget)
            return 0;
        if (plan->full_frame_work > budget) {
            vs_err_set(err,
                       "budget %s is too small: the full-frame part (conv_in and the mid "
                       "block with its attention) alone needs %s of working memory",
                       vs_size_format(budget, b, sizeof b),
                       vs_size_format(plan->full_frame_work, a, sizeof a));
            goto fail;
        }
    }
    vs_err_set(err,
               "budget %s is too small: the smallest plan (%s mode, 1 latent px tiles) "
               "needs %s of working memory",
               vs_size_format(budget, b, sizeof b), vs_decode_mode_name(mode),
               vs_size_format(plan->predicted_work, a, sizeof a));
fail:
    vs_plan_free(plan);
    return -1;
}

int vs_plan_run(const struct vs_plan *plan, const struct vs_program *p, const float *latent,
                float **out, struct vs_mem *mem, const struct vs_progress *progress,
                struct vs_err *err)
{
    return vs_exec_decode(p, plan->mode == VS_DECODE_MONOLITHIC ? NULL : &plan->tiling, latent,
                          plan->lat_h, plan->lat_w, out, mem, progress, NULL, err);
}

const char *vs_plan_describe(const struct vs_plan *plan, const struct vs_program *p, char *buf,
                             size_t len)
{
    int S = p->d->upscale;
    if (plan->mode == VS_DECODE_MONOLITHIC)
        snprintf(buf, len, "monolithic %dx%d px", plan->lat_w * S, plan->lat_h * S);
    else
        snprintf(buf, len,
                 "%s %dx%d tiles of %d px, %s %d px, %d GroupNorm sync points, "
                 "halo overhead %.2fx (conv work %.2fx)",
                 vs_decode_mode_name(plan->mode), plan->tiling.ntx, plan->tiling.nty,
                 plan->tile * S, plan->mode == VS_DECODE_EXACT ? "halo" : "overlap",
                 plan->tiling.margin * S, plan->mode == VS_DECODE_EXACT ? p->norms_tiled : 0,
                 plan->halo_overhead, plan->conv_overhead);
    return buf;
}
