/* Real-GPU check of the decoder's CUDA backend (tools/gpucheck/checks/70-decode.sh runs it; it
 * also runs by hand: decode_check DATA_DIR, with DATA_DIR holding tests/golden's files).
 *
 *  1. Every CUDA layer against its C twin on random inputs, odd sizes and tile edges: fp32 max-abs
 *     difference over the output's max-abs <= 1e-5 (cuDNN and cuBLAS layers: 1e-5 as well, FMA
 *     math and no TF32); moves, casts and blends bit for bit.
 *  2. Whole decodes through the same executor on the CUDA backend (sd_small, flux_small,
 *     wan_small, wan22_small): exact tiled on the GPU against monolithic on the GPU (to fp32
 *     rounding: the tiles may get other cuDNN algorithms; bit for bit with one algorithm
 *     forced), and both against the CPU reference (1e-4, as the golden tests).
 *  3. libvramshim_vae.so (beside this program or one directory up; it carries its own static
 *     CUDA runtime while this program uses the shared one, as in a PyTorch process): device
 *     latents and output on a stream of ours with a counting allocator of ours, and host buffers
 *     with device CUDA, against the library's CPU decode (1e-4); every block handed back,
 *     measured peak equal to the predicted one.
 * Prints one JSON object of figures on stdout, one line per failure on stderr. Exit 0 all
 * passed, 1 a check failed, 77 nothing could run (the reason on stderr: no GPU, no cuDNN...). */
#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/cast.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv3d.h"
#include "kernels/cpu/groupnorm.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/region.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/upsample.h"
#include "kernels/cuda/backend.h"
#include "kernels/kl_program.h"
#include "kernels/mem.h"
#include "kernels/plan.h"
#include "kernels/safetensors.h"
#include "kernels/wan.h"
#include "vramshim_vae.h"

static int failures;
static char figures[16384] = "{";

static void figure(const char *name, double v)
{
    size_t n = strlen(figures);
    snprintf(figures + n, sizeof figures - n, "%s\"%s\":%.3g", n > 1 ? "," : "", name, v);
}

/* Records max-abs-relative error `e` of a check against `tol`. */
static void verdict(const char *name, double e, double tol)
{
    figure(name, e);
    if (!(e <= tol)) {
        fprintf(stderr, "decode_check: %s: error %.3g above %.3g\n", name, e, tol);
        failures++;
    }
}

static unsigned long long rng = 0x2545f4914f6cdd1dull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static float *host_rand(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static float *dev_from(const float *h, size_t n)
{
    float *d = NULL;
    if (cudaMalloc((void **)&d, (n ? n : 1) * sizeof *d) != cudaSuccess ||
        cudaMemcpy(d, h, n * sizeof *d, cudaMemcpyHostToDevice) != cudaSuccess) {
        fprintf(stderr, "decode_check: device allocation of %zu floats failed\n", n);
        exit(1);
    }
    return d;
}

static float *host_from(const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    cudaDeviceSynchronize();
    if (cudaMemcpy(h, d, n * sizeof *h, cudaMemcpyDeviceToHost) != cudaSuccess) {
        fprintf(stderr, "decode_check: copy back failed: %s\n",
                cudaGetErrorString(cudaGetLastError()));
        exit(1);
    }
    return h;
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return isnan(d) ? INFINITY : s > 0 ? d / s : d;
}

/* GPU result of buffer d (n floats) against host want. */
static void compare(const char *name, const float *d, const float *want, size_t n, double tol)
{
    float *got = host_from(d, n);
    verdict(name, rel_err(got, want, n), tol);
    free(got);
}

static void check_conv2d(const struct vs_cuda_ctx *ctx)
{
    /* every padding combination a tile can have, 3x3 and 1x1, odd sizes */
    for (int mask = 0; mask < 16; mask++)
        for (int k = 1; k <= 3; k += 2) {
            if (k == 1 && mask)
                continue;
            struct vs_conv2d_geom g = {5, 7, k, 9, 13, k == 3 && (mask & 1), k == 3 && (mask & 2),
                                       k == 3 && (mask & 4), k == 3 && (mask & 8)};
            const size_t ni = (size_t)g.cin * g.in_h * g.in_w, nw = (size_t)g.cout * g.cin * k * k;
            const size_t no = (size_t)g.cout * vs_conv2d_out_h(&g) * vs_conv2d_out_w(&g);
            float *x = host_rand(ni), *w = host_rand(nw), *b = host_rand(g.cout),
                  *want = malloc(no * sizeof *want);
            vs_conv2d(x, want, w, b, &g);
            float *dx = dev_from(x, ni), *dw = dev_from(w, nw), *db = dev_from(b, g.cout), *dy;
            cudaMalloc((void **)&dy, no * sizeof *dy);
            char name[64];
            snprintf(name, sizeof name, "conv2d_k%d_pad%x", k, mask);
            if (vs_cuda_conv2d(dx, dy, dw, db, &g, ctx)) {
                fprintf(stderr, "decode_check: %s: cuDNN call failed\n", name);
                failures++;
            } else
                compare(name, dy, want, no, 1e-5);
            cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dy);
            free(x), free(w), free(b), free(want);
        }
}

/* Exact tiling's premise on the GPU: with one conv algorithm forced (IMPLICIT_GEMM: each output
 * pixel is one dot product over (cin, ky, kx) in a fixed order), a conv computed tile by tile,
 * with a 1-pixel halo and zero padding only on the image's own borders, equals the whole-image
 * conv bit for bit. */
static void check_conv2d_tiles_bit_exact(const struct vs_cuda_ctx *ctx)
{
    struct vs_cuda_ctx forced = *ctx;
    forced.forced_algo = 1 + CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    const int H = 37, W = 41, cin = 6, cout = 5, cuts_y[] = {0, 13, 29, H}, cuts_x[] = {0, 20, W};
    struct vs_conv2d_geom whole = {cin, cout, 3, H, W, 1, 1, 1, 1};
    const size_t ni = (size_t)cin * H * W, no = (size_t)cout * H * W, nw = (size_t)cout * cin * 9;
    float *x = host_rand(ni), *w = host_rand(nw), *b = host_rand(cout);
    float *dx = dev_from(x, ni), *dw = dev_from(w, nw), *db = dev_from(b, cout), *dy;
    cudaMalloc((void **)&dy, no * sizeof *dy);
    long differing = vs_cuda_conv2d(dx, dy, dw, db, &whole, &forced) ? -1 : 0;
    float *ref = host_from(dy, no);
    for (int ty = 0; ty < 3 && differing >= 0; ty++)
        for (int tx = 0; tx < 2 && differing >= 0; tx++) {
            const int y0 = cuts_y[ty], y1 = cuts_y[ty + 1], x0 = cuts_x[tx], x1 = cuts_x[tx + 1];
            const int wy0 = y0 ? y0 - 1 : 0, wy1 = y1 < H ? y1 + 1 : H;
            const int wx0 = x0 ? x0 - 1 : 0, wx1 = x1 < W ? x1 + 1 : W;
            struct vs_conv2d_geom g = {cin, cout, 3, wy1 - wy0, wx1 - wx0, !y0, y1 == H, !x0,
                                       x1 == W};
            float *win = malloc((size_t)cin * g.in_h * g.in_w * sizeof *win);
            for (int c = 0; c < cin; c++)
                for (int y = 0; y < g.in_h; y++)
                    memcpy(win + ((size_t)c * g.in_h + y) * g.in_w,
                           x + ((size_t)c * H + wy0 + y) * W + wx0, (size_t)g.in_w * sizeof *win);
            const size_t nt = (size_t)cout * (y1 - y0) * (x1 - x0);
            float *dwin = dev_from(win, (size_t)cin * g.in_h * g.in_w), *dt;
            cudaMalloc((void **)&dt, nt * sizeof *dt);
            if (vs_cuda_conv2d(dwin, dt, dw, db, &g, &forced))
                differing = -1;
            else {
                float *t = host_from(dt, nt);
                for (int c = 0; c < cout; c++)
                    for (int y = y0; y < y1; y++)
                        for (int xx = x0; xx < x1; xx++)
                            differing += memcmp(&t[((size_t)c * (y1 - y0) + y - y0) * (x1 - x0) +
                                                   xx - x0],
                                                &ref[((size_t)c * H + y) * W + xx], 4) != 0;
                free(t);
            }
            cudaFree(dwin), cudaFree(dt), free(win);
        }
    if (differing < 0) {
        fprintf(stderr, "decode_check: conv2d with IMPLICIT_GEMM forced: cuDNN call failed\n");
        failures++;
    } else
        verdict("conv2d_forced_algo_tiles_differing_values", (double)differing, 0);
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dy);
    free(x), free(w), free(b), free(ref);
}

static void check_conv3d(const struct vs_cuda_ctx *ctx)
{
    /* a window at the frame's top-left corner (padding there) and one inside; first frame of a
     * video (older taps NULL) and a later one */
    const struct vs_window wins[2][2] = {
        {{0, 0, 6, 7, 12, 14}, {0, 0, 5, 6, 12, 14}},
        {{3, 4, 8, 9, 12, 14}, {4, 5, 6, 7, 12, 14}},
    };
    for (int wi = 0; wi < 2; wi++)
        for (int first = 0; first < 2; first++) {
            const struct vs_window *win = &wins[wi][0], *wout = &wins[wi][1];
            struct vs_conv3d c = {4, 3, 3, 3, NULL, NULL, NULL};
            const size_t nw = (size_t)c.out_ch * c.in_ch * 27,
                         nf = (size_t)c.in_ch * vs_window_area(win);
            const size_t no = (size_t)c.out_ch * vs_window_area(wout);
            float *w = host_rand(nw), *b = host_rand(c.out_ch), *f[3], *df[3];
            c.weight = w, c.bias = b;
            for (int t = 0; t < 3; t++)
                f[t] = host_rand(nf), df[t] = dev_from(f[t], nf);
            const float *in[3] = {first ? NULL : f[0], first ? NULL : f[1], f[2]};
            const float *din[3] = {first ? NULL : df[0], first ? NULL : df[1], df[2]};
            float *want = malloc(no * sizeof *want), *taps = malloc(nw * sizeof *taps);
            vs_conv3d_frame(&c, in, win, want, wout);
            for (int dt = 0; dt < 3; dt++) /* [kt][out][in][k][k] */
                for (size_t oi = 0; oi < (size_t)c.out_ch * c.in_ch; oi++)
                    memcpy(taps + ((size_t)dt * c.out_ch * c.in_ch + oi) * 9, w + (oi * 3 + dt) * 9,
                           9 * sizeof *taps);
            float *dtaps = dev_from(taps, nw), *db = dev_from(b, c.out_ch), *dy;
            cudaMalloc((void **)&dy, no * sizeof *dy);
            struct vs_conv3d dc = c;
            dc.bias = db;
            char name[64];
            snprintf(name, sizeof name, "conv3d_window%d_%s", wi, first ? "first_frame" : "later");
            if (vs_cuda_conv3d_frame(&dc, dtaps, din, win, dy, wout, ctx)) {
                fprintf(stderr, "decode_check: %s: cuDNN call failed\n", name);
                failures++;
            } else
                compare(name, dy, want, no, 1e-5);
            for (int t = 0; t < 3; t++)
                free(f[t]), cudaFree(df[t]);
            cudaFree(dtaps), cudaFree(db), cudaFree(dy);
            free(w), free(b), free(want), free(taps);
        }
}

static void check_attention(const struct vs_cuda_ctx *ctx)
{
    const struct { size_t n; int d; } cases[] = {{300, 64}, {1000, 512}, {777, 384}};
    for (int i = 0; i < 3; i++) {
        const size_t n = cases[i].n, nd = n * cases[i].d;
        float *q = host_rand(nd), *k = host_rand(nd), *v = host_rand(nd), *want = malloc(nd * 4);
        const float scale = 1.0f / sqrtf((float)cases[i].d);
        vs_attention(q, k, v, want, n, cases[i].d, scale);
        float *dq = dev_from(q, nd), *dk = dev_from(k, nd), *dv = dev_from(v, nd), *dy;
        cudaMalloc((void **)&dy, nd * 4);
        char name[64];
        snprintf(name, sizeof name, "attention_n%zu_d%d", n, cases[i].d);
        if (vs_cuda_attention(dq, dk, dv, dy, n, cases[i].d, scale, ctx)) {
            fprintf(stderr, "decode_check: %s: cuBLAS call failed\n", name);
            failures++;
        } else
            compare(name, dy, want, nd, 1e-5);
        /* the linear layer on the same data: y = q W^T + b */
        const int d = cases[i].d;
        float *w = host_rand((size_t)d * d), *b = host_rand(d);
        vs_linear(q, w, b, want, n, d, d);
        float *dw = dev_from(w, (size_t)d * d), *db = dev_from(b, d);
        snprintf(name, sizeof name, "linear_n%zu_d%d", n, d);
        if (vs_cuda_linear(dq, dw, db, dy, n, d, d, ctx)) {
            fprintf(stderr, "decode_check: %s: cuBLAS call failed\n", name);
            failures++;
        } else
            compare(name, dy, want, nd, 1e-5);
        cudaFree(dq), cudaFree(dk), cudaFree(dv), cudaFree(dy), cudaFree(dw), cudaFree(db);
        free(q), free(k), free(v), free(want), free(w), free(b);
    }
}

/* Our own kernels on the GPU (the CPU emulation already checked their indexing). */
static void check_own_kernels(void)
{
    const int c = 12, groups = 4, h = 37, w = 41;
    const size_t plane = (size_t)h * w, n = c * plane;
    float *x = host_rand(n), *dx = dev_from(x, n), *scratch;
    cudaMalloc((void **)&scratch, 3 * VS_GN_MAX_GROUPS * sizeof *scratch);
    struct vs_window r = {2, 3, 33, 30, h, w};
    struct vs_gn_stats want[4], got[4];
    vs_gn_region_stats(x, c, plane, r, groups, want);
    double e = 0;
    if (vs_cuda_gn_region_stats(dx, c, plane, r, groups, got, scratch, NULL))
        e = INFINITY;
    for (int g = 0; g < groups && e != INFINITY; g++) /* the mean relative to the spread */
        e = fmax(e, fmax(fabs(got[g].mean - want[g].mean) / sqrt(want[g].m2 / want[g].count),
                         fabs(got[g].m2 - want[g].m2) / want[g].m2));
    verdict("groupnorm_stats", e, 1e-5);
    /* the tiled part's statistics: 2x3-pixel cells of the region, into pinned host memory as
     * the executor's cell array (vs_mem's PARK pool): the C twin's bits, cell by cell */
    const int ncell = (r.h / 3) * (r.w / 3) * groups;
    struct vs_gn_cell *cells = NULL, *cells_want = malloc((size_t)ncell * sizeof *cells_want);
    vs_gn_cell_stats(x, c, plane, r, 3, 3, groups, cells_want, (size_t)(r.w / 3) * groups);
    long differing_cells = -1;
    if (cudaMallocHost((void **)&cells, (size_t)ncell * sizeof *cells) == cudaSuccess &&
        !vs_cuda_gn_cell_stats(dx, c, plane, r, 3, 3, groups, cells, (size_t)(r.w / 3) * groups,
                               NULL)) {
        differing_cells = 0;
        for (int i = 0; i < ncell; i++)
            differing_cells += memcmp(&cells[i], &cells_want[i], sizeof *cells) != 0;
    }
    verdict("groupnorm_cell_stats_differing_cells",
            differing_cells < 0 ? INFINITY : (double)differing_cells, 0);
    cudaFreeHost(cells);
    free(cells_want);
    float mean[4], rstd[4], *gamma = host_rand(c), *beta = host_rand(c);
    vs_gn_finish(groups, want, 1e-6f, mean, rstd);
    float *dg = dev_from(gamma, c), *db = dev_from(beta, c), *ref = malloc(n * sizeof *ref);
    memcpy(ref, x, n * sizeof *ref);
    vs_gn_apply(ref, c, plane, groups, mean, rstd, gamma, beta, 1);
    verdict("groupnorm_apply_silu_launch",
            vs_cuda_gn_apply(dx, c, plane, groups, mean, rstd, dg, db, 1, scratch, NULL) ? 1 : 0,
            0);
    compare("groupnorm_apply_silu", dx, ref, n, 1e-5);
    cudaMemcpy(dx, x, n * sizeof *x, cudaMemcpyHostToDevice);
    float *dy;
    cudaMalloc((void **)&dy, 4 * n * sizeof *dy);
    vs_rmsnorm(x, ref, c, plane, gamma, true);
    vs_cuda_rmsnorm(dx, dy, c, plane, dg, true, NULL);
    compare("rmsnorm_silu", dy, ref, n, 1e-5);
    float *up = malloc(4 * n * sizeof *up);
    vs_upsample_nearest2x(x, up, c, h, w);
    vs_cuda_upsample2x(dx, dy, c, h, w, NULL);
    compare("upsample2x", dy, up, 4 * n, 0);
    /* Wan 2.2's DupUp3D gather added onto an odd-offset window of the 2x frame */
    const struct vs_window sw = {0, 0, h, w, h, w}, dw = {3, 5, 2 * h - 7, 2 * w - 9, 2 * h, 2 * w};
    const struct vs_to_space g = {c / 2, 2, 8, 4, 2, 1, 4, true};
    const size_t dn = (size_t)(c / 2) * vs_window_area(&dw);
    float *main_path = host_rand(dn);
    memcpy(up, main_path, dn * sizeof *up);
    cudaMemcpy(dy, main_path, dn * sizeof *dy, cudaMemcpyHostToDevice);
    vs_to_space(up, &dw, x, &sw, &g);
    vs_cuda_to_space(dy, &dw, dx, &sw, &g, NULL);
    compare("to_space_dup_up", dy, up, dn, 0);
    free(main_path);
    vs_transpose(x, up, c, plane);
    vs_cuda_transpose(dx, dy, c, plane, NULL);
    compare("transpose", dy, up, n, 0);
    vs_crop(x, c, h, w, 5, 6, up, 20, 17);
    vs_cuda_crop(dx, c, h, w, 5, 6, dy, 20, 17, NULL);
    compare("crop", dy, up, (size_t)c * 20 * 17, 0);
    float *s = host_rand((size_t)1000 * 4), *ds = dev_from(s, 4000);
    for (int row = 0; row < 4; row++) {
        double m = -INFINITY, sum = 0;
        for (int i = 0; i < 1000; i++)
            m = fmax(m, s[row * 1000 + i]);
        for (int i = 0; i < 1000; i++)
            sum += exp(s[row * 1000 + i] - m);
        for (int i = 0; i < 1000; i++)
            up[row * 1000 + i] = (float)(exp(s[row * 1000 + i] - m) / sum);
    }
    vs_cuda_softmax_rows(ds, 4, 1000, NULL);
    compare("softmax_rows", ds, up, 4000, 1e-5);
    uint16_t *hb = malloc(n * 2), *gb;
    vs_cast(hb, VS_DT_BF16, x, VS_DT_F32, n);
    vs_cuda_cast(dy, VS_DT_BF16, dx, VS_DT_F32, n, NULL);
    gb = (uint16_t *)host_from(dy, n / 2 + 1);
    verdict("cast_bf16_mismatches", memcmp(hb, gb, n * 2) != 0, 0);
    free(gb);
    vs_cast(hb, VS_DT_F16, x, VS_DT_F32, n);
    vs_cuda_cast(dy, VS_DT_F16, dx, VS_DT_F32, n, NULL);
    gb = (uint16_t *)host_from(dy, n / 2 + 1);
    verdict("cast_f16_mismatches", memcmp(hb, gb, n * 2) != 0, 0);
    free(gb), free(hb), free(s), cudaFree(ds);
    cudaFree(dx), cudaFree(dy), cudaFree(scratch), cudaFree(dg), cudaFree(db);
    free(x), free(gamma), free(beta), free(ref), free(up);
}

static float *read_latents(const char *dir, const char *name, int64_t *shape, int *ndim)
{
    char path[1024];
    struct vs_st_file f;
    struct vs_err err;
    snprintf(path, sizeof path, "%s/%s.io.safetensors", dir, name);
    if (vs_st_open(&f, path, &err)) {
        fprintf(stderr, "decode_check: %s\n", err.msg);
        return NULL;
    }
    const struct vs_st_tensor *t = vs_st_find(&f, "latents");
    float *lat = t ? malloc(t->numel * sizeof *lat) : NULL;
    if (!lat || vs_st_read_f32(&f, t, lat, &err)) {
        fprintf(stderr, "decode_check: %s: no readable 'latents'\n", path);
        free(lat);
        vs_st_close(&f);
        return NULL;
    }
    *ndim = t->ndim;
    memcpy(shape, t->shape, sizeof t->shape[0] * t->ndim);
    vs_st_close(&f);
    return lat;
}

/* One AutoencoderKL decode on a backend: device latents and weights for CUDA. */
static float *kl_decode(const struct vs_program *p, const float *lat, int h, int w,
                        enum vs_decode_mode mode, int tile, const struct vs_backend *be,
                        const struct vs_cuda_ctx *ctx, size_t out_n)
{
    struct vs_plan plan;
    struct vs_err err;
    struct vs_mem mem;
    float *out, *copy = NULL;
    char msg[256];
    if (vs_plan_make(&plan, p, h, w, mode, tile, 0, &err)) {
        fprintf(stderr, "decode_check: plan: %s\n", err.msg);
        return NULL;
    }
    if (be != &vs_cpu_backend && vs_cuda_backend_begin(ctx, msg, sizeof msg)) {
        fprintf(stderr, "decode_check: %s\n", msg);
        vs_plan_free(&plan);
        return NULL;
    }
    vs_mem_init_on(&mem, 0, be, NULL);
    int rc = vs_plan_run(&plan, p, lat, &out, &mem, NULL, &err);
    if (be != &vs_cpu_backend && vs_cuda_backend_end(msg, sizeof msg)) {
        fprintf(stderr, "decode_check: %s\n", msg);
        rc = -1;
    }
    if (rc)
        fprintf(stderr, "decode_check: decode: %s\n", err.msg);
    else {
        copy = malloc(out_n * sizeof *copy); /* out is host (pinned) memory on both backends */
        memcpy(copy, out, out_n * sizeof *copy);
        vs_mem_free(&mem, out);
    }
    vs_plan_free(&plan);
    return copy;
}

static void check_kl_decode(const char *dir, const char *name, const struct vs_cuda_ctx *ctx)
{
    char path[1024];
    int64_t shape[8];
    int ndim;
    struct vs_kl_decoder d, dd;
    struct vs_program p, dp;
    struct vs_err err;
    char fig[96];
    float *lat = read_latents(dir, name, shape, &ndim);
    snprintf(path, sizeof path, "%s/%s.vae.safetensors", dir, name);
    if (!lat || vs_kl_load(&d, path, VS_ARCH_AUTO, &err)) {
        fprintf(stderr, "decode_check: %s: %s\n", name, lat ? err.msg : "no latents");
        failures++;
        free(lat);
        return;
    }
    const int h = (int)shape[2], w = (int)shape[3];
    const size_t out_n = (size_t)3 * h * d.upscale * w * d.upscale,
                 lat_n = (size_t)d.latent_channels * h * w;
    float *dlat = dev_from(lat, lat_n);
    if (vs_program_build(&p, &d, &err) || vs_cuda_kl_to_device(&dd, &d) ||
        vs_program_build(&dp, &dd, &err)) {
        fprintf(stderr, "decode_check: %s: cannot set up the decoder\n", name);
        failures++;
        return;
    }
    float *cpu = kl_decode(&p, lat, h, w, VS_DECODE_MONOLITHIC, 0, &vs_cpu_backend, ctx, out_n);
    float *mono = kl_decode(&dp, dlat, h, w, VS_DECODE_MONOLITHIC, 0, &vs_cuda_backend, ctx, out_n);
    float *tiled = kl_decode(&dp, dlat, h, w, VS_DECODE_EXACT, 3, &vs_cuda_backend, ctx, out_n);
    /* the same two with one conv algorithm forced: the convs then agree bit for bit on every
     * tile (check_conv2d_tiles_bit_exact) and the GroupNorm statistics do by construction
     * (cells, docs/decoder.md "Exact tiling on the GPU"), so the images must be equal */
    struct vs_cuda_ctx forced = *ctx;
    forced.forced_algo = 1 + CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    float *fmono =
        kl_decode(&dp, dlat, h, w, VS_DECODE_MONOLITHIC, 0, &vs_cuda_backend, &forced, out_n);
    float *ftiled =
        kl_decode(&dp, dlat, h, w, VS_DECODE_EXACT, 3, &vs_cuda_backend, &forced, out_n);
    if (fmono && ftiled) {
        size_t differing = 0;
        for (size_t i = 0; i < out_n; i++)
            differing += memcmp(&fmono[i], &ftiled[i], 4) != 0;
        snprintf(fig, sizeof fig, "%s_forced_algo_tiled_vs_mono_differing_values", name);
        verdict(fig, (double)differing, 0);
    } else {
        fprintf(stderr, "decode_check: %s: a decode with IMPLICIT_GEMM forced failed\n", name);
        failures++;
    }
    free(fmono), free(ftiled);
    if (!cpu || !mono || !tiled) {
        fprintf(stderr, "decode_check: %s: a decode failed\n", name);
        failures++;
    } else {
        snprintf(fig, sizeof fig, "%s_gpu_tiled_vs_gpu_mono", name);
        verdict(fig, rel_err(tiled, mono, out_n), 1e-5);
        snprintf(fig, sizeof fig, "%s_gpu_mono_vs_cpu", name);
        verdict(fig, rel_err(mono, cpu, out_n), 1e-4);
    }
    free(cpu), free(mono), free(tiled), free(lat), cudaFree(dlat);
    vs_program_free(&p), vs_program_free(&dp), vs_cuda_kl_free_device(&dd), vs_kl_free(&d);
}

static void check_wan_decode(const char *dir, const char *name, const struct vs_cuda_ctx *ctx)
{
    char path[1024], msg[256];
    int64_t shape[8];
    int ndim;
    struct vs_wan_model *m, *dm;
    struct vs_err err;
    float *lat = read_latents(dir, name, shape, &ndim);
    snprintf(path, sizeof path, "%s/%s.vae.safetensors", dir, name);
    if (!lat || ndim != 5 || vs_wan_load(path, &m, &err) || vs_cuda_wan_to_device(&dm, m)) {
        fprintf(stderr, "decode_check: %s: cannot set up the decoder\n", name);
        failures++;
        free(lat);
        return;
    }
    const int T = (int)shape[2], h = (int)shape[3], w = (int)shape[4];
    const int S = vs_wan_spatial_scale(m);
    const size_t out_n = (size_t)3 * vs_wan_out_frames(m, T) * h * S * w * S;
    const size_t lat_n = (size_t)shape[1] * T * h * w;
    float *cpu = malloc(out_n * 4), *res[2], *dlat = dev_from(lat, lat_n);
    struct vs_wan_opts cpu_opts = {0};
    if (vs_wan_decode(m, lat, T, h, w, &cpu_opts, cpu, NULL, &err)) {
        fprintf(stderr, "decode_check: %s on the CPU: %s\n", name, err.msg);
        failures++;
    }
    for (int tiled = 0; tiled < 2; tiled++) {
        float *dout;
        cudaMalloc((void **)&dout, out_n * 4);
        struct vs_wan_opts o = {.tile = tiled ? 16 : 0, .backend = &vs_cuda_backend};
        int rc = vs_cuda_backend_begin(ctx, msg, sizeof msg) ||
                 vs_wan_decode(dm, dlat, T, h, w, &o, dout, NULL, &err);
        if (vs_cuda_backend_end(msg, sizeof msg) || rc) {
            fprintf(stderr, "decode_check: %s on the GPU: %s %s\n", name, err.msg, msg);
            failures++;
            res[tiled] = NULL;
        } else
            res[tiled] = host_from(dout, out_n);
        cudaFree(dout);
    }
    if (res[0] && res[1]) {
        char fig[96];
        snprintf(fig, sizeof fig, "%s_gpu_tiled_vs_gpu_one_tile", name);
        verdict(fig, rel_err(res[1], res[0], out_n), 1e-5);
        snprintf(fig, sizeof fig, "%s_gpu_vs_cpu", name);
        verdict(fig, rel_err(res[0], cpu, out_n), 1e-4);
    }
    free(res[0]), free(res[1]), free(cpu), free(lat), cudaFree(dlat);
    vs_cuda_wan_free_device(dm);
    vs_wan_free(m);
}

/* The caller allocator of check 3: cudaMallocAsync of this program's runtime, counted. */
struct counting {
    int live;
};
static void *count_alloc(void *ctx, size_t bytes, void *stream)
{
    void *p = NULL;
    if (cudaMallocAsync(&p, bytes, (cudaStream_t)stream) != cudaSuccess)
        return NULL;
    ((struct counting *)ctx)->live++;
    return p;
}
static void count_free(void *ctx, void *p, void *stream)
{
    cudaFreeAsync(p, (cudaStream_t)stream);
    ((struct counting *)ctx)->live--;
}

#define VAE_FUNCS(X) X(vramshim_vae_open_file) X(vramshim_vae_close) X(vramshim_vae_decode)
static struct {
#define FIELD(f) __typeof__(&f) f;
    VAE_FUNCS(FIELD)
#undef FIELD
} vae;

static void check_library_model(const char *dir, const char *name)
{
    char path[1024], msg[512], fig[96];
    int64_t shape[8];
    int ndim;
    vramshim_vae *v;
    float *lat = read_latents(dir, name, shape, &ndim);
    snprintf(path, sizeof path, "%s/%s.vae.safetensors", dir, name);
    if (!lat || vae.vramshim_vae_open_file(path, VRAMSHIM_VAE_ARCH_AUTO, &v, msg, sizeof msg)) {
        fprintf(stderr, "decode_check: library %s: %s\n", name, lat ? msg : "no latents");
        failures++;
        free(lat);
        return;
    }
    size_t lat_n = 1;
    for (int i = 0; i < ndim; i++)
        lat_n *= (size_t)shape[i];
    /* the output: 3 channels, 8x (sd_small: 2x) the latent size; ask the CPU decode's plan */
    vramshim_vae_decode_args a = {.latents = lat, .ndim = ndim};
    memcpy(a.shape, shape, (size_t)ndim * sizeof *shape);
    const size_t out_cap = lat_n * 64 * 4 * 3; /* room for 8x8 spatial, 4x frames, 3 channels */
    /* every buffer starts as all-ones bytes (a NaN): the output's length is where the CPU
     * decode stopped writing, and nothing past it may change */
    float *cpu = malloc(out_cap * sizeof *cpu), *gpu = malloc(out_cap * sizeof *gpu);
    memset(cpu, 0xff, out_cap * sizeof *cpu);
    a.out = cpu;
    a.mode = VRAMSHIM_VAE_EXACT;
    a.tile_px = 16;
    vramshim_vae_plan plan;
    if (vae.vramshim_vae_decode(v, &a, &plan, msg, sizeof msg)) {
        fprintf(stderr, "decode_check: library %s on the CPU: %s\n", name, msg);
        failures++;
        goto out;
    }
    /* device latents and output on our stream with our allocator */
    cudaStream_t st;
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    struct counting cnt = {0};
    vramshim_vae_allocator al = {count_alloc, count_free, &cnt};
    float *dlat = dev_from(lat, lat_n), *dout = NULL;
    cudaMalloc((void **)&dout, out_cap * sizeof *dout);
    cudaMemset(dout, 0xff, out_cap * sizeof *dout);
    vramshim_vae_decode_args g = a;
    g.latents = dlat, g.out = dout, g.stream = st, g.allocator = &al;
    vramshim_vae_plan gplan;
    int rc = vae.vramshim_vae_decode(v, &g, &gplan, msg, sizeof msg);
    cudaStreamSynchronize(st);
    if (rc) {
        fprintf(stderr, "decode_check: library %s, device pointers: %s\n", name, msg);
        failures++;
    } else {
        size_t n = out_cap;
        while (n && !memcmp(&cpu[n - 1], &(uint32_t){0xffffffffu}, 4))
            n--;
        float *got = host_from(dout, out_cap);
        snprintf(fig, sizeof fig, "lib_%s_gpu_vs_cpu", name);
        verdict(fig, rel_err(got, cpu, n), 1e-4);
        snprintf(fig, sizeof fig, "lib_%s_gpu_wrote_past_the_output", name);
        verdict(fig, memcmp(got + n, cpu + n, (out_cap - n) * sizeof *got) != 0, 0);
        snprintf(fig, sizeof fig, "lib_%s_blocks_leaked", name);
        verdict(fig, cnt.live, 0);
        snprintf(fig, sizeof fig, "lib_%s_peak_measured_over_predicted", name);
        figure(fig, gplan.predicted_peak ? (double)gplan.measured_peak / gplan.predicted_peak : 0);
        free(got);
        /* host buffers, device CUDA: the library copies through */
        g = a;
        g.out = gpu;
        g.device = VRAMSHIM_VAE_DEVICE_CUDA;
        if (vae.vramshim_vae_decode(v, &g, NULL, msg, sizeof msg)) {
            fprintf(stderr, "decode_check: library %s, device CUDA, host buffers: %s\n", name, msg);
            failures++;
        } else {
            snprintf(fig, sizeof fig, "lib_%s_gpu_host_buffers_vs_cpu", name);
            verdict(fig, rel_err(gpu, cpu, n), 1e-4);
        }
    }
    cudaFree(dlat), cudaFree(dout), cudaStreamDestroy(st);
out:
    vae.vramshim_vae_close(v);
    free(cpu), free(gpu), free(lat);
}

static void check_library(const char *dir)
{
    /* beside this program (the bundle's bin/), or one up (the build tree's gpucheck/) */
    char exe[1024] = "", path[1100];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    const char *here = dirname(exe);
    snprintf(path, sizeof path, "%s/libvramshim_vae.so", here);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(path, sizeof path, "%s/../libvramshim_vae.so", here);
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    const char *missing = h ? NULL : dlerror();
#define SYM(f) if (!missing && !(*(void **)&vae.f = dlsym(h, #f))) missing = #f;
    VAE_FUNCS(SYM)
#undef SYM
    if (missing) {
        fprintf(stderr, "decode_check: %s: %s\n", path, missing);
        failures++;
        return;
    }
    check_library_model(dir, "sd_small");
    check_library_model(dir, "wan_small");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA_DIR (the files of tests/golden)\n", argv[0]);
        return 2;
    }
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        fprintf(stderr, "decode_check: skipped: no GPU (%s)\n",
                cudaGetErrorString(cudaGetLastError()));
        return 77;
    }
    struct vs_cuda_ctx ctx;
    char why[512];
    void *ws = NULL;
    const size_t ws_bytes = (size_t)256 << 20;
    if (cudaMalloc(&ws, ws_bytes) != cudaSuccess ||
        vs_cuda_ctx_init(&ctx, NULL, ws, ws_bytes, why, sizeof why)) {
        fprintf(stderr, "decode_check: skipped: %s\n", ws ? why : "no device memory");
        return 77;
    }
    check_own_kernels();
    check_conv2d(&ctx);
    check_conv2d_tiles_bit_exact(&ctx);
    check_conv3d(&ctx);
    check_attention(&ctx);
    check_kl_decode(argv[1], "sd_small", &ctx);
    check_kl_decode(argv[1], "flux_small", &ctx);
    check_wan_decode(argv[1], "wan_small", &ctx);
    check_wan_decode(argv[1], "wan22_small", &ctx);
    check_library(argv[1]);
    vs_cuda_ctx_free(&ctx);
    cudaFree(ws);
    printf("%s,\"failures\":%d}\n", figures, failures);
    return failures ? 1 : 0;
}
