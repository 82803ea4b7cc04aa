/* Arena mode keeps the driver's safety promises through the hooks: a block freed on a stream whose
 * queued work has not run is not handed to anyone else, scattered frees still serve one large
 * request, and 8 threads allocating concurrently get every address exactly once.
 */
#include <uthash.h>

#include "interpose_arena_harness.h"

Test(interpose_arena_safety, block_freed_on_a_held_stream_is_not_reused_early)
{
    struct vs_run r = vs_run_scenario("hold", 1, NULL);
    cr_assert_eq(vs_output_number(r.out, "count", "cuMemAllocAsync"), 0,
                 "the driver served the allocations; the test proves nothing about the arena");
    cr_expect_eq(vs_output_number(r.out, "hold", "other_stream_got_freed_block"), 0);
    cr_expect_eq(vs_output_number(r.out, "hold", "sync_alloc_got_freed_block"), 0);
    cr_expect_eq(vs_output_number(r.out, "hold", "other_stream_intact"), 1,
                 "the held stream's queued write landed in another stream's block");
    cr_expect_eq(vs_output_number(r.out, "hold", "sync_alloc_intact"), 1,
                 "the held stream's queued write landed in a synchronous allocation");
    vs_run_free(&r);
}

/* 64 MiB device, 30 blocks of 2 MiB, every other one freed: 30 MiB live, 4 MiB left on the device,
 * so 32 MiB fit only by stitching the 15 scattered free granules together. */
Test(interpose_arena_safety, scattered_frees_serve_one_large_request)
{
    const char *env[] = {"SIMCUDA_VRAM=64MiB", NULL};
    struct vs_run r = vs_run_scenario("scatter", 1, env);
    cr_expect_eq(vs_output_number(r.out, "scatter", "large"), CUDA_SUCCESS, "%s", r.err);
    cr_expect_eq(vs_output_number(r.out, "scatter", "large_data"), 1);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemAlloc_v2"), 0);
    vs_run_free(&r);
}

struct live_ptr {
    unsigned long long ptr;
    UT_hash_handle hh;
};

/* Streams through a trace: no address is handed out while it is live, every free names a live
 * address. Returns the number of alloc events; *left gets the addresses live at the end. */
static long replay_addresses(const char *path, long *left)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "no trace %s", path);
    struct live_ptr *set = NULL, *l, *tmp;
    char *line = NULL;
    size_t cap = 0;
    long allocs = 0, lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        json_t *e = json_loads(line, 0, NULL);
        cr_assert(e, "%s:%ld: not JSON", path, lineno);
        const char *ev = vs_str(e, "ev");
        unsigned long long p = strtoull(vs_str(e, "ptr"), NULL, 16);
        if (!strcmp(ev, "alloc")) {
            HASH_FIND(hh, set, &p, sizeof p, l);
            cr_assert_null(l, "%s:%ld: 0x%llx handed out while live", path, lineno, p);
            l = malloc(sizeof *l);
            l->ptr = p;
            HASH_ADD(hh, set, ptr, sizeof p, l);
            allocs++;
        } else if (!strcmp(ev, "free")) {
            HASH_FIND(hh, set, &p, sizeof p, l);
            cr_assert_not_null(l, "%s:%ld: free of 0x%llx, not live", path, lineno, p);
            HASH_DEL(set, l);
            free(l);
        }
        json_decref(e);
    }
    free(line);
    fclose(f);
    *left = HASH_COUNT(set);
    HASH_ITER(hh, set, l, tmp)
    {
        HASH_DEL(set, l);
        free(l);
    }
    return allocs;
}

Test(interpose_arena_safety, eight_threads_get_every_address_exactly_once, .timeout = 60)
{
    char path[256], env_trace[300];
    vs_trace_path(path, sizeof path, "arena_threads");
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", path);
    const char *env[] = {env_trace, "VS_SECONDS=0.5", "VRAMSHIM_TRACE_STACKS=0", NULL};
    struct vs_run r = vs_run_prog(VS_PROG("interpose_threads_linked"), 1, env);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    long called = 0;
    const char *apis[] = {"cuMemAlloc_v2", "cuMemFree_v2", "cuMemAllocAsync", "cuMemFreeAsync"};
    for (int i = 0; i < 4; i++) {
        long n = vs_output_number(r.out, "called", apis[i]);
        cr_expect_gt(n, 20, "too few %s calls for a concurrency test", apis[i]);
        cr_expect_eq(vs_output_number(r.out, "count", apis[i]), 0, "%s reached the driver",
                     apis[i]);
        if (i % 2 == 0)
            called += n;
    }
    long left = -1;
    cr_expect_eq(replay_addresses(path, &left), called, "alloc events != allocations made");
    cr_expect_eq(left, 0, "allocations left live at exit");
    cr_expect_str_eq(r.err, "");
    unlink(path);
    vs_run_free(&r);
}
