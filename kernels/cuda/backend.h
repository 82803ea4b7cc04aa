/* The CUDA backend of the decoder (kernels/backend.h) and device copies of a loaded decoder.
 *
 * Built by nvcc into libvs_kernels_cuda.a, which uses the CUDA runtime directly:
 * libvramshim_vae.so links it with NVIDIA's static runtime, the GPU check with the shared one;
 * cuDNN and cuBLAS come through kernels/cuda_libs.h.
 *
 * Use: vs_cuda_ctx_init, then vs_cuda_backend_begin(&ctx), vs_mem_init_on(&mem, 0,
 * &vs_cuda_backend, NULL), run the executor with device copies of the weights and device
 * latents, then vs_cuda_backend_end, which synchronises and reports the first failure.
 * Layers of the table cannot return errors: a failed launch or library call is recorded (the
 * first one wins, later layers still run on whatever is in the buffers) and reported by end.
 * The state is per thread: one decode per thread at a time.
 * Parked buffers are pinned host memory, which the kernels read and write directly (the
 * executor pastes tiles into the parked output image).
 */
#ifndef VS_KERNELS_CUDA_BACKEND_H
#define VS_KERNELS_CUDA_BACKEND_H

#include <stddef.h>

#include "kernels/backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/kl_decoder.h"
#include "kernels/wan_model.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const struct vs_backend vs_cuda_backend;

int vs_cuda_backend_begin(const struct vs_cuda_ctx *ctx, char *why, size_t why_len);
/* 0, or -1 with the first failure in msg. */
int vs_cuda_backend_end(char *msg, size_t msg_len);

/* dev = host with every weight copied to device memory (fp32); free with the matching call. */
int vs_cuda_kl_to_device(struct vs_kl_decoder *dev, const struct vs_kl_decoder *host);
void vs_cuda_kl_free_device(struct vs_kl_decoder *dev);
/* Wan: conv.packed holds the per-tap layout [kt][out][in][k][k] vs_cuda_conv3d_frame reads. */
int vs_cuda_wan_to_device(struct vs_wan_model **dev, const struct vs_wan_model *host);
void vs_cuda_wan_free_device(struct vs_wan_model *dev);

/* runtime.cu: bytes from src to dst (host or device, either way) on stream, then synchronise
 * the stream; 0 or -1. Synchronise a stream; 0 or -1. And the runtime's last error, as text
 * (clears it). */
int vs_cuda_copy_sync(void *dst, const void *src, size_t bytes, cudaStream_t stream);
int vs_cuda_stream_sync(cudaStream_t stream);
const char *vs_cuda_last_error(void);

/* token-major linear (kernels/cpu/linear.h) through cuBLAS, and its bias add (our kernel) */
int vs_cuda_linear(const float *x, const float *w, const float *b, float *y, size_t n, int cin,
                   int cout, const struct vs_cuda_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
