/* State shared by the demo engine's files (run.c, weights.c, buffers.c); programs see only
 * demo.h.
 *
 * Invariants: every device block the run holds was made by vs_demo_alloc and is freed by
 * vs_demo_free; d->peak is the most device memory in use seen after any allocation, less what
 * was in use when the run started (other processes, the context); any failed driver call ends
 * the process through vs_demo_check with the result line printed.
 */
#ifndef VS_DEMO_INTERNAL_H
#define VS_DEMO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/demo/lib/cu.h"
#include "tools/demo/lib/demo.h"

/* Weight names: MODEL.TENSOR or MODEL.TENSOR.K for a repeated tensor. */
enum { VS_DEMO_NAME_MAX = 80 };
void vs_demo_weight_name(const struct vs_demo_model_spec *spec,
                         const struct vs_demo_tensor_spec *ts, unsigned k, char *buf, size_t len);
/* Calls fn with every weight name of the scenario until it returns true; returns that. */
bool vs_demo_weight_each(const struct vs_demo_scenario *s,
                         bool (*fn)(const char *name, void *ctx), void *ctx);

struct vs_demo_tensor {
    char name[VS_DEMO_NAME_MAX];
    CUdeviceptr ptr;
    uint64_t bytes;
    uint64_t seed;
    uint64_t checksum; /* of the stripes written at load */
};

struct vs_demo_model {
    const char *name;
    struct vs_demo_tensor *tensors;
    size_t n_tensors;
};

enum { VS_DEMO_MAX_MODELS = 8 };

struct vs_demo {
    const struct vs_demo_scenario *s;
    struct vs_demo_cu cu;
    CUstream stream;
    double scale;
    unsigned steps;
    const char *corrupt;  /* --corrupt: the weight to damage after its load (one of the
                           * scenario's, checked before the run) */
    const char *stage, *function;
    size_t total, used_at_start;
    uint64_t peak;
    struct vs_demo_model *models[VS_DEMO_MAX_MODELS];
    size_t n_models;
    size_t n_tensors;
    uint64_t weight_bytes;
    unsigned char *staging; /* host buffer for copies, grown on demand */
    size_t staging_len;
};

/* Activations are touched at VS_DEMO_TOUCH stripes per operation, spread over the block: the
 * simulated driver runs each copy on a stream thread, and a stripe per 2 MiB of every
 * activation would make the demo take minutes without exercising anything more. */
enum { VS_DEMO_TOUCH = 32 };

/* The k-th of VS_DEMO_TOUCH stripes touched out of n (k may exceed VS_DEMO_TOUCH: it wraps). */
static inline size_t vs_demo_touched(size_t k, size_t n)
{
    return n <= VS_DEMO_TOUCH ? k % n : (k % VS_DEMO_TOUCH) * (n / VS_DEMO_TOUCH);
}

/* bytes at the run's scale, rounded down to 512 bytes (at least 512). */
uint64_t vs_demo_scaled(const struct vs_demo *d, uint64_t bytes);

/* Allocates with the scenario's API; on failure ends the run ("what" names the block). */
CUdeviceptr vs_demo_alloc(struct vs_demo *d, const char *what, uint64_t bytes);
void vs_demo_free(struct vs_demo *d, CUdeviceptr p);

/* Ends the run with the result line when r is not CUDA_SUCCESS. */
void vs_demo_check(struct vs_demo *d, CUresult r, const char *call, const char *what,
                   uint64_t bytes);

/* A host buffer of at least len bytes, valid until the next call. */
unsigned char *vs_demo_staging(struct vs_demo *d, size_t len);

/* Reads back every weight and compares its checksum; returns how many differ and writes up to
 * max of their names into bad[]. */
size_t vs_demo_models_verify(struct vs_demo *d, const char **bad, size_t max);

/* Writes s as a JSON string literal. */
void vs_demo_json_str(FILE *out, const char *s);

#endif
