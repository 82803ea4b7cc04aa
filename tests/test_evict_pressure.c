/* Eviction by policy: an allocation that does not fit demotes the current stage's victims and
 * succeeds; the watermark, anti-thrash, headroom, prefetch (making room by demoting the stage's
 * victims) and oldest-stage-first rules. */
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

static void unload_weights(void)
{
    ef_forget(wts, NW);
    fx_destroy(a);
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
    unload_weights();
}

Test(evict_pressure, without_a_rule_the_request_fails)
{
    load_weights(POLICY("", "evict = load"));
    vs_arena_set_stage(a, ef_name("unlisted_stage"));
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 160 * MiB, &ws), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(weights_demoted(), 0);
    cr_assert_eq(fx_log_count("out of memory on device 0"), 1);
    unload_weights();
}

/* The out-of-memory line says how much is demoted (memory a promote would need back); the
 * requested demote gave its device granules back to the driver, so none are cached. */
Test(evict_pressure, the_oom_line_reports_demoted_bytes)
{
    load_weights(POLICY("", "evict = load"));
    cr_assert_eq(vs_arena_demote(a, ef_name("load"), NULL), CUDA_SUCCESS);
    vs_arena_set_stage(a, ef_name("unlisted_stage"));
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, 300 * MiB, &ws), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(fx_log_count("cached 0 B, demoted 192.00 MiB, pending 0 B"), 1, "%s",
                 fx_log_n ? fx_log[fx_log_n - 1] : "no line");
    unload_weights();
}

/* Under `policy`, stage decode asks for `ask` bytes: the answer is `want`, with `demoted` bytes of
 * the weights demoted for it. */
static void decode_alloc(const char *policy, size_t ask, CUresult want, size_t demoted)
{
    load_weights(policy);
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_SUCCESS);
    CUdeviceptr ws;
    cr_assert_eq(vs_arena_alloc(a, ask, &ws), want);
    cr_assert_eq(weights_demoted(), demoted);
    unload_weights();
}

Test(evict_pressure, eviction_off_in_the_policy_demotes_nothing)
{
    decode_alloc(POLICY("eviction = off", "evict = load"), 160 * MiB, CUDA_ERROR_OUT_OF_MEMORY, 0);
}

/* 64 MiB free, 80 MiB asked: the request alone needs 16 MiB demoted; a watermark of 0.5 wants
 * memory in use at or below 128 MiB, i.e. 64 MiB demoted. */
Test(evict_pressure, pressure_demotes_down_to_the_watermark)
{
    decode_alloc(POLICY("watermark = 0.9", "evict = load"), 80 * MiB, CUDA_SUCCESS, 16 * MiB);
}

Test(evict_pressure, a_low_watermark_demotes_more)
{
    decode_alloc(POLICY("watermark = 0.5", "evict = load"), 80 * MiB, CUDA_SUCCESS, 64 * MiB);
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
    unload_weights();
}

Test(evict_pressure, headroom_at_stage_start)
{
    load_weights(POLICY("", "evict = load\nheadroom = 100MiB"));
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_SUCCESS);
    cr_assert_geq(ef_free_bytes(a), 100 * MiB);
    cr_assert_eq(weights_demoted(), 36 * MiB, "demoted %zu", weights_demoted());
    weights_intact_after_promote();
    unload_weights();
}

Test(evict_pressure, headroom_that_victims_cannot_reach_is_an_error)
{
    load_weights(POLICY("", "evict = load\nheadroom = 300MiB"));
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("decode")), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(weights_demoted(), 192 * MiB, "every victim should have gone");
    unload_weights();
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
    unload_weights();
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
    unload_weights();
}

/* A full device at stage start: the weights (stage load, 192 MiB) are in host memory and the
 * text encoder (stage encode, 7 x 32 MiB) fills 224 of the 256 MiB. Stage denoise evicts the
 * encoder and prefetches the weights: the encoder goes out only as far as the weights need to
 * come back under the watermark, and nothing changes on the way. */
#define NC 7
static struct ef_block enc[NC];

static size_t encoder_demoted(void)
{
    size_t n = 0;
    for (int i = 0; i < NC; i++)
        n += vs_arena_block_demoted_bytes(a, enc[i].p);
    return n;
}

static void prefetch_past_a_victim(const char *watermark)
{
    char text[320];
    snprintf(text, sizeof text,
             "[global]\nwatermark = %s\n[stage load]\nmatch = *load*\n"
             "[stage encode]\nmatch = *encode*\nevict = load\n"
             "[stage denoise]\nmatch = *denoise*\nevict = encode\nprefetch = load\n",
             watermark);
    load_weights(text);
    cr_assert_eq(vs_arena_demote(a, ef_name("load"), NULL), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("encode")), CUDA_SUCCESS);
    uint64_t seed = 23;
    for (int i = 0; i < NC; i++)
        ef_alloc(a, &enc[i], 32 * MiB, &seed);
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("denoise")), CUDA_SUCCESS);
}

static void contents_intact(void)
{
    for (int i = 0; i < NW; i++)
        cr_assert(ef_intact(&wts[i]), "weight %d changed", i);
    for (int i = 0; i < NC; i++)
        cr_assert(ef_intact(&enc[i]), "encoder block %d changed", i);
    ef_forget(wts, NW);
    ef_forget(enc, NC);
    fx_destroy(a);
}

/* Watermark 224 MiB, 224 MiB in use: all 192 MiB of weights come back for exactly 192 MiB of
 * the encoder; the other 32 MiB of it stay on the device. */
Test(evict_pressure, prefetch_demotes_the_stage_victims_only_as_far_as_needed)
{
    prefetch_past_a_victim("0.875");
    cr_assert_eq(weights_demoted(), 0, "%zu of the weights still demoted", weights_demoted());
    cr_assert_eq(encoder_demoted(), 192 * MiB, "encoder demoted: %zu", encoder_demoted());
    contents_intact();
}

/* Watermark 128 MiB: every victim granule goes (224 MiB), and the weights fill the device up to
 * the watermark (128 of 192 MiB back), not beyond. */
Test(evict_pressure, prefetch_after_its_victims_fills_up_to_the_watermark)
{
    prefetch_past_a_victim("0.5");
    cr_assert_eq(encoder_demoted(), 224 * MiB, "encoder demoted: %zu", encoder_demoted());
    cr_assert_eq(weights_demoted(), 64 * MiB, "%zu of the weights still demoted",
                 weights_demoted());
    contents_intact();
}

/* Nothing to bring back: the victims stay where they are, although memory in use (224 MiB) is
 * above the watermark (128 MiB). */
Test(evict_pressure, prefetch_with_nothing_demoted_demotes_nothing)
{
    load_weights("[global]\nwatermark = 0.5\n[stage load]\nmatch = *load*\n"
                 "[stage encode]\nmatch = *encode*\n"
                 "[stage denoise]\nmatch = *denoise*\nevict = encode\nprefetch = load\n");
    vs_arena_set_stage(a, ef_name("encode"));
    uint64_t seed = 29;
    ef_alloc(a, &enc[0], 32 * MiB, &seed);
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("denoise")), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_block_demoted_bytes(a, enc[0].p), 0);
    cr_assert_eq(weights_demoted(), 0);
    ef_forget(enc, 1);
    unload_weights();
}
