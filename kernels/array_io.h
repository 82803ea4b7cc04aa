/* Float32 arrays in and out of files: latents from .safetensors (tensor `latents`, else the
 * first tensor) or .npy (little-endian f4/f2, C order), raw results to .npy (float32). */
#ifndef VS_KERNELS_ARRAY_IO_H
#define VS_KERNELS_ARRAY_IO_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/error.h"

#define VS_ARRAY_MAX_DIMS 8

struct vs_array {
    float *data; /* malloc'ed */
    int ndim;
    int64_t shape[VS_ARRAY_MAX_DIMS];
    size_t numel;
};

/* By extension: .safetensors or .npy. Errors name the file (and tensor). */
int vs_array_load(const char *path, struct vs_array *a, struct vs_err *err);
void vs_array_free(struct vs_array *a);
int vs_npy_write(const char *path, const float *data, int ndim, const int64_t *shape,
                 struct vs_err *err);

#endif
