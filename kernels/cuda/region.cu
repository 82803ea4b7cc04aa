// Moves between CHW buffers of different geometry, the residual add, the transpose and the
// blend accumulation: the CUDA twin of kernels/cpu/region.c.
#include "kernels/cuda/common.cuh"

// v1: one thread per destination value of an h x w window (grid-stride): dst window at
// (dy0, dx0) of dh x dw planes, src window at (sy0, sx0) of sh x sw planes. mode 0 copies,
// 1 adds, 2 copies clamped to [-1, 1] (NaN passes, as in the CPU reference).
__global__ static void window_kernel(float *dst, int dh, int dw, int dy0, int dx0,
                                     const float *src, int sh, int sw, int sy0, int sx0, int c,
                                     int h, int w, int mode)
{
    const size_t area = (size_t)h * w, n = (size_t)c * area;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const size_t ci = i / area, o = i % area;
        const int y = (int)(o / w), x = (int)(o % w);
        const float v = src[(ci * sh + sy0 + y) * sw + sx0 + x];
        float *d = &dst[(ci * dh + dy0 + y) * dw + dx0 + x];
        if (mode == 1)
            *d += v;
        else
            *d = mode == 2 ? (v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v) : v;
    }
}

static int window(float *dst, int dh, int dw, int dy0, int dx0, const float *src, int sh, int sw,
                  int sy0, int sx0, int c, int h, int w, int mode, cudaStream_t stream)
{
    const size_t n = (size_t)c * h * w;
    if (n == 0)
        return 0;
    VS_LAUNCH(window_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, dst, dh, dw, dy0, dx0,
              src, sh, sw, sy0, sx0, c, h, w, mode);
    return vs_cuda_launched();
}

extern "C" int vs_cuda_crop(const float *src, int c, int sh, int sw, int y0, int x0, float *dst,
                            int dh, int dw, cudaStream_t stream)
{
    return window(dst, dh, dw, 0, 0, src, sh, sw, y0, x0, c, dh, dw, 0, stream);
}

extern "C" int vs_cuda_add_crop(float *dst, int c, int dh, int dw, const float *src, int sh,
                                int sw, int y0, int x0, cudaStream_t stream)
{
    return window(dst, dh, dw, 0, 0, src, sh, sw, y0, x0, c, dh, dw, 1, stream);
}

extern "C" int vs_cuda_paste(float *dst, int c, int dh, int dw, int y0, int x0, const float *src,
                             int sh, int sw, int sy0, int sx0, int h, int w, bool clamp,
                             cudaStream_t stream)
{
    return window(dst, dh, dw, y0, x0, src, sh, sw, sy0, sx0, c, h, w, clamp ? 2 : 0, stream);
}

enum { TILE = 32, TILE_ROWS = 8 };

// v1: 32x32 tiles through shared memory (one padding column against bank conflicts), 32x8
// threads, each moving 4 values; reads and writes are both coalesced.
__global__ static void transpose_kernel(const float *in, float *out, size_t rows, size_t cols)
{
    __shared__ float tile[TILE][TILE + 1];
    const size_t r0 = (size_t)blockIdx.y * TILE, c0 = (size_t)blockIdx.x * TILE;
    for (int k = threadIdx.y; k < TILE; k += TILE_ROWS) {
        const size_t r = r0 + k, col = c0 + threadIdx.x;
        if (r < rows && col < cols)
            tile[k][threadIdx.x] = in[r * cols + col];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < TILE; k += TILE_ROWS) {
        const size_t col = c0 + k, r = r0 + threadIdx.x;
        if (r < rows && col < cols)
            out[col * rows + r] = tile[threadIdx.x][k];
    }
}

extern "C" int vs_cuda_transpose(const float *in, float *out, size_t rows, size_t cols,
                                 cudaStream_t stream)
{
    if (!rows || !cols)
        return 0;
    const size_t gx = (cols + TILE - 1) / TILE, gy = (rows + TILE - 1) / TILE;
    if (gx > 0x7fffffffu || gy > 65535u)
        return -1;
    VS_LAUNCH(transpose_kernel, dim3((unsigned)gx, (unsigned)gy), dim3(TILE, TILE_ROWS), 0, stream,
              in, out, rows, cols);
    return vs_cuda_launched();
}

// v1: one thread per pixel of the tile adds its weight and every channel's weighted value;
// tiles are accumulated one launch after another, so no two threads touch the same sum.
__global__ static void blend_acc_kernel(float *out, float *wsum, int c, int H, int W, int y0,
                                        int x0, const float *src, int h, int w, const float *wy,
                                        const float *wx)
{
    const size_t n = (size_t)h * w, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int y = (int)(i / w), x = (int)(i % w);
        const float wgt = wy[y] * wx[x];
        const size_t o = (size_t)(y0 + y) * W + x0 + x;
        wsum[o] += wgt;
        for (int ci = 0; ci < c; ci++)
            out[(size_t)ci * H * W + o] += wgt * src[((size_t)ci * h + y) * w + x];
    }
}

extern "C" int vs_cuda_blend_acc(float *out, float *wsum, int c, int H, int W, int y0, int x0,
                                 const float *src, int h, int w, const float *wy, const float *wx,
                                 cudaStream_t stream)
{
    const size_t n = (size_t)h * w;
    if (n == 0)
        return 0;
    VS_LAUNCH(blend_acc_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, out, wsum, c, H, W,
              y0, x0, src, h, w, wy, wx);
    return vs_cuda_launched();
}

// v1: grid-stride division by the pixel's weight sum.
__global__ static void blend_div_kernel(float *out, const float *wsum, size_t n, size_t hw)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] /= wsum[i % hw];
}

extern "C" int vs_cuda_blend_div(float *out, const float *wsum, int c, size_t hw,
                                 cudaStream_t stream)
{
    const size_t n = (size_t)c * hw;
    if (n == 0)
        return 0;
    VS_LAUNCH(blend_div_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, out, wsum, n, hw);
    return vs_cuda_launched();
}
