/* Weight lookup over one safetensors file for a decoder loader.
 *
 * - The key prefix (none, `first_stage_model.`, `vae.`) is detected once from a marker tensor.
 * - vs_weights_get returns a float32 copy of a tensor after checking its shape; a missing or
 *   mis-shaped tensor is an error naming the tensor and both shapes.
 * - Every tensor handed out is marked used, so vs_weights_unused can report the tensors under a
 *   scope (e.g. "decoder.") that the loader never asked for ("extra" tensors).
 * Names passed in are without the prefix; messages show the full key as stored in the file.
 */
#ifndef VS_KERNELS_WEIGHTS_H
#define VS_KERNELS_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/error.h"
#include "kernels/safetensors.h"

struct vs_weights {
    struct vs_st_file file;
    const char *prefix;
    unsigned char *used; /* one flag per file.tensors[] */
};

int vs_weights_open(struct vs_weights *w, const char *path, struct vs_err *err);
/* Takes over an opened file (a safetensors file or tensors in memory, st_memory.h). */
int vs_weights_adopt(struct vs_weights *w, struct vs_st_file *file, struct vs_err *err);
void vs_weights_close(struct vs_weights *w);
/* Picks the first prefix under which one of the markers exists (markers without prefix).
 * Fails naming the markers it looked for. */
int vs_weights_detect_prefix(struct vs_weights *w, const char *const *markers, size_t nmarkers,
                             struct vs_err *err);
/* Tensor `name` (without prefix) or NULL; does not mark it used. */
const struct vs_st_tensor *vs_weights_peek(const struct vs_weights *w, const char *name);
/* Float copy (malloc'ed, caller frees) of tensor `name` whose shape must equal shape[0..ndim);
 * a shape entry of -1 accepts any extent. Trailing extents of 1 in the file beyond ndim are
 * accepted (1x1 conv kernels stored as linear weights and the reverse are the caller's job). */
float *vs_weights_get(struct vs_weights *w, const char *name, int ndim, const int64_t *shape,
                      struct vs_err *err);
/* Writes up to max names of unused tensors whose key (prefix stripped) starts with scope;
 * returns the total count of such tensors. */
size_t vs_weights_unused(const struct vs_weights *w, const char *scope, const char **names,
                         size_t max);

#endif
