// Nearest x2 upsampling of CHW planes: the CUDA twin of kernels/cpu/upsample.c.
#include "kernels/cuda/common.cuh"

// v1: one thread per output value (grid-stride); reads repeat through the cache.
__global__ static void upsample2x_kernel(const float *in, float *out, int c, int h, int w)
{
    const size_t ow = 2 * (size_t)w, oplane = 4 * (size_t)h * w, n = (size_t)c * oplane;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const size_t ci = i / oplane, o = i % oplane, y = o / ow / 2, x = o % ow / 2;
        out[i] = in[(ci * h + y) * w + x];
    }
}

extern "C" int vs_cuda_upsample2x(const float *in, float *out, int c, int h, int w,
                                  cudaStream_t stream)
{
    const size_t n = (size_t)c * 4 * h * w;
    if (n == 0)
        return 0;
    VS_LAUNCH(upsample2x_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, in, out, c, h, w);
    return vs_cuda_launched();
}
