/* Wan 2.1 VAE causal decode (Wan-Video/Wan2.1 wan/modules/vae.py, ANCHORS §3.2) of 832x480x81
 * and Wan 2.2 VAE decode (Wan-Video/Wan2.2 wan/modules/vae2_2.py, the TI2V-5B default 1280x704x121)
 * in fp32, as PyTorch allocates it: decoder weights first, then one decoder pass per latent
 * frame. Every CausalConv3d keeps the last two frames of its input in a per-layer cache that
 * stays alive across latent frames (cloned, concatenated in front of the next input, padded);
 * the two temporal upsamplers start in 'Rep' mode and double the frames from the second chunk
 * on (1 + 4 x 20 = 81 frames); each chunk's output is concatenated onto the video so far.
 * RMS_norm goes through F.normalize and its scale/gamma/bias temporaries; the mid attention
 * runs per frame through SDPA's memory-efficient kernel. Wan 2.2's up blocks keep a clone of
 * their input, whose DupUp3D (repeat_interleave, then a contiguous permute; the first chunk
 * slices a view) is added after the resample; its 12 output channels are unpatchified (a
 * copy) once the video is complete. Latents, the video and the weights stay live at the end.
 * --small decodes 64x64x9 with the same layers. */
#include <stdio.h>

#include "tools/workloads/ops.h"
#include "tools/workloads/workloads.h"

#define VS_WAN_CACHE_T 2
#define VS_WAN_MAX_CACHES 64 /* feat_cache slots: the decoder uses 32 */
#define VS_WAN_UP_STAGES 4
#define VS_WAN_RES_PER_STAGE 3

/* Decoder3d's upsample stages: input and output channels of their ResidualBlocks, and the
 * Resample after them (time-and-space, space only, or none for the last). */
enum vs_wan_resample { VS_WAN_UP3D, VS_WAN_UP2D, VS_WAN_NONE };
struct vs_wan_cfg {
    uint64_t z, dim, out_ch; /* latent channels, mid width, conv_out channels */
    unsigned scale;          /* spatial compression */
    bool residual;           /* Wan 2.2: Up_ResidualBlock with DupUp3D, Resample keeps width */
    unsigned patch;          /* unpatchify at the end (1: none) */
    struct {
        uint64_t in, out;
        enum vs_wan_resample resample;
    } stages[VS_WAN_UP_STAGES];
};

static const struct vs_wan_cfg vs_wan21 = {
    16, 384, 3, 8, false, 1,
    {{384, 384, VS_WAN_UP3D}, {192, 384, VS_WAN_UP3D}, {192, 192, VS_WAN_UP2D},
     {96, 96, VS_WAN_NONE}}};
static const struct vs_wan_cfg vs_wan22 = {
    48, 1024, 12, 16, true, 2,
    {{1024, 1024, VS_WAN_UP3D}, {1024, 1024, VS_WAN_UP3D}, {1024, 512, VS_WAN_UP2D},
     {512, 256, VS_WAN_NONE}}};

/* feat_cache slots: None, the 'Rep' marker of a temporal upsampler, or a cached tensor. */
enum vs_wan_slot { VS_WAN_EMPTY, VS_WAN_REP, VS_WAN_CACHED };

struct vs_wan {
    struct vs_emit *e;
    const struct vs_wan_cfg *cfg;
    enum vs_wan_slot state[VS_WAN_MAX_CACHES];
    struct vs_act cache[VS_WAN_MAX_CACHES];
    unsigned idx; /* feat_idx[0] */
};

static struct vs_act vs_wan_frames(struct vs_act x, uint64_t f)
{
    return (struct vs_act){VS_NO_TENSOR, x.c, f, x.h, x.w};
}

/* CausalConv3d.forward(x, cache): cat the cache in front, F.pad (causal in time, symmetric in
 * space), conv. x is the caller's and stays live until the conv returns. */
static struct vs_act vs_wan_causal_conv(struct vs_emit *e, struct vs_act x,
                                        const struct vs_act *cache, uint64_t cout, unsigned kt,
                                        unsigned ks, const char *mod, const char *sub)
{
    uint64_t pad_t = kt - 1, pad_s = ks - 1;
    char name[160];
    if (sub)
        snprintf(name, sizeof name, "%s.%s", mod, sub);
    else
        snprintf(name, sizeof name, "%s", mod);
    struct vs_act cur = vs_act_keep(e, x);
    if (cache && pad_t) {
        struct vs_act cat = vs_op_new(e, x.c, cache->f + x.f, x.h, x.w, NULL, name, "cache_cat");
        vs_act_drop(e, cur);
        cur = cat;
        pad_t -= cache->f;
    }
    struct vs_act padded = vs_op_new(e, cur.c, cur.f + pad_t, cur.h + pad_s, cur.w + pad_s, NULL,
                                     name, "pad");
    vs_act_drop(e, cur);
    struct vs_act y = vs_op_conv(e, padded, cout, kt, ks, ks, true, mod, sub);
    vs_act_drop(e, x);
    return y;
}

/* x[:, :, -CACHE_T:].clone(), extended to two frames with the previous cache's last frame (or
 * zeros in front of a 'Rep' slot), as the callers of CausalConv3d do. */
static struct vs_act vs_wan_cache_x(struct vs_wan *w, unsigned idx, struct vs_act x,
                                    const char *mod)
{
    uint64_t keep = x.f < VS_WAN_CACHE_T ? x.f : VS_WAN_CACHE_T;
    struct vs_act c = vs_op_map(w->e, vs_act_keep(w->e, x), vs_wan_frames(x, keep), 0, mod,
                                "cache_clone");
    if (keep >= VS_WAN_CACHE_T || w->state[idx] == VS_WAN_EMPTY)
        return c;
    struct vs_act zeros = {VS_NO_TENSOR, 0, 0, 0, 0};
    if (w->state[idx] == VS_WAN_REP)
        zeros = vs_op_new(w->e, c.c, c.f, c.h, c.w, NULL, mod, "cache_zeros");
    struct vs_act two = vs_op_new(w->e, c.c, VS_WAN_CACHE_T, c.h, c.w, NULL, mod, "cache_x");
    vs_act_drop(w->e, zeros);
    vs_act_drop(w->e, c);
    return two;
}

/* Replaces slot idx with its new cache (after the layer ran, as feat_cache[idx] = cache_x). */
static void vs_wan_store(struct vs_wan *w, unsigned idx, struct vs_act cache_x)
{
    if (w->state[idx] == VS_WAN_CACHED)
        vs_act_drop(w->e, w->cache[idx]);
    w->cache[idx] = cache_x;
    w->state[idx] = VS_WAN_CACHED;
}

/* A 3x3x3 CausalConv3d run with its feat_cache slot. Consumes x. */
static struct vs_act vs_wan_cached_conv(struct vs_wan *w, struct vs_act x, uint64_t cout,
                                        const char *mod, const char *sub)
{
    unsigned idx = w->idx++;
    char name[160];
    snprintf(name, sizeof name, "%s.%s", mod, sub);
    struct vs_act cache_x = vs_wan_cache_x(w, idx, x, name);
    const struct vs_act *old = w->state[idx] == VS_WAN_CACHED ? &w->cache[idx] : NULL;
    struct vs_act y = vs_wan_causal_conv(w->e, x, old, cout, 3, 3, mod, sub);
    vs_wan_store(w, idx, cache_x);
    return y;
}

/* RMS_norm: F.normalize(x, dim=1) * scale * gamma + bias (bias is the float 0.). */
static struct vs_act vs_wan_rms(struct vs_emit *e, struct vs_act x, const char *mod,
                                const char *sub)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", mod, sub);
    vs_op_param(e, x.c, name, "gamma");
    struct vs_act norm = vs_op_new(e, 1, x.f, x.h, x.w, NULL, name, "norm");
    norm = vs_op_map(e, norm, norm, 1, name, "clamp_min");
    struct vs_act y = vs_op_matmul(e, x, norm, x, vs_act_numel(x), name, "normalize");
    y = vs_op_map(e, y, y, 1, name, "scale");
    y = vs_op_map(e, y, y, 1, name, "gamma");
    return vs_op_map(e, y, y, 1, name, "bias");
}

/* ResidualBlock: shortcut(x) + (RMS, SiLU, conv, RMS, SiLU, dropout, conv)(x). Consumes x. */
static struct vs_act vs_wan_resblock(struct vs_wan *w, struct vs_act x, uint64_t cout,
                                     const char *mod)
{
    struct vs_emit *e = w->e;
    char res[160];
    struct vs_act h = x.c == cout
                          ? vs_act_keep(e, x)
                          : vs_wan_causal_conv(e, vs_act_keep(e, x), NULL, cout, 1, 1, mod,
                                               "shortcut");
    snprintf(res, sizeof res, "%s.residual", mod);
    struct vs_act cur = vs_wan_rms(e, vs_act_keep(e, x), res, "0");
    cur = vs_op_map(e, cur, cur, 4, res, "1");
    cur = vs_wan_cached_conv(w, cur, cout, res, "2");
    cur = vs_wan_rms(e, cur, res, "3");
    cur = vs_op_map(e, cur, cur, 4, res, "4");
    cur = vs_wan_cached_conv(w, cur, cout, res, "6");
    struct vs_act y = vs_op_binary(e, cur, h, mod, "add");
    vs_act_drop(e, x);
    return y;
}

/* rearrange 'b c t h w -> (b t) c h w': a view for one frame, a copy otherwise. */
static struct vs_act vs_wan_frames_first(struct vs_emit *e, struct vs_act x, const char *mod)
{
    if (x.f == 1)
        return x;
    return vs_op_map(e, x, x, 0, mod, "rearrange");
}

/* AttentionBlock, per frame: RMS, to_qkv (1x1 conv) made contiguous, SDPA (memory-efficient:
 * output and logsumexp), reshape copy, proj, + identity. Consumes x. */
static struct vs_act vs_wan_attention(struct vs_emit *e, struct vs_act x, const char *mod)
{
    uint64_t c = x.c, n = x.h * x.w, frames = x.f;
    struct vs_act cur = vs_wan_frames_first(e, vs_act_keep(e, x), mod);
    cur = vs_wan_rms(e, cur, mod, "norm");
    struct vs_act qkv = vs_op_conv(e, vs_act_keep(e, cur), 3 * c, 1, 1, 1, false, mod, "to_qkv");
    qkv = vs_op_map(e, qkv, qkv, 0, mod, "to_qkv.contiguous");
    struct vs_act out = vs_op_new(e, c, frames, x.h, x.w, NULL, mod, "sdpa.out");
    struct vs_act lse = {VS_NO_TENSOR, 1, frames, 1, n};
    lse.t = vs_emit_alloc(e, frames * n * sizeof(float), NULL, "sdpa.logsumexp");
    vs_emit_work(e, 4 * frames * n * n * c, 4 * vs_act_bytes(e, out));
    vs_act_drop(e, lse);
    vs_act_drop(e, cur); /* x = F.scaled_dot_product_attention(...) drops the norm output */
    cur = vs_op_map(e, out, out, 0, mod, "sdpa.reshape");
    cur = vs_op_conv(e, cur, c, 1, 1, 1, false, mod, "proj");
    struct vs_act y = vs_op_binary(e, cur, x, mod, "add");
    vs_act_drop(e, qkv); /* q, k, v views die with the frame */
    return y;
}

/* Resample: optional time_conv doubling frames (upsample3d), then per frame nearest x2 and a
 * 3x3 Conv2d (halving channels in Wan 2.1). Consumes x. */
static struct vs_act vs_wan_resample(struct vs_wan *w, struct vs_act x, bool temporal,
                                     const char *mod)
{
    struct vs_emit *e = w->e;
    char sub[160];
    struct vs_act cur = vs_act_keep(e, x);
    if (temporal) {
        unsigned idx = w->idx++;
        /* The loading pass takes the time_conv path too, so its weights get loaded. */
        if (w->state[idx] == VS_WAN_EMPTY && e->phase == VS_PHASE_RUNNING) {
            w->state[idx] = VS_WAN_REP;
        } else {
            snprintf(sub, sizeof sub, "%s.time_conv", mod);
            struct vs_act cache_x = vs_wan_cache_x(w, idx, x, sub);
            const struct vs_act *old = w->state[idx] == VS_WAN_CACHED ? &w->cache[idx] : NULL;
            struct vs_act tc = vs_wan_causal_conv(e, cur, old, 2 * x.c, 3, 1, mod, "time_conv");
            vs_wan_store(w, idx, cache_x);
            struct vs_act stacked = {VS_NO_TENSOR, x.c, 2 * x.f, x.h, x.w};
            cur = vs_op_map(e, tc, stacked, 0, mod, "stack");
        }
    }
    cur = vs_wan_frames_first(e, cur, mod);
    struct vs_act up = {VS_NO_TENSOR, cur.c, cur.f, 2 * cur.h, 2 * cur.w};
    up = vs_op_map(e, vs_act_keep(e, cur), up, 0, mod, "resample.0");
    up = vs_op_conv(e, up, w->cfg->residual ? cur.c : cur.c / 2, 1, 3, 3, false, mod,
                    "resample.1");
    vs_act_drop(e, cur);
    vs_act_drop(e, x);
    return up; /* back to b c t h w: a view */
}

/* y + DupUp3D(x_copy) with factor_t ft, factor_s 2: repeat_interleave to y.c * ft * 4
 * channels, then the permuted contiguous copy of ft * x_copy.f frames (the first chunk's slice
 * to y.f frames is a view of it). Consumes both. */
static struct vs_act vs_wan_dup_up(struct vs_emit *e, struct vs_act x_copy, struct vs_act y,
                                   uint64_t ft, const char *mod)
{
    struct vs_act rep = {VS_NO_TENSOR, y.c * ft * 4, x_copy.f, x_copy.h, x_copy.w};
    rep = vs_op_map(e, x_copy, rep, 0, mod, "avg_shortcut.repeat_interleave");
    struct vs_act spread = {VS_NO_TENSOR, y.c, ft * x_copy.f, y.h, y.w};
    spread = vs_op_map(e, rep, spread, 0, mod, "avg_shortcut.permute");
    return vs_op_binary(e, y, spread, mod, "add");
}

/* Decoder3d.forward on one latent frame. Consumes x. */
static struct vs_act vs_wan_decoder(struct vs_wan *w, struct vs_act x)
{
    const struct vs_wan_cfg *cfg = w->cfg;
    char mod[128];
    w->idx = 0;
    x = vs_wan_cached_conv(w, x, cfg->dim, "decoder", "conv1");
    x = vs_wan_resblock(w, x, cfg->dim, "decoder.middle.0");
    x = vs_wan_attention(w->e, x, "decoder.middle.1");
    x = vs_wan_resblock(w, x, cfg->dim, "decoder.middle.2");
    unsigned layer = 0;
    for (unsigned s = 0; s < VS_WAN_UP_STAGES; s++) {
        const bool up = cfg->stages[s].resample != VS_WAN_NONE;
        /* Up_ResidualBlock: its layers run on x_main = x.clone(); x feeds the shortcut */
        struct vs_act x_in = x;
        if (cfg->residual) {
            snprintf(mod, sizeof mod, "decoder.upsamples.%u", s);
            x = vs_op_map(w->e, vs_act_keep(w->e, x_in), x_in, 0, mod, "clone");
        }
        for (unsigned r = 0; r < VS_WAN_RES_PER_STAGE + (unsigned)up; r++) {
            if (cfg->residual)
                snprintf(mod, sizeof mod, "decoder.upsamples.%u.upsamples.%u", s, r);
            else
                snprintf(mod, sizeof mod, "decoder.upsamples.%u", layer++);
            if (r < VS_WAN_RES_PER_STAGE)
                x = vs_wan_resblock(w, x, cfg->stages[s].out, mod);
            else
                x = vs_wan_resample(w, x, cfg->stages[s].resample == VS_WAN_UP3D, mod);
        }
        if (cfg->residual && up) {
            snprintf(mod, sizeof mod, "decoder.upsamples.%u", s);
            x = vs_wan_dup_up(w->e, x_in, x, cfg->stages[s].resample == VS_WAN_UP3D ? 2 : 1,
                              mod);
        } else if (cfg->residual) {
            vs_act_drop(w->e, x_in);
        }
    }
    x = vs_wan_rms(w->e, x, "decoder.head", "0");
    x = vs_op_map(w->e, x, x, 4, "decoder.head", "1");
    return vs_wan_cached_conv(w, x, cfg->out_ch, "decoder.head", "2");
}

/* WanVAE_.decode: denormalise, conv2, then the decoder chunk by chunk, concatenating. */
static struct vs_act vs_wan_decode(struct vs_wan *w, struct vs_act latents, uint64_t chunks)
{
    struct vs_emit *e = w->e;
    const struct vs_wan_cfg *cfg = w->cfg;
    vs_op_param(e, cfg->z, "scale", "mean");
    vs_op_param(e, cfg->z, "scale", "inv_std");
    struct vs_act z = vs_op_map(e, vs_act_keep(e, latents), latents, 1, "decode", "z_div");
    z = vs_op_map(e, z, z, 1, "decode", "z_add");
    struct vs_act x = vs_wan_causal_conv(e, vs_act_keep(e, z), NULL, cfg->z, 1, 1, "conv2",
                                         NULL);
    struct vs_act out = {VS_NO_TENSOR, 0, 0, 0, 0}, out_ = out;
    for (uint64_t i = 0; i < chunks; i++) {
        struct vs_act chunk = vs_wan_frames(x, 1); /* x[:, :, i:i+1], a view holding x */
        chunk.t = x.t;
        vs_act_keep(e, chunk);
        struct vs_act y = vs_wan_decoder(w, chunk);
        if (i == 0) {
            out = y;
            continue;
        }
        vs_act_drop(e, out_); /* out_ = ... releases the previous chunk's output */
        out_ = y;
        if (e->phase == VS_PHASE_RUNNING && i + 1 == chunks && cfg->patch == 1)
            vs_emit_tag_next(e, "io");
        struct vs_act cat = vs_op_new(e, y.c, out.f + y.f, y.h, y.w, NULL, "decode", "out_cat");
        vs_act_drop(e, out);
        out = cat;
    }
    vs_act_drop(e, out_);
    if (cfg->patch > 1) { /* unpatchify: a permuted copy of the whole video */
        struct vs_act rgb = {VS_NO_TENSOR, out.c / (cfg->patch * cfg->patch), out.f,
                             out.h * cfg->patch, out.w * cfg->patch};
        if (e->phase == VS_PHASE_RUNNING)
            vs_emit_tag_next(e, "io");
        out = vs_op_map(e, out, rgb, 0, "decode", "unpatchify");
    }
    for (unsigned i = 0; i < VS_WAN_MAX_CACHES; i++)
        if (w->state[i] == VS_WAN_CACHED)
            vs_act_drop(e, w->cache[i]); /* clear_cache() */
    vs_act_drop(e, x);
    vs_act_drop(e, z);
    return out;
}

static void vs_wan_workload(struct vs_emit *e, const struct vs_wan_cfg *cfg, uint64_t width,
                            uint64_t height, uint64_t frames)
{
    uint64_t chunks = 1 + (frames - 1) / 4;
    struct vs_act latents = {VS_NO_TENSOR, cfg->z, chunks, height / cfg->scale,
                             width / cfg->scale};
    vs_emit_stage(e, "decode");
    vs_emit_set_phase(e, VS_PHASE_LOADING, "vae");
    struct vs_wan load = {.e = e, .cfg = cfg};
    vs_wan_decode(&load, latents, 1);
    vs_emit_set_phase(e, VS_PHASE_RUNNING, NULL);
    struct vs_wan run = {.e = e, .cfg = cfg};
    latents = vs_op_new(e, latents.c, latents.f, latents.h, latents.w, "io", "latents", NULL);
    vs_wan_decode(&run, latents, chunks);
}

void vs_workload_wan21_vae_decode(struct vs_emit *e, bool small)
{
    vs_wan_workload(e, &vs_wan21, small ? 64 : 832, small ? 64 : 480, small ? 9 : 81);
}

void vs_workload_wan22_vae_decode(struct vs_emit *e, bool small)
{
    vs_wan_workload(e, &vs_wan22, small ? 64 : 1280, small ? 64 : 704, small ? 9 : 121);
}
