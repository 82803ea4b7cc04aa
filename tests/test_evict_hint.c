/* The out-of-memory line's hint: when stages other than the current one hold enough device memory
 * to cover what is missing, one "hint:" line names them and the `evict =` line a policy would
 * need; never when nothing would have helped. 192 MiB of weights in stage `load` on a 256 MiB
 * device, then another stage asks for more. */
#include "evict_fixture.h"

static struct vs_arena *a;
static struct ef_block wts[4];

static void setup(const char *policy)
{
    arena_fixture_start(256 * MiB);
    ef_name("load");
    if (policy)
        ef_policy(policy);
    else
        vs_evict_configure(NULL, ef_names);
    a = arena_new(SIZE_MAX);
    vs_arena_set_stage(a, ef_name("load"));
    uint64_t seed = 3;
    for (int i = 0; i < 4; i++)
        ef_alloc(a, &wts[i], 48 * MiB, &seed);
}

static void teardown(void)
{
    ef_forget(wts, 4);
    vs_arena_destroy(a);
}

static const char *hint_line(void)
{
    for (int i = 0; i < fx_log_n; i++)
        if (strstr(fx_log[i], "vramshim: hint:"))
            return fx_log[i];
    return NULL;
}

Test(evict_hint, names_the_idle_stage_and_the_evict_line)
{
    setup(NULL);
    vs_arena_set_stage(a, ef_name("decode"));
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 160 * MiB, &p), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(fx_log_count("out of memory on device 0"), 1);
    const char *h = hint_line();
    cr_assert_not_null(h, "no hint");
    cr_expect(strstr(h, "stage load holds 192.00 MiB on the device and is not current: a policy "
                        "with `evict = load` in [stage decode] would let vramshim demote enough "
                        "of it to host memory for the "), "%s", h);
    teardown();
}

Test(evict_hint, none_when_idle_stages_cannot_cover_the_request)
{
    setup(NULL);
    vs_arena_set_stage(a, ef_name("decode"));
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 300 * MiB, &p), CUDA_ERROR_OUT_OF_MEMORY);
    cr_expect_null(hint_line(), "%s", hint_line());
    teardown();
}

Test(evict_hint, none_without_a_current_stage)
{
    setup(NULL);
    vs_arena_set_stage(a, 0);
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 160 * MiB, &p), CUDA_ERROR_OUT_OF_MEMORY);
    cr_expect_null(hint_line(), "%s", hint_line());
    teardown();
}

/* The current stage's rule already evicts `load` and it was demoted: nothing more to suggest. */
Test(evict_hint, none_for_what_the_policy_already_evicts)
{
    setup("[stage load]\n[stage decode]\nevict = load\n");
    vs_arena_set_stage(a, ef_name("decode"));
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 300 * MiB, &p), CUDA_ERROR_OUT_OF_MEMORY);
    cr_expect_null(hint_line(), "%s", hint_line());
    teardown();
}
