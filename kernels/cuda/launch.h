/* Host-side entry points of the CUDA decoder kernels (C linkage). Each mirrors a C reference
 * layer in kernels/cpu/ and returns 0 on success, -1 when the launch failed. */
#ifndef VS_KERNELS_CUDA_LAUNCH_H
#define VS_KERNELS_CUDA_LAUNCH_H

#include <stddef.h>
#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

int vs_cuda_silu_f32(float *x, size_t n, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
