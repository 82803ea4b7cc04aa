/* Tile executor. Geometry is tracked in image coordinates at the current resolution: a tile's
 * buffer covers rows y0..y0+h, columns x0..x0+w; its owned rectangle at the cut's resolution is
 * scaled by `scale` (x2 per upsample). */
#include "kernels/tile_exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/checked.h"
#include "kernels/cpu/attention.h"

struct tile {
    int oy, ox, oh, ow;      /* owned rectangle at the cut's resolution */
    int y0, x0, h, w, scale; /* buffer rectangle at the current resolution */
    int c;
    float *cur;
    int sc, sy0, sx0, sh, sw; /* saved ResNet input */
    float *saved;
};

struct exec {
    const struct vs_program *p;
    struct vs_mem *mem;
    const struct vs_backend *be; /* mem's: every layer runs through it */
    int dry, standalone;
    int img_h, img_w; /* at the cut's resolution */
    float mean[VS_GN_MAX_GROUPS], rstd[VS_GN_MAX_GROUPS];
    struct vs_gn_stats acc[VS_GN_MAX_GROUPS]; /* the merged statistics of the current norm */
    /* The tiled part's statistics: one cell per latent pixel (img_h x img_w, row-major) and
     * group, written by the tiles that own them, merged when every tile reached the norm
     * (NULL in blend mode: tile-local statistics). PARK pool. */
    struct vs_gn_cell *cells;
    const struct vs_progress *progress;
    long done, total;
    double macs;
    uint64_t digest;
    struct vs_err *err;
};

/* Folds the bits of the merged statistics of one norm into the digest (FNV-1a). */
static void digest_stats(struct exec *e, const struct vs_gn_stats *st, int groups)
{
    const unsigned char *b = (const unsigned char *)st;
    for (size_t i = 0; i < (size_t)groups * sizeof *st; i++)
        e->digest = (e->digest ^ b[i]) * 0x100000001b3ull;
}

static float *alloc(struct exec *e, size_t n)
{
    float *p = vs_mem_floats(e->mem, n, VS_POOL_WORK);
    if (!p)
        vs_err_set(e->err, "out of memory: %zu bytes for a decoder activation", n * sizeof(float));
    return p;
}

static void tick(struct exec *e)
{
    e->done++;
    if (e->progress && e->progress->fn && !e->dry)
        e->progress->fn(e->progress->ctx, e->done, e->total);
}

static size_t plane(const struct tile *t)
{
    return (size_t)t->h * t->w;
}

static int op_conv(struct exec *e, struct tile *t, const struct vs_kl_conv *cv)
{
    int border = cv->k == 3;
    int H = e->img_h * t->scale, W = e->img_w * t->scale;
    struct vs_conv2d_geom g = {
        .cin = cv->cin, .cout = cv->cout, .k = cv->k, .in_h = t->h, .in_w = t->w,
        .pad_top = border && (e->standalone || t->y0 == 0),
        .pad_bottom = border && (e->standalone || t->y0 + t->h == H),
        .pad_left = border && (e->standalone || t->x0 == 0),
        .pad_right = border && (e->standalone || t->x0 + t->w == W),
    };
    int oh = vs_conv2d_out_h(&g), ow = vs_conv2d_out_w(&g);
    float *out = alloc(e, (size_t)cv->cout * oh * ow);
    if (!out)
        return -1;
    if (!e->dry)
        e->be->conv2d(t->cur, out, cv->w, cv->b, &g);
    e->macs += (double)oh * ow * cv->cout * cv->cin * cv->k * cv->k;
    vs_mem_free(e->mem, t->cur);
    t->cur = out;
    t->c = cv->cout;
    t->y0 += border - g.pad_top;
    t->x0 += border - g.pad_left;
    t->h = oh;
    t->w = ow;
    return 0;
}

static int op_save(struct exec *e, struct tile *t)
{
    if (!(t->saved = alloc(e, (size_t)t->c * plane(t))))
        return -1;
    if (!e->dry)
        e->be->copy(t->saved, t->cur, (size_t)t->c * plane(t) * sizeof(float));
    t->sc = t->c, t->sy0 = t->y0, t->sx0 = t->x0, t->sh = t->h, t->sw = t->w;
    return 0;
}

static int op_residual(struct exec *e, struct tile *t, const struct vs_kl_conv *shortcut)
{
    int dy = t->y0 - t->sy0, dx = t->x0 - t->sx0;
    if (shortcut) {
        float *crop = alloc(e, (size_t)t->sc * plane(t));
        float *sc = crop ? alloc(e, (size_t)t->c * plane(t)) : NULL;
        if (!sc) {
            vs_mem_free(e->mem, crop);
            return -1;
        }
        if (!e->dry) {
            struct vs_conv2d_geom g = {
                .cin = t->sc, .cout = t->c, .k = 1, .in_h = t->h, .in_w = t->w};
            e->be->crop(t->saved, t->sc, t->sh, t->sw, dy, dx, crop, t->h, t->w);
            e->be->conv2d(crop, sc, shortcut->w, shortcut->b, &g);
            e->be->add_crop(t->cur, t->c, t->h, t->w, sc, t->h, t->w, 0, 0);
        }
        e->macs += (double)plane(t) * t->c * t->sc;
        vs_mem_free(e->mem, crop);
        vs_mem_free(e->mem, sc);
    } else if (!e->dry)
        e->be->add_crop(t->cur, t->c, t->h, t->w, t->saved, t->sh, t->sw, dy, dx);
    vs_mem_free(e->mem, t->saved);
    t->saved = NULL;
    return 0;
}

static int op_upsample(struct exec *e, struct tile *t)
{
    float *out = alloc(e, (size_t)t->c * plane(t) * 4);
    if (!out)
        return -1;
    if (!e->dry)
        e->be->upsample2x(t->cur, out, t->c, t->h, t->w);
    vs_mem_free(e->mem, t->cur);
    t->cur = out;
    t->y0 *= 2, t->x0 *= 2, t->h *= 2, t->w *= 2, t->scale *= 2;
    return 0;
}

/* Mid-block attention over the full frame: GroupNorm, token-major q/k/v projections, online
 * softmax attention, output projection, residual. */
static int op_attn(struct exec *e, struct tile *t)
{
    const struct vs_kl_attn *a = &e->p->d->attn;
    const size_t n = plane(t), c = (size_t)t->c;
    float *xn = NULL, *tok = NULL, *q = NULL, *k = NULL, *v = NULL;
    int rc = -1;
    if (!(xn = alloc(e, c * n)) || !(tok = alloc(e, c * n)))
        goto done;
    if (!e->dry) {
        const int groups = e->p->d->groups;
        struct vs_gn_stats st[VS_GN_MAX_GROUPS];
        float mean[VS_GN_MAX_GROUPS], rstd[VS_GN_MAX_GROUPS];
        e->be->copy(xn, t->cur, c * n * sizeof(float));
        e->be->gn_region_stats(xn, t->c, n, (struct vs_window){0, 0, t->h, t->w, t->h, t->w},
                               groups, st);
        vs_gn_finish(groups, st, e->p->d->eps, mean, rstd);
        e->be->gn_apply(xn, t->c, n, groups, mean, rstd, a->norm.gamma, a->norm.beta, 0);
        e->be->transpose(xn, tok, c, n);
    }
    vs_mem_free(e->mem, xn);
    xn = NULL;
    if (!(q = alloc(e, c * n)) || !(k = alloc(e, c * n)) || !(v = alloc(e, c * n)))
        goto done;
    if (!e->dry) {
        e->be->linear(tok, a->q.w, a->q.b, q, n, t->c, t->c);
        e->be->linear(tok, a->k.w, a->k.b, k, n, t->c, t->c);
        e->be->linear(tok, a->v.w, a->v.b, v, n, t->c, t->c);
        /* tok is reused for the attention output, q for the projection, k for its transpose */
        if (e->be->attention(q, k, v, tok, n, t->c, 1.0f / sqrtf((float)t->c))) {
            vs_err_set(e->err, "attention: %d channels exceed the supported head dimension %d",
                       t->c, VS_ATTN_MAX_D);
            goto done;
        }
        e->be->linear(tok, a->out.w, a->out.b, q, n, t->c, t->c);
        e->be->transpose(q, k, n, c);
        e->be->add_crop(t->cur, t->c, t->h, t->w, k, t->h, t->w, 0, 0);
    }
    rc = 0;
done:
    vs_mem_free(e->mem, xn);
    vs_mem_free(e->mem, tok);
    vs_mem_free(e->mem, q);
    vs_mem_free(e->mem, k);
    vs_mem_free(e->mem, v);
    return rc;
}

/* Statistics region: the owned rectangle (synchronised) or the whole buffer (standalone). */
static struct vs_window stats_region(const struct exec *e, const struct tile *t)
{
    if (e->standalone)
        return (struct vs_window){0, 0, t->h, t->w, t->h, t->w};
    return (struct vs_window){t->oy * t->scale - t->y0, t->ox * t->scale - t->x0,
                              t->oh * t->scale, t->ow * t->scale, t->h, t->w};
}

static void tile_stats(const struct exec *e, const struct tile *t, struct vs_gn_stats *st)
{
    e->be->gn_region_stats(t->cur, t->c, plane(t), stats_region(e, t), e->p->d->groups, st);
}

/* A tile's part of the statistics of the norm ops[stop]. The full-frame part (one tile, checked
 * by run_synced) takes its region's statistics; the tiled part (also in a monolithic decode) fills
 * the cells of the tile's owned latent pixels, each scale x scale pixels at this level. */
static void sync_stats(struct exec *e, const struct tile *t, int stop)
{
    const int groups = e->p->d->groups;
    if (stop < e->p->cut)
        tile_stats(e, t, e->acc);
    else
        e->be->gn_cell_stats(t->cur, t->c, plane(t), stats_region(e, t), t->scale, t->scale, groups,
                             e->cells + ((size_t)t->oy * e->img_w + t->ox) * groups,
                             (size_t)e->img_w * groups);
}

/* The merged statistics of the norm ops[stop] once every tile (at channels c, scale) took its
 * part: the cells in row-major order, whatever the tiling. */
static void sync_merge(struct exec *e, int stop, int c, int scale)
{
    const int groups = e->p->d->groups;
    if (stop >= e->p->cut)
        vs_gn_merge_cells(groups, e->cells, (size_t)e->img_h * e->img_w,
                          (double)(c / groups) * scale * scale, e->acc);
    digest_stats(e, e->acc, groups);
    vs_gn_finish(groups, e->acc, e->p->d->eps, e->mean, e->rstd);
}

static void norm_apply(struct exec *e, struct tile *t, const struct vs_op *op)
{
    if (!e->dry)
        e->be->gn_apply(t->cur, t->c, plane(t), e->p->d->groups, e->mean, e->rstd,
                        op->norm->gamma, op->norm->beta, op->silu);
}

static int run_op(struct exec *e, struct tile *t, const struct vs_op *op)
{
    switch (op->kind) {
    case VS_OP_CONV:
        return op_conv(e, t, op->conv);
    case VS_OP_SAVE:
        return op_save(e, t);
    case VS_OP_RESIDUAL:
        return op_residual(e, t, op->conv);
    case VS_OP_UPSAMPLE:
        return op_upsample(e, t);
    case VS_OP_ATTN:
        return op_attn(e, t);
    case VS_OP_NORM:
        /* standalone tiles normalise with their own statistics on the spot */
        if (!e->dry) {
            struct vs_gn_stats st[VS_GN_MAX_GROUPS];
            tile_stats(e, t, st);
            vs_gn_finish(e->p->d->groups, st, e->p->d->eps, e->mean, e->rstd);
        }
        norm_apply(e, t, op);
        return 0;
    }
    return 0;
}

/* Moves a tile's buffers to pool (host memory when parked on a device backend). */
static int park(struct exec *e, struct tile *t, enum vs_pool pool)
{
    float *cur = vs_mem_move(e->mem, t->cur, pool);
    if (cur)
        t->cur = cur;
    float *saved = cur ? vs_mem_move(e->mem, t->saved, pool) : NULL;
    if (saved)
        t->saved = saved;
    if ((t->cur && !cur) || (t->saved && !saved))
        return vs_err_set(e->err, "out of memory moving a tile's state to the %s pool",
                          pool == VS_POOL_PARK ? "parked (host)" : "working");
    return 0;
}

static void free_tile(struct exec *e, struct tile *t)
{
    vs_mem_free(e->mem, t->cur);
    vs_mem_free(e->mem, t->saved);
    t->cur = t->saved = NULL;
}

/* Tile input: its owned rectangle plus margin (clipped), cropped from the full-frame src. */
static int tile_init(struct exec *e, struct tile *t, const float *src, int c, int margin)
{
    int y1 = t->oy + t->oh + margin, x1 = t->ox + t->ow + margin;
    t->y0 = t->oy - margin > 0 ? t->oy - margin : 0;
    t->x0 = t->ox - margin > 0 ? t->ox - margin : 0;
    t->h = (y1 < e->img_h ? y1 : e->img_h) - t->y0;
    t->w = (x1 < e->img_w ? x1 : e->img_w) - t->x0;
    t->scale = 1;
    t->c = c;
    if (!(t->cur = alloc(e, (size_t)c * plane(t))))
        return -1;
    if (!e->dry)
        e->be->crop(src, c, e->img_h, e->img_w, t->y0, t->x0, t->cur, t->h, t->w);
    return 0;
}

static void write_owned(struct exec *e, const struct tile *t, float *out)
{
    int s = t->scale, W = e->img_w * s, H = e->img_h * s;
    if (e->dry)
        return;
    e->be->paste(out, t->c, H, W, t->oy * s, t->ox * s, t->cur, t->h, t->w, t->oy * s - t->y0,
                 t->ox * s - t->x0, t->oh * s, t->ow * s, false);
}

/* Rounds from GroupNorm to GroupNorm over all tiles (see header). Tiles start from src (cut
 * tensor) in round 0; on return after ops[end-1] each tile's cur holds its result. */
static int run_synced(struct exec *e, struct tile *tiles, int nt, int begin, int end,
                      const float *src, int src_c, int margin)
{
    const struct vs_op *ops = e->p->ops;
    int parked = nt > 1;
    if (begin < e->p->cut && nt != 1) /* sync_stats: the full-frame part has nothing to merge */
        return vs_err_set(e->err, "internal error: the full-frame part runs as %d tiles", nt);
    for (int pc = begin, round = 0;; round++) {
        int stop = pc + (round > 0);
        while (stop < end && ops[stop].kind != VS_OP_NORM)
            stop++;
        for (int i = 0; i < nt; i++) {
            struct tile *t = &tiles[i];
            if (round == 0) {
                if (tile_init(e, t, src, src_c, margin))
                    return -1;
            } else {
                if (park(e, t, VS_POOL_WORK))
                    return -1;
                norm_apply(e, t, &ops[pc]);
            }
            for (int o = pc + (round > 0); o < stop; o++)
                if (run_op(e, t, &ops[o]))
                    return -1;
            if (stop < end && !e->dry)
                sync_stats(e, t, stop);
            if (parked && park(e, t, VS_POOL_PARK))
                return -1;
            tick(e);
        }
        if (stop == end)
            return 0;
        if (!e->dry)
            sync_merge(e, stop, tiles[0].c, tiles[0].scale);
        pc = stop;
    }
}

/* Feathering weight of buffer row/column i (of n) whose leading/trailing edges are interior. */
static float ramp(int i, int n, int lead, int trail, int len)
{
    float w = 1.0f;
    if (lead && i < len)
        w = (i + 0.5f) / len;
    if (trail && n - 1 - i < len)
        w *= (n - 1 - i + 0.5f) / len;
    return w;
}

static int blend_into(struct exec *e, const struct tile *t, int margin, float *out, float *wsum)
{
    if (e->dry)
        return 0;
    int s = t->scale, H = e->img_h * s, W = e->img_w * s, len = 2 * margin * s;
    float *wy = malloc(((size_t)t->h + t->w) * sizeof *wy), *wx = wy + t->h;
    if (!wy)
        return vs_err_set(e->err, "out of host memory: blend ramps");
    for (int y = 0; y < t->h; y++)
        wy[y] = ramp(y, t->h, t->y0 > 0, t->y0 + t->h < H, len);
    for (int x = 0; x < t->w; x++)
        wx[x] = ramp(x, t->w, t->x0 > 0, t->x0 + t->w < W, len);
    e->be->blend_acc(out, wsum, t->c, H, W, t->y0, t->x0, t->cur, t->h, t->w, wy, wx);
    free(wy);
    return 0;
}

static void tiles_from(const struct vs_tiling *tl, struct tile *tiles)
{
    for (int ty = 0; ty < tl->nty; ty++)
        for (int tx = 0; tx < tl->ntx; tx++)
            tiles[ty * tl->ntx + tx] = (struct tile){
                .oy = tl->ys[ty], .ox = tl->xs[tx],
                .oh = tl->ys[ty + 1] - tl->ys[ty], .ow = tl->xs[tx + 1] - tl->xs[tx]};
}

static int decode_tiled(struct exec *e, const struct vs_tiling *tl, const float *cut, int cut_c,
                        float *out, struct tile *tiles)
{
    int nt = tl->nty * tl->ntx, S = e->p->d->upscale, n = e->p->n;
    tiles_from(tl, tiles);
    if (!tl->standalone) {
        if (run_synced(e, tiles, nt, e->p->cut, n, cut, cut_c, tl->margin))
            return -1;
        for (int i = 0; i < nt; i++) {
            if (park(e, &tiles[i], VS_POOL_WORK))
                return -1;
            write_owned(e, &tiles[i], out);
            free_tile(e, &tiles[i]);
        }
        return 0;
    }
    size_t HW = (size_t)e->img_h * S * e->img_w * S;
    float *wsum = vs_mem_floats(e->mem, HW, VS_POOL_PARK);
    if (!wsum)
        return vs_err_set(e->err, "out of memory: blend weights");
    if (!e->dry) {
        e->be->zero(wsum, HW * sizeof(float));
        e->be->zero(out, (size_t)e->p->d->conv_out.cout * HW * sizeof(float));
    }
    for (int i = 0; i < nt; i++) {
        struct tile *t = &tiles[i];
        if (tile_init(e, t, cut, cut_c, tl->margin))
            goto fail;
        for (int o = e->p->cut; o < n; o++)
            if (run_op(e, t, &e->p->ops[o]))
                goto fail;
        if (blend_into(e, t, tl->margin, out, wsum))
            goto fail;
        free_tile(e, t);
        tick(e);
    }
    if (!e->dry)
        e->be->blend_div(out, wsum, e->p->d->conv_out.cout, HW);
    vs_mem_free(e->mem, wsum);
    return 0;
fail:
    vs_mem_free(e->mem, wsum);
    return -1;
}

int vs_exec_decode(const struct vs_program *p, const struct vs_tiling *tiling, const float *latent,
                   int h, int w, float **out, struct vs_mem *mem,
                   const struct vs_progress *progress, struct vs_exec_stats *stats,
                   struct vs_err *err)
{
    const struct vs_kl_decoder *d = p->d;
    struct exec e = {.p = p, .mem = mem, .be = mem->be, .dry = mem->dry, .img_h = h, .img_w = w,
                     .progress = progress, .digest = mem->dry ? 0 : 0xcbf29ce484222325ull,
                     .err = err};
    int S = d->upscale, nt = tiling ? tiling->nty * tiling->ntx : 1;
    int low_norms = 0;
    for (int i = 0; i < p->cut; i++)
        low_norms += p->ops[i].kind == VS_OP_NORM;
    int rounds = tiling && tiling->standalone ? 1 : p->norms_tiled + 1;
    e.total = tiling ? low_norms + 1 + (long)nt * rounds : low_norms + p->norms_tiled + 1;
    *out = vs_mem_floats(mem, (size_t)d->conv_out.cout * h * S * w * S, VS_POOL_PARK);
    if (!*out)
        return vs_err_set(err, "out of memory: decoded image");
    struct tile full = {.oh = h, .ow = w};
    struct tile *tiles = NULL;
    int rc = -1;
    size_t cells;
    if (!(tiling && tiling->standalone) &&
        (!vs_mul3_size((size_t)h * w, (size_t)d->groups, sizeof *e.cells / sizeof(float), &cells) ||
         !(e.cells = (struct vs_gn_cell *)vs_mem_floats(mem, cells, VS_POOL_PARK)))) {
        vs_err_set(err, "out of memory: GroupNorm statistics of %dx%d latent pixels x %d groups",
                   w, h, d->groups);
        goto done;
    }
    /* full-frame part: everything (monolithic) or up to the cut */
    if (run_synced(&e, &full, 1, 0, tiling ? p->cut : p->n, latent, d->latent_channels, 0))
        goto done;
    if (stats)
        stats->full_frame_peak = mem->peak[VS_POOL_WORK];
    if (!tiling) {
        write_owned(&e, &full, *out);
        rc = 0;
        goto done;
    }
    if (!(tiles = calloc((size_t)nt, sizeof *tiles))) {
        vs_err_set(err, "out of memory: tile table");
        goto done;
    }
    float *parked = vs_mem_move(mem, full.cur, VS_POOL_PARK);
    if (!parked) {
        vs_err_set(err, "out of memory parking the full-frame activation");
        goto done;
    }
    full.cur = parked;
    e.standalone = tiling->standalone;
    rc = decode_tiled(&e, tiling, full.cur, full.c, *out, tiles);
done:
    vs_mem_free(mem, (float *)e.cells);
    free_tile(&e, &full);
    for (int i = 0; tiles && i < nt; i++)
        free_tile(&e, &tiles[i]);
    free(tiles);
    if (stats) {
        stats->macs = e.macs;
        stats->norm_digest = e.digest;
    }
    if (rc) {
        vs_mem_free(mem, *out);
        *out = NULL;
    }
    return rc;
}
