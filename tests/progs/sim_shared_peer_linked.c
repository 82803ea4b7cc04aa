/* Another process on a shared simulated GPU (SIMCUDA_SHARED), driven line by line by
 * tests/test_sim_shared.c: prints "ready" once it has a context, then answers each command on
 * stdin with one line on stdout:
 *   alloc N    cuMemAlloc_v2 of N bytes    -> "ok" or "err CODE"
 *   create N   cuMemCreate of N bytes      -> "ok" or "err CODE"
 *   free       frees everything it holds   -> "ok"
 *   info       cuMemGetInfo_v2             -> "free F total T"
 *   exit       exits with status 0
 * cuInit failing prints "init CODE" and exits 1. */
#include <cuda.h>
#include <stdio.h>
#include <string.h>

#define MAX_HELD 64

static CUdeviceptr allocs[MAX_HELD];
static CUmemGenericAllocationHandle handles[MAX_HELD];
static int nallocs, nhandles;

static CUresult do_create(size_t n)
{
    if (nhandles == MAX_HELD)
        return CUDA_ERROR_INVALID_VALUE;
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {CU_MEM_LOCATION_TYPE_DEVICE, 0}};
    CUresult rc = cuMemCreate(&handles[nhandles], n, &prop, 0);
    nhandles += rc == CUDA_SUCCESS;
    return rc;
}

static CUresult do_alloc(size_t n)
{
    if (nallocs == MAX_HELD)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = cuMemAlloc_v2(&allocs[nallocs], n);
    nallocs += rc == CUDA_SUCCESS;
    return rc;
}

static void free_all(void)
{
    while (nallocs > 0)
        cuMemFree_v2(allocs[--nallocs]);
    while (nhandles > 0)
        cuMemRelease(handles[--nhandles]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    CUcontext ctx;
    CUresult rc = cuInit(0);
    if (rc == CUDA_SUCCESS)
        rc = cuDevicePrimaryCtxRetain(&ctx, 0);
    if (rc == CUDA_SUCCESS)
        rc = cuCtxSetCurrent(ctx);
    if (rc != CUDA_SUCCESS) {
        printf("init %d\n", (int)rc);
        return 1;
    }
    printf("ready\n");
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = 0;
        if (sscanf(line, "alloc %zu", &n) == 1 || sscanf(line, "create %zu", &n) == 1) {
            rc = line[0] == 'a' ? do_alloc(n) : do_create(n);
            if (rc == CUDA_SUCCESS)
                printf("ok\n");
            else
                printf("err %d\n", (int)rc);
        } else if (strcmp(line, "free\n") == 0) {
            free_all();
            printf("ok\n");
        } else if (strcmp(line, "info\n") == 0) {
            size_t free_b = 0, total = 0;
            cuMemGetInfo_v2(&free_b, &total);
            printf("free %zu total %zu\n", free_b, total);
        } else if (strcmp(line, "exit\n") == 0) {
            return 0;
        } else {
            printf("unknown command\n");
        }
    }
    return 0;
}
