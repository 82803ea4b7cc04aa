// Single-head attention: the CUDA twin of kernels/cpu/attention.c. The GEMMs are cuBLAS's
// (dlopen'ed, kernels/cuda_libs.h); the softmax is ours.
#include "kernels/cuda/common.cuh"

#include <float.h>

enum { SM_THREADS = 256 };

// Fixed-order block reduction (max or sum) through shared memory; every thread gets the result.
__device__ static float block_reduce(float v, int is_max)
{
    __shared__ float part[SM_THREADS];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int s = SM_THREADS / 2; s > 0; s /= 2) {
        if ((int)threadIdx.x < s)
            part[threadIdx.x] = is_max ? fmaxf(part[threadIdx.x], part[threadIdx.x + s])
                                       : part[threadIdx.x] + part[threadIdx.x + s];
        __syncthreads();
    }
    float r = part[0];
    __syncthreads(); // part is reused by the next call
    return r;
}

// v1: one block per row: max, then exp(x - max) and its sum, then scale by 1/sum.
__global__ static void softmax_rows_kernel(float *s, size_t n)
{
    float *row = s + (size_t)blockIdx.x * n;
    float m = -FLT_MAX;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        m = fmaxf(m, row[i]);
    m = block_reduce(m, 1);
    float sum = 0.0f;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        float e = __expf(row[i] - m);
        row[i] = e;
        sum += e;
    }
    const float inv = 1.0f / block_reduce(sum, 0);
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        row[i] *= inv;
}

extern "C" int vs_cuda_softmax_rows(float *s, size_t rows, size_t n, cudaStream_t stream)
{
    if (!rows || !n)
        return 0;
    if (rows > 0x7fffffffu)
        return -1;
    VS_LAUNCH(softmax_rows_kernel, (unsigned)rows, SM_THREADS, 0, stream, s, n);
    return vs_cuda_launched();
}

// v1: grid-stride over the rows x cols values.
__global__ static void bias_rows_kernel(float *y, const float *b, size_t n, int cols)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] += b[i % cols];
}

extern "C" int vs_cuda_bias_rows(float *y, const float *b, size_t rows, int cols,
                                 cudaStream_t stream)
{
    const size_t n = rows * cols;
    if (n == 0)
        return 0;
    VS_LAUNCH(bias_rows_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, y, b, n, cols);
    return vs_cuda_launched();
}

#ifndef VS_CUDA_EMU
#include "kernels/cuda/backend.h"
#include "kernels/cuda_libs.h"

extern "C" int vs_cuda_linear(const float *x, const float *w, const float *b, float *y, size_t n,
                              int cin, int cout, const struct vs_cuda_ctx *ctx)
{
    const float one = 1.0f, zero = 0.0f;
    if (n > 0x7fffffffu)
        return -1;
    // column-major view: Y^T (cout x n) = W^T' (cout x cin) . X^T (cin x n)
    if (vs_cuda_libs()->blas.cublasSgemm_v2((cublasHandle_t)ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N,
                                           cout, (int)n, cin, &one, w, cin, x, cin, &zero, y,
                                           cout) != CUBLAS_STATUS_SUCCESS)
        return -1;
    return b ? vs_cuda_bias_rows(y, b, n, cout, ctx->stream) : 0;
}

extern "C" int vs_cuda_attention(const float *q, const float *k, const float *v, float *out,
                                 size_t n, int d, float scale, const struct vs_cuda_ctx *ctx)
{
    const struct vs_cublas_api *b = &vs_cuda_libs()->blas;
    cublasHandle_t h = (cublasHandle_t)ctx->cublas;
    size_t chunk = ctx->workspace_bytes / (n * sizeof(float));
    if (!chunk || n > 0x7fffffffu)
        return -1;
    const float zero = 0.0f, one = 1.0f;
    float *scores = (float *)ctx->workspace;
    for (size_t q0 = 0; q0 < n; q0 += chunk) {
        const int rows = (int)(n - q0 < chunk ? n - q0 : chunk);
        // column-major view: S^T (n x rows) = K (n x d) . Q_chunk^T (d x rows), times scale
        if (b->cublasSgemm_v2(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, rows, d, &scale, k, d,
                              q + q0 * d, d, &zero, scores, (int)n) != CUBLAS_STATUS_SUCCESS ||
            vs_cuda_softmax_rows(scores, (size_t)rows, n, ctx->stream) ||
            // O_chunk^T (d x rows) = V^T (d x n) . P^T (n x rows)
            b->cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, d, rows, (int)n, &one, v, d, scores,
                              (int)n, &zero, out + q0 * d, d) != CUBLAS_STATUS_SUCCESS)
            return -1;
    }
    return 0;
}
#endif
