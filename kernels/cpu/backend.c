/* The CPU backend: the C reference layers behind the backend table (kernels/backend.h). */
#include "kernels/backend.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/cast.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/region.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/upsample.h"

static void *host_alloc(void *ctx, size_t bytes)
{
    (void)ctx;
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

static void host_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static int host_copy_rc(void *dst, const void *src, size_t bytes)
{
    memcpy(dst, src, bytes);
    return 0;
}

static void host_copy(void *dst, const void *src, size_t bytes)
{
    memcpy(dst, src, bytes);
}

static void host_zero(void *dst, size_t bytes)
{
    memset(dst, 0, bytes);
}

const struct vs_backend vs_cpu_backend = {
    .name = "cpu",
    .host_memory = true,
    .allocator = {host_alloc, host_free, NULL},
    .park_allocator = {host_alloc, host_free, NULL},
    .to_host = host_copy_rc,
    .from_host = host_copy_rc,
    .copy = host_copy,
    .zero = host_zero,
    .cast = vs_cast,
    .conv2d = vs_conv2d,
    .conv3d_frame = vs_conv3d_frame,
    .gn_cell_stats = vs_gn_cell_stats,
    .gn_region_stats = vs_gn_region_stats,
    .gn_apply = vs_gn_apply,
    .rmsnorm = vs_rmsnorm,
    .upsample2x = vs_upsample_nearest2x,
    .to_space = vs_to_space,
    .linear = vs_linear,
    .attention = vs_attention,
    .crop = vs_crop,
    .add_crop = vs_add_crop,
    .transpose = vs_transpose,
    .paste = vs_paste,
    .blend_acc = vs_blend_acc,
    .blend_div = vs_blend_div,
};
