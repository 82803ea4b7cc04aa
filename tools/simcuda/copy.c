/* simcuda copies and memsets: cuMemcpy*, cuMemsetD8/D16/D32 and their async and per-thread forms.
 *
 * Invariants:
 * - Every copy is rows of bytes (1D copies are one row); CUDA arrays are not simulated.
 * - Arguments are validated when the call is made (bad or unmapped device ranges return
 *   CUDA_ERROR_INVALID_VALUE); device addresses are resolved again when the work runs in stream
 *   order, as the GPU would see the mapping at that time.
 * - Synchronous forms are queued on the legacy (or per-thread) default stream and waited for.
 * - Host memory is read and written when the work runs, i.e. with pinned-memory semantics.
 */
#include "sim.h"

#include <string.h>

enum need { ANY = 0, DEVICE = 1 };

/* `height` rows of `len` bytes; row r is at dst + r * dst_pitch and src + r * src_pitch. */
struct copy_args {
    uintptr_t dst, src;
    size_t len;
    enum need dst_need, src_need;
    size_t height, dst_pitch, src_pitch;
};

struct fill_args {
    uintptr_t dst;
    size_t pitch, width, height; /* in bytes; height 1 for 1D */
    uint32_t value;
    size_t elem_size;
};

static CUresult copy_row(uintptr_t dst_addr, uintptr_t src_addr, const struct copy_args *a)
{
    struct vs_sim_side dst, src;
    CUresult rc = vs_sim_side_resolve(dst_addr, a->len, true, a->dst_need == DEVICE, &dst);
    if (rc != CUDA_SUCCESS)
        return rc;
    rc = vs_sim_side_resolve(src_addr, a->len, false, a->src_need == DEVICE, &src);
    if (rc == CUDA_SUCCESS) {
        if (vs_sim_side_copy(&dst, &src, a->len) != 0)
            rc = CUDA_ERROR_UNKNOWN;
        vs_sim_side_free(&src);
    }
    vs_sim_side_free(&dst);
    return rc;
}

static CUresult copy_now(const struct copy_args *a)
{
    CUresult rc = CUDA_SUCCESS;
    for (size_t r = 0; r < a->height && rc == CUDA_SUCCESS; r++)
        rc = copy_row(a->dst + r * a->dst_pitch, a->src + r * a->src_pitch, a);
    return rc;
}

static void run_copy(struct vs_sim_op *op)
{
    const struct copy_args *a = op->payload;
    CUresult rc = copy_now(a);
    if (rc != CUDA_SUCCESS)
        vs_sim_log(VS_SIM_LOG_WARN, "copy of %zu bytes %#lx -> %#lx failed when it ran: %s",
                   a->len, (unsigned long)a->src, (unsigned long)a->dst, vs_sim_error_name(rc));
}

static CUresult validate(uintptr_t addr, size_t len, bool write, enum need need)
{
    struct vs_sim_side side;
    CUresult rc = vs_sim_side_resolve(addr, len, write, need == DEVICE, &side);
    vs_sim_side_free(&side);
    return rc;
}

static CUresult copy(struct copy_args a, CUstream stream, bool per_thread, bool async)
{
    VS_SIM_REQUIRE_INIT();
    if (a.len == 0 || a.height == 0)
        return CUDA_SUCCESS;
    for (size_t r = 0; r < a.height; r++) {
        CUresult rc = validate(a.dst + r * a.dst_pitch, a.len, true, a.dst_need);
        if (rc == CUDA_SUCCESS)
            rc = validate(a.src + r * a.src_pitch, a.len, false, a.src_need);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    struct vs_sim_op *op = vs_sim_op_new(run_copy, NULL, sizeof a);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(op->payload, &a, sizeof a);
    return vs_sim_submit_on(async ? stream : NULL, per_thread, op, !async);
}

static CUresult fill_now(const struct fill_args *a)
{
    for (size_t row = 0; row < a->height; row++) {
        struct vs_sim_side dst;
        CUresult rc = vs_sim_side_resolve(a->dst + row * a->pitch, a->width, true, true, &dst);
        if (rc != CUDA_SUCCESS)
            return rc;
        int io = vs_sim_side_fill(&dst, a->value, a->elem_size, a->width);
        vs_sim_side_free(&dst);
        if (io != 0)
            return CUDA_ERROR_UNKNOWN;
    }
    return CUDA_SUCCESS;
}

static void run_fill(struct vs_sim_op *op)
{
    const struct fill_args *a = op->payload;
    CUresult rc = fill_now(a);
    if (rc != CUDA_SUCCESS)
        vs_sim_log(VS_SIM_LOG_WARN, "memset of %zu bytes at %#lx failed when it ran: %s",
                   a->width * a->height, (unsigned long)a->dst, vs_sim_error_name(rc));
}

static CUresult fill(struct fill_args a, CUstream stream, bool per_thread, bool async)
{
    VS_SIM_REQUIRE_INIT();
    if (a.dst % a.elem_size || (a.height > 1 && (a.pitch % a.elem_size || a.pitch < a.width)))
        return CUDA_ERROR_INVALID_VALUE;
    if (a.width == 0 || a.height == 0)
        return CUDA_SUCCESS;
    for (size_t row = 0; row < a.height; row++) {
        CUresult rc = validate(a.dst + row * a.pitch, a.width, true, DEVICE);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    struct vs_sim_op *op = vs_sim_op_new(run_fill, NULL, sizeof a);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(op->payload, &a, sizeof a);
    return vs_sim_submit_on(async ? stream : NULL, per_thread, op, !async);
}

/* Entry points: each pair (plain, per-thread) shares one body. */
#define COPY_ARGS(dst_, src_, n_, dneed, sneed)                                                    \
    ((struct copy_args){(uintptr_t)(dst_), (uintptr_t)(src_), (n_), (dneed), (sneed), 1, 0, 0})

#define SYNC_COPY(name, dst_type, src_type, dneed, sneed)                                          \
    CUresult CUDAAPI name(dst_type dst, src_type src, size_t n)                                    \
    {                                                                                              \
        VS_SIM_ENTER(#name);                                                                       \
        return copy(COPY_ARGS(dst, src, n, dneed, sneed), NULL, false, false);                     \
    }                                                                                              \
    CUresult CUDAAPI name##_ptds(dst_type dst, src_type src, size_t n)                             \
    {                                                                                              \
        VS_SIM_ENTER(#name "_ptds");                                                               \
        return copy(COPY_ARGS(dst, src, n, dneed, sneed), NULL, true, false);                      \
    }

#define ASYNC_COPY(name, dst_type, src_type, dneed, sneed)                                         \
    CUresult CUDAAPI name(dst_type dst, src_type src, size_t n, CUstream s)                        \
    {                                                                                              \
        VS_SIM_ENTER(#name);                                                                       \
        return copy(COPY_ARGS(dst, src, n, dneed, sneed), s, false, true);                         \
    }                                                                                              \
    CUresult CUDAAPI name##_ptsz(dst_type dst, src_type src, size_t n, CUstream s)                 \
    {                                                                                              \
        VS_SIM_ENTER(#name "_ptsz");                                                               \
        return copy(COPY_ARGS(dst, src, n, dneed, sneed), s, true, true);                          \
    }

SYNC_COPY(cuMemcpy, CUdeviceptr, CUdeviceptr, ANY, ANY)
SYNC_COPY(cuMemcpyHtoD_v2, CUdeviceptr, const void *, DEVICE, ANY)
SYNC_COPY(cuMemcpyDtoH_v2, void *, CUdeviceptr, ANY, DEVICE)
SYNC_COPY(cuMemcpyDtoD_v2, CUdeviceptr, CUdeviceptr, DEVICE, DEVICE)
ASYNC_COPY(cuMemcpyAsync, CUdeviceptr, CUdeviceptr, ANY, ANY)
ASYNC_COPY(cuMemcpyHtoDAsync_v2, CUdeviceptr, const void *, DEVICE, ANY)
ASYNC_COPY(cuMemcpyDtoHAsync_v2, void *, CUdeviceptr, ANY, DEVICE)
ASYNC_COPY(cuMemcpyDtoDAsync_v2, CUdeviceptr, CUdeviceptr, DEVICE, DEVICE)

/* ---- 2D copies ------------------------------------------------------------------------------- */

/* Start address and requirement of one side of a CUDA_MEMCPY2D; arrays are not simulated. */
static CUresult side_2d(CUmemorytype type, const void *host, CUdeviceptr device, size_t x, size_t y,
                        size_t pitch, uintptr_t *addr, enum need *need)
{
    switch (type) {
    case CU_MEMORYTYPE_HOST: *addr = (uintptr_t)host; *need = ANY; break;
    case CU_MEMORYTYPE_DEVICE: *addr = (uintptr_t)device; *need = DEVICE; break;
    case CU_MEMORYTYPE_UNIFIED: *addr = (uintptr_t)device; *need = ANY; break;
    case CU_MEMORYTYPE_ARRAY: return CUDA_ERROR_NOT_SUPPORTED;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    *addr += y * pitch + x;
    return CUDA_SUCCESS;
}

static CUresult copy_2d(const CUDA_MEMCPY2D *c, CUstream stream, bool per_thread, bool async)
{
    VS_SIM_REQUIRE_INIT();
    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    struct copy_args a = {.len = c->WidthInBytes, .height = c->Height,
                          .dst_pitch = c->dstPitch, .src_pitch = c->srcPitch};
    CUresult rc = side_2d(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstXInBytes, c->dstY,
                          c->dstPitch, &a.dst, &a.dst_need);
    if (rc == CUDA_SUCCESS)
        rc = side_2d(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcXInBytes, c->srcY,
                     c->srcPitch, &a.src, &a.src_need);
    if (rc == CUDA_ERROR_NOT_SUPPORTED) {
        static bool logged;
        return vs_sim_unsupported("cuMemcpy2D with CUDA arrays", &logged);
    }
    if (rc != CUDA_SUCCESS)
        return rc;
    if (c->Height > 1 && (c->dstPitch < c->WidthInBytes + c->dstXInBytes ||
                          c->srcPitch < c->WidthInBytes + c->srcXInBytes))
        return CUDA_ERROR_INVALID_VALUE;
    return copy(a, stream, per_thread, async);
}

#define COPY_2D(name)                                                                      \
    CUresult CUDAAPI name(const CUDA_MEMCPY2D *pCopy)                                              \
    {                                                                                              \
        VS_SIM_ENTER(#name);                                                                       \
        return copy_2d(pCopy, NULL, false, false);                                                 \
    }                                                                                              \
    CUresult CUDAAPI name##_ptds(const CUDA_MEMCPY2D *pCopy)                                       \
    {                                                                                              \
        VS_SIM_ENTER(#name "_ptds");                                                               \
        return copy_2d(pCopy, NULL, true, false);                                                  \
    }

COPY_2D(cuMemcpy2D_v2)
COPY_2D(cuMemcpy2DUnaligned_v2)

CUresult CUDAAPI cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
    VS_SIM_ENTER("cuMemcpy2DAsync_v2");
    return copy_2d(pCopy, hStream, false, true);
}

CUresult CUDAAPI cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
    VS_SIM_ENTER("cuMemcpy2DAsync_v2_ptsz");
    return copy_2d(pCopy, hStream, true, true);
}

/* ---- peer copies: one address space, so contexts are only checked ---------------------------- */

static CUresult copy_peer(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx,
                          size_t n, CUstream stream, bool per_thread, bool async)
{
    VS_SIM_REQUIRE_INIT();
    if (!vs_sim_ctx_valid((struct vs_sim_ctx *)dst_ctx) ||
        !vs_sim_ctx_valid((struct vs_sim_ctx *)src_ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    return copy(COPY_ARGS(dst, src, n, DEVICE, DEVICE), stream, per_thread, async);
}

CUresult CUDAAPI cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                              CUcontext srcContext, size_t ByteCount)
{
    VS_SIM_ENTER("cuMemcpyPeer");
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, NULL, false, false);
}

CUresult CUDAAPI cuMemcpyPeer_ptds(CUdeviceptr dstDevice, CUcontext dstContext,
                                   CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount)
{
    VS_SIM_ENTER("cuMemcpyPeer_ptds");
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, NULL, true, false);
}

CUresult CUDAAPI cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext,
                                   CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount,
                                   CUstream hStream)
{
    VS_SIM_ENTER("cuMemcpyPeerAsync");
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream, false, true);
}

CUresult CUDAAPI cuMemcpyPeerAsync_ptsz(CUdeviceptr dstDevice, CUcontext dstContext,
                                        CUdeviceptr srcDevice, CUcontext srcContext,
                                        size_t ByteCount, CUstream hStream)
{
    VS_SIM_ENTER("cuMemcpyPeerAsync_ptsz");
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream, true, true);
}

/* ---- memsets --------------------------------------------------------------------------------- */

#define FILL_ARGS(dst_, value_, elem_, n_)                                                         \
    ((struct fill_args){(uintptr_t)(dst_), 0, (n_) * (elem_), 1, (value_), (elem_)})

#define MEMSET(name, value_type, elem)                                                             \
    CUresult CUDAAPI name##_v2(CUdeviceptr dst, value_type v, size_t n)                            \
    {                                                                                              \
        VS_SIM_ENTER(#name "_v2");                                                                 \
        return fill(FILL_ARGS(dst, v, elem, n), NULL, false, false);                               \
    }                                                                                              \
    CUresult CUDAAPI name##_v2_ptds(CUdeviceptr dst, value_type v, size_t n)                       \
    {                                                                                              \
        VS_SIM_ENTER(#name "_v2_ptds");                                                            \
        return fill(FILL_ARGS(dst, v, elem, n), NULL, true, false);                                \
    }                                                                                              \
    CUresult CUDAAPI name##Async(CUdeviceptr dst, value_type v, size_t n, CUstream s)              \
    {                                                                                              \
        VS_SIM_ENTER(#name "Async");                                                               \
        return fill(FILL_ARGS(dst, v, elem, n), s, false, true);                                   \
    }                                                                                              \
    CUresult CUDAAPI name##Async_ptsz(CUdeviceptr dst, value_type v, size_t n, CUstream s)         \
    {                                                                                              \
        VS_SIM_ENTER(#name "Async_ptsz");                                                          \
        return fill(FILL_ARGS(dst, v, elem, n), s, true, true);                                    \
    }

MEMSET(cuMemsetD8, unsigned char, 1)
MEMSET(cuMemsetD16, unsigned short, 2)
MEMSET(cuMemsetD32, unsigned int, 4)

#define FILL2D_ARGS(dst_, pitch_, value_, elem_, w_, h_)                                           \
    ((struct fill_args){(uintptr_t)(dst_), (pitch_), (w_) * (elem_), (h_), (value_), (elem_)})

#define MEMSET2D(name, value_type, elem)                                                           \
    CUresult CUDAAPI name##_v2(CUdeviceptr dst, size_t pitch, value_type v, size_t w, size_t h)    \
    {                                                                                              \
        VS_SIM_ENTER(#name "_v2");                                                                 \
        return fill(FILL2D_ARGS(dst, pitch, v, elem, w, h), NULL, false, false);                   \
    }                                                                                              \
    CUresult CUDAAPI name##_v2_ptds(CUdeviceptr dst, size_t pitch, value_type v, size_t w,         \
                                    size_t h)                                                      \
    {                                                                                              \
        VS_SIM_ENTER(#name "_v2_ptds");                                                            \
        return fill(FILL2D_ARGS(dst, pitch, v, elem, w, h), NULL, true, false);                    \
    }                                                                                              \
    CUresult CUDAAPI name##Async(CUdeviceptr dst, size_t pitch, value_type v, size_t w, size_t h,  \
                                 CUstream s)                                                       \
    {                                                                                              \
        VS_SIM_ENTER(#name "Async");                                                               \
        return fill(FILL2D_ARGS(dst, pitch, v, elem, w, h), s, false, true);                       \
    }                                                                                              \
    CUresult CUDAAPI name##Async_ptsz(CUdeviceptr dst, size_t pitch, value_type v, size_t w,       \
                                      size_t h, CUstream s)                                        \
    {                                                                                              \
        VS_SIM_ENTER(#name "Async_ptsz");                                                          \
        return fill(FILL2D_ARGS(dst, pitch, v, elem, w, h), s, true, true);                        \
    }

MEMSET2D(cuMemsetD2D8, unsigned char, 1)
MEMSET2D(cuMemsetD2D16, unsigned short, 2)
MEMSET2D(cuMemsetD2D32, unsigned int, 4)
