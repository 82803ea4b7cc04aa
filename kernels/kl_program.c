/* Emits ops in diffusers' execution order (vae.py Decoder.forward, ResnetBlock2D.forward). */
#include "kernels/kl_program.h"

#include <stdlib.h>
#include <string.h>

static void emit(struct vs_program *p, enum vs_op_kind kind, const struct vs_kl_conv *conv,
                 const struct vs_kl_norm *norm, int silu)
{
    p->ops[p->n++] = (struct vs_op){kind, conv, norm, silu};
}

static void emit_resnet(struct vs_program *p, const struct vs_kl_resnet *r)
{
    emit(p, VS_OP_SAVE, NULL, NULL, 0);
    emit(p, VS_OP_NORM, NULL, &r->norm1, 1);
    emit(p, VS_OP_CONV, &r->conv1, NULL, 0);
    emit(p, VS_OP_NORM, NULL, &r->norm2, 1);
    emit(p, VS_OP_CONV, &r->conv2, NULL, 0);
    emit(p, VS_OP_RESIDUAL, r->shortcut.w ? &r->shortcut : NULL, NULL, 0);
}

int vs_program_build(struct vs_program *p, const struct vs_kl_decoder *d, struct vs_err *err)
{
    memset(p, 0, sizeof *p);
    int cap = 16;
    for (int i = 0; i < d->nup; i++)
        cap += 6 * d->up[i].nres + 2;
    p->d = d;
    p->ops = calloc((size_t)cap, sizeof *p->ops);
    if (!p->ops)
        return vs_err_set(err, "out of memory building the decoder program");
    if (d->post_quant.w)
        emit(p, VS_OP_CONV, &d->post_quant, NULL, 0);
    emit(p, VS_OP_CONV, &d->conv_in, NULL, 0);
    emit_resnet(p, &d->mid[0]);
    if (d->has_attn)
        emit(p, VS_OP_ATTN, NULL, NULL, 0);
    emit_resnet(p, &d->mid[1]);
    p->cut = p->n;
    for (int i = 0; i < d->nup; i++) {
        for (int j = 0; j < d->up[i].nres; j++)
            emit_resnet(p, &d->up[i].res[j]);
        if (d->up[i].upconv.w) {
            emit(p, VS_OP_UPSAMPLE, NULL, NULL, 0);
            emit(p, VS_OP_CONV, &d->up[i].upconv, NULL, 0);
        }
    }
    emit(p, VS_OP_NORM, NULL, &d->norm_out, 1);
    emit(p, VS_OP_CONV, &d->conv_out, NULL, 0);

    int r = 0;
    for (int i = p->n - 1; i >= p->cut; i--) {
        if (p->ops[i].kind == VS_OP_CONV && p->ops[i].conv->k == 3)
            r += 1;
        else if (p->ops[i].kind == VS_OP_UPSAMPLE)
            r = (r + 1) / 2;
        else if (p->ops[i].kind == VS_OP_NORM)
            p->norms_tiled++;
    }
    p->halo = r;
    return 0;
}

void vs_program_free(struct vs_program *p)
{
    free(p->ops);
    memset(p, 0, sizeof *p);
}
