/* Wan decoder stages, one frame at a time (see wan_stage.h). The operations follow diffusers'
 * WanResidualBlock, WanAttentionBlock, WanResample (with WanResidualUpBlock's DupUp3D shortcut),
 * the decoder head and unpatchify; each conv input is what diffusers caches (the activation
 * after norm and SiLU). */
#include "kernels/wan_stage.h"

#include <math.h>


static struct vs_window doubled(const struct vs_window *w)
{
    return (struct vs_window){2 * w->y0, 2 * w->x0, 2 * w->h, 2 * w->w, 2 * w->H, 2 * w->W};
}

bool vs_wan_stage_windows_ok(const struct vs_wan_stage *s, const struct vs_wan_stage_state *st)
{
    const int r1 = (s->conv.k - 1) / 2, r2 = (s->conv2.k - 1) / 2;
    if (!vs_window_valid(&st->in) || !vs_window_valid(&st->out))
        return false; /* mid is grown from out, clipped to its frame */
    switch (s->kind) {
    case VS_WAN_RES:
        return vs_window_covers(&st->in, &st->mid, r1) && vs_window_covers(&st->mid, &st->out, r2);
    case VS_WAN_RESAMPLE: {
        struct vs_window up = doubled(&st->in), src = vs_to_space_src(&st->out, 2);
        return vs_window_covers(&up, &st->out, r1) &&
               (s->skip < 0 || (st->skip && vs_window_covers(&st->skip->in, &src, 0)));
    }
    case VS_WAN_UNPATCH: {
        struct vs_window src = vs_to_space_src(&st->out, s->patch);
        return vs_window_covers(&st->in, &src, 0);
    }
    case VS_WAN_ATTN: /* global: the whole frame in and out */
        return st->in.h == st->in.H && st->in.w == st->in.W && st->out.h == st->out.H &&
               st->out.w == st->out.W && vs_window_covers(&st->in, &st->out, 0);
    case VS_WAN_CONV:
    case VS_WAN_HEAD:
        break;
    }
    return vs_window_covers(&st->in, &st->out, r1);
}

/* Time taps and frame sizes (floats) of the stage's two caches; kt 1 means no cache. */
static void cache_shapes(const struct vs_wan_stage *s, const struct vs_wan_stage_state *st,
                         int *kt1, size_t *f1, int *kt2, size_t *f2)
{
    *kt1 = *kt2 = 1;
    *f1 = *f2 = 0;
    switch (s->kind) {
    case VS_WAN_CONV:
    case VS_WAN_HEAD:
        *kt1 = s->conv.kt;
        *f1 = (size_t)s->in_ch * vs_window_area(&st->in);
        break;
    case VS_WAN_RES:
        *kt1 = s->conv.kt;
        *f1 = (size_t)s->in_ch * vs_window_area(&st->in);
        *kt2 = s->conv2.kt;
        *f2 = (size_t)s->out_ch * vs_window_area(&st->mid);
        break;
    case VS_WAN_RESAMPLE:
        if (s->temporal) {
            *kt2 = s->conv2.kt;
            *f2 = (size_t)s->in_ch * vs_window_area(&st->in);
        }
        break;
    case VS_WAN_ATTN:
    case VS_WAN_UNPATCH:
        break;
    }
}

size_t vs_wan_stage_cache_floats(const struct vs_wan_stage *s, const struct vs_wan_stage_state *st)
{
    int kt1, kt2;
    size_t f1, f2;
    cache_shapes(s, st, &kt1, &f1, &kt2, &f2);
    return vs_conv3d_cache_floats(kt1, f1) + vs_conv3d_cache_floats(kt2, f2);
}

size_t vs_wan_stage_out_floats(const struct vs_wan_stage *s, const struct vs_wan_stage_state *st)
{
    int frames = s->kind == VS_WAN_RESAMPLE && s->temporal ? 2 : 1;
    return (size_t)frames * s->out_ch * vs_window_area(&st->out);
}

size_t vs_wan_stage_scratch_floats(const struct vs_wan_stage *s,
                                   const struct vs_wan_stage_state *st)
{
    size_t a_in = vs_window_area(&st->in);
    switch (s->kind) {
    case VS_WAN_RES:
        return (size_t)s->in_ch * a_in + (size_t)s->out_ch * vs_window_area(&st->mid) +
               (s->has_shortcut ? (size_t)s->out_ch * vs_window_area(&st->out) : 0);
    case VS_WAN_ATTN: /* norm, qkv, q/k/v token-major */
        return 7 * (size_t)s->in_ch * a_in;
    case VS_WAN_RESAMPLE: /* upsampled frame, time_conv output */
        return 4 * (size_t)s->in_ch * a_in + (s->temporal ? 2 * (size_t)s->in_ch * a_in : 0);
    case VS_WAN_HEAD:
        return (size_t)s->in_ch * a_in;
    case VS_WAN_CONV:
    case VS_WAN_UNPATCH:
        break;
    }
    return 0;
}

void vs_wan_stage_bind(const struct vs_wan_stage *s, struct vs_wan_stage_state *st, float *storage)
{
    int kt1, kt2;
    size_t f1, f2;
    cache_shapes(s, st, &kt1, &f1, &kt2, &f2);
    vs_conv3d_cache_init(&st->cache1, kt1, f1, storage);
    storage += vs_conv3d_cache_floats(kt1, f1);
    vs_conv3d_cache_init(&st->cache2, kt2, f2, storage);
    storage += vs_conv3d_cache_floats(kt2, f2);
    size_t frame = (size_t)s->out_ch * vs_window_area(&st->out);
    st->frames[0] = storage;
    st->frames[1] = s->kind == VS_WAN_RESAMPLE && s->temporal ? storage + frame : NULL;
    st->frames_in = 0;
}

/* out (over st->out) += x (over st->in, a superset). */
static void add_residual(const struct vs_backend *be, const struct vs_wan_stage_state *st, int ch,
                         float *out, const float *x)
{
    be->add_crop(out, ch, st->out.h, st->out.w, x, st->in.h, st->in.w, st->out.y0 - st->in.y0,
                st->out.x0 - st->in.x0);
}

static void res_step(const struct vs_backend *be, const struct vs_wan_stage *s,
                     struct vs_wan_stage_state *st, const float *in, float *scratch)
{
    float *act = scratch;
    float *hid = act + (size_t)s->in_ch * vs_window_area(&st->in);
    be->rmsnorm(in, act, s->in_ch, vs_window_area(&st->in), s->gamma, true);
    vs_causal_conv3d_step_on(be, &s->conv, &st->cache1, act, &st->in, hid, &st->mid);
    be->rmsnorm(hid, hid, s->out_ch, vs_window_area(&st->mid), s->gamma2, true);
    vs_causal_conv3d_step_on(be, &s->conv2, &st->cache2, hid, &st->mid, st->frames[0],
                             &st->out);
    if (s->has_shortcut) {
        float *sc = hid + (size_t)s->out_ch * vs_window_area(&st->mid);
        const float *x = in;
        be->conv3d_frame(&s->shortcut, &x, &st->in, sc, &st->out);
        be->add_crop(st->frames[0], s->out_ch, st->out.h, st->out.w, sc, st->out.h, st->out.w, 0,
                     0);
    } else {
        add_residual(be, st, s->out_ch, st->frames[0], in);
    }
}

/* Single-head attention over the frame's pixels (the window is the whole frame). */
static void attn_step(const struct vs_backend *be, const struct vs_wan_stage *s,
                      struct vs_wan_stage_state *st, const float *in, float *scratch)
{
    const int c = s->in_ch;
    const size_t n = vs_window_area(&st->in), cn = (size_t)c * n;
    float *normed = scratch, *qkv = scratch + cn, *tokens = qkv + 3 * cn;
    be->rmsnorm(in, normed, c, n, s->gamma, false);
    const float *x = normed;
    be->conv3d_frame(&s->conv, &x, &st->in, qkv, &st->in);
    for (int j = 0; j < 3; j++)
        be->transpose(qkv + j * cn, tokens + j * cn, (size_t)c, n);
    float *attended = normed; /* [n][c] */
    be->attention(tokens, tokens + cn, tokens + 2 * cn, attended, n, c, 1.0f / sqrtf((float)c));
    be->transpose(attended, qkv, n, (size_t)c);
    x = qkv;
    be->conv3d_frame(&s->conv2, &x, &st->in, st->frames[0], &st->out);
    add_residual(be, st, c, st->frames[0], in);
}

/* Nearest x2 then the 2-D conv, for each of `count` frames of src. */
static void upconv(const struct vs_backend *be, const struct vs_wan_stage *s,
                   struct vs_wan_stage_state *st, const float *src, int count, float *up)
{
    const size_t frame = (size_t)s->in_ch * vs_window_area(&st->in);
    const struct vs_window upw = doubled(&st->in);
    for (int j = 0; j < count; j++) {
        be->upsample2x(src + j * frame, up, s->in_ch, st->in.h, st->in.w);
        const float *x = up;
        be->conv3d_frame(&s->conv, &x, &upw, st->frames[j], &st->out);
    }
}

/* The residual up block's shortcut (DupUp3D of the block's input, factor_t 2 when temporal,
 * factor_s 2) added to the n emitted frames. Its first frame keeps only sub-frame factor_t - 1
 * (diffusers' first-chunk slice); later frames emit sub-frames 0 .. factor_t - 1. */
static void add_shortcut(const struct vs_backend *be, const struct vs_wan_stage *s,
                         struct vs_wan_stage_state *st, long f, int n)
{
    const int ft = s->temporal ? 2 : 1;
    for (int j = 0; j < n; j++) {
        const int sub = f == 0 ? ft - 1 : j;
        const struct vs_to_space g = {s->out_ch, 2, ft * 4, sub * 4, 2, 1,
                                      s->skip_repeats, true};
        be->to_space(st->frames[j], &st->out, st->skip->input, &st->skip->in, &g);
    }
}

/* time_conv doubles the channels; channel block j of its output is output frame j. */
static int resample_step(const struct vs_backend *be, const struct vs_wan_stage *s,
                         struct vs_wan_stage_state *st, const float *in, float *scratch)
{
    float *up = scratch;
    long f = st->frames_in++;
    int n = 1;
    if (!s->temporal || f == 0) {
        upconv(be, s, st, in, 1, up);
    } else {
        float *doubled_frames = up + 4 * (size_t)s->in_ch * vs_window_area(&st->in);
        vs_causal_conv3d_step_on(be, &s->conv2, &st->cache2, in, &st->in, doubled_frames,
                                 &st->in);
        upconv(be, s, st, doubled_frames, 2, up);
        n = 2;
    }
    if (s->skip >= 0)
        add_shortcut(be, s, st, f, n);
    return n;
}

int vs_wan_stage_step(const struct vs_backend *be, const struct vs_wan_stage *s,
                      struct vs_wan_stage_state *st, const float *in, float *scratch)
{
    st->input = in;
    switch (s->kind) {
    case VS_WAN_CONV:
        vs_causal_conv3d_step_on(be, &s->conv, &st->cache1, in, &st->in, st->frames[0],
                                 &st->out);
        break;
    case VS_WAN_RES:
        res_step(be, s, st, in, scratch);
        break;
    case VS_WAN_ATTN:
        attn_step(be, s, st, in, scratch);
        break;
    case VS_WAN_RESAMPLE:
        return resample_step(be, s, st, in, scratch);
    case VS_WAN_HEAD:
        be->rmsnorm(in, scratch, s->in_ch, vs_window_area(&st->in), s->gamma, true);
        vs_causal_conv3d_step_on(be, &s->conv, &st->cache1, scratch, &st->in, st->frames[0],
                                 &st->out);
        break;
    case VS_WAN_UNPATCH: {
        const int p = s->patch;
        const struct vs_to_space g = {s->out_ch, p, p * p, 0, 1, p, 1, false};
        be->to_space(st->frames[0], &st->out, in, &st->in, &g);
        break;
    }
    }
    st->frames_in++;
    return 1;
}
