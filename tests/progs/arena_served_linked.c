/* Exercises what arena mode promises a program linked with -lcuda; argv[1] picks the scenario:
 *
 *   families  every allocation family once: contents written and read back, whether the memory is
 *             VMM-backed (cuMemRetainAllocationHandle succeeds only for memory mapped from a
 *             cuMemCreate handle, never for the driver's cuMemAlloc or pool memory), pointers.
 *   queries   what cuMemGetAddressRange / cuPointerGetAttribute(s) answer for a block, printed so
 *             that a run without the shim (driver blocks) must print the same.
 *   meminfo   cuMemGetInfo free against the driver's own figure (SIMCUDA_VRAM - physical in use).
 *   hold      a held stream writes into a block it then frees; other streams allocate meanwhile.
 *   scatter   (SIMCUDA_VRAM=64MiB) frees every other 2 MiB block, then asks for 32 MiB.
 *   badfree   frees of an address nobody allocated, of an address inside a live block, twice.
 *   pool      allocations from a pool the program created (cuMemPoolCreate).
 *   midway    an arena allocation, then a cuMemCreate failure the arena cannot absorb, then more
 *             allocations; every block freed at the end.
 *   fork      a block made before fork; the child allocates, frees its own and the parent's.
 *
 * Lines are "NAME VALUE"; "count SYMBOL N" is the driver's own call counter (simcuda).
 */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/simcuda/simcuda.h"
#include "interpose_prog.h"

#define MIB ((size_t)1 << 20)

/* The per-thread-stream entry points, which cuda.h declares only for a whole program built with
 * CUDA_API_PER_THREAD_DEFAULT_STREAM; this one calls both forms. */
CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytes, CUstream s);
CUresult CUDAAPI cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                                              CUstream s);
CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream s);

static const char *const driver_symbols[] = {
    "cuMemAlloc_v2",   "cuMemAllocPitch_v2",           "cuMemAllocAsync",
    "cuMemAllocAsync_ptsz", "cuMemAllocFromPoolAsync", "cuMemAllocFromPoolAsync_ptsz",
    "cuMemFree_v2",    "cuMemFreeAsync",               "cuMemFreeAsync_ptsz",
    "cuMemCreate",     "cuMemMap",                     "cuMemAddressReserve",
    "cuMemGetAddressRange_v2", "cuPointerGetAttribute", "cuPointerGetAttributes",
    "cuStreamIsCapturing", "cuDeviceGetDefaultMemPool",
};

static void print_driver_counts(void)
{
    for (size_t i = 0; i < sizeof driver_symbols / sizeof *driver_symbols; i++)
        printf("count %s %lu\n", driver_symbols[i], simcuda_call_count(driver_symbols[i]));
}

/* 1 when the memory at p is mapped from a cuMemCreate handle (the arena's granules). */
static int vmm_backed(CUdeviceptr p)
{
    CUmemGenericAllocationHandle h;
    if (cuMemRetainAllocationHandle(&h, (void *)(uintptr_t)p) != CUDA_SUCCESS)
        return 0;
    CK(cuMemRelease(h));
    return 1;
}

/* Writes a pattern of `bytes` through the driver and reads it back: 1 when it survived. */
static int roundtrip(CUdeviceptr p, size_t bytes, unsigned char seed)
{
    unsigned char *in = malloc(bytes), *out = malloc(bytes);
    if (!in || !out)
        exit(1);
    for (size_t i = 0; i < bytes; i++)
        in[i] = (unsigned char)(seed + i * 7);
    CK(cuMemcpyHtoD(p, in, bytes));
    CK(cuMemcpyDtoH(out, p, bytes));
    int same = memcmp(in, out, bytes) == 0;
    free(in);
    free(out);
    return same;
}

/* Every byte of [p, p + bytes) equals v. */
static int all_bytes(CUdeviceptr p, size_t bytes, unsigned char v)
{
    unsigned char *out = malloc(bytes);
    if (!out)
        exit(1);
    CK(cuMemcpyDtoH(out, p, bytes));
    size_t i = 0;
    while (i < bytes && out[i] == v)
        i++;
    free(out);
    return i == bytes;
}

static void report(const char *api, CUdeviceptr p, size_t bytes, unsigned char seed)
{
    printf("data %s %d\n", api, roundtrip(p, bytes, seed));
    printf("vmm %s %d\n", api, vmm_backed(p));
    printf("ptr %s 0x%llx\n", api, (unsigned long long)p);
}

static void families(CUdevice dev)
{
    CUdeviceptr a, b, c, d, e, f;
    size_t pitch = 0;
    CK(cuMemAlloc(&a, 3 * MIB + 5));
    report("cuMemAlloc_v2", a, 3 * MIB + 5, 1);
    CK(cuMemAllocPitch(&b, &pitch, 1000, 30, 4));
    printf("pitch %zu\n", pitch);
    report("cuMemAllocPitch_v2", b, pitch * 30, 2);
    CUstream s;
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUmemoryPool pool;
    CK(cuDeviceGetDefaultMemPool(&pool, dev));
    CK(cuMemAllocAsync(&c, 700, s));
    CK(cuMemAllocAsync_ptsz(&d, 5 * MIB, 0));
    CK(cuMemAllocFromPoolAsync(&e, 4096, pool, s));
    CK(cuMemAllocFromPoolAsync_ptsz(&f, 3 * MIB, pool, 0));
    CK(cuStreamSynchronize(s));
    CK(cuStreamSynchronize(CU_STREAM_PER_THREAD));
    report("cuMemAllocAsync", c, 700, 3);
    report("cuMemAllocAsync_ptsz", d, 5 * MIB, 4);
    report("cuMemAllocFromPoolAsync", e, 4096, 5);
    report("cuMemAllocFromPoolAsync_ptsz", f, 3 * MIB, 6);
    CK(cuMemFree(a));
    CK(cuMemFree(b));
    CK(cuMemFreeAsync(c, s));
    CK(cuMemFreeAsync_ptsz(d, 0));
    CK(cuMemFreeAsync(e, s));
    CK(cuMemFreeAsync_ptsz(f, 0));
    CK(cuStreamSynchronize(s));
    CK(cuStreamSynchronize(CU_STREAM_PER_THREAD));
    CK(cuStreamDestroy(s));
}

static void print_attributes(const char *what, CUdeviceptr p, size_t bytes)
{
    CUdeviceptr base = 0;
    size_t size = 0;
    CK(cuMemGetAddressRange(&base, &size, p + bytes / 2));
    printf("%s range_base_is_ptr %d range_size %zu\n", what, base == p, size);
    unsigned type = 0;
    int ordinal = -1, managed = -1, mapped = -1;
    CUcontext ctx = NULL, cur = NULL;
    CUdeviceptr start = 0, dptr = 0;
    size_t rsize = 0;
    CK(cuCtxGetCurrent(&cur));
    CK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p + 1));
    CK(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p));
    CK(cuPointerGetAttribute(&ctx, CU_POINTER_ATTRIBUTE_CONTEXT, p));
    CK(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, p));
    CK(cuPointerGetAttribute(&mapped, CU_POINTER_ATTRIBUTE_MAPPED, p));
    CK(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, p + 3));
    CK(cuPointerGetAttribute(&rsize, CU_POINTER_ATTRIBUTE_RANGE_SIZE, p + 3));
    CK(cuPointerGetAttribute(&dptr, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, p + 3));
    printf("%s type %u ordinal %d ctx_is_current %d managed %d mapped %d\n", what, type, ordinal,
           ctx == cur, managed, mapped);
    printf("%s start_is_ptr %d range %zu dptr_is_arg %d\n", what, start == p, rsize, dptr == p + 3);
    CUpointer_attribute attrs[4] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                    CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                    CU_POINTER_ATTRIBUTE_RANGE_SIZE, CU_POINTER_ATTRIBUTE_CONTEXT};
    unsigned type2 = 0;
    int ordinal2 = -1;
    size_t rsize2 = 0;
    CUcontext ctx2 = NULL;
    void *data[4] = {&type2, &ordinal2, &rsize2, &ctx2};
    CK(cuPointerGetAttributes(4, attrs, data, p + 7));
    printf("%s attrs type %u ordinal %d range %zu ctx_is_current %d\n", what, type2, ordinal2,
           rsize2, ctx2 == cur);
}

static void queries(void)
{
    static const size_t sizes[] = {700, 200000, 3 * MIB + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        CUdeviceptr p;
        char what[32];
        snprintf(what, sizeof what, "size%zu", sizes[i]);
        CK(cuMemAlloc(&p, sizes[i]));
        print_attributes(what, p, sizes[i]);
        CK(cuMemFree(p));
        CUdeviceptr base = 0;
        size_t size = 0;
        printf("%s freed_range_error %d\n", what, (int)cuMemGetAddressRange(&base, &size, p));
    }
}

static size_t hooked_free(void)
{
    size_t free_b = 0, total_b = 0;
    CK(cuMemGetInfo(&free_b, &total_b));
    return free_b;
}

static void meminfo(void)
{
    size_t vram = 0;
    CK(cuDeviceTotalMem(&vram, 0));
    CUstream s;
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p, q;
    CK(cuMemAllocAsync(&p, 40 * MIB, s));
    CK(cuMemAllocAsync(&q, 1000, s));
    size_t in_use = simcuda_physical_in_use(0);
    printf("live free_is_device_free %d\n", hooked_free() == vram - in_use);
    CK(cuMemFreeAsync(p, s));
    CK(cuCtxSynchronize()); /* the freed block is idle now: its granules are free memory */
    in_use = simcuda_physical_in_use(0);
    size_t reported = hooked_free();
    printf("freed holds_granules %d\n", in_use >= 40 * MIB);
    /* The 40 MiB block's granules are free in the arena; the small one's page is not. */
    printf("freed arena_free_mib %zu\n", (reported - (vram - in_use)) / MIB);
    CK(cuMemFreeAsync(q, s));
    CK(cuStreamSynchronize(s));
    CK(cuStreamDestroy(s));
}

static void hold(void)
{
    const size_t n = 4 * MIB;
    CUstream s1, s2;
    CK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    CK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p, q, r;
    CK(cuMemAllocAsync(&p, n, s1));
    if (simcuda_hold_stream(s1) != 0)
        exit(1);
    CK(cuMemsetD8Async(p, 0xAB, n, s1)); /* queued, runs only after the release */
    CK(cuMemFreeAsync(p, s1));
    CK(cuMemAllocAsync(&q, n, s2)); /* another stream: must not get p's memory yet */
    CK(cuMemsetD8Async(q, 0x11, n, s2));
    CK(cuStreamSynchronize(s2));
    CK(cuMemAlloc(&r, n)); /* synchronous: idle memory for every stream */
    CK(cuMemsetD8(r, 0x22, n));
    printf("hold other_stream_got_freed_block %d\n", q == p);
    printf("hold sync_alloc_got_freed_block %d\n", r == p);
    if (simcuda_release_stream(s1) != 0)
        exit(1);
    CK(cuStreamSynchronize(s1));
    printf("hold other_stream_intact %d\n", all_bytes(q, n, 0x11));
    printf("hold sync_alloc_intact %d\n", all_bytes(r, n, 0x22));
    CK(cuMemFreeAsync(q, s2));
    CK(cuStreamSynchronize(s2));
    CK(cuMemFree(r));
    CK(cuStreamDestroy(s1));
    CK(cuStreamDestroy(s2));
}

static void scatter(void)
{
    enum { N = 30 };
    CUdeviceptr b[N];
    for (int i = 0; i < N; i++)
        CK(cuMemAlloc(&b[i], 2 * MIB));
    for (int i = 0; i < N; i += 2)
        CK(cuMemFree(b[i]));
    CUdeviceptr big;
    CUresult r = cuMemAlloc(&big, 32 * MIB);
    printf("scatter large %d\n", (int)r);
    if (r == CUDA_SUCCESS) {
        printf("scatter large_data %d\n", roundtrip(big, 32 * MIB, 9));
        CK(cuMemFree(big));
    }
    for (int i = 1; i < N; i += 2)
        CK(cuMemFree(b[i]));
}

static void badfree(void)
{
    CUdeviceptr p;
    CK(cuMemAlloc(&p, 3 * MIB));
    printf("free unknown %d\n", (int)cuMemFree((CUdeviceptr)0x7e0000001000ull));
    printf("free inside %d\n", (int)cuMemFree(p + 4096));
    printf("free async_inside %d\n", (int)cuMemFreeAsync(p + 4096, 0));
    CK(cuMemFree(p));
    printf("free twice %d\n", (int)cuMemFree(p));
}

static void pool(CUdevice dev)
{
    CUmemPoolProps props = {.allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
                            .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev}};
    CUmemoryPool mine;
    CK(cuMemPoolCreate(&mine, &props));
    CUstream s;
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p;
    CK(cuMemAllocFromPoolAsync(&p, 3 * MIB, mine, s));
    CK(cuStreamSynchronize(s));
    report("user_pool", p, 3 * MIB, 7);
    CK(cuMemFreeAsync(p, s));
    CK(cuStreamSynchronize(s));
    CK(cuStreamDestroy(s));
    CK(cuMemPoolDestroy(mine));
}

static void midway(void)
{
    CUdeviceptr before, after;
    CK(cuMemAlloc(&before, 3 * MIB));
    report("before", before, 3 * MIB, 11);
    /* The arena's next granule creation fails with an error it cannot absorb. */
    if (simcuda_fail_call("cuMemCreate", 1, CUDA_ERROR_NOT_PERMITTED) != 0)
        exit(1);
    CK(cuMemAlloc(&after, 16 * MIB));
    report("after", after, 16 * MIB, 12);
    printf("midway before_intact %d\n", all_bytes(before, 1, 11));
    CK(cuMemFree(before));
    CK(cuMemFree(after));
}

static void forked(void)
{
    CUdeviceptr p;
    CK(cuMemAlloc(&p, 3 * MIB));
    CK(cuMemsetD8(p, 0x5A, 3 * MIB));
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        exit(1);
    if (child == 0) {
        simcuda_reset_call_counts();
        CUdeviceptr q;
        CK(cuMemAlloc(&q, 3 * MIB));
        printf("child vmm %d\n", vmm_backed(q));
        printf("child free_own %d\n", (int)cuMemFree(q));
        printf("child free_parent %d\n", (int)cuMemFree(p));
        printf("child count_alloc %lu\n", simcuda_call_count("cuMemAlloc_v2"));
        printf("child count_free %lu\n", simcuda_call_count("cuMemFree_v2"));
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        exit(1);
    printf("parent intact %d\n", all_bytes(p, 3 * MIB, 0x5A));
    CK(cuMemFree(p));
    CUdeviceptr r;
    CK(cuMemAlloc(&r, 3 * MIB));
    printf("parent vmm %d\n", vmm_backed(r));
    CK(cuMemFree(r));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCENARIO\n", argv[0]);
        return 2;
    }
    CUdevice dev = setup_primary();
    const char *s = argv[1];
    if (!strcmp(s, "families"))
        families(dev);
    else if (!strcmp(s, "queries"))
        queries();
    else if (!strcmp(s, "meminfo"))
        meminfo();
    else if (!strcmp(s, "hold"))
        hold();
    else if (!strcmp(s, "scatter"))
        scatter();
    else if (!strcmp(s, "badfree"))
        badfree();
    else if (!strcmp(s, "pool"))
        pool(dev);
    else if (!strcmp(s, "midway"))
        midway();
    else if (!strcmp(s, "fork"))
        forked();
    else {
        fprintf(stderr, "unknown scenario %s\n", s);
        return 2;
    }
    print_driver_counts();
    return 0;
}
