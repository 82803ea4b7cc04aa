/* Demote and promote are transactions: a driver call failing at any step leaves every granule
 * where it was, with its contents, and nothing leaked; a retry then succeeds. Where host-NUMA
 * memory cannot be created, eviction is off with one log line. */
#include "evict_fixture.h"

struct counts {
    unsigned long create, release, map, unmap;
};

static struct counts snapshot(void)
{
    return (struct counts){simcuda_call_count("cuMemCreate"), simcuda_call_count("cuMemRelease"),
                           simcuda_call_count("cuMemMap"), simcuda_call_count("cuMemUnmap")};
}

#define NB 65

struct setup {
    struct vs_arena *a;
    uint32_t w;
    struct ef_block b[NB];
};

/* One 8 MiB block (4 granules) and 64 small objects filling a fifth, all of stage w; probed
 * and, for a promote, demoted. */
static void set_up(struct setup *s, size_t cache_max, bool demoted)
{
    s->a = arena_new(cache_max);
    s->w = ef_name("w");
    vs_arena_set_stage(s->a, s->w);
    uint64_t seed = 77;
    ef_alloc(s->a, &s->b[0], 8 * MiB, &seed);
    for (int i = 1; i < NB; i++)
        ef_alloc(s->a, &s->b[i], 1000, &seed);
    cr_assert_eq(vs_arena_demote(s->a, s->w, NULL), CUDA_SUCCESS);
    if (!demoted)
        cr_assert_eq(vs_arena_promote(s->a, s->w, NULL), CUDA_SUCCESS);
}

static size_t demoted(struct setup *s)
{
    size_t n = 0;
    for (int i = 0; i < NB; i++)
        n += vs_arena_block_demoted_bytes(s->a, s->b[i].p);
    return n;
}

static size_t total(struct setup *s)
{
    size_t n = 0;
    for (int i = 0; i < NB; i++)
        n += s->b[i].n;
    return n;
}

static CUresult op(struct setup *s, bool promote)
{
    return promote ? vs_arena_promote(s->a, s->w, NULL) : vs_arena_demote(s->a, s->w, NULL);
}

static void tear_down(struct setup *s)
{
    for (int i = 0; i < NB; i++)
        cr_assert(ef_intact(&s->b[i]), "block %d changed", i);
    for (int i = 0; i < NB; i++)
        ef_free(s->a, &s->b[i]);
    fx_destroy(s->a);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
}

/* Calls of `step` in one clean operation. */
static unsigned long calls_of(const char *step, bool promote, size_t cache_max)
{
    struct setup s;
    set_up(&s, cache_max, promote);
    unsigned long before = simcuda_call_count(step);
    cr_assert_eq(op(&s, promote), CUDA_SUCCESS);
    unsigned long n = simcuda_call_count(step) - before;
    tear_down(&s);
    return n;
}

static void fail_each(const char *step, bool promote, size_t cache_max)
{
    unsigned long n_calls = calls_of(step, promote, cache_max);
    cr_assert_gt(n_calls, 0, "%s is not called by a %s", step, promote ? "promote" : "demote");
    for (unsigned long n = 1; n <= n_calls; n++) {
        struct setup s;
        set_up(&s, cache_max, promote);
        size_t phys = simcuda_physical_in_use(0), where = demoted(&s);
        struct counts c0 = snapshot();
        cr_assert_eq(simcuda_fail_call(step, n, CUDA_ERROR_UNKNOWN), 0);
        cr_assert_eq(op(&s, promote), CUDA_ERROR_UNKNOWN, "%s:%lu did not fail", step, n);
        struct counts c1 = snapshot();
        cr_assert_eq(demoted(&s), where, "%s:%lu: granules moved anyway", step, n);
        cr_assert_eq(simcuda_physical_in_use(0), phys, "%s:%lu leaked device memory", step, n);
        unsigned long created = c1.create - c0.create - (strcmp(step, "cuMemCreate") == 0);
        unsigned long mapped = c1.map - c0.map - (strcmp(step, "cuMemMap") == 0);
        unsigned long unmapped = c1.unmap - c0.unmap - (strcmp(step, "cuMemUnmap") == 0);
        cr_assert_eq(created, c1.release - c0.release, "%s:%lu: %lu created, %lu released", step,
                     n, created, c1.release - c0.release);
        if (strcmp(step, "cuMemUnmap") != 0)
            cr_assert_eq(mapped, unmapped, "%s:%lu: %lu mapped, %lu unmapped", step, n, mapped,
                         unmapped);
        for (int i = 0; i < NB; i++)
            cr_assert(ef_intact(&s.b[i]), "%s:%lu: block %d changed", step, n, i);
        cr_assert_eq(op(&s, promote), CUDA_SUCCESS, "no recovery after %s:%lu", step, n);
        cr_assert_eq(demoted(&s), promote ? 0 : total(&s));
        tear_down(&s);
    }
}

static void fail_every_step(bool promote, size_t cache_max)
{
    arena_fixture_start(256 * MiB);
    static const char *const steps[] = {"cuCtxSynchronize", "cuMemMap",   "cuMemSetAccess",
                                        "cuMemcpyAsync",    "cuMemUnmap", "cuStreamSynchronize"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        fail_each(steps[i], promote, cache_max);
    if (!promote || cache_max == 0)
        fail_each("cuMemCreate", promote, cache_max);
}

Test(evict_rollback, every_demote_step)
{
    fail_every_step(false, SIZE_MAX);
}

Test(evict_rollback, every_promote_step_from_cached_granules)
{
    fail_every_step(true, SIZE_MAX);
}

Test(evict_rollback, every_promote_step_with_new_granules)
{
    fail_every_step(true, 0);
}

/* The probe's trial cuMemCreate of host-NUMA memory fails: eviction is off, said once. */
Test(evict_rollback, eviction_off_when_host_numa_memory_cannot_be_created)
{
    arena_fixture_start(128 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint32_t w = ef_name("w");
    vs_arena_set_stage(a, w);
    uint64_t seed = 1;
    struct ef_block b;
    ef_alloc(a, &b, 4 * MiB, &seed);
    cr_assert_eq(simcuda_fail_call("cuMemCreate", 1, CUDA_ERROR_NOT_SUPPORTED), 0);
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_ERROR_NOT_SUPPORTED);
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_ERROR_NOT_SUPPORTED);
    cr_assert_eq(vs_arena_promote(a, w, NULL), CUDA_ERROR_NOT_SUPPORTED);
    cr_assert_eq(fx_log_count("eviction off on device 0"), 1);
    cr_assert_eq(fx_log_count("host-NUMA"), 1);
    struct vs_evict_stats st;
    vs_arena_evict_stats(a, &st);
    cr_assert_eq(st.state, VS_EVICT_OFF);
    cr_assert(ef_intact(&b));
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 8 * MiB, &p), CUDA_SUCCESS, "the arena must keep working");
    ef_forget(&b, 1);
    fx_destroy(a);
}

/* A host granule the driver refuses to release after a promote is not lost: the next move
 * releases it first. With room for one host granule only, a second demote needs it back. */
Test(evict_rollback, a_refused_release_of_host_memory_is_retried)
{
    setenv("SIMCUDA_HOST_MEM", "2MiB", 1);
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint32_t w = ef_name("w");
    vs_arena_set_stage(a, w);
    uint64_t seed = 3;
    struct ef_block b;
    ef_alloc(a, &b, 1 * MiB, &seed);
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
    cr_assert_eq(simcuda_fail_call("cuMemRelease", 1, CUDA_ERROR_UNKNOWN), 0);
    cr_assert_eq(vs_arena_promote(a, w, NULL), CUDA_SUCCESS);
    size_t moved = 0;
    cr_assert_eq(vs_arena_demote(a, w, &moved), CUDA_SUCCESS, "the host granule was lost");
    cr_assert_eq(moved, 2 * MiB);
    cr_assert_eq(fx_log_count("retrying later"), 1);
    cr_assert_eq(vs_arena_promote(a, w, NULL), CUDA_SUCCESS);
    cr_assert(ef_intact(&b));
    ef_free(a, &b);
    fx_destroy(a);
}
