/* The backend table's shared pieces: dtype casts and vs_mem on a backend whose memory is not
 * host memory (parking copies the buffer to the host and back). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cpu/cast.h"
#include "kernels/kl_program.h"
#include "kernels/mem.h"
#include "kernels/plan.h"

Test(cast, every_half_round_trips_through_f32)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = vs_f16_to_f32((uint16_t)h);
        if (isnan(f))
            cr_assert(isnan(vs_f16_to_f32(vs_f32_to_f16(f))), "NaN %04x", h);
        else
            cr_assert_eq(vs_f32_to_f16(f), h, "half %04x -> %g -> %04x", h, f, vs_f32_to_f16(f));
    }
}

Test(cast, every_bf16_round_trips_through_f32)
{
    for (uint32_t b = 0; b < 0x10000; b++) {
        float f = vs_bf16_to_f32((uint16_t)b);
        if (isnan(f))
            cr_assert(isnan(vs_bf16_to_f32(vs_f32_to_bf16(f))));
        else
            cr_assert_eq(vs_f32_to_bf16(f), b);
    }
}

/* Halfway cases round to the even neighbour; overflow saturates to infinity. */
Test(cast, narrowing_rounds_to_nearest_even)
{
    cr_expect_eq(vs_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);          /* tie, even below */
    cr_expect_eq(vs_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);      /* tie, even above */
    cr_expect_eq(vs_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    cr_expect_eq(vs_f32_to_f16(65504.0f), 0x7bff);
    cr_expect_eq(vs_f32_to_f16(65520.0f), 0x7c00);
    cr_expect_eq(vs_f32_to_f16(-1e6f), 0xfc00);
    cr_expect_eq(vs_f32_to_f16(0x1p-25f), 0x0000);                 /* tie with 0 */
    cr_expect_eq(vs_f32_to_f16(0x1p-25f + 0x1p-35f), 0x0001);
    cr_expect_eq(vs_f32_to_f16(3 * 0x1p-25f), 0x0002);             /* 1.5 ulp: even */
    cr_expect_eq(vs_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    cr_expect_eq(vs_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    cr_expect_eq(vs_f32_to_bf16(3.4e38f), 0x7f80);
    float src[3] = {0.5f, -2.0f, 1.0f / 3}, back[3];
    uint16_t half[3];
    vs_cast(half, VS_DT_F16, src, VS_DT_F32, 3);
    vs_cast(back, VS_DT_F32, half, VS_DT_F16, 3);
    cr_expect(back[0] == 0.5f && back[1] == -2.0f && fabsf(back[2] - src[2]) < 1e-3f);
}

/* A backend like the CPU one except that its memory is "device" memory: a parked buffer must
 * move to host memory with its contents, come back with them, and be counted throughout. */
static int copies;
static int counted_copy(void *dst, const void *src, size_t bytes)
{
    copies++;
    memcpy(dst, src, bytes);
    return 0;
}

Test(mem, parking_on_a_device_backend_copies_to_the_host_and_back)
{
    struct vs_backend dev = vs_cpu_backend;
    dev.host_memory = false;
    dev.to_host = dev.from_host = counted_copy;
    struct vs_mem m;
    vs_mem_init_on(&m, 0, &dev, NULL);
    float *a = vs_mem_floats(&m, 100, VS_POOL_WORK);
    cr_assert_not_null(a);
    for (int i = 0; i < 100; i++)
        a[i] = (float)i;
    float *parked = vs_mem_move(&m, a, VS_POOL_PARK);
    cr_assert_not_null(parked);
    cr_assert_neq(parked, a, "a parked device buffer lives in host memory");
    cr_assert_eq(m.cur[VS_POOL_WORK], 0);
    cr_assert_eq(m.cur[VS_POOL_PARK], 400);
    float *back = vs_mem_move(&m, parked, VS_POOL_WORK);
    cr_assert_not_null(back);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(back[i], (float)i);
    cr_assert_eq(copies, 2);
    cr_assert_eq(m.peak_total, 400);
    vs_mem_free(&m, back);
    cr_assert_eq(m.cur[VS_POOL_WORK] + m.cur[VS_POOL_PARK], 0);
    cr_assert_null(m.blocks, "the block list is released with the last block");
}

/* On the CPU backend parking is bookkeeping: the address stays. */
Test(mem, parking_on_the_cpu_backend_keeps_the_address)
{
    struct vs_mem m;
    vs_mem_init(&m, 0);
    float *a = vs_mem_floats(&m, 10, VS_POOL_WORK);
    cr_assert_eq(vs_mem_move(&m, a, VS_POOL_PARK), a);
    cr_assert_eq(m.cur[VS_POOL_PARK], 40);
    vs_mem_free(&m, a);
}

static void *refuse(void *ctx, size_t bytes)
{
    (void)ctx, (void)bytes;
    return NULL;
}

/* A vs_mem has no destructor: when its first allocation fails (a decode out of memory at its
 * first buffer), nothing of it stays allocated. */
Test(mem, a_failed_first_allocation_keeps_nothing)
{
    struct vs_allocator none = {refuse, NULL, NULL};
    struct vs_mem m;
    vs_mem_init_on(&m, 0, &vs_cpu_backend, &none);
    cr_assert_null(vs_mem_floats(&m, 10, VS_POOL_WORK));
    cr_assert_null(m.blocks, "the block table outlives the failed allocation");
    cr_assert_eq(m.cap_blocks, 0);
}

/* A whole decode on a backend whose memory is not host memory (the CPU layers, but parking
 * copies to separate host blocks and back, as on a GPU): every parked tile comes back at another
 * address with its contents, so the result equals the CPU backend's bit for bit. */
#define GOLDEN VS_SOURCE_DIR "/tests/golden/"

/* latents [1][c][h][w] of a golden io file */
static float *golden_latents(const char *name, int *h, int *w)
{
    struct vs_st_file f;
    struct vs_err err;
    char path[512];
    snprintf(path, sizeof path, GOLDEN "%s.io.safetensors", name);
    cr_assert_eq(vs_st_open(&f, path, &err), 0, "%s", err.msg);
    const struct vs_st_tensor *t = vs_st_find(&f, "latents");
    float *lat = malloc(t->numel * sizeof *lat);
    cr_assert_eq(vs_st_read_f32(&f, t, lat, &err), 0, "%s", err.msg);
    cr_assert_eq(t->ndim, 4);
    *h = (int)t->shape[2];
    *w = (int)t->shape[3];
    vs_st_close(&f);
    return lat;
}

static float *kl_on(const struct vs_backend *be, const struct vs_program *p, const float *lat,
                    int h, int w, enum vs_decode_mode mode, size_t n)
{
    struct vs_plan plan;
    struct vs_mem mem;
    struct vs_err err;
    float *out, *copy = malloc(n * sizeof *copy);
    cr_assert_eq(vs_plan_make(&plan, p, h, w, mode, 3, 0, &err), 0, "%s", err.msg);
    vs_mem_init_on(&mem, 0, be, NULL);
    cr_assert_eq(vs_plan_run(&plan, p, lat, &out, &mem, NULL, &err), 0, "%s", err.msg);
    memcpy(copy, out, n * sizeof *copy);
    vs_mem_free(&mem, out);
    cr_assert_eq(mem.cur[VS_POOL_WORK] + mem.cur[VS_POOL_PARK], 0);
    vs_plan_free(&plan);
    return copy;
}

Test(mem, tiled_decodes_on_a_parking_backend_equal_the_cpu_backend)
{
    struct vs_backend dev = vs_cpu_backend;
    dev.host_memory = false;
    dev.to_host = dev.from_host = counted_copy;
    struct vs_kl_decoder d;
    struct vs_program p;
    struct vs_err err;
    int h, w;
    float *lat = golden_latents("sd_small", &h, &w);
    cr_assert_eq(vs_kl_load(&d, GOLDEN "sd_small.vae.safetensors", VS_ARCH_AUTO, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(vs_program_build(&p, &d, &err), 0, "%s", err.msg);
    const size_t n = (size_t)3 * h * d.upscale * w * d.upscale;
    for (enum vs_decode_mode mode = VS_DECODE_EXACT; mode <= VS_DECODE_BLEND; mode++) {
        copies = 0;
        float *a = kl_on(&vs_cpu_backend, &p, lat, h, w, mode, n);
        float *b = kl_on(&dev, &p, lat, h, w, mode, n);
        cr_assert_eq(memcmp(a, b, n * sizeof *a), 0, "mode %s", vs_decode_mode_name(mode));
        if (mode == VS_DECODE_EXACT)
            cr_assert_gt(copies, 4, "exact tiles were parked and brought back (%d copies)", copies);
        free(a);
        free(b);
    }
    vs_program_free(&p);
    vs_kl_free(&d);
    free(lat);
}
