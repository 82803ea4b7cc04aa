/* Arena mode (the default) under LD_PRELOAD on simcuda: every allocation family is served from the
 * arena exactly once and never reaches the driver's allocator, the trace still names what the
 * program called and the pointer it got, queries answer as the driver does for its own blocks,
 * and what arena mode leaves to the driver (user pools, unknown pointers, passthrough mode) goes
 * there.
 */
#include "interpose_arena_harness.h"

static const char *const vs_free_apis[] = {"cuMemFree_v2", "cuMemFreeAsync", "cuMemFreeAsync_ptsz"};

Test(interpose_arena_serve, every_family_is_served_from_the_arena)
{
    struct vs_run r = vs_run_scenario("families", 1, NULL);
    for (size_t i = 0; i < VS_N_ALLOC_APIS; i++) {
        const char *api = vs_alloc_apis[i];
        cr_expect_eq(vs_output_number(r.out, "count", api), 0, "%s reached the driver", api);
        cr_expect_eq(vs_output_number(r.out, "data", api), 1, "%s: contents lost", api);
        /* Mapped from a cuMemCreate handle: arena memory, in the one VA range it reserved. */
        cr_expect_eq(vs_output_number(r.out, "vmm", api), 1, "%s: not arena memory", api);
    }
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(vs_output_number(r.out, "count", vs_free_apis[i]), 0, "%s reached the driver",
                     vs_free_apis[i]);
    cr_expect_gt(vs_output_number(r.out, "count", "cuMemCreate"), 0);
    cr_expect_gt(vs_output_number(r.out, "count", "cuMemMap"), 0);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemAddressReserve"), 1);
    cr_expect_str_eq(r.err, "", "arena mode logged:\n%s", r.err);
    vs_run_free(&r);
}

Test(interpose_arena_serve, passthrough_mode_forwards_every_family)
{
    const char *env[] = {"VRAMSHIM_MODE=passthrough", NULL};
    struct vs_run r = vs_run_scenario("families", 1, env);
    for (size_t i = 0; i < VS_N_ALLOC_APIS; i++) {
        const char *api = vs_alloc_apis[i];
        cr_expect_eq(vs_output_number(r.out, "count", api), 1, "%s", api);
        cr_expect_eq(vs_output_number(r.out, "data", api), 1, "%s", api);
        cr_expect_eq(vs_output_number(r.out, "vmm", api), 0, "%s", api);
    }
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemFree_v2"), 2);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemFreeAsync"), 2);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemFreeAsync_ptsz"), 2);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemCreate"), 0);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemAddressReserve"), 0);
    /* What only arena mode needs to know (is the stream captured? is it the default pool?) is
     * not asked: passthrough adds no driver call to the program's own. */
    struct vs_run alone = vs_run_scenario("families", 0, NULL);
    const char *asked[] = {"cuStreamIsCapturing", "cuDeviceGetDefaultMemPool"};
    for (size_t i = 0; i < 2; i++)
        cr_expect_eq(vs_output_number(r.out, "count", asked[i]),
                     vs_output_number(alone.out, "count", asked[i]), "%s", asked[i]);
    vs_run_free(&alone);
    vs_run_free(&r);
}

/* The one event of kind ev and api `api` in the trace; fails unless there is exactly one. */
static json_t *only_event(const struct vs_trace *t, const char *ev, const char *api)
{
    json_t *found = NULL;
    for (size_t i = 1; i < t->n; i++)
        if (!strcmp(vs_str(t->lines[i], "ev"), ev) && !strcmp(vs_str(t->lines[i], "api"), api)) {
            cr_assert_null(found, "two %s events of %s", ev, api);
            found = t->lines[i];
        }
    cr_assert_not_null(found, "no %s event of %s", ev, api);
    return found;
}

Test(interpose_arena_serve, trace_names_the_api_called_and_the_pointer_returned)
{
    char path[256], env_trace[300];
    vs_trace_path(path, sizeof path, "arena_families");
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", path);
    const char *env[] = {env_trace, NULL};
    struct vs_run r = vs_run_scenario("families", 1, env);
    struct vs_trace t = vs_trace_load(path);
    for (size_t i = 0; i < VS_N_ALLOC_APIS; i++) {
        const char *api = vs_alloc_apis[i];
        json_t *e = only_event(&t, "alloc", api);
        unsigned long long got = vs_output_hex(r.out, "ptr", api);
        cr_expect_neq(got, 0, "%s: no pointer printed", api);
        cr_expect_eq(strtoull(vs_str(e, "ptr"), NULL, 16), got, "%s: traced %s, program got 0x%llx",
                     api, vs_str(e, "ptr"), got);
    }
    cr_expect_eq(vs_trace_count(&t, "free", "cuMemFree_v2"), 2);
    cr_expect_eq(vs_trace_count(&t, "free", "cuMemFreeAsync"), 2);
    cr_expect_eq(vs_trace_count(&t, "free", "cuMemFreeAsync_ptsz"), 2);
    /* The arena's own VMM calls go straight to the driver: they are not the program's. */
    cr_expect_eq(vs_trace_count(&t, "create", NULL), 0);
    cr_expect_eq(vs_trace_count(&t, "map", NULL), 0);
    vs_trace_free(&t);
    unlink(path);
    vs_run_free(&r);
}

Test(interpose_arena_serve, pointer_queries_answer_as_for_driver_blocks)
{
    struct vs_run driver = vs_run_scenario("queries", 0, NULL);
    struct vs_run arena = vs_run_scenario("queries", 1, NULL);
    cr_expect_eq(vs_output_number(arena.out, "count", "cuMemAlloc_v2"), 0);
    cr_expect_eq(vs_output_number(arena.out, "count", "cuMemGetAddressRange_v2"), 0,
                 "the arena left address ranges of its blocks to the driver");
    char *want = vs_facts(driver.out), *got = vs_facts(arena.out);
    cr_expect_str_eq(got, want, "arena blocks answer differently from driver blocks");
    free(want);
    free(got);
    vs_run_free(&driver);
    vs_run_free(&arena);
}

Test(interpose_arena_serve, mem_get_info_counts_the_arenas_free_granules)
{
    struct vs_run r = vs_run_scenario("meminfo", 1, NULL);
    cr_expect_eq(vs_output_number(r.out, "live", "free_is_device_free"), 1, "%s", r.out);
    cr_expect_eq(vs_output_number(r.out, "freed", "holds_granules"), 1,
                 "the arena gave the freed block back; the test proves nothing");
    cr_expect_eq(vs_output_number(r.out, "freed", "arena_free_mib"), 40, "%s", r.out);
    vs_run_free(&r);
}

Test(interpose_arena_serve, freeing_what_was_never_allocated_is_invalid_value)
{
    struct vs_run driver = vs_run_scenario("badfree", 0, NULL);
    struct vs_run r = vs_run_scenario("badfree", 1, NULL);
    const char *cases[] = {"unknown", "inside", "async_inside", "twice"};
    for (int i = 0; i < 4; i++)
        cr_expect_eq(vs_output_number(r.out, "free", cases[i]), CUDA_ERROR_INVALID_VALUE,
                     "free %s", cases[i]);
    char *want = vs_facts(driver.out), *got = vs_facts(r.out);
    cr_expect_str_eq(got, want);
    /* Only the address outside the arena goes to the driver. */
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemFree_v2"), 1);
    cr_expect_eq(vs_count_lines_with(r.err, "which is not a live allocation"), 1, "%s", r.err);
    cr_expect_eq(vs_count_lines_with(r.err, "vramshim:"), 1, "%s", r.err);
    free(want);
    free(got);
    vs_run_free(&driver);
    vs_run_free(&r);
}

Test(interpose_arena_serve, pools_the_program_creates_stay_with_the_driver)
{
    struct vs_run r = vs_run_scenario("pool", 1, NULL);
    cr_expect_eq(vs_output_number(r.out, "data", "user_pool"), 1);
    cr_expect_eq(vs_output_number(r.out, "vmm", "user_pool"), 0);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemAllocFromPoolAsync"), 1);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemFreeAsync"), 1);
    vs_run_free(&r);
}

Test(interpose_arena_serve, programs_see_the_same_results_as_on_the_driver)
{
    const char *progs[] = {VS_PROG("interpose_direct_linked"), VS_PROG("interpose_cudart_like"),
                           VS_PROG("interpose_ptsz_linked")};
    for (int i = 0; i < 3; i++) {
        struct vs_run plain = vs_run_prog(progs[i], 0, NULL);
        struct vs_run r = vs_run_prog(progs[i], 1, NULL);
        cr_assert_eq(plain.status, 0, "%s", plain.raw_err);
        cr_expect_eq(r.status, 0, "%s under the shim:\n%s", progs[i], r.raw_err);
        char *want = vs_facts(plain.out), *got = vs_facts(r.out);
        cr_expect_str_eq(got, want, "%s", progs[i]);
        /* The one line is interpose_direct_linked's deliberate double free. */
        cr_expect_leq(vs_count_lines_with(r.err, "vramshim:"), 1, "%s", r.err);
        cr_expect_eq(vs_count_lines_with(r.err, "vramshim:"),
                     vs_count_lines_with(r.err, "which is not a live allocation"), "%s", r.err);
        free(want);
        free(got);
        vs_run_free(&plain);
        vs_run_free(&r);
    }
}

/* The exit summary's live bytes count arena blocks as pass-through counts the driver's: the
 * same peak (the program holds a handle and driver-sized blocks at different times, so a sum of
 * per-source peaks would be larger) and nothing live at exit. */
Test(interpose_arena_serve, exit_summary_counts_arena_blocks_as_passthrough_does)
{
    const char *modes[] = {"VRAMSHIM_MODE=passthrough", "VRAMSHIM_MODE=arena"};
    char peaks[2][64];
    for (int m = 0; m < 2; m++) {
        const char *env[] = {"VRAMSHIM_LOG=info", modes[m], NULL};
        struct vs_run r = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, env);
        cr_expect_eq(r.status, 0);
        const char *peak = strstr(r.err, "peak live ");
        cr_assert(peak, "%s: no summary:\n%s", modes[m], r.err);
        snprintf(peaks[m], sizeof peaks[m], "%.*s", (int)strcspn(peak, "("), peak);
        cr_expect(strstr(r.err, "live at exit 0 bytes\n"), "%s:\n%s", modes[m], r.err);
        vs_run_free(&r);
    }
    cr_expect_str_eq(peaks[1], peaks[0]);
}
