/* The engine of the demo generators (the programs in tools/demo/): each program describes one
 * seed's pipeline (its models, the sizes, the order of its phases) and this library does the driver
 * work the way the real pipeline's framework would.
 *
 * What a program does, and why it looks like the real thing to vramshim:
 * - Its phases are named functions (t5_load, dit_denoise, vae_decode, ...) marked
 *   VS_DEMO_PHASE (never inlined, linked -rdynamic, compiled without tail calls), so every
 *   allocation's call stack contains the phase's symbol, which the example policies match.
 * - Memory comes from cuMemAlloc_v2 (PyTorch's caching allocator) or cuMemAllocAsync on a
 *   stream (PyTorch with backend:cudaMallocAsync, as ComfyUI runs it), one block per weight
 *   tensor or activation, at the seed's sizes times --scale.
 * - Weights get real, sparse, deterministic data (stripes.h) and a checksum each, verified
 *   after the last phase: a weight moved out of VRAM and back must come back bit for bit.
 * - "Compute" is copies and memsets on the program's stream that read every weight of the
 *   model in use and write the activations.
 *
 * Result: the last line on stdout is one JSON object:
 *   {"scenario","completed","failed_stage","failed_function","error","call","block",
 *    "request_bytes","checksums_ok","corrupt_weights":[...],"weights","weight_bytes",
 *    "peak_device_bytes","device_total_bytes","scale","steps","api"}
 * (failed_* , error, call, block and request_bytes describe the failed driver call and are null
 * for a completed run; checksums_ok is null for a run that did not complete). The exit status
 * says how the run ended: 0 completed with every checksum intact, 1 completed with a corrupted
 * weight, 2 bad usage or no driver, 3 out of memory, 4 another CUDA error.
 */
#ifndef VS_DEMO_DEMO_H
#define VS_DEMO_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include <cuda.h>

/* A phase function: its symbol must appear in the call stack of what it allocates. */
#define VS_DEMO_PHASE __attribute__((noinline))

#define VS_DEMO_MiB(x) ((uint64_t)(x) << 20)

enum vs_demo_api {
    VS_DEMO_API_SYNC,  /* cuMemAlloc_v2 / cuMemFree_v2 */
    VS_DEMO_API_ASYNC, /* cuMemAllocAsync / cuMemFreeAsync on the program's stream */
};

struct vs_demo;

/* `count` tensors named NAME.0 .. NAME.<count-1> of `bytes` each (count 0 or 1: one, named
 * NAME). Sizes are at scale 1, i.e. the seed's. */
struct vs_demo_tensor_spec {
    const char *name;
    uint64_t bytes;
    unsigned count;
};

struct vs_demo_model_spec {
    const char *name;
    const struct vs_demo_tensor_spec *tensors;
    size_t n_tensors;
};

struct vs_demo_scenario {
    const char *name;             /* e.g. "wan21-t2v-1.3b" */
    const char *title;            /* one line for people */
    const char *policy;           /* file name in policy/examples/ */
    const char *expected_failure; /* the stage where pass-through runs out of memory */
    uint64_t gpu_bytes;           /* the reported run's GPU */
    uint64_t taken_bytes;         /* held by another process on that GPU */
    /* That other process as a program the demo runs beside this one on one shared simulated
     * GPU (NULL: the driver models its memory as taken): its name in the demo programs, its
     * policy under vramshim (in policy/examples/) and its arguments (spaces separate them). */
    const char *companion, *companion_policy, *companion_args;
    enum vs_demo_api api;
    unsigned steps;               /* denoising steps by default */
    void (*run)(struct vs_demo *d);
    const struct vs_demo_model_spec *const *models; /* every model run loads, NULL-terminated */
};

struct vs_demo_model;

/* An activation or workspace block. */
struct vs_demo_buf {
    CUdeviceptr ptr;
    uint64_t bytes;
};

/* Parses the options (--help lists them), runs s->run, verifies every weight and prints the
 * result line. Returns the exit status. */
int vs_demo_main(const struct vs_demo_scenario *s, int argc, char **argv);

/* Enters a stage (a name the orchestrator reports, e.g. "decode"); `function` is the phase
 * function, for people. Logged on stderr. */
void vs_demo_stage(struct vs_demo *d, const char *stage, const char *function);

/* Allocates and fills every tensor of a model; it stays resident and is verified at the end. */
struct vs_demo_model *vs_demo_model_load(struct vs_demo *d, const struct vs_demo_model_spec *spec);

/* One "forward" of a model: copies a stripe of each of its weights into out (which weight stripe
 * depends on step, so every step reads other memory). */
void vs_demo_model_apply(struct vs_demo *d, const struct vs_demo_model *m, struct vs_demo_buf *out,
                         unsigned step);

/* Allocates an activation of `bytes` (at scale 1), zeroes it and writes a stripe per 2 MiB. */
struct vs_demo_buf vs_demo_buffer(struct vs_demo *d, const char *name, uint64_t bytes);

/* Copies stripes of src into dst, as a layer reading one activation and writing another. */
void vs_demo_combine(struct vs_demo *d, struct vs_demo_buf *dst, const struct vs_demo_buf *src,
                     unsigned step);

void vs_demo_buffer_free(struct vs_demo *d, struct vs_demo_buf *b);

/* Waits for the program's stream (the end of a phase, as torch.cuda.synchronize()). */
void vs_demo_sync(struct vs_demo *d);

/* Denoising steps to run (--steps, else the scenario's default). */
unsigned vs_demo_steps(const struct vs_demo *d);

#endif
