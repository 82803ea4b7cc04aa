/* Activations and workspaces: blocks a phase allocates, writes and frees (see demo.h). */
#include "tools/demo/lib/internal.h"
#include "tools/demo/lib/stripes.h"

struct vs_demo_buf vs_demo_buffer(struct vs_demo *d, const char *name, uint64_t bytes)
{
    struct vs_demo_buf b = {.bytes = vs_demo_scaled(d, bytes)};
    b.ptr = vs_demo_alloc(d, name, b.bytes);
    /* Zero the whole block (free on the simulated driver: it punches holes), then give every
     * 2 MiB of it a stripe of data, as the first layer writing it would. */
    vs_demo_check(d, d->cu.memset_d32_async(b.ptr, 0, b.bytes / 4, d->stream), "cuMemsetD32Async",
                  name, b.bytes);
    uint64_t seed = vs_demo_seed(name);
    size_t len = vs_demo_stripe_len(b.bytes), n = vs_demo_stripe_count(b.bytes);
    for (size_t k = 0; k < VS_DEMO_TOUCH && k < n; k++) {
        size_t i = vs_demo_touched(k, n);
        vs_demo_check(d, d->cu.memset_d32_async(b.ptr + vs_demo_stripe_offset(seed, b.bytes, i),
                                                (unsigned)(seed >> 32) ^ (unsigned)i, len / 4,
                                                d->stream),
                      "cuMemsetD32Async", name, len);
    }
    return b;
}

void vs_demo_combine(struct vs_demo *d, struct vs_demo_buf *dst, const struct vs_demo_buf *src,
                     unsigned step)
{
    size_t len = vs_demo_stripe_len(src->bytes < dst->bytes ? src->bytes : dst->bytes);
    size_t n = vs_demo_stripe_count(src->bytes), slots = dst->bytes / VS_DEMO_STRIDE;
    for (size_t k = 0; k < VS_DEMO_TOUCH && k < n; k++) {
        size_t i = vs_demo_touched(k + step, n);
        CUdeviceptr from = src->ptr + vs_demo_stripe_offset(step, src->bytes, i);
        CUdeviceptr to = dst->ptr + (slots ? (i + step) % slots : 0) * (uint64_t)VS_DEMO_STRIDE;
        vs_demo_check(d, d->cu.memcpy_dtod_async(to, from, len, d->stream), "cuMemcpyDtoDAsync",
                      "activation", len);
    }
}

void vs_demo_buffer_free(struct vs_demo *d, struct vs_demo_buf *b)
{
    vs_demo_free(d, b->ptr);
    b->ptr = 0;
    b->bytes = 0;
}
