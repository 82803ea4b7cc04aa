/* A tensor table over caller-owned memory, read by the decoder loaders as if it were a
 * safetensors file (kernels/weights.h): names, shapes and dtypes are checked the same way and
 * messages name `label` where they would name the file. The data stays the caller's: nothing is
 * copied until a loader converts a tensor. */
#ifndef VS_KERNELS_ST_MEMORY_H
#define VS_KERNELS_ST_MEMORY_H

#include "kernels/safetensors.h"

struct vs_st_mem_tensor {
    const char *name;
    const void *data;          /* host memory */
    enum vs_dtype dtype;       /* F32, F16 or BF16 */
    int ndim;                  /* 0..VS_ST_MAX_DIMS */
    const int64_t *shape;
};

/* config_json may be NULL; otherwise it is the diffusers config (as the file metadata's
 * "config"). Fails naming the tensor for a bad name, dtype, shape or a duplicate name. */
int vs_st_from_memory(struct vs_st_file *f, const char *label, const struct vs_st_mem_tensor *ts,
                      size_t n, const char *config_json, struct vs_err *err);

#endif
