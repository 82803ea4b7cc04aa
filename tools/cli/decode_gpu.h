/* `vramshim decode --device cuda|auto`: the GPU decode goes through libvramshim_vae.so, which
 * carries the CUDA backend and its runtime. The CLI loads it with dlopen only when a GPU is
 * asked for, so the CLI itself links nothing of CUDA and runs where the library is absent. */
#ifndef VS_TOOLS_CLI_DECODE_GPU_H
#define VS_TOOLS_CLI_DECODE_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/error.h"
#include "vramshim_vae.h"

/* 0 when GPU decodes can run; else -1 with why: the library cannot be loaded (where it looked),
 * or its vramshim_vae_gpu_status reason (no driver, no GPU, no cuDNN...). */
int vs_cli_gpu_usable(char *why, size_t len);

/* Decodes a (host latents and out) on the GPU with the weights in vae_path; plan receives the
 * plan and the measured device peak, seconds the decode's time (the first decode of a handle
 * includes copying the weights to the device). */
int vs_cli_gpu_decode(const char *vae_path, vramshim_vae_arch arch,
                      const vramshim_vae_decode_args *a, vramshim_vae_plan *plan, double *seconds,
                      struct vs_err *err);

#endif
