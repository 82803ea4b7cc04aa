/* Read-only safetensors reader: the JSON header is parsed with jansson, the data area is mmap'ed
 * and tensors are converted to float32 on demand (F32, F16 and BF16; other dtypes are listed but
 * reading them is an error). Every check happens at open: header length and JSON, each tensor's
 * dtype/shape/offsets against the file size. Messages name the file and the tensor. */
#ifndef VS_KERNELS_SAFETENSORS_H
#define VS_KERNELS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/error.h"

#define VS_ST_MAX_DIMS 8

enum vs_dtype { VS_DT_F32, VS_DT_F16, VS_DT_BF16, VS_DT_OTHER };

struct vs_st_tensor {
    char *name;
    enum vs_dtype dtype;
    char dtype_name[16];
    int ndim;
    int64_t shape[VS_ST_MAX_DIMS];
    size_t numel;
    size_t offset; /* into the data area */
    const unsigned char *ptr; /* a tensor held in memory (kernels/st_memory.h): its data */
    size_t nbytes;
};

struct vs_st_file {
    char *path;
    unsigned char *map;
    size_t map_len;
    const unsigned char *data; /* start of the data area */
    size_t data_len;
    struct vs_st_tensor *tensors; /* in file order (by offset) */
    size_t count;
    char **meta_keys, **meta_vals; /* __metadata__ string pairs */
    size_t meta_count;
};

int vs_st_open(struct vs_st_file *f, const char *path, struct vs_err *err);
void vs_st_close(struct vs_st_file *f);
const struct vs_st_tensor *vs_st_find(const struct vs_st_file *f, const char *name);
/* Metadata value for key, or NULL. */
const char *vs_st_meta(const struct vs_st_file *f, const char *key);
/* Converts tensor t to float32 into dst (t->numel floats). Fails for dtypes other than
 * F32/F16/BF16 with a message naming file, tensor and dtype. */
int vs_st_read_f32(const struct vs_st_file *f, const struct vs_st_tensor *t, float *dst,
                   struct vs_err *err);
/* IEEE binary16 bits to float. */
float vs_f16_to_f32(uint16_t h);
/* "[a, b, c]" into buf. */
const char *vs_shape_str(const int64_t *shape, int ndim, char *buf, size_t len);

#endif
