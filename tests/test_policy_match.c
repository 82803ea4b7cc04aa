/* Call-site matching: glob patterns against native and Python frames, innermost frame first,
 * first section in the file when one frame matches several, stage and tag chosen
 * independently, the per-frame cache (also past its capacity and from many threads). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>

#include "tests/policy_fixture.h"

/* The stage name a single frame selects, "" when none. */
static const char *stage_of(const struct vs_policy *p, const char *frame)
{
    const struct vs_policy_rule *r = vs_policy_match_frame(p, frame, VS_RULE_STAGE);
    return r ? r->name_str : "";
}

static struct vs_policy *one_stage(const char *pattern)
{
    char text[512];
    snprintf(text, sizeof text, "[stage s]\nmatch = %s\n", pattern);
    return pf_parse_ok(text);
}

static const struct {
    const char *pattern, *frame;
    bool match;
} mt_cases[] = {
    /* native: the symbol of "module+0xOFF symbol+0xOFF", or a bare symbol */
    {"vae_decode", "demo+0x1a2b vae_decode+0x40", true},
    {"vae_decode", "vae_decode", true},
    {"vae_decode", "demo+0x1a2b vae_decode_tile+0x40", false},
    {"vae_decode*", "demo+0x1a2b vae_decode_tile+0x40", true},
    {"*decode", "libsd.so+0x10 sd_decode+0x4", true},
    {"*decode_first_stage*",
     "libsd.so+0x10 "
     "_ZN19StableDiffusionGGML18decode_first_stageEP12ggml_contextP11ggml_tensorb+0x99",
     true},
    {"*", "demo+0x1a2b", false},           /* no symbol: nothing to match */
    {"demo*", "demo+0x1a2b main+0x4", false}, /* modules are not matched */
    {"*", "?+0x1234", false},
    {"dit_step_?", "demo+0x1 dit_step_7+0x2", true},
    {"dit_step_[0-4]", "demo+0x1 dit_step_7+0x2", false},
    {"dit_step_[!0-4]", "demo+0x1 dit_step_7+0x2", true},
    {"a\\*b", "x+0x1 a*b+0x2", true},
    {"a\\*b", "x+0x1 axxb+0x2", false},
    /* Python: QUALNAME, and MODULE.QUALNAME for every dotted suffix of the file's module */
    {"VAE.decode", "py:/home/u/ComfyUI/comfy/sd.py:612:VAE.decode", true},
    {"sd.VAE.decode", "py:/home/u/ComfyUI/comfy/sd.py:612:VAE.decode", true},
    {"comfy.sd.VAE.decode", "py:/home/u/ComfyUI/comfy/sd.py:612:VAE.decode", true},
    {"ComfyUI.comfy.sd.VAE.decode", "py:/home/u/ComfyUI/comfy/sd.py:612:VAE.decode", true},
    {"other.sd.VAE.decode", "py:/home/u/ComfyUI/comfy/sd.py:612:VAE.decode", false},
    {"*VAE.decode*", "py:/home/u/ComfyUI/comfy/sd.py:612:VAE.decode_tiled", true},
    {"decode", "py:/home/u/ComfyUI/comfy/sd.py:612:VAE.decode", false},
    {"comfy.sample.sample", "py:/x/comfy/sample.py:40:sample", true},
    {"comfy.VAE.decode", "py:/x/comfy/__init__.py:9:VAE.decode", true}, /* a package */
    {"x.VAE.decode", "py:x.pyc:9:VAE.decode", false},  /* no .py: qualname only */
    {"VAE.decode", "py:<frozen>:9:VAE.decode", true},
    {"VAE.decode", "py:VAE.decode", true},               /* malformed: the rest is the name */
    {"*.<locals>.inner", "py:/a/m.py:3:outer.<locals>.inner", true},
    {"m.outer.<locals>.inner", "py:/a/m.py:3:outer.<locals>.inner", true},
    {"WanVAE.decode", "py:C:/Wan2.1/wan/modules/vae.py:650:WanVAE.decode", true},
};

Test(policy_match, patterns_against_native_and_python_frames)
{
    for (size_t i = 0; i < sizeof mt_cases / sizeof mt_cases[0]; i++) {
        struct vs_policy *p = one_stage(mt_cases[i].pattern);
        cr_expect_str_eq(stage_of(p, mt_cases[i].frame), mt_cases[i].match ? "s" : "",
                         "pattern '%s' vs frame '%s'", mt_cases[i].pattern, mt_cases[i].frame);
        vs_policy_free(p);
    }
}

static const char chain_policy[] = "[stage pipeline]\n"
                                   "match = Pipeline.__call__\n"
                                   "[stage decode]\n"
                                   "match = *vae_decode*, VAE.decode\n"
                                   "[stage any_decode]\n"
                                   "match = *decode*\n"
                                   "[tag weights]\n"
                                   "match = *load_weights*\n"
                                   "[tag vae]\n"
                                   "match = VAE.decode\n";

Test(policy_match, innermost_matching_frame_wins)
{
    struct vs_policy *p = pf_parse_ok(chain_policy);
    const char *chain[] = {
        "libtorch_cuda.so+0x100 c10_alloc+0x10",     /* innermost: no match */
        "py:/s/lib/vae.py:10:VAE.decode",            /* decode, tag vae */
        "py:/s/lib/pipe.py:99:Pipeline.__call__",    /* pipeline */
        "python3+0x55 main+0x1",
    };
    struct vs_policy_match m;
    vs_policy_match_frames(p, chain, 4, &m);
    cr_expect_str_eq(pf_name(m.stage), "decode");
    cr_expect_eq(m.stage_frame, 1);
    cr_expect_str_eq(pf_name(m.tag), "vae");
    cr_expect_eq(m.tag_frame, 1);

    /* Without the decode frame, the outer pipeline frame decides. */
    const char *outer[] = {chain[0], chain[2], chain[3]};
    vs_policy_match_frames(p, outer, 3, &m);
    cr_expect_str_eq(pf_name(m.stage), "pipeline");
    cr_expect_eq(m.stage_frame, 1);
    cr_expect_eq(m.tag, 0);
    cr_expect_eq(m.tag_frame, -1);
    vs_policy_free(p);
}

Test(policy_match, stage_and_tag_come_from_different_frames)
{
    struct vs_policy *p = pf_parse_ok(chain_policy);
    const char *chain[] = {"demo+0x10 load_weights_chunk+0x4", "demo+0x20 vae_decode+0x8",
                           "demo+0x30 main+0x1"};
    struct vs_policy_match m;
    vs_policy_match_frames(p, chain, 3, &m);
    cr_expect_str_eq(pf_name(m.stage), "decode");
    cr_expect_eq(m.stage_frame, 1);
    cr_expect_str_eq(pf_name(m.tag), "weights");
    cr_expect_eq(m.tag_frame, 0);
    vs_policy_free(p);
}

Test(policy_match, several_sections_on_one_frame_first_in_file_wins)
{
    /* "vae_decode" matches both decode (*vae_decode*) and any_decode (*decode*). */
    struct vs_policy *p = pf_parse_ok(chain_policy);
    cr_expect_str_eq(stage_of(p, "demo+0x1 vae_decode+0x2"), "decode");
    cr_expect_str_eq(stage_of(p, "demo+0x1 text_decode+0x2"), "any_decode");
    vs_policy_free(p);
    p = pf_parse_ok("[stage any_decode]\nmatch = *decode*\n"
                    "[stage decode]\nmatch = *vae_decode*\n");
    cr_expect_str_eq(stage_of(p, "demo+0x1 vae_decode+0x2"), "any_decode");
    vs_policy_free(p);
    /* Also when the earlier section matches only a later name of the frame (its module form). */
    p = pf_parse_ok("[stage a]\nmatch = sd.VAE.decode\n[stage b]\nmatch = VAE.decode\n");
    cr_expect_str_eq(stage_of(p, "py:/c/comfy/sd.py:1:VAE.decode"), "a");
    vs_policy_free(p);
}

Test(policy_match, cached_answers_equal_fresh_ones_past_capacity)
{
    struct vs_policy *p = pf_parse_ok(chain_policy);
    char frame[64];
    /* More distinct frames than the cache holds (6144): later ones are computed each time. */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 7000; i++) {
            snprintf(frame, sizeof frame, "demo+0x%x %s_%d+0x1", i,
                     i % 3 == 0 ? "vae_decode" : i % 3 == 1 ? "text_decode" : "other", i);
            const char *want = i % 3 == 0 ? "decode" : i % 3 == 1 ? "any_decode" : "";
            cr_assert_str_eq(stage_of(p, frame), want, "round %d, %s", round, frame);
        }
    vs_policy_free(p);
}

Test(policy_match, python_function_query_for_the_auto_hook)
{
    struct vs_policy *p = pf_parse_ok("[stage decode]\nmatch = comfy.sd.VAE.decode\n"
                                      "[tag vae]\nmatch = *VAE.*\n");
    const struct vs_policy_rule *r =
        vs_policy_match_function(p, "comfy.sd", "VAE.decode", VS_RULE_STAGE);
    cr_assert(r);
    cr_expect_str_eq(r->name_str, "decode");
    cr_expect_null(vs_policy_match_function(p, "other.sd", "VAE.decode", VS_RULE_STAGE));
    cr_expect_null(vs_policy_match_function(p, NULL, "VAE.decode", VS_RULE_STAGE));
    r = vs_policy_match_function(p, NULL, "VAE.encode", VS_RULE_TAG);
    cr_assert(r);
    cr_expect_str_eq(r->name_str, "vae");
    vs_policy_free(p);
}

#define MT_THREADS 8

static struct vs_policy *mt_policy;

static void *mt_worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    char frame[64];
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % 3000;
        snprintf(frame, sizeof frame, "py:/m/pkg/mod%u.py:%u:%s", k, k,
                 k % 2 ? "VAE.decode" : "Model.forward");
        const struct vs_policy_rule *r = vs_policy_match_frame(mt_policy, frame, VS_RULE_STAGE);
        const char *want = k % 2 ? "decode" : NULL;
        if (want ? !r || strcmp(r->name_str, want) : r != NULL)
            return (void *)1;
    }
    return NULL;
}

Test(policy_match, concurrent_matching_is_consistent)
{
    mt_policy = pf_parse_ok(chain_policy);
    pthread_t t[MT_THREADS];
    for (uintptr_t i = 0; i < MT_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, mt_worker, (void *)(i + 1)), 0);
    for (int i = 0; i < MT_THREADS; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        cr_expect_null(bad, "thread %d saw a wrong answer", i);
    }
    vs_policy_free(mt_policy);
}

Test(policy_match, null_and_empty_frames_match_nothing)
{
    struct vs_policy *p = one_stage("*");
    cr_expect_str_eq(stage_of(p, ""), "");
    cr_expect_str_eq(stage_of(p, NULL), "");
    cr_expect_str_eq(stage_of(p, "anything"), "s");
    struct vs_policy_match m;
    vs_policy_match_frames(p, NULL, 0, &m);
    cr_expect_eq(m.stage, 0);
    vs_policy_free(p);
}
