/* simcuda cuMemAlloc packing: small requests share 2 MiB pages, as on the real driver, so a
 * pass-through baseline is not charged 2 MiB per bias tensor. */
#include "test_sim_common.h"

#include <pthread.h>
#include <string.h>

#define SMALL 512
#define PER_PAGE (GRANULE / SMALL)

static void vram_64m_taken_16m(void)
{
    setenv("SIMCUDA_VRAM", "64MiB", 1);
    setenv("SIMCUDA_VRAM_TAKEN", "16MiB", 1);
}

static int by_address(const void *a, const void *b)
{
    CUdeviceptr x = *(const CUdeviceptr *)a, y = *(const CUdeviceptr *)b;
    return x < y ? -1 : x > y;
}

Test(sim_packing, small_allocations_share_a_page_and_keep_their_own_range)
{
    sim_start();
    enum { N = 1000 };
    static CUdeviceptr p[N];
    for (int i = 0; i < N; i++) {
        CU_OK(cuMemAlloc_v2(&p[i], SMALL - (size_t)(i % 3)));
        memset((void *)p[i], i & 0xff, SMALL - (size_t)(i % 3));
    }
    cr_assert_eq(simcuda_physical_in_use(0), GRANULE, "1000 x 512 B fit one 2 MiB page");
    for (int i = 0; i < N; i++) {
        cr_assert_eq(p[i] % 512, 0, "512-byte aligned");
        CUdeviceptr base;
        size_t size;
        CU_OK(cuMemGetAddressRange_v2(&base, &size, p[i] + 100));
        cr_assert_eq(base, p[i]);
        cr_assert_eq(size, SMALL - (size_t)(i % 3), "the block's own size, not the page's");
        cr_assert_eq(((unsigned char *)p[i])[SMALL - 3], i & 0xff, "neighbours did not overlap");
    }
    qsort(p, N, sizeof *p, by_address);
    for (int i = 1; i < N; i++)
        cr_assert_geq(p[i] - p[i - 1], SMALL);
    for (int i = 0; i < N; i++)
        CU_OK(cuMemFree_v2(p[i]));
    cr_assert_eq(simcuda_physical_in_use(0), 0, "an empty page is released");
}

Test(sim_packing, freed_space_is_reused_before_a_new_page)
{
    sim_start();
    static CUdeviceptr p[PER_PAGE];
    for (size_t i = 0; i < PER_PAGE; i++)
        CU_OK(cuMemAlloc_v2(&p[i], SMALL));
    cr_assert_eq(simcuda_physical_in_use(0), GRANULE, "exactly one full page");
    CUdeviceptr extra, again;
    CU_OK(cuMemAlloc_v2(&extra, 1));
    cr_assert_eq(simcuda_physical_in_use(0), 2 * GRANULE, "a full page makes a new one");
    CU_OK(cuMemFree_v2(extra));
    cr_assert_eq(simcuda_physical_in_use(0), GRANULE);
    CU_OK(cuMemFree_v2(p[100]));
    CU_OK(cuMemFree_v2(p[101]));
    CU_OK(cuMemAlloc_v2(&again, 2 * SMALL));
    cr_assert(again == p[100] || again == p[101], "the two freed neighbours coalesce");
    cr_assert_eq(simcuda_physical_in_use(0), GRANULE);
    CUdeviceptr big;
    CU_OK(cuMemAlloc_v2(&big, MiB));
    cr_assert_eq(simcuda_physical_in_use(0), 2 * GRANULE, "1 MiB and more gets its own granule");
    CU_OK(cuMemFree_v2(big));
}

Test(sim_packing, free_space_of_a_page_is_not_an_allocation)
{
    sim_start();
    CUdeviceptr a, b;
    CU_OK(cuMemAlloc_v2(&a, 1000));
    CU_OK(cuMemAlloc_v2(&b, 1000));
    CU_OK(cuMemFree_v2(a));
    CUdeviceptr base;
    size_t size;
    cr_assert_eq(cuMemGetAddressRange_v2(&base, &size, a), CUDA_ERROR_NOT_FOUND);
    cr_assert_eq(cuMemFree_v2(a), CUDA_ERROR_INVALID_VALUE, "double free inside a shared page");
    CUcontext c;
    cr_assert_eq(cuPointerGetAttribute(&c, CU_POINTER_ATTRIBUTE_CONTEXT, a),
                 CUDA_ERROR_INVALID_VALUE);
    CU_OK(cuPointerGetAttribute(&c, CU_POINTER_ATTRIBUTE_CONTEXT, b + 999));
}

Test(sim_packing, memset_of_a_block_leaves_its_neighbours_alone)
{
    sim_start();
    CUdeviceptr p[20];
    for (int i = 0; i < 20; i++) {
        CU_OK(cuMemAlloc_v2(&p[i], SMALL));
        memset((void *)p[i], 0x5a, SMALL);
    }
    qsort(p, 20, sizeof *p, by_address);
    CU_OK(cuMemsetD8_v2(p[10], 0, SMALL));
    CU_OK(cuMemsetD8_v2(p[11], 0xc3, SMALL));
    for (int i = 0; i < 20; i++)
        for (size_t k = 0; k < SMALL; k += 97) {
            unsigned char want = i == 10 ? 0 : i == 11 ? 0xc3 : 0x5a;
            cr_assert_eq(((unsigned char *)p[i])[k], want, "block %d byte %zu", i, k);
        }
}

Test(sim_packing, out_of_memory_exactly_at_capacity, .init = vram_64m_taken_16m)
{
    sim_start();
    /* 48 MiB free = 24 granules: 23 large allocations and one page of small ones. */
    CUdeviceptr large[23], extra;
    static CUdeviceptr small[PER_PAGE];
    for (int i = 0; i < 23; i++)
        CU_OK(cuMemAlloc_v2(&large[i], GRANULE));
    for (size_t i = 0; i < PER_PAGE; i++)
        CU_OK(cuMemAlloc_v2(&small[i], SMALL));
    size_t free_b, total_b;
    CU_OK(cuMemGetInfo_v2(&free_b, &total_b));
    cr_assert_eq(free_b, 0);
    cr_assert_eq(cuMemAlloc_v2(&extra, 1), CUDA_ERROR_OUT_OF_MEMORY, "the page is full");
    CU_OK(cuMemFree_v2(small[7]));
    CU_OK(cuMemAlloc_v2(&extra, SMALL));
    cr_assert_eq(extra, small[7], "the freed slot fits without new memory");
    cr_assert_eq(cuMemAlloc_v2(&extra, 1), CUDA_ERROR_OUT_OF_MEMORY);
}

/* Threads allocating small blocks at once share pages without handing out overlapping memory. */
struct worker {
    CUcontext ctx;
    unsigned char tag;
    int failures;
};

static void *churn(void *arg)
{
    struct worker *w = arg;
    enum { LIVE = 64, ROUNDS = 1500 };
    CUdeviceptr live[LIVE] = {0};
    size_t sizes[LIVE] = {0};
    CUstream s;
    if (cuCtxSetCurrent(w->ctx) != CUDA_SUCCESS ||
        cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
        w->failures++;
        return NULL;
    }
    for (int r = 0; r < ROUNDS; r++) {
        int k = (r * 7 + w->tag) % LIVE;
        bool pooled = k % 2;
        if (live[k]) {
            for (size_t i = 0; i < sizes[k]; i += 61)
                w->failures += ((unsigned char *)live[k])[i] != w->tag;
            w->failures += (pooled ? cuMemFreeAsync(live[k], s) : cuMemFree_v2(live[k])) !=
                           CUDA_SUCCESS;
        }
        sizes[k] = 100 + (size_t)(r % 5) * 700;
        CUresult rc = pooled ? cuMemAllocAsync(&live[k], sizes[k], s)
                             : cuMemAlloc_v2(&live[k], sizes[k]);
        w->failures += rc != CUDA_SUCCESS;
        memset((void *)live[k], w->tag, sizes[k]);
    }
    for (int k = 0; k < LIVE; k++)
        w->failures += (k % 2 ? cuMemFreeAsync(live[k], s) : cuMemFree_v2(live[k])) != CUDA_SUCCESS;
    w->failures += cuStreamSynchronize(s) != CUDA_SUCCESS;
    w->failures += cuStreamDestroy_v2(s) != CUDA_SUCCESS;
    return NULL;
}

Test(sim_packing, concurrent_small_allocations_never_overlap)
{
    CUcontext ctx = sim_start();
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.ctx = ctx, .tag = (unsigned char)(0x10 + i)};
        cr_assert_eq(pthread_create(&t[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].failures, 0, "thread %d: %d failed checks", i, w[i].failures);
    }
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    CU_OK(cuMemPoolTrimTo(pool, 0));
    cr_assert_eq(simcuda_physical_in_use(0), 0, "every page and chunk was given back");
}
