/* Decoder architectures the CLI and loaders know, with each model's latent scaling
 * (diffusers pipelines decode `latents / scaling_factor + shift_factor`). Wan 2.1 and 2.2 scale
 * with per-channel mean/std instead; their decoder applies them (kernels/wan.h). */
#ifndef VS_KERNELS_ARCH_H
#define VS_KERNELS_ARCH_H

enum vs_arch { VS_ARCH_AUTO, VS_ARCH_SD, VS_ARCH_SDXL, VS_ARCH_SD3, VS_ARCH_FLUX, VS_ARCH_WAN21,
               VS_ARCH_WAN22 };

struct vs_arch_info {
    enum vs_arch arch;
    const char *name;
    int latent_channels;
    float scaling_factor, shift_factor;
};

/* NULL for an unknown name ("auto" is known). */
const struct vs_arch_info *vs_arch_by_name(const char *name);
const struct vs_arch_info *vs_arch_info(enum vs_arch arch);

#endif
