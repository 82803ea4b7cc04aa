/* Scaling figures: ANCHORS.md §3.1 (diffusers defaults and conversion scripts). */
#include "kernels/arch.h"

#include <string.h>

static const struct vs_arch_info table[] = {
    {VS_ARCH_AUTO, "auto", 0, 1.0f, 0.0f},
    {VS_ARCH_SD, "sd", 4, 0.18215f, 0.0f},
    {VS_ARCH_SDXL, "sdxl", 4, 0.13025f, 0.0f},
    {VS_ARCH_SD3, "sd3", 16, 1.5305f, 0.0609f},
    {VS_ARCH_FLUX, "flux", 16, 0.3611f, 0.1159f},
    {VS_ARCH_WAN21, "wan21", 16, 1.0f, 0.0f},
    {VS_ARCH_WAN22, "wan22", 48, 1.0f, 0.0f},
};

const struct vs_arch_info *vs_arch_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i].name, name))
            return &table[i];
    return NULL;
}

const struct vs_arch_info *vs_arch_info(enum vs_arch arch)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].arch == arch)
            return &table[i];
    return NULL;
}
