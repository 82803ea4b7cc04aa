/* Registry of the workload generators and the common frame around each trace. */
#include "tools/workloads/workloads.h"

#include <string.h>

/* The device size written in the headers: simcuda's default capacity. */
#define VS_WORKLOAD_DEVICE_TOTAL (24ull << 30)

const struct vs_workload vs_workloads[] = {
    {"sdxl-vae-decode", "SDXL VAE decode, 1024x1024, fp16 (small: 256x256)", 2,
     vs_workload_sdxl_vae_decode},
    {"wan21-vae-decode", "Wan 2.1 VAE causal decode, 832x480x81, fp32 (small: 64x64x9)", 4,
     vs_workload_wan21_vae_decode},
    {"wan22-vae-decode",
     "Wan 2.2 VAE causal decode (TI2V-5B, Ovi), 1280x704x121, fp32 (small: "
     "64x64x9)",
     4, vs_workload_wan22_vae_decode},
    {"dit-denoise",
     "text encoder, then a 20-step DiT loop at 1024x1024, bf16 (small: 2 layers, 512x512)", 2,
     vs_workload_dit_denoise},
    {NULL, NULL, 0, NULL},
};

const struct vs_workload *vs_workload_find(const char *name)
{
    for (const struct vs_workload *w = vs_workloads; w->name; w++)
        if (!strcmp(w->name, name))
            return w;
    return NULL;
}

int vs_workload_write(const struct vs_workload *w, bool small, FILE *out, uint64_t *peak_live,
                      size_t *allocs)
{
    char title[128];
    snprintf(title, sizeof title, "%s%s", w->name, small ? "-small" : "");
    struct vs_emit e;
    vs_emit_begin(&e, out, title, VS_WORKLOAD_DEVICE_TOTAL, w->elt_bytes);
    w->generate(&e, small);
    if (peak_live)
        *peak_live = e.peak_live_bytes;
    if (allocs)
        *allocs = e.n_tensors;
    return vs_emit_end(&e);
}
