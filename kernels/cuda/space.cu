// Channels to space (DupUp3D shortcut, unpatchify): the CUDA twin of kernels/cpu/space.c.
#include "kernels/cuda/common.cuh"

#include "kernels/cpu/space.h"

// v1: one thread per output value (grid-stride); the gather reads through the cache.
__global__ static void to_space_kernel(float *dst, struct vs_window d, const float *src,
                                       struct vs_window s, struct vs_to_space g)
{
    const size_t plane = (size_t)d.h * d.w, n = (size_t)g.c * plane;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int c = (int)(i / plane), Y = d.y0 + (int)(i % plane / d.w),
                  X = d.x0 + (int)(i % d.w);
        const int sc = (c * g.group + g.phase + Y % g.f * g.ystride + X % g.f * g.xstride) /
                       g.repeats;
        const float v = src[((size_t)sc * s.h + (size_t)(Y / g.f - s.y0)) * s.w +
                            (size_t)(X / g.f - s.x0)];
        dst[i] = g.add ? dst[i] + v : v;
    }
}

extern "C" int vs_cuda_to_space(float *dst, const struct vs_window *dwin, const float *src,
                                const struct vs_window *swin, const struct vs_to_space *g,
                                cudaStream_t stream)
{
    const size_t n = (size_t)g->c * vs_window_area(dwin);
    if (n == 0)
        return 0;
    VS_LAUNCH(to_space_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, dst, *dwin, src,
              *swin, *g);
    return vs_cuda_launched();
}
