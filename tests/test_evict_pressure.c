/* Eviction by policy: an allocation that does not fit demotes the current stage's victims and
 * succeeds; the watermark, anti-thrash, headroom, prefetch and oldest-stage-first rules. */
#include "evict_fixture.h"

#define NW 8
#define WSIZE (24 * MiB) /* 8 weights: 192 MiB of a 256 MiB device */

static struct vs_arena *a;
static struct ef_block wts[NW];

static void load_weights(const char *policy_text)
{
    arena_fixture_start(256 * MiB);
    if (policy_text)
        ef_policy(policy_text);
    a = arena_new(SIZE_MAX);
    vs_arena_set_stage(a, ef_name("load"));
    uint64_t seed = 11;
    for (int i = 0; i < NW; i++)
        ef_alloc(a, &wts[i], WSIZE, &seed);
}

static size_t weights_demoted(void)
{
    size_t n = 0;
    for (int i = 0; i < NW; i++)
        n += vs_arena_block_demoted_bytes(a, wts[i].p);
    return n;
}

static void weights_intact_after_promote(void)
{
    cr_assert_eq(vs_arena_promote(a, ef_name("load"), NULL), CUDA_SUCCESS);
    cr_assert_eq(weights_demoted(), 0);
    for (int i = 0; i < NW; i++)
        cr_assert(ef_intact(&wts[i]), "weight %d changed", i);
}

#define POLICY(extra_global, decode_keys)                                                    \
    "[global]\n" extra_global "\n[stage load]\nmatch = *load*\n[stage decode]\n"              \
    "match = *decode*\n" decode_keys "\n"

Test(evict_pressure, a_request_larger_than_free_memory_demotes_idle_weights)
{
    load_weights(POLICY("", "evict = load"));
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_SUCCESS);
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 160 * MiB, &ws), CUDA_SUCCESS);
    memset((void *)(uintptr_t)ws, 0x5c, 160 * MiB);
    cr_assert_geq(weights_demoted(), 96 * MiB, "only %zu demoted", weights_demoted());
    cr_assert_eq(vs_arena_block_demoted_bytes(a, ws), 0, "the workspace is in host memory");
    cr_assert_eq(vs_arena_free(a, ws), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    weights_intact_after_promote();
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

Test(evict_pressure, without_a_rule_the_request_fails)
{
    load_weights(POLICY("", "evict = load"));
    vs_arena_set_stage(a, ef_name("unlisted_stage"));
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 160 * MiB, &ws), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(weights_demoted(), 0);
    cr_assert_eq(fx_log_count("out of memory on device 0"), 1);
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

/* The out-of-memory line says how much is demoted (memory a promote would need back). */
Test(evict_pressure, the_oom_line_reports_demoted_bytes)
{
    load_weights(POLICY("", "evict = load"));
    cr_assert_eq(vs_arena_demote(a, ef_name("load"), NULL), CUDA_SUCCESS);
    vs_arena_set_stage(a, ef_name("unlisted_stage"));
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 300 * MiB, &ws), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(fx_log_count("cached 192.00 MiB, demoted 192.00 MiB, pending 0 B"), 1, "%s",
                 fx_log_n ? fx_log[fx_log_n - 1] : "no line");
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

Test(evict_pressure, eviction_off_in_the_policy_demotes_nothing)
{
    load_weights(POLICY("eviction = off", "evict = load"));
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_SUCCESS);
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 160 * MiB, &ws), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(weights_demoted(), 0);
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

/* 64 MiB free, 80 MiB asked: the request alone needs 16 MiB demoted; a watermark of 0.5 wants
 * memory in use at or below 128 MiB, i.e. 64 MiB demoted. */
Test(evict_pressure, pressure_demotes_down_to_the_watermark)
{
    load_weights(POLICY("watermark = 0.9", "evict = load"));
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_SUCCESS);
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 80 * MiB, &ws), CUDA_SUCCESS);
    cr_assert_eq(weights_demoted(), 16 * MiB);
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

Test(evict_pressure, a_low_watermark_demotes_more)
{
    load_weights(POLICY("watermark = 0.5", "evict = load"));
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_SUCCESS);
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 80 * MiB, &ws), CUDA_SUCCESS);
    cr_assert_eq(weights_demoted(), 64 * MiB);
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

/* What was promoted in a stage is not demoted again by pressure in it; another stage may. */
Test(evict_pressure, promoted_in_this_stage_is_not_demoted_again_in_it)
{
    load_weights("[stage load]\nmatch = *load*\n[stage decode]\nmatch = *decode*\nevict = load\n"
                 "[stage decode2]\nmatch = *decode2*\nevict = load\n");
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_demote(a, ef_name("load"), NULL), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_promote(a, ef_name("load"), NULL), CUDA_SUCCESS);
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 80 * MiB, &ws), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(weights_demoted(), 0);
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode2")), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc(a, 80 * MiB, &ws), CUDA_SUCCESS);
    cr_assert_eq(weights_demoted(), 16 * MiB);
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

Test(evict_pressure, headroom_at_stage_start)
{
    load_weights(POLICY("", "evict = load\nheadroom = 100MiB"));
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_SUCCESS);
    cr_assert_geq(ef_free_bytes(a), 100 * MiB);
    cr_assert_eq(weights_demoted(), 36 * MiB, "demoted %zu", weights_demoted());
    weights_intact_after_promote();
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

Test(evict_pressure, headroom_that_victims_cannot_reach_is_an_error)
{
    load_weights(POLICY("", "evict = load\nheadroom = 300MiB"));
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(weights_demoted(), 192 * MiB, "every victim should have gone");
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

static void prefetch_up_to(const char *watermark, size_t want_left)
{
    char text[256];
    snprintf(text, sizeof text,
             "[global]\nwatermark = %s\n[stage load]\nmatch = *load*\n"
             "[stage denoise]\nmatch = *denoise*\nprefetch = load\n",
             watermark);
    load_weights(text);
    cr_assert_eq(vs_arena_demote(a, ef_name("load"), NULL), CUDA_SUCCESS);
    cr_assert_eq(weights_demoted(), 192 * MiB);
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("denoise")), CUDA_SUCCESS);
    cr_assert_eq(weights_demoted(), want_left, "watermark %s: %zu still demoted", watermark,
                 weights_demoted());
    for (int i = 0; i < NW; i++)
        cr_assert(ef_intact(&wts[i]));
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}

Test(evict_pressure, prefetch_promotes_at_stage_start)
{
    prefetch_up_to("0.9", 0);
}

/* Prefetch stops at the watermark: 0.5 of 256 MiB lets 128 of the 192 MiB back. */
Test(evict_pressure, prefetch_stops_at_the_watermark)
{
    prefetch_up_to("0.5", 64 * MiB);
}

/* Victims go oldest stage first: stage "early" was first set before "late" although its blocks
 * were made after (at higher addresses). */
Test(evict_pressure, oldest_stage_first)
{
    arena_fixture_start(256 * MiB);
    ef_policy("[stage early]\nmatch = *e*\n[stage late]\nmatch = *l*\n"
              "[stage decode]\nmatch = *decode*\nevict = early, late\n");
    a = arena_new(SIZE_MAX);
    uint64_t seed = 5;
    vs_arena_set_stage(a, ef_name("early"));
    vs_arena_set_stage(a, ef_name("late"));
    for (int i = 0; i < NW / 2; i++)
        ef_alloc(a, &wts[i], WSIZE, &seed);
    vs_arena_set_stage(a, ef_name("early"));
    for (int i = NW / 2; i < NW; i++)
        ef_alloc(a, &wts[i], WSIZE, &seed);
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_SUCCESS);
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 80 * MiB, &ws), CUDA_SUCCESS);
    size_t early = 0, late = 0;
    for (int i = 0; i < NW; i++)
        *(i < NW / 2 ? &late : &early) += vs_arena_block_demoted_bytes(a, wts[i].p);
    cr_assert_eq(early, 16 * MiB);
    cr_assert_eq(late, 0);
    ef_forget(wts, NW);
    vs_arena_destroy(a);
}
