// Shared by the decoder's CUDA kernels: the same source builds with nvcc for the GPU and with
// g++ against the CPU emulation (VS_CUDA_EMU, kernels/cuda/emu/cuda_emu.h) for `make test`.
// Every launch goes through VS_LAUNCH so both builds launch with the same text.
#ifndef VS_KERNELS_CUDA_COMMON_CUH
#define VS_KERNELS_CUDA_COMMON_CUH

#ifdef VS_CUDA_EMU
#include "kernels/cuda/emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#define VS_LAUNCH(kernel, grid, block, smem, stream, ...)                                        \
    kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#endif

#include <stddef.h>

#include "kernels/cuda/launch.h"

// Threads per block of the elementwise kernels, and the grid that covers n items with a
// grid-stride loop (capped: each thread then handles several items).
enum { VS_CUDA_THREADS = 256 };

static inline unsigned vs_cuda_blocks(size_t n)
{
    size_t b = (n + VS_CUDA_THREADS - 1) / VS_CUDA_THREADS;
    const size_t cap = 65535u * 8u;
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

static inline int vs_cuda_launched(void)
{
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

#endif
