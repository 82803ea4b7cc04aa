/* 8 threads allocate and free while 4 threads begin and end stages (each its own name,
 * retrying an end that another thread's stage blocks). At the end each allocating thread keeps
 * LIVE blocks of BLOCK bytes; prints "begins N", "ends N", "bad N" (unexpected return codes)
 * and the stats. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "stages_prog.h"

#define ALLOCATORS 8
#define STAGERS 4
#define ROUNDS 400
#define LIVE 4
#define BLOCK (64u * 1024u)

static CUcontext ctx;
static atomic_long begins, ends, bad;
static atomic_bool stop;

static void *allocator(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    CK(cuCtxSetCurrent(ctx));
    CUdeviceptr live[LIVE] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        unsigned i = (seed = seed * 1103515245u + 12345u) >> 16 & (LIVE - 1);
        if (live[i])
            CK(cuMemFree(live[i]));
        CK(cuMemAlloc(&live[i], BLOCK));
    }
    for (unsigned i = 0; i < LIVE; i++)
        if (!live[i])
            CK(cuMemAlloc(&live[i], BLOCK));
    return NULL;
}

static void *stager(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "phase%d", (int)(uintptr_t)arg);
    while (!atomic_load(&stop)) {
        int rc = vs_api.stage_begin(name);
        if (rc != 0) {
            atomic_fetch_add(&bad, rc != VRAMSHIM_EDEPTH);
            continue;
        }
        atomic_fetch_add(&begins, 1);
        while ((rc = vs_api.stage_end(name)) == VRAMSHIM_EMISMATCH)
            ;
        atomic_fetch_add(rc == 0 ? &ends : &bad, 1);
    }
    return NULL;
}

int main(void)
{
    vs_api_lookup();
    ctx = vs_prog_context();
    pthread_t a[ALLOCATORS], s[STAGERS];
    for (int i = 0; i < STAGERS; i++)
        pthread_create(&s[i], NULL, stager, (void *)(uintptr_t)i);
    for (int i = 0; i < ALLOCATORS; i++)
        pthread_create(&a[i], NULL, allocator, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < ALLOCATORS; i++)
        pthread_join(a[i], NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < STAGERS; i++)
        pthread_join(s[i], NULL);
    printf("begins %ld\nends %ld\nbad %ld\n", atomic_load(&begins), atomic_load(&ends),
           atomic_load(&bad));
    printf("live %u\n", ALLOCATORS * LIVE * BLOCK);
    vs_print_stats();
    return 0;
}
