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

/* groupnorm.c: vs_gn_region_stats into host st[groups]; dev_scratch holds 3 * groups floats.
 * Two passes per group (mean, then squared deviations) in fp32 with a fixed reduction tree;
 * tiles are merged on the host by vs_gn_merge, in the CPU reference's order. */
int vs_cuda_gn_region_stats(const float *x, int c, size_t plane, struct vs_region r, int groups,
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

/* cast.c: F32/F16/BF16, round to nearest even, bit-identical to vs_cast. */
int vs_cuda_cast(void *dst, enum vs_dtype to, const void *src, enum vs_dtype from, size_t n,
                 cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
