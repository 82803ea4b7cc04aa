/* vramshim_vae: the tiled VAE decoder of vramshim as a library (build/libvramshim_vae.so).
 *
 * Decodes diffusion latents with the AutoencoderKL decoder (SD 1.x/2.x, SDXL, SD3, Flux.1) or
 * the Wan 2.1 video decoder, exact under a working-memory budget (docs/decoder.md).
 *
 *   vramshim_vae *vae;
 *   char msg[512];
 *   if (vramshim_vae_open_file("vae.safetensors", VRAMSHIM_VAE_ARCH_AUTO, &vae, msg, sizeof msg))
 *       fprintf(stderr, "%s\n", msg);
 *   vramshim_vae_decode_args a = {.latents = lat, .out = img, .ndim = 4,
 *                                 .shape = {1, 4, 128, 128}, .budget = 512 << 20};
 *   if (vramshim_vae_decode(vae, &a, NULL, msg, sizeof msg)) ...
 *   vramshim_vae_close(vae);
 *
 * Memory: latents, output and weights are host or device pointers. By default (device AUTO) a
 * decode whose latents or output are device memory runs on the CUDA backend, on the caller's
 * stream; host pointers run on the CPU backend (fp32 compute, threads: all CPUs). Without a
 * usable GPU, device work is refused with VRAMSHIM_VAE_ERR_NO_GPU and a message naming what is
 * missing (vramshim_vae_gpu_status), while host work keeps running on the CPU. The library
 * carries the CUDA runtime inside (static, its symbols hidden; it loads the driver
 * libcuda.so.1 only when a GPU is first asked about) and finds cuDNN 9 and cuBLAS with dlopen
 * (docs/decoder.md, "Dependencies"): it loads and decodes on the CPU on machines with no GPU
 * and no driver.
 *
 * Errors: every function returns VRAMSHIM_VAE_OK (0) or a negative code and, when msg is not
 * NULL, writes one complete line (no newline) naming the file, tensor, field or size at fault,
 * truncated to msg_len. A failed call leaves the caller's buffers untouched except `out`, and
 * leaks nothing. Handles are not thread-safe; distinct handles are independent.
 */
#ifndef VRAMSHIM_VAE_H
#define VRAMSHIM_VAE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vramshim_vae vramshim_vae;

typedef enum {
    VRAMSHIM_VAE_OK = 0,
    VRAMSHIM_VAE_ERR_ARG = -1,     /* a bad argument: NULL handle, shape, mode, dtype */
    VRAMSHIM_VAE_ERR_WEIGHTS = -2, /* file unreadable; missing, unknown or mis-shaped tensor */
    VRAMSHIM_VAE_ERR_BUDGET = -3,  /* no plan fits the budget (the message gives the smallest) */
    VRAMSHIM_VAE_ERR_OOM = -4,     /* working memory ran out (allocator returned NULL) */
    VRAMSHIM_VAE_ERR_NO_GPU = -5,  /* device memory given but no usable CUDA backend */
    VRAMSHIM_VAE_ERR_CUDA = -6,    /* a CUDA, cuDNN or cuBLAS call failed mid-decode (named) */
} vramshim_vae_status;

typedef enum {
    VRAMSHIM_VAE_DEVICE_AUTO = 0, /* the GPU when latents or out are device memory, else the CPU */
    VRAMSHIM_VAE_DEVICE_CPU,      /* the CPU backend: device pointers are an argument error */
    VRAMSHIM_VAE_DEVICE_CUDA,     /* the GPU; host latents and out are copied through */
} vramshim_vae_device;

typedef enum {
    VRAMSHIM_VAE_F32 = 0,
    VRAMSHIM_VAE_F16 = 1,
    VRAMSHIM_VAE_BF16 = 2,
} vramshim_vae_dtype;

typedef enum {
    VRAMSHIM_VAE_ARCH_AUTO = 0, /* from the tensors: AutoencoderKL (2-D), Wan 2.1 or 2.2 (3-D) */
    VRAMSHIM_VAE_ARCH_SD,
    VRAMSHIM_VAE_ARCH_SDXL,
    VRAMSHIM_VAE_ARCH_SD3,
    VRAMSHIM_VAE_ARCH_FLUX,
    VRAMSHIM_VAE_ARCH_WAN21,
    VRAMSHIM_VAE_ARCH_WAN22, /* the Wan 2.2 VAE (TI2V-5B, Ovi): 48 channels, 16x */
} vramshim_vae_arch;

typedef enum {
    VRAMSHIM_VAE_EXACT = 0,  /* tiled, equal to the monolithic decode */
    VRAMSHIM_VAE_BLEND,      /* tiled, cross-faded (AutoencoderKL only) */
    VRAMSHIM_VAE_MONOLITHIC, /* one piece */
} vramshim_vae_mode;

/* A caller-owned tensor, read at open (host or device memory): this build keeps fp32 copies
 * (on the host; on the device too after the first GPU decode), so the caller's tensors are not
 * used in place yet (docs/decoder.md, "Not in this build"). Names as in the safetensors file or the
 * PyTorch module's state_dict (diffusers or original names, optional `vae.`/`first_stage_model.`
 * prefix). */
typedef struct {
    const char *name;
    const void *data;
    vramshim_vae_dtype dtype;
    int ndim;
    int64_t shape[8];
} vramshim_vae_tensor;

/* Working memory. alloc returns NULL when out of memory; stream is the decode's stream (NULL for
 * the CPU backend); on the GPU, blocks are device memory used in stream order on that stream.
 * Default: the backend's (aligned host memory; cudaMallocAsync on the stream). */
typedef struct {
    void *(*alloc)(void *ctx, size_t bytes, void *stream);
    void (*free)(void *ctx, void *p, void *stream);
    void *ctx;
} vramshim_vae_allocator;

/* A decode: latents NCHW (ndim 4) or NCTHW (ndim 5, Wan), output NCHW or NCTHW with 3 channels,
 * 8x the spatial size (Wan: 1 + 4 (T - 1) frames). */
typedef struct {
    const void *latents;
    vramshim_vae_dtype latents_dtype;
    void *out;
    vramshim_vae_dtype out_dtype;
    int ndim;
    int64_t shape[5];
    vramshim_vae_mode mode;
    int tile_px;         /* owned tile edge in output pixels; 0: chosen from the budget */
    size_t budget;       /* working-memory bytes; 0: none */
    int scaled;          /* 1: diffusion-model latents (unscaled here first); 0: vae.decode's */
    void *stream;        /* cudaStream_t for device pointers; NULL: the legacy stream */
    const vramshim_vae_allocator *allocator; /* NULL: default */
    vramshim_vae_device device; /* which backend (default AUTO: from the pointers) */
} vramshim_vae_decode_args;

typedef struct {
    vramshim_vae_mode mode;
    int tiles_y, tiles_x;
    int tile_h, tile_w;       /* owned tile size in output pixels (the last ones may be smaller) */
    int halo_px;              /* halo on interior edges, output pixels */
    size_t predicted_peak;    /* working-memory bytes */
    size_t predicted_parked;  /* parked tile state and the fp32 output (host memory on a GPU) */
    size_t measured_peak;     /* after a decode: working-memory bytes measured; else 0 */
    char description[320];    /* one line, as `vramshim decode --plan` prints */
} vramshim_vae_plan;

/* arch AUTO takes Wan 2.1 when conv_in is 3-D. */
int vramshim_vae_open_file(const char *path, vramshim_vae_arch arch, vramshim_vae **vae,
                           char *msg, size_t msg_len);
/* config_json: a diffusers config (norm_num_groups, scaling_factor, shift_factor) or NULL.
 * Unknown decoder tensors, missing ones and wrong shapes are errors naming the tensor. */
int vramshim_vae_open_tensors(const vramshim_vae_tensor *tensors, size_t n,
                              const char *config_json, vramshim_vae_arch arch, vramshim_vae **vae,
                              char *msg, size_t msg_len);
void vramshim_vae_close(vramshim_vae *vae);

/* Plans a decode of args' shape, mode, tile_px and budget (pointers are not read). */
int vramshim_vae_plan_decode(vramshim_vae *vae, const vramshim_vae_decode_args *args,
                             vramshim_vae_plan *plan, char *msg, size_t msg_len);
/* Decodes; plan (may be NULL) receives the plan with measured_peak. */
int vramshim_vae_decode(vramshim_vae *vae, const vramshim_vae_decode_args *args,
                        vramshim_vae_plan *plan, char *msg, size_t msg_len);

/* Whether device pointers can be decoded: VRAMSHIM_VAE_OK with the GPUs and where cuDNN and
 * cuBLAS came from in msg, or VRAMSHIM_VAE_ERR_NO_GPU with the reason (no driver, no device,
 * which library was not found and where it looked). */
int vramshim_vae_gpu_status(char *msg, size_t msg_len);

#ifdef __cplusplus
}
#endif

#endif
