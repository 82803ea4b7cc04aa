/* Tensor operations as PyTorch allocates for them, shared by every workload generator.
 *
 * An activation is a tensor with an NCFHW shape (batch 1; F is frames, 1 for images; token
 * sequences are C x 1 x 1 x tokens). Every op consumes the activations it is given (drops one
 * reference, as Python drops a reassigned variable) and returns a new one with one reference;
 * a caller that still needs an input takes vs_act_keep() first. Each op allocates in the order
 * the PyTorch kernel does (output first, then workspaces and saved statistics, freed when the
 * kernel returns) and declares its parameters, which the emitter allocates in the loading phase.
 * Names are "MODULE.SUB" as in the model's state dict.
 */
#ifndef VS_WORKLOADS_OPS_H
#define VS_WORKLOADS_OPS_H

#include "tools/workloads/emit.h"

struct vs_act {
    vs_tensor t;
    uint64_t c, f, h, w;
};

uint64_t vs_act_numel(struct vs_act a);
uint64_t vs_act_bytes(const struct vs_emit *e, struct vs_act a);

/* Adds a holder: the returned copy may be consumed while the original stays valid. */
struct vs_act vs_act_keep(struct vs_emit *e, struct vs_act a);

/* Drops the caller's holder. */
void vs_act_drop(struct vs_emit *e, struct vs_act a);

/* A new tensor of this shape (inputs, cat, pad, clone). Consumes nothing. tag may be NULL. */
struct vs_act vs_op_new(struct vs_emit *e, uint64_t c, uint64_t f, uint64_t h, uint64_t w,
                        const char *tag, const char *mod, const char *sub);

/* An elementwise or data-movement kernel (SiLU, scale, copy, interpolate) writing a tensor of
 * shape `out` with `flops_per_elem` per output element; consumes x. */
struct vs_act vs_op_map(struct vs_emit *e, struct vs_act x, struct vs_act out,
                        unsigned flops_per_elem, const char *mod, const char *sub);

/* a OP b elementwise (shape of a); consumes both. */
struct vs_act vs_op_binary(struct vs_emit *e, struct vs_act a, struct vs_act b, const char *mod,
                           const char *sub);

/* A product of a and b (b may be absent: t = VS_NO_TENSOR) writing `out`; consumes both. */
struct vs_act vs_op_matmul(struct vs_emit *e, struct vs_act a, struct vs_act b, struct vs_act out,
                           uint64_t flops, const char *mod, const char *sub);

/* Convolution with a kt x kh x kw kernel, cout channels, bias. With pre_padded the input
 * already holds the padding (F.pad before the conv) and the output shrinks by k-1 in each
 * dimension; otherwise the conv pads itself ("same" size). Kernels larger than 1 run with a
 * cuDNN workspace. */
struct vs_act vs_op_conv(struct vs_emit *e, struct vs_act x, uint64_t cout, unsigned kt,
                         unsigned kh, unsigned kw, bool pre_padded, const char *mod,
                         const char *sub);

/* Linear layer over the tokens (x.c = in features); with_bias adds the bias parameter. */
struct vs_act vs_op_linear(struct vs_emit *e, struct vs_act x, uint64_t dout, bool with_bias,
                           const char *mod, const char *sub);

/* GroupNorm (affine): output, then per-group mean and rstd freed when the kernel returns. */
struct vs_act vs_op_group_norm(struct vs_emit *e, struct vs_act x, unsigned groups,
                               const char *mod, const char *sub);

/* LayerNorm over channels per token: output, fp32 mean and rstd per token; `affine` adds
 * weight and bias parameters. */
struct vs_act vs_op_layer_norm(struct vs_emit *e, struct vs_act x, bool affine, const char *mod,
                               const char *sub);

/* A parameter of `count` elements with no computation of its own (RMS gamma, embeddings). */
void vs_op_param(struct vs_emit *e, uint64_t count, const char *mod, const char *sub);

#endif
