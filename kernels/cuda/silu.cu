// SiLU (x * sigmoid(x)), fp32, elementwise: the CUDA twin of kernels/cpu/silu.c.
#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"

__global__ static void silu_f32_kernel(float *x, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (; i < n; i += stride) {
        float v = x[i];
        x[i] = v / (1.0f + __expf(-v));
    }
}

extern "C" int vs_cuda_silu_f32(float *x, size_t n, cudaStream_t stream)
{
    if (n == 0)
        return 0;
    const unsigned threads = 256;
    size_t blocks = (n + threads - 1) / threads;
    if (blocks > 65535u * 8u)
        blocks = 65535u * 8u;
    silu_f32_kernel<<<(unsigned)blocks, threads, 0, stream>>>(x, n);
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}
