/* Demote and promote are transactions: a driver call failing at any step leaves every granule
 * where it was, with its contents, and nothing leaked; a retry then succeeds. Where host-NUMA
 * memory cannot be created, eviction is off with one log line. */
#include "evict_fixture.h"

struct counts {
    unsigned long create, release;
};

static struct counts snapshot(void)
{
    return (struct counts){simcuda_call_count("cuMemCreate"), simcuda_call_count("cuMemRelease")};
}

#define NB 65

/* What the operation under test moves: demote or promote stage w, or promote tag "big" only
 * (the 8 MiB block: its granules were demoted in one host allocation with the small objects'
 * granule, which must then be re-homed in host memory of its own). */
enum op { DEMOTE, PROMOTE, PROMOTE_BIG };

struct setup {
    struct vs_arena *a;
    uint32_t w, big;
    struct ef_block b[NB], gap;
};

/* One 8 MiB block (4 granules, tag "big") and 64 small objects filling a fifth, all of stage w;
 * with `gap`, a 2 MiB block of another stage between them, so that a move has two runs. Probed
 * and, for a promote, demoted. */
static void set_up(struct setup *s, size_t cache_max, enum op op, bool gap)
{
    s->a = arena_new(cache_max);
    s->w = ef_name("w");
    s->big = ef_name("big");
    uint64_t seed = 77;
    vs_arena_set_stage(s->a, s->w);
    ef_alloc(s->a, &s->b[0], 8 * MiB, &seed);
    cr_assert_eq(vs_arena_set_tag(s->a, s->b[0].p, s->big), CUDA_SUCCESS);
    vs_arena_set_stage(s->a, ef_name("other"));
    s->gap.want = NULL;
    if (gap)
        ef_alloc(s->a, &s->gap, 2 * MiB, &seed);
    vs_arena_set_stage(s->a, s->w);
    for (int i = 1; i < NB; i++)
        ef_alloc(s->a, &s->b[i], 1000, &seed);
    cr_assert_eq(vs_arena_demote(s->a, s->w, NULL), CUDA_SUCCESS);
    if (op == DEMOTE)
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

static CUresult run_op(struct setup *s, enum op op)
{
    return op == DEMOTE        ? vs_arena_demote(s->a, s->w, NULL)
           : op == PROMOTE     ? vs_arena_promote(s->a, s->w, NULL)
                               : vs_arena_promote(s->a, s->big, NULL);
}

/* Demoted bytes after a successful op. */
static size_t after(struct setup *s, enum op op)
{
    return op == DEMOTE ? total(s) : op == PROMOTE ? 0 : total(s) - s->b[0].n;
}

static void tear_down(struct setup *s)
{
    for (int i = 0; i < NB; i++)
        cr_assert(ef_intact(&s->b[i]), "block %d changed", i);
    for (int i = 0; i < NB; i++)
        ef_free(s->a, &s->b[i]);
    if (s->gap.want) {
        cr_assert(ef_intact(&s->gap), "the other stage's block changed");
        ef_free(s->a, &s->gap);
    }
    fx_destroy(s->a);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
    cr_assert_eq(simcuda_host_physical_in_use(), 0, "host memory kept after the arena went");
}

/* Calls of `step` in one clean operation. */
static unsigned long calls_of(const char *step, enum op op, size_t cache_max, bool gap)
{
    struct setup s;
    set_up(&s, cache_max, op, gap);
    unsigned long before = simcuda_call_count(step);
    cr_assert_eq(run_op(&s, op), CUDA_SUCCESS);
    cr_assert_eq(demoted(&s), after(&s, op));
    unsigned long n = simcuda_call_count(step) - before;
    tear_down(&s);
    return n;
}

static void fail_each(const char *step, enum op op, size_t cache_max, bool gap)
{
    unsigned long n_calls = calls_of(step, op, cache_max, gap);
    cr_assert_gt(n_calls, 0, "%s is not called by op %d", step, op);
    for (unsigned long n = 1; n <= n_calls; n++) {
        struct setup s;
        set_up(&s, cache_max, op, gap);
        size_t phys = simcuda_physical_in_use(0), where = demoted(&s);
        size_t host = simcuda_host_physical_in_use(), mapped = simcuda_mapped_bytes();
        struct counts c0 = snapshot();
        cr_assert_eq(simcuda_fail_call(step, n, CUDA_ERROR_UNKNOWN), 0);
        cr_assert_eq(run_op(&s, op), CUDA_ERROR_UNKNOWN, "%s:%lu did not fail", step, n);
        struct counts c1 = snapshot();
        cr_assert_eq(demoted(&s), where, "%s:%lu: granules moved anyway", step, n);
        cr_assert_eq(simcuda_physical_in_use(0), phys, "%s:%lu leaked device memory", step, n);
        cr_assert_eq(simcuda_host_physical_in_use(), host, "%s:%lu leaked host memory", step, n);
        cr_assert_eq(simcuda_mapped_bytes(), mapped, "%s:%lu left %zu bytes mapped, not %zu", step,
                     n, simcuda_mapped_bytes(), mapped);
        unsigned long created = c1.create - c0.create - (strcmp(step, "cuMemCreate") == 0);
        cr_assert_eq(created, c1.release - c0.release, "%s:%lu: %lu created, %lu released", step,
                     n, created, c1.release - c0.release);
        for (int i = 0; i < NB; i++)
            cr_assert(ef_intact(&s.b[i]), "%s:%lu: block %d changed", step, n, i);
        fx_validate(s.a, step);
        cr_assert_eq(run_op(&s, op), CUDA_SUCCESS, "no recovery after %s:%lu", step, n);
        cr_assert_eq(demoted(&s), after(&s, op));
        tear_down(&s);
    }
}

static void fail_every_step(enum op op, size_t cache_max, bool gap)
{
    arena_fixture_start(256 * MiB);
    static const char *const steps[] = {"cuCtxSynchronize", "cuMemMap",   "cuMemSetAccess",
                                        "cuMemcpyAsync",    "cuMemUnmap", "cuStreamSynchronize"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        fail_each(steps[i], op, cache_max, gap);
    /* Without a cache limit a demote's host memory may all come from the host cache (kept by
     * the promote before). */
    if (calls_of("cuMemCreate", op, cache_max, gap))
        fail_each("cuMemCreate", op, cache_max, gap);
}

Test(evict_rollback, every_demote_step_into_cached_host_memory)
{
    fail_every_step(DEMOTE, SIZE_MAX, false);
}

Test(evict_rollback, every_demote_step_into_new_host_memory)
{
    fail_every_step(DEMOTE, 0, false);
}

Test(evict_rollback, every_promote_step_from_cached_granules)
{
    fail_every_step(PROMOTE, SIZE_MAX, false);
}

Test(evict_rollback, every_promote_step_with_new_granules)
{
    fail_every_step(PROMOTE, 0, false);
}

/* Two runs of granules: two copies, each switched on its own; the failure of the second undoes
 * the first. */
Test(evict_rollback, every_step_of_a_demote_and_promote_of_two_runs)
{
    arena_fixture_start(256 * MiB);
    cr_assert_eq(calls_of("cuMemcpyAsync", DEMOTE, SIZE_MAX, true), 2, "not two runs");
    fail_every_step(DEMOTE, SIZE_MAX, true);
    fail_every_step(PROMOTE, SIZE_MAX, true);
}

/* Promoting part of a host allocation re-homes the rest in a new one (the driver unmaps and
 * releases an allocation only whole). */
Test(evict_rollback, every_step_of_a_promote_that_splits_a_host_allocation)
{
    arena_fixture_start(256 * MiB);
    /* 4 device granules for the 8 MiB block (the demote gave its granules to the driver) and
     * one host allocation for the small objects' granule */
    cr_assert_eq(calls_of("cuMemCreate", PROMOTE_BIG, SIZE_MAX, false), 4 + 1,
                 "the small objects' granule was not re-homed");
    fail_every_step(PROMOTE_BIG, SIZE_MAX, false);
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
 * releases it first. With room for one host granule only, a second demote needs it back
 * (VRAMSHIM_CACHE_MAX 0: no host allocation is kept for reuse). */
Test(evict_rollback, a_refused_release_of_host_memory_is_retried)
{
    setenv("SIMCUDA_HOST_MEM", "2MiB", 1);
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(0);
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
