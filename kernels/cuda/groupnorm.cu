// GroupNorm over CHW planes: the CUDA twin of kernels/cpu/groupnorm.c (statistics per cell or of
// a region, then normalise + optional SiLU).
#include "kernels/cuda/common.cuh"

enum { GN_THREADS = 256 };

// Block-wide sum in a fixed order (warp shuffles, then warp 0 over the warps' sums), so the
// result does not depend on scheduling. Every thread gets the total.
__device__ static float block_sum(float v)
{
    __shared__ float warp_sums[GN_THREADS / 32];
    __shared__ float total;
    for (int d = 16; d > 0; d /= 2)
        v += __shfl_down_sync(0xffffffffu, v, d);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0)
        warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < GN_THREADS / 32 ? warp_sums[lane] : 0.0f;
        for (int d = 16; d > 0; d /= 2)
            v += __shfl_down_sync(0xffffffffu, v, d);
        if (lane == 0)
            total = v;
    }
    __syncthreads();
    float t = total;
    __syncthreads(); // total is reused by the next call
    return t;
}

__device__ static float region_at(const float *x, size_t plane, struct vs_window r, int c0,
                                  size_t e)
{
    const size_t area = (size_t)r.w * r.h;
    const int ci = c0 + (int)(e / area);
    const size_t in = e % area;
    return x[(size_t)ci * plane + (size_t)(r.y0 + (int)(in / r.w)) * r.W + r.x0 + in % r.w];
}

// v1: one block per group; pass 1 sums for the mean, pass 2 sums squared deviations (the CPU
// reference's two-pass recipe, fp32 here). out[3g..3g+2] = count, mean, M2.
__global__ static void gn_stats_kernel(const float *x, int c, size_t plane, struct vs_window r,
                                       int groups, float *out)
{
    const int g = blockIdx.x, cpg = c / groups;
    const size_t n = (size_t)cpg * r.w * r.h;
    float s = 0.0f;
    for (size_t e = threadIdx.x; e < n; e += blockDim.x)
        s += region_at(x, plane, r, g * cpg, e);
    const float total = block_sum(s), mean = n ? total / (float)n : 0.0f;
    float m2 = 0.0f;
    for (size_t e = threadIdx.x; e < n; e += blockDim.x) {
        float d = region_at(x, plane, r, g * cpg, e) - mean;
        m2 += d * d;
    }
    m2 = block_sum(m2);
    if (threadIdx.x == 0) {
        out[3 * g] = (float)n;
        out[3 * g + 1] = mean;
        out[3 * g + 2] = m2;
    }
}

extern "C" int vs_cuda_gn_region_stats(const float *x, int c, size_t plane, struct vs_window r,
                                       int groups, struct vs_gn_stats *st, float *dev_scratch,
                                       cudaStream_t stream)
{
    float host[3 * VS_GN_MAX_GROUPS];
    if (groups < 1 || groups > VS_GN_MAX_GROUPS)
        return -1;
    VS_LAUNCH(gn_stats_kernel, groups, GN_THREADS, 0, stream, x, c, plane, r, groups, dev_scratch);
    if (vs_cuda_launched() ||
        cudaMemcpyAsync(host, dev_scratch, 3 * (size_t)groups * sizeof(float),
                        cudaMemcpyDeviceToHost, stream) != cudaSuccess ||
        cudaStreamSynchronize(stream) != cudaSuccess)
        return -1;
    for (int g = 0; g < groups; g++)
        st[g] = (struct vs_gn_stats){host[3 * g], host[3 * g + 1], host[3 * g + 2]};
    return 0;
}

// The tiled part's statistics per (cell, group), one thread each, in the C twin's order
// (vs_gn_cell_stats, kernels/cpu/groupnorm.h) and in double with operations that are never
// contracted into FMAs (__dadd_rn, __dmul_rn), so every cell has the C twin's bits: exact tiling
// does not depend on which backend or tile computed a cell. cells is pinned host memory (vs_mem's
// PARK pool), written directly (unified addressing).
__global__ static void gn_cell_stats_kernel(const float *x, int c, size_t plane,
                                            struct vs_window r, int ch, int cw, int groups,
                                            struct vs_gn_cell *cells, size_t row_stride)
{
    const int ncx = r.w / cw, cpg = c / groups;
    const size_t n = (size_t)(r.h / ch) * groups * ncx, stride = (size_t)gridDim.x * blockDim.x;
    const double count = (double)cpg * ch * cw;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int cx = (int)(i % ncx), g = (int)(i / ncx % groups);
        const int cy = (int)(i / ncx / groups);
        const float *cell = x + (size_t)g * cpg * plane + (size_t)(r.y0 + cy * ch) * r.W + r.x0 +
                            (size_t)cx * cw;
        double sum = 0;
        for (int k = 0; k < cw; k++) {
            double col = 0;
            for (int ci = 0; ci < cpg; ci++)
                for (int y = 0; y < ch; y++)
                    col = __dadd_rn(col, (double)cell[(size_t)ci * plane + (size_t)y * r.W + k]);
            sum = __dadd_rn(sum, col);
        }
        const double mean = __ddiv_rn(sum, count);
        double m2 = 0;
        for (int k = 0; k < cw; k++) {
            double col = 0;
            for (int ci = 0; ci < cpg; ci++)
                for (int y = 0; y < ch; y++) {
                    const double d =
                        __dsub_rn((double)cell[(size_t)ci * plane + (size_t)y * r.W + k], mean);
                    col = __dadd_rn(col, __dmul_rn(d, d));
                }
            m2 = __dadd_rn(m2, col);
        }
        cells[(size_t)cy * row_stride + (size_t)cx * groups + g] = {mean, m2};
    }
}

extern "C" int vs_cuda_gn_cell_stats(const float *x, int c, size_t plane, struct vs_window r,
                                     int ch, int cw, int groups, struct vs_gn_cell *cells,
                                     size_t row_stride, cudaStream_t stream)
{
    if (groups < 1 || groups > VS_GN_MAX_GROUPS || ch < 1 || cw < 1)
        return -1;
    const size_t n = (size_t)(r.h / ch) * groups * (r.w / cw);
    if (n == 0)
        return 0;
    VS_LAUNCH(gn_cell_stats_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, x, c, plane, r,
              ch, cw, groups, cells, row_stride);
    // the host merges the cells next
    return vs_cuda_launched() || cudaStreamSynchronize(stream) != cudaSuccess ? -1 : 0;
}

// v1: grid-stride over all values; per-channel scale and shift folded as in the CPU reference.
__global__ static void gn_apply_kernel(float *x, int c, size_t plane, int groups,
                                       const float *mean_rstd, const float *gamma,
                                       const float *beta, int silu)
{
    const size_t n = (size_t)c * plane, stride = (size_t)gridDim.x * blockDim.x;
    const int cpg = c / groups;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int ci = (int)(i / plane), g = ci / cpg;
        const float scale = mean_rstd[groups + g] * gamma[ci];
        const float shift = beta[ci] - mean_rstd[g] * scale;
        float v = x[i] * scale + shift;
        x[i] = silu ? v / (1.0f + __expf(-v)) : v;
    }
}

extern "C" int vs_cuda_gn_apply(float *x, int c, size_t plane, int groups, const float *mean,
                                const float *rstd, const float *gamma, const float *beta,
                                int silu, float *dev_scratch, cudaStream_t stream)
{
    if (groups < 1 || groups > VS_GN_MAX_GROUPS)
        return -1;
    if (cudaMemcpyAsync(dev_scratch, mean, (size_t)groups * sizeof(float), cudaMemcpyHostToDevice,
                        stream) != cudaSuccess ||
        cudaMemcpyAsync(dev_scratch + groups, rstd, (size_t)groups * sizeof(float),
                        cudaMemcpyHostToDevice, stream) != cudaSuccess)
        return -1;
    const size_t n = (size_t)c * plane;
    if (n == 0)
        return 0;
    VS_LAUNCH(gn_apply_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, x, c, plane, groups,
              dev_scratch, gamma, beta, silu);
    return vs_cuda_launched();
}
