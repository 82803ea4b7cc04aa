/* Tensor operations in PyTorch's allocation order (see ops.h). */
#include "tools/workloads/ops.h"

#include <stdio.h>

#define VS_NAME_MAX 256
/* cuDNN-like workspace: an eighth of the input for kernels larger than 1, capped. */
#define VS_CONV_WS_DIVISOR 8u
#define VS_CONV_WS_MAX (1ull << 30)

static const char *vs_name(char *buf, const char *mod, const char *sub)
{
    if (sub)
        snprintf(buf, VS_NAME_MAX, "%s.%s", mod, sub);
    else
        snprintf(buf, VS_NAME_MAX, "%s", mod);
    return buf;
}

uint64_t vs_act_numel(struct vs_act a)
{
    return a.c * a.f * a.h * a.w;
}

uint64_t vs_act_bytes(const struct vs_emit *e, struct vs_act a)
{
    return vs_act_numel(a) * e->elt_bytes;
}

struct vs_act vs_act_keep(struct vs_emit *e, struct vs_act a)
{
    vs_emit_ref(e, a.t);
    return a;
}

void vs_act_drop(struct vs_emit *e, struct vs_act a)
{
    vs_emit_unref(e, a.t);
}

void vs_op_param(struct vs_emit *e, uint64_t count, const char *mod, const char *sub)
{
    vs_emit_param(e, mod, sub, count);
}

struct vs_act vs_op_new(struct vs_emit *e, uint64_t c, uint64_t f, uint64_t h, uint64_t w,
                        const char *tag, const char *mod, const char *sub)
{
    char name[VS_NAME_MAX];
    struct vs_act a = {VS_NO_TENSOR, c, f, h, w};
    a.t = vs_emit_alloc(e, vs_act_bytes(e, a), tag, vs_name(name, mod, sub));
    return a;
}

static struct vs_act vs_op_out(struct vs_emit *e, struct vs_act shape, const char *mod,
                               const char *sub)
{
    return vs_op_new(e, shape.c, shape.f, shape.h, shape.w, NULL, mod, sub);
}

struct vs_act vs_op_map(struct vs_emit *e, struct vs_act x, struct vs_act out,
                        unsigned flops_per_elem, const char *mod, const char *sub)
{
    struct vs_act y = vs_op_out(e, out, mod, sub);
    vs_emit_work(e, vs_act_numel(y) * flops_per_elem, vs_act_bytes(e, x) + vs_act_bytes(e, y));
    vs_act_drop(e, x);
    return y;
}

struct vs_act vs_op_binary(struct vs_emit *e, struct vs_act a, struct vs_act b, const char *mod,
                           const char *sub)
{
    struct vs_act y = vs_op_out(e, a, mod, sub);
    vs_emit_work(e, vs_act_numel(y), 3 * vs_act_bytes(e, y));
    vs_act_drop(e, a);
    vs_act_drop(e, b);
    return y;
}

struct vs_act vs_op_matmul(struct vs_emit *e, struct vs_act a, struct vs_act b, struct vs_act out,
                           uint64_t flops, const char *mod, const char *sub)
{
    struct vs_act y = vs_op_out(e, out, mod, sub);
    vs_emit_work(e, flops, vs_act_bytes(e, a) + vs_act_bytes(e, b) + vs_act_bytes(e, y));
    vs_act_drop(e, a);
    vs_act_drop(e, b);
    return y;
}

struct vs_act vs_op_conv(struct vs_emit *e, struct vs_act x, uint64_t cout, unsigned kt,
                         unsigned kh, unsigned kw, bool pre_padded, const char *mod,
                         const char *sub)
{
    char name[VS_NAME_MAX];
    vs_name(name, mod, sub);
    uint64_t k = (uint64_t)kt * kh * kw;
    vs_emit_param(e, name, "weight", cout * x.c * k);
    vs_emit_param(e, name, "bias", cout);
    struct vs_act shape = {VS_NO_TENSOR, cout, x.f, x.h, x.w};
    if (pre_padded) {
        shape.f -= kt - 1;
        shape.h -= kh - 1;
        shape.w -= kw - 1;
    }
    struct vs_act y = vs_op_out(e, shape, mod, sub);
    vs_tensor ws = VS_NO_TENSOR;
    if (k > 1) {
        uint64_t bytes = vs_act_bytes(e, x) / VS_CONV_WS_DIVISOR;
        char wsname[VS_NAME_MAX + 16];
        snprintf(wsname, sizeof wsname, "%s.workspace", name);
        ws = vs_emit_alloc(e, bytes < VS_CONV_WS_MAX ? bytes : VS_CONV_WS_MAX, NULL, wsname);
    }
    vs_emit_work(e, 2 * vs_act_numel(y) * x.c * k, vs_act_bytes(e, x) + vs_act_bytes(e, y));
    vs_emit_unref(e, ws);
    vs_act_drop(e, x);
    return y;
}

struct vs_act vs_op_linear(struct vs_emit *e, struct vs_act x, uint64_t dout, bool with_bias,
                           const char *mod, const char *sub)
{
    char name[VS_NAME_MAX];
    vs_name(name, mod, sub);
    vs_emit_param(e, name, "weight", dout * x.c);
    if (with_bias)
        vs_emit_param(e, name, "bias", dout);
    struct vs_act shape = {VS_NO_TENSOR, dout, x.f, x.h, x.w};
    uint64_t tokens = x.f * x.h * x.w;
    struct vs_act none = {VS_NO_TENSOR, 0, 0, 0, 0};
    return vs_op_matmul(e, x, none, shape, 2 * tokens * x.c * dout, mod, sub);
}

/* Normalisation output plus two statistics tensors the kernel returns and the module drops. */
static struct vs_act vs_op_norm(struct vs_emit *e, struct vs_act x, uint64_t stat_bytes,
                                const char *name)
{
    struct vs_act y = vs_op_out(e, x, name, NULL);
    char stat[VS_NAME_MAX + 8];
    snprintf(stat, sizeof stat, "%s.mean", name);
    vs_tensor mean = vs_emit_alloc(e, stat_bytes, NULL, stat);
    snprintf(stat, sizeof stat, "%s.rstd", name);
    vs_tensor rstd = vs_emit_alloc(e, stat_bytes, NULL, stat);
    vs_emit_work(e, 8 * vs_act_numel(x), 3 * vs_act_bytes(e, x));
    vs_emit_unref(e, mean);
    vs_emit_unref(e, rstd);
    vs_act_drop(e, x);
    return y;
}

struct vs_act vs_op_group_norm(struct vs_emit *e, struct vs_act x, unsigned groups,
                               const char *mod, const char *sub)
{
    char name[VS_NAME_MAX];
    vs_name(name, mod, sub);
    vs_emit_param(e, name, "weight", x.c);
    vs_emit_param(e, name, "bias", x.c);
    return vs_op_norm(e, x, (uint64_t)groups * e->elt_bytes, name);
}

struct vs_act vs_op_layer_norm(struct vs_emit *e, struct vs_act x, bool affine, const char *mod,
                               const char *sub)
{
    char name[VS_NAME_MAX];
    vs_name(name, mod, sub);
    if (affine) {
        vs_emit_param(e, name, "weight", x.c);
        vs_emit_param(e, name, "bias", x.c);
    }
    return vs_op_norm(e, x, x.f * x.h * x.w * sizeof(float), name);
}
