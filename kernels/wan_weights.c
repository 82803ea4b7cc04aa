/* Loading the Wan 2.1 and 2.2 decoders from safetensors (see wan.h, wan_model.h).
 *
 * The layer list is discovered from the tensors present (up blocks, ResNets per block,
 * resamplers with or without time_conv) and every dimension from shapes; each layer's input
 * channels must be the previous layer's output channels, so a tensor of the wrong shape is
 * reported with its expected and stored shapes. Key styles (one per file):
 *   diffusers: post_quant_conv, decoder.conv_in, decoder.mid_block.{resnets,attentions}.N,
 *              decoder.up_blocks.I.{resnets.J,upsamplers.0}, decoder.norm_out, decoder.conv_out
 *   original:  conv2, decoder.conv1, decoder.middle.{0,1,2}, decoder.upsamples.FLAT,
 *              decoder.head.{0,2}; ResNet parts residual.{0,2,3,6} and shortcut.
 * Wan 2.2 (residual up blocks, told apart by these names; its DupUp3D shortcuts have no weights):
 *   diffusers: decoder.up_blocks.I.{resnets.J,upsampler}
 *   original:  decoder.upsamples.I.upsamples.J (ResNets, then the resample)
 * and a conv_out of 3 * p * p channels (patch p) gets the unpatchify stage.
 * Tensors outside post_quant_conv/conv2 and decoder.* (the encoder, quant_conv) are ignored;
 * unused tensors inside them are errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/attention.h"
#include "kernels/wan.h"
#include "kernels/wan_model.h"
#include "kernels/weights.h"

enum style { DIFFUSERS, ORIGINAL };

struct loader {
    struct vs_weights *w;
    enum style style;
    struct vs_wan_model *m;
    int cap_stages, cap_owned;
    int ch; /* output channels of the last stage added */
    bool residual; /* Wan 2.2's residual up blocks */
};

/* ResNet parts in each style: norm1, conv1, norm2, conv2, shortcut. */
static const char *const res_part[2][5] = {
    {"norm1.gamma", "conv1", "norm2.gamma", "conv2", "conv_shortcut"},
    {"residual.0.gamma", "residual.2", "residual.3.gamma", "residual.6", "shortcut"},
};

static int own(struct loader *L, float *p, struct vs_err *err)
{
    struct vs_wan_model *m = L->m;
    if (m->n_owned == L->cap_owned) {
        int cap = L->cap_owned ? 2 * L->cap_owned : 64;
        float **grown = realloc(m->owned, (size_t)cap * sizeof *grown);
        if (!grown) {
            free(p);
            return vs_err_set(err, "out of host memory loading the Wan decoder");
        }
        m->owned = grown;
        L->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return 0;
}

static int get(struct loader *L, const char *name, int ndim, const int64_t *shape,
               const float **dst, struct vs_err *err)
{
    float *p = vs_weights_get(L->w, name, ndim, shape, err);
    if (!p || own(L, p, err))
        return -1;
    *dst = p;
    return 0;
}

/* The tensor named by the format, or NULL; does not mark it used. */
static const struct vs_st_tensor *peek(struct loader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const struct vs_st_tensor *peek(struct loader *L, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return vs_weights_peek(L->w, name);
}

/* Output channels of conv PREFIX (from its weight's first extent), or an error naming it. */
static int out_channels(struct loader *L, const char *prefix, int *out, struct vs_err *err)
{
    char name[160];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const struct vs_st_tensor *t = vs_weights_peek(L->w, name);
    if (!t)
        return vs_err_set(err, "%s: missing tensor '%s%s' (Wan %s decoder)", L->w->file.path,
                          L->w->prefix, name, L->residual ? "2.2" : "2.1");
    if (t->ndim < 2 || t->shape[0] < 1 || t->shape[0] > 65536)
        return vs_err_set(err, "%s: tensor '%s%s' has %d dimensions, expected a conv weight",
                          L->w->file.path, L->w->prefix, name, t->ndim);
    *out = (int)t->shape[0];
    return 0;
}

/* Conv PREFIX.{weight,bias}: [out][in][kt][k][k] (kt 0: a 2-D conv [out][in][k][k]). */
static int load_conv(struct loader *L, const char *prefix, int out, int in, int kt, int k,
                     struct vs_conv3d *c, struct vs_err *err)
{
    char name[160];
    int64_t shape[5] = {out, in, kt ? kt : k, k, k};
    int ndim = kt ? 5 : 4;
    if (kt == 1 && k == 1)
        ndim = 2; /* pointwise: trailing extents of 1 are accepted */
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (get(L, name, ndim, shape, &c->weight, err))
        return -1;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (get(L, name, 1, shape, &c->bias, err))
        return -1;
    c->out_ch = out;
    c->in_ch = in;
    c->kt = kt ? kt : 1;
    c->k = k;
    return 0;
}

static int load_gamma(struct loader *L, const char *prefix, const char *part, int ch,
                      const float **dst, struct vs_err *err)
{
    char name[160];
    int64_t shape[1] = {ch};
    snprintf(name, sizeof name, "%s.%s", prefix, part);
    return get(L, name, 1, shape, dst, err);
}

static struct vs_wan_stage *add_stage(struct loader *L, enum vs_wan_kind kind, const char *name,
                                      struct vs_err *err)
{
    struct vs_wan_model *m = L->m;
    if (m->n_stages == L->cap_stages) {
        int cap = L->cap_stages ? 2 * L->cap_stages : 32;
        struct vs_wan_stage *grown = realloc(m->stages, (size_t)cap * sizeof *grown);
        if (!grown) {
            vs_err_set(err, "out of host memory loading the Wan decoder");
            return NULL;
        }
        m->stages = grown;
        L->cap_stages = cap;
    }
    struct vs_wan_stage *s = &m->stages[m->n_stages++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->in_ch = L->ch;
    s->skip = -1;
    return s;
}

/* Two names per module: the diffusers one (shown in messages) and the file's. */
static int add_conv(struct loader *L, const char *name, const char *key, int k,
                    struct vs_err *err)
{
    int out;
    struct vs_wan_stage *s = add_stage(L, VS_WAN_CONV, name, err);
    if (!s || out_channels(L, key, &out, err) || load_conv(L, key, out, L->ch, k, k, &s->conv, err))
        return -1;
    s->out_ch = L->ch = out;
    return 0;
}

static int add_res(struct loader *L, const char *name, const char *key, struct vs_err *err)
{
    const char *const *part = res_part[L->style];
    char conv1[160], conv2[160], shortcut[160];
    snprintf(conv1, sizeof conv1, "%s.%s", key, part[1]);
    snprintf(conv2, sizeof conv2, "%s.%s", key, part[3]);
    snprintf(shortcut, sizeof shortcut, "%s.%s", key, part[4]);
    int out;
    struct vs_wan_stage *s = add_stage(L, VS_WAN_RES, name, err);
    if (!s || out_channels(L, conv1, &out, err) ||
        load_gamma(L, key, part[0], s->in_ch, &s->gamma, err) ||
        load_conv(L, conv1, out, s->in_ch, 3, 3, &s->conv, err) ||
        load_gamma(L, key, part[2], out, &s->gamma2, err) ||
        load_conv(L, conv2, out, out, 3, 3, &s->conv2, err))
        return -1;
    s->has_shortcut = s->in_ch != out;
    if (s->has_shortcut && load_conv(L, shortcut, out, s->in_ch, 1, 1, &s->shortcut, err))
        return -1;
    s->out_ch = L->ch = out;
    return 0;
}

static int add_attn(struct loader *L, const char *name, const char *key, struct vs_err *err)
{
    char qkv[160], proj[160];
    snprintf(qkv, sizeof qkv, "%s.to_qkv", key);
    snprintf(proj, sizeof proj, "%s.proj", key);
    struct vs_wan_stage *s = add_stage(L, VS_WAN_ATTN, name, err);
    int c = L->ch;
    if (c > VS_ATTN_MAX_D)
        return vs_err_set(err, "%s: %s has %d channels; the attention supports head dims up to %d",
                          L->w->file.path, name, c, VS_ATTN_MAX_D);
    if (!s || load_gamma(L, key, "norm.gamma", c, &s->gamma, err) ||
        load_conv(L, qkv, 3 * c, c, 1, 1, &s->conv, err) ||
        load_conv(L, proj, c, c, 1, 1, &s->conv2, err))
        return -1;
    s->out_ch = c;
    return 0;
}

/* skip: the first stage of the residual up block the resample ends (its shortcut's source), or
 * -1. */
static int add_resample(struct loader *L, const char *name, const char *key, int skip,
                        struct vs_err *err)
{
    char conv[160], time_conv[160];
    snprintf(conv, sizeof conv, "%s.resample.1", key);
    snprintf(time_conv, sizeof time_conv, "%s.time_conv", key);
    int out;
    struct vs_wan_stage *s = add_stage(L, VS_WAN_RESAMPLE, name, err);
    if (!s || out_channels(L, conv, &out, err) ||
        load_conv(L, conv, out, s->in_ch, 0, 3, &s->conv, err))
        return -1;
    s->temporal = peek(L, "%s.weight", time_conv) != NULL;
    if (s->temporal && load_conv(L, time_conv, 2 * s->in_ch, s->in_ch, 3, 1, &s->conv2, err))
        return -1;
    s->out_ch = L->ch = out;
    if (skip >= 0) {
        /* DupUp3D spreads out_ch * factor_t * 2 * 2 channel slots over the source's channels */
        const int src = L->m->stages[skip].in_ch, slots = out * (s->temporal ? 2 : 1) * 4;
        if (slots % src)
            return vs_err_set(err, "%s: %s has %d output channels, which DupUp3D cannot spread "
                                   "from the block's %d input channels", L->w->file.path, name,
                              out, src);
        s->skip = skip;
        s->skip_repeats = slots / src;
    }
    return 0;
}

static int add_head(struct loader *L, struct vs_err *err)
{
    const char *norm = L->style == DIFFUSERS ? "decoder.norm_out" : "decoder.head.0";
    const char *conv = L->style == DIFFUSERS ? "decoder.conv_out" : "decoder.head.2";
    int out, p = 1;
    struct vs_wan_stage *s = add_stage(L, VS_WAN_HEAD, "decoder.conv_out", err);
    if (!s || out_channels(L, conv, &out, err) ||
        load_gamma(L, norm, "gamma", s->in_ch, &s->gamma, err) ||
        load_conv(L, conv, out, s->in_ch, 3, 3, &s->conv, err))
        return -1;
    while (3 * p * p < out)
        p++;
    if (3 * p * p != out || (p > 1) != L->residual)
        return vs_err_set(err, "%s: tensor '%s%s.weight' has %d output channels, expected %s",
                          L->w->file.path, L->w->prefix, conv, out,
                          L->residual ? "3 * p * p for a patch size p > 1 (Wan 2.2)"
                                      : "3 (RGB)");
    s->out_ch = L->ch = out;
    if (p == 1)
        return 0;
    struct vs_wan_stage *u = add_stage(L, VS_WAN_UNPATCH, "unpatchify", err);
    if (!u)
        return -1;
    u->patch = p;
    u->out_ch = L->ch = 3;
    return 0;
}

/* Up block `block` under `key` (its ResNets at key.res_fmt J, then the resample at key.up). */
static int add_up_block(struct loader *L, const char *key, const char *res_fmt, const char *up,
                        int *n_up, struct vs_err *err)
{
    char name[160], res[160];
    const int first = L->m->n_stages;
    for (int j = 0;; j++) {
        snprintf(res, sizeof res, "%s.", key);
        snprintf(res + strlen(res), sizeof res - strlen(res), res_fmt, j);
        const char *conv1 = res_part[L->style][1];
        if (!peek(L, "%s.%s.weight", res, conv1))
            break;
        if (add_res(L, res, res, err))
            return -1;
    }
    snprintf(name, sizeof name, "%s.%s", key, up);
    if (!peek(L, "%s.resample.1.weight", name))
        return 0;
    (*n_up)++;
    return add_resample(L, name, name, L->residual ? first : -1, err);
}

static int add_up_blocks(struct loader *L, struct vs_err *err)
{
    char name[96], key[96];
    int n_up = 0;
    if (L->style == DIFFUSERS) {
        for (int i = 0; peek(L, "decoder.up_blocks.%d.resnets.0.conv1.weight", i); i++) {
            snprintf(key, sizeof key, "decoder.up_blocks.%d", i);
            if (add_up_block(L, key, "resnets.%d", L->residual ? "upsampler" : "upsamplers.0",
                             &n_up, err))
                return -1;
        }
    } else if (L->residual) {
        for (int i = 0; peek(L, "decoder.upsamples.%d.upsamples.0.residual.2.weight", i); i++) {
            snprintf(key, sizeof key, "decoder.upsamples.%d", i);
            int last;
            for (last = 0; peek(L, "%s.upsamples.%d.residual.2.weight", key, last); last++)
                ;
            char up[32];
            snprintf(up, sizeof up, "upsamples.%d", last);
            if (add_up_block(L, key, "upsamples.%d", up, &n_up, err))
                return -1;
        }
    } else {
        for (int n = 0;; n++) {
            snprintf(key, sizeof key, "decoder.upsamples.%d", n);
            if (peek(L, "%s.residual.2.weight", key)) {
                snprintf(name, sizeof name, "decoder.upsamples.%d (ResNet)", n);
                if (add_res(L, name, key, err))
                    return -1;
            } else if (peek(L, "%s.resample.1.weight", key)) {
                snprintf(name, sizeof name, "decoder.upsamples.%d (resample)", n);
                if (add_resample(L, name, key, -1, err))
                    return -1;
                n_up++;
            } else {
                break;
            }
        }
    }
    if (n_up == 0)
        return vs_err_set(err, "%s: no upsampling layers found (%s); not a Wan decoder",
                          L->w->file.path,
                          L->style == DIFFUSERS ? "decoder.up_blocks.*.upsamplers.0.resample.1"
                                                : "decoder.upsamples.*.resample.1");
    return 0;
}

static int check_unused(struct loader *L, struct vs_err *err)
{
    const char *scopes[2] = {"decoder.", L->style == DIFFUSERS ? "post_quant_conv." : "conv2."};
    for (int i = 0; i < 2; i++) {
        const char *names[4];
        size_t n = vs_weights_unused(L->w, scopes[i], names, 4);
        if (n)
            return vs_err_set(err, "%s: unexpected tensor '%s%s'%s for a Wan %s decoder (%zu "
                                   "unused under '%s')", L->w->file.path, L->w->prefix, names[0],
                              n > 1 ? " and others" : "", L->residual ? "2.2" : "2.1", n,
                              scopes[i]);
    }
    return 0;
}

static int build(struct loader *L, struct vs_err *err)
{
    static const char *const markers[] = {"decoder.conv_in.weight", "decoder.conv1.weight"};
    if (vs_weights_detect_prefix(L->w, markers, 2, err))
        return -1;
    L->style = vs_weights_peek(L->w, markers[0]) ? DIFFUSERS : ORIGINAL;
    const bool d = L->style == DIFFUSERS;
    L->residual = d ? peek(L, "decoder.up_blocks.0.upsampler.resample.1.weight") != NULL
                    : peek(L, "decoder.upsamples.0.upsamples.0.residual.2.weight") != NULL;
    L->m->version = L->residual ? 22 : 21;
    const char *conv_in = d ? "decoder.conv_in" : "decoder.conv1";
    const struct vs_st_tensor *t = peek(L, "%s.weight", conv_in);
    if (t->ndim != 5)
        return vs_err_set(err, "%s: tensor '%s%s.weight' has %d dimensions, expected a 3-D conv "
                               "weight [out, in, 3, 3, 3] (not a Wan decoder?)",
                          L->w->file.path, L->w->prefix, conv_in, t->ndim);
    L->ch = L->m->z_dim = (int)t->shape[1];
    const char *res0 = "decoder.mid_block.resnets.0", *res1 = "decoder.mid_block.resnets.1";
    const char *attn = "decoder.mid_block.attentions.0";
    if (add_conv(L, "post_quant_conv", d ? "post_quant_conv" : "conv2", 1, err) ||
        add_conv(L, "decoder.conv_in", conv_in, 3, err) ||
        add_res(L, res0, d ? res0 : "decoder.middle.0", err) ||
        add_attn(L, attn, d ? attn : "decoder.middle.1", err) ||
        add_res(L, res1, d ? res1 : "decoder.middle.2", err))
        return -1;
    L->m->cut = L->m->n_stages;
    if (add_up_blocks(L, err) || add_head(L, err))
        return -1;
    return check_unused(L, err);
}

int vs_wan_load(const char *path, struct vs_wan_model **model, struct vs_err *err)
{
    struct vs_weights w;
    *model = NULL;
    if (vs_weights_open(&w, path, err))
        return -1;
    int rc = vs_wan_load_weights(&w, model, err);
    vs_weights_close(&w);
    return rc;
}

int vs_wan_load_weights(struct vs_weights *w, struct vs_wan_model **model, struct vs_err *err)
{
    struct loader L = {.w = w};
    *model = NULL;
    L.m = calloc(1, sizeof *L.m);
    int rc = L.m ? build(&L, err) : vs_err_set(err, "out of host memory loading %s", w->file.path);
    if (rc) {
        vs_wan_free(L.m);
        return -1;
    }
    *model = L.m;
    return 0;
}
