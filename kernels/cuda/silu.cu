// SiLU (x * sigmoid(x)), fp32, elementwise: the CUDA twin of kernels/cpu/silu.c.
#include "kernels/cuda/common.cuh"

// v1: grid-stride loop, one float per thread per step.
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
    VS_LAUNCH(silu_f32_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, x, n);
    return vs_cuda_launched();
}
