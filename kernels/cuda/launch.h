/* Host-side entry points of the decoder's own CUDA kernels (C linkage). Each mirrors a C
 * reference layer in kernels/cpu/ (named in the comment) and returns 0 on success, -1 when the
 * launch or a copy failed. Pointers are device memory unless marked host; everything runs on
 * `stream` (those that return statistics to the host synchronise it). Statistics and
 * accumulation are fp32; results do not depend on the launch geometry, and no float atomics
 * are used, so a decode is deterministic.
 * The same kernels compile for the CPU emulation (VS_CUDA_EMU) that `make test` runs. */
#ifndef VS_KERNELS_CUDA_LAUNCH_H
#define VS_KERNELS_CUDA_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv3d.h"
#include "kernels/cpu/groupnorm.h"
#include "kernels/safetensors.h"

/* As in the CUDA runtime's driver_types.h (a repeated identical typedef is valid C and C++). */
struct CUstream_st;
typedef struct CUstream_st *cudaStream_t;

#ifdef __cplusplus
extern "C" {
#endif

/* silu.c */
int vs_cuda_silu_f32(float *x, size_t n, cudaStream_t stream);

/* groupnorm.c: vs_gn_cell_stats, the same bits as the C twin (double, its order of operations);
 * cells is pinned host memory (cudaMallocHost) that the kernel writes directly; synchronises. */
int vs_cuda_gn_cell_stats(const float *x, int c, size_t plane, struct vs_window r, int ch, int cw,
                          int groups, struct vs_gn_cell *cells, size_t row_stride,
                          cudaStream_t stream);
/* groupnorm.c: vs_gn_region_stats into host st[groups]; dev_scratch holds 3 * groups floats.
 * Two passes per group (mean, then squared deviations) in fp32 with a fixed reduction tree
 * (full-frame and blend mode's tile-local norms). */
int vs_cuda_gn_region_stats(const float *x, int c, size_t plane, struct vs_window r, int groups,
                            struct vs_gn_stats *st, float *dev_scratch, cudaStream_t stream);
/* vs_gn_apply with host mean/rstd[groups]; dev_scratch holds 2 * groups floats. */
int vs_cuda_gn_apply(float *x, int c, size_t plane, int groups, const float *mean,
                     const float *rstd, const float *gamma, const float *beta, int silu,
                     float *dev_scratch, cudaStream_t stream);

/* rmsnorm.c */
int vs_cuda_rmsnorm(const float *in, float *out, int c, size_t n, const float *gamma, bool silu,
                    cudaStream_t stream);

/* upsample.c */
int vs_cuda_upsample2x(const float *in, float *out, int c, int h, int w, cudaStream_t stream);

/* space.c: channels to space (DupUp3D shortcut, unpatchify); the structs are host memory. */
struct vs_to_space;
int vs_cuda_to_space(float *dst, const struct vs_window *dwin, const float *src,
                     const struct vs_window *swin, const struct vs_to_space *g,
                     cudaStream_t stream);

/* region.c: crop (halo gather), add_crop (residual add), paste (owned-region scatter, clamped
 * on request), transpose, blend accumulation (wy, wx: device arrays) and division. */
int vs_cuda_crop(const float *src, int c, int sh, int sw, int y0, int x0, float *dst, int dh,
                 int dw, cudaStream_t stream);
int vs_cuda_add_crop(float *dst, int c, int dh, int dw, const float *src, int sh, int sw, int y0,
                     int x0, cudaStream_t stream);
int vs_cuda_paste(float *dst, int c, int dh, int dw, int y0, int x0, const float *src, int sh,
                  int sw, int sy0, int sx0, int h, int w, bool clamp, cudaStream_t stream);
int vs_cuda_transpose(const float *in, float *out, size_t rows, size_t cols, cudaStream_t stream);
int vs_cuda_blend_acc(float *out, float *wsum, int c, int H, int W, int y0, int x0,
                      const float *src, int h, int w, const float *wy, const float *wx,
                      cudaStream_t stream);
int vs_cuda_blend_div(float *out, const float *wsum, int c, size_t hw, cudaStream_t stream);

/* attention.c's softmax step: each of `rows` rows of n scores (row-major) becomes its softmax,
 * fp32, max-subtracted; one block per row, reductions in a fixed order. */
int vs_cuda_softmax_rows(float *s, size_t rows, size_t n, cudaStream_t stream);

/* The layers behind cuDNN and cuBLAS (reached through vs_cuda_libs(): nothing is linked), with
 * the handles, the stream and a device workspace whose size the plan's budget caps. */
struct vs_cuda_ctx {
    cudaStream_t stream;
    void *cudnn;          /* cudnnHandle_t */
    void *cublas;         /* cublasHandle_t */
    void *workspace;      /* device memory */
    size_t workspace_bytes;
    /* 0: each conv takes the fastest algorithm whose workspace fits; 1 + a
     * cudnnConvolutionFwdAlgo_t: every conv uses that one (IMPLICIT_GEMM makes each output
     * pixel one dot product in a fixed order, whatever the window: docs/decoder.md, "Exact
     * tiling on the GPU") */
    int forced_algo;
};
/* Creates the handles on stream; fails (why filled) when no GPU backend is usable. */
int vs_cuda_ctx_init(struct vs_cuda_ctx *ctx, cudaStream_t stream, void *workspace, size_t bytes,
                     char *why, size_t why_len);
void vs_cuda_ctx_free(struct vs_cuda_ctx *ctx);
/* Moves an initialised ctx to another stream and workspace (the next decode's). */
int vs_cuda_ctx_bind(struct vs_cuda_ctx *ctx, cudaStream_t stream, void *workspace, size_t bytes);

/* y[r][c] += b[c] for r < rows, c < cols (linear.c's bias). */
int vs_cuda_bias_rows(float *y, const float *b, size_t rows, int cols, cudaStream_t stream);

/* conv2d.c through cuDNN (NCHW, fp32 with FMA math: no TF32). Asymmetric padding (a tile's
 * interior edge) runs with the larger padding into the workspace and is cropped. The algorithm
 * is the fastest whose workspace fits what the crop buffer leaves, or ctx->forced_algo. */
size_t vs_cuda_conv2d_scratch_bytes(const struct vs_conv2d_geom *g);
int vs_cuda_conv2d(const float *in, float *out, const float *weight, const float *bias,
                   const struct vs_conv2d_geom *g, const struct vs_cuda_ctx *ctx);
/* conv3d.c's vs_conv3d_frame as a sum of 2-D convs over the time taps: tap_weights is the
 * weight re-laid [kt][out_ch][in_ch][k][k] (device). NULL frames are skipped (zero padding). */
int vs_cuda_conv3d_frame(const struct vs_conv3d *c, const float *tap_weights,
                         const float *const *in, const struct vs_window *win, float *out,
                         const struct vs_window *wout, const struct vs_cuda_ctx *ctx);
/* attention.c through cuBLAS: queries in chunks whose n scores fit the workspace (no n x n
 * buffer), S = scale Q K^T, softmax rows, O = P V. Returns -1 when not even one query row's
 * scores fit. */
int vs_cuda_attention(const float *q, const float *k, const float *v, float *out, size_t n,
                      int d, float scale, const struct vs_cuda_ctx *ctx);

/* cast.c: F32/F16/BF16, round to nearest even, bit-identical to vs_cast. */
int vs_cuda_cast(void *dst, enum vs_dtype to, const void *src, enum vs_dtype from, size_t n,
                 cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
