/* When the arena cannot serve (no VMM support, setup failure, an error it cannot absorb) the
 * program keeps running on the driver after one `vramshim:` line, and blocks made before keep
 * being freed by whoever made them. A forked child passes through and never enters the parent's
 * arena.
 */
#include "interpose_arena_harness.h"

#define FALLBACK_TAIL "; serving memory from the driver"

/* Every family worked and was served by the driver. */
static void expect_driver_served(const char *out)
{
    for (size_t i = 0; i < VS_N_ALLOC_APIS; i++) {
        const char *api = vs_alloc_apis[i];
        cr_expect_eq(vs_output_number(out, "data", api), 1, "%s: contents lost", api);
        cr_expect_eq(vs_output_number(out, "vmm", api), 0, "%s: served by the arena", api);
        cr_expect_eq(vs_output_number(out, "count", api), 1, "%s: driver calls", api);
    }
    cr_expect_eq(vs_output_number(out, "count", "cuMemFree_v2"), 2);
}

Test(interpose_arena_fallback, device_without_vmm_support_passes_through_after_one_line)
{
    /* simcuda always supports VMM: the failing probe stands for a device that does not. */
    const char *env[] = {"SIMCUDA_FAIL=cuDeviceGetAttribute:1:CUDA_ERROR_NOT_SUPPORTED", NULL};
    struct vs_run r = vs_run_scenario("families", 1, env);
    expect_driver_served(r.out);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemAddressReserve"), 0,
                 "the arena was set up on a device without VMM");
    cr_expect_str_eq(r.err, "vramshim: arena unavailable: cannot query virtual memory management "
                            "support (device 0, error 801)" FALLBACK_TAIL "\n");
    vs_run_free(&r);
}

Test(interpose_arena_fallback, arena_setup_failure_passes_through_after_one_line)
{
    const char *env[] = {"SIMCUDA_FAIL=cuMemAddressReserve:1", NULL};
    struct vs_run r = vs_run_scenario("families", 1, env);
    expect_driver_served(r.out);
    /* The allocator names the failing call, then the fallback; nothing after that. */
    cr_expect_eq(vs_count_lines_with(r.err, FALLBACK_TAIL), 1, "%s", r.err);
    cr_expect_eq(vs_count_lines_with(r.err, "vramshim:"), 2, "%s", r.err);
    cr_expect(strstr(r.err, "cuMemAddressReserve"), "%s", r.err);
    size_t len = strlen(r.err), tail = strlen(FALLBACK_TAIL "\n");
    cr_expect(len > tail && !strcmp(r.err + len - tail, FALLBACK_TAIL "\n"),
              "the fallback is not the last line:\n%s", r.err);
    vs_run_free(&r);
}

Test(interpose_arena_fallback, blocks_made_before_a_fallback_are_freed_by_the_arena)
{
    struct vs_run r = vs_run_scenario("midway", 1, NULL);
    cr_expect_eq(vs_output_number(r.out, "vmm", "before"), 1);
    cr_expect_eq(vs_output_number(r.out, "vmm", "after"), 0);
    cr_expect_eq(vs_output_number(r.out, "data", "after"), 1);
    cr_expect_eq(vs_output_number(r.out, "midway", "before_intact"), 1);
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemAlloc_v2"), 1);
    /* Both frees succeeded (the program checks); only the driver's block reached the driver. */
    cr_expect_eq(vs_output_number(r.out, "count", "cuMemFree_v2"), 1);
    cr_expect_str_eq(r.err, "vramshim: arena unavailable: cuMemAlloc_v2 failed in the arena "
                            "(device 0, error 800)" FALLBACK_TAIL "\n");
    vs_run_free(&r);
}

Test(interpose_arena_fallback, forked_child_passes_through_and_leaves_the_parents_blocks)
{
    struct vs_run r = vs_run_scenario("fork", 1, NULL);
    cr_expect_eq(vs_output_number(r.out, "child", "vmm"), 0, "the child allocated from the arena");
    cr_expect_eq(vs_output_number(r.out, "child", "free_own"), CUDA_SUCCESS);
    cr_expect_eq(vs_output_number(r.out, "child", "free_parent"), CUDA_SUCCESS);
    cr_expect_eq(vs_output_number(r.out, "child", "count_alloc"), 1);
    cr_expect_eq(vs_output_number(r.out, "child", "count_free"), 1,
                 "the parent's arena block went to the driver in the child");
    cr_expect_eq(vs_output_number(r.out, "parent", "intact"), 1);
    cr_expect_eq(vs_output_number(r.out, "parent", "vmm"), 1, "the parent stopped using the arena");
    cr_expect_str_eq(r.err, "");
    vs_run_free(&r);
}
