/* The public C API (include/vramshim.h) from a preloaded C program and from Python (ctypes),
 * and what a bad VRAMSHIM_POLICY does: its errors are reported and the process runs without it. */
#include "stages_fixture.h"
#include "vramshim.h"

#define PROG VS_PROG("stages_api_linked")

static const struct {
    const char *name;
    long rc;
} expected_rc[] = {
    {"begin_null", VRAMSHIM_EINVAL},      {"begin_space", VRAMSHIM_EINVAL},
    {"begin_long", VRAMSHIM_EINVAL},      {"begin_load", 0},
    {"tag_a", 0},                          {"tag_inside", VRAMSHIM_ENOTFOUND},
    {"tag_garbage", VRAMSHIM_ENOTFOUND},  {"tag_null", VRAMSHIM_EINVAL},
    {"begin_decode", 0},                   {"end_mismatch", VRAMSHIM_EMISMATCH},
    {"end_unknown", VRAMSHIM_ENOTFOUND},  {"end_null", VRAMSHIM_EINVAL},
    {"end_decode", 0},                     {"end_load", 0},
    {"end_again", VRAMSHIM_ENOTFOUND},    {"stats_small_ok", 1},
    {"stats_nullbuf", VRAMSHIM_EINVAL},   {"demote_unknown", VRAMSHIM_ENOTFOUND},
    {"demote_null", VRAMSHIM_EINVAL},     {"promote_bad", VRAMSHIM_EINVAL},
    {"match_nopolicy", 0},                 {"match_null", VRAMSHIM_EINVAL},
    {"demote_load", 0},
};

static void check_codes(const char *out)
{
    for (size_t i = 0; i < sizeof expected_rc / sizeof *expected_rc; i++)
        cr_expect_eq(vs_rc(out, expected_rc[i].name), expected_rc[i].rc, "%s returned %ld, not %ld",
                     expected_rc[i].name, vs_rc(out, expected_rc[i].name), expected_rc[i].rc);
}

Test(stages_api, return_codes_stages_and_tags_in_trace_and_stats)
{
    char trace[256];
    vs_trace_path(trace, sizeof trace, "stages_api");
    char env_trace[300];
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", trace);
    const char *env[] = {env_trace, "VRAMSHIM_LOG=error", NULL};
    struct vs_run r = vs_run_prog(PROG, 1, env);
    cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.raw_err);
    check_codes(r.out);

    json_t *during = vs_stats_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(during, "stage")), "decode");
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(during, "stack"), 0)),
                     "load");
    cr_expect_str_eq(json_string_value(json_object_get(during, "mode")), "arena");
    cr_expect_eq(vs_usage(during, "stages", "load", "live_bytes"), 4 * MiB);
    cr_expect_eq(vs_usage(during, "stages", "decode", "live_bytes"), 1 * MiB);
    cr_expect_eq(vs_usage(during, "tags", "weights", "live_bytes"), 4 * MiB);
    cr_expect_eq(json_integer_value(json_object_get(during, "live_bytes")), 5 * MiB);
    json_t *after = vs_stats_line(r.out, 1);
    cr_expect(json_is_null(json_object_get(after, "stage")), "a stage is still current");
    cr_expect_eq(json_array_size(json_object_get(after, "stack")), 0);

    struct vs_trace t = vs_trace_load(trace);
    char got[1024];
    vs_stage_events(&t, got, sizeof got);
    cr_expect_str_eq(got, "begin:load:vramshim_stage_begin begin:decode:vramshim_stage_begin "
                          "end:decode:vramshim_stage_end end:load:vramshim_stage_end");
    vs_alloc_events(&t, got, sizeof got);
    cr_expect_str_eq(got, "4194304/load/ 1048576/decode/");
    vs_trace_free(&t);
    json_decref(during);
    json_decref(after);
    unlink(trace);
    vs_run_free(&r);
}

Test(stages_api, bad_policy_is_reported_and_the_program_runs_without_it)
{
    char path[256];
    vs_write_policy(path, sizeof path, "bad",
                    "[stage decode]\nmatch = *vae_decode*\nheadroom = two GiB\nevcit = load\n");
    char env_policy[300];
    snprintf(env_policy, sizeof env_policy, "VRAMSHIM_POLICY=%s", path);
    const char *env[] = {env_policy, NULL};
    struct vs_run r = vs_run_prog(PROG, 1, env);
    cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.raw_err);
    char want[512];
    snprintf(want, sizeof want, "vramshim: %s:3: [stage decode] key 'headroom': bad size 'two GiB'",
             path);
    cr_expect(strstr(r.err, want), "no line '%s' in:\n%s", want, r.err);
    snprintf(want, sizeof want, "vramshim: %s:4: [stage decode] key 'evcit': unknown key", path);
    cr_expect(strstr(r.err, want), "no line '%s' in:\n%s", want, r.err);
    snprintf(want, sizeof want, "vramshim: policy %s not used (2 errors): running without a policy",
             path);
    cr_expect(strstr(r.err, want), "no line '%s' in:\n%s", want, r.err);
    /* Stages still work, in arena mode, without the policy. */
    check_codes(r.out);
    json_t *s = vs_stats_line(r.out, 0);
    cr_expect(json_is_null(json_object_get(s, "policy")));
    cr_expect_str_eq(json_string_value(json_object_get(s, "mode")), "arena");
    json_decref(s);
    unlink(path);
    vs_run_free(&r);
}

/* A preloaded Python process reaches the API through ctypes.CDLL(None), before any CUDA call. */
static const char python_script[] =
    "import ctypes, json\n"
    "lib = ctypes.CDLL(None)\n"
    "lib.vramshim_policy_match_function.argtypes = [ctypes.c_char_p, ctypes.c_char_p,"
    " ctypes.c_char_p, ctypes.c_size_t]\n"
    "buf = ctypes.create_string_buffer(64)\n"
    "def match(mod, qual):\n"
    "    n = lib.vramshim_policy_match_function(mod, qual, buf, 64)\n"
    "    return '%d:%s' % (n, buf.value.decode())\n"
    "print('match', match(b'comfy.sd', b'VAE.decode'), match(None, b'VAE.decode'),"
    " match(b'x', b'Other.run'), match(b'wan.text2video', b'WanT2V.__init__'))\n"
    "n = lib.vramshim_policy_patterns_json(None, 0)\n"
    "pat = ctypes.create_string_buffer(n + 1)\n"
    "lib.vramshim_policy_patterns_json(pat, n + 1)\n"
    "print('patterns', json.dumps(json.loads(pat.value.decode())))\n"
    "print('begin', lib.vramshim_stage_begin(b'text_encode'), lib.vramshim_stage_begin(None))\n"
    "n = lib.vramshim_stats_json(None, 0)\n"
    "st = ctypes.create_string_buffer(n + 1)\n"
    "lib.vramshim_stats_json(st, n + 1)\n"
    "print('stage', json.loads(st.value.decode())['stage'])\n"
    "print('end', lib.vramshim_stage_end(b'text_encode'), "
    "lib.vramshim_stage_end(b'text_encode'))\n";

Test(stages_api, python_ctypes_before_cuda)
{
    char path[256];
    vs_write_policy(path, sizeof path, "py",
                    "[stage load]\nmatch = WanT2V.__init__\n\n[tag vae]\nmatch = VAE.__init__\n\n"
                    "[stage decode]\nmatch = sd.VAE.decode, *vae_decode*\n");
    char env_policy[300];
    snprintf(env_policy, sizeof env_policy, "VRAMSHIM_POLICY=%s", path);
    const char *env[] = {env_policy, NULL};
    const char *argv[] = {"python3", "-c", python_script, NULL};
    struct vs_run r = vs_run(argv, 1, env);
    cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.raw_err);
    cr_expect(strstr(r.out, "match 6:decode 0: 0: 4:load\n"), "%s", r.out);
    cr_expect(
        strstr(r.out, "patterns [\"WanT2V.__init__\", \"sd.VAE.decode\", \"*vae_decode*\"]\n"),
        "%s", r.out);
    cr_expect(strstr(r.out, "begin 0 -1\n"), "%s", r.out);
    cr_expect(strstr(r.out, "stage text_encode\n"), "%s", r.out);
    cr_expect(strstr(r.out, "end 0 -2\n"), "%s", r.out);
    unlink(path);
    vs_run_free(&r);
}

/* When the arena falls back to the driver at start-up, status and return codes say so: the
 * driver serves every device and nothing can be demoted. */
Test(stages_api, after_a_fallback_status_and_demote_tell_the_truth)
{
    const char *env[] = {"SIMCUDA_FAIL=cuMemCreate:1:CUDA_ERROR_NOT_SUPPORTED", NULL};
    struct vs_run r = vs_run_prog(PROG, 1, env);
    cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.raw_err);
    cr_expect(strstr(r.err, "serving memory from the driver"), "no fallback:\n%s", r.err);
    cr_expect_eq(vs_rc(r.out, "demote_load"), VRAMSHIM_EUNSUPPORTED);
    for (int i = 0; i < 2; i++) {
        json_t *s = vs_stats_line(r.out, i);
        cr_expect_str_eq(json_string_value(json_object_get(s, "mode")), "fallback");
        json_t *devices = json_object_get(s, "devices");
        cr_expect_gt(json_array_size(devices), 0);
        for (size_t d = 0; d < json_array_size(devices); d++) {
            json_t *dev = json_array_get(devices, d);
            cr_expect_str_eq(json_string_value(json_object_get(dev, "serving")), "driver");
            cr_expect_str_eq(json_string_value(json_object_get(dev, "eviction")), "off");
        }
        json_decref(s);
    }
    vs_run_free(&r);
}

/* In passthrough mode the driver serves every allocation: stages are still tracked and traced,
 * but there is no arena block to tag and nothing to account. */
Test(stages_api, passthrough_traces_stages_but_cannot_tag)
{
    char trace[256];
    vs_trace_path(trace, sizeof trace, "stages_api_pt");
    char env_trace[300];
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", trace);
    const char *env[] = {env_trace, "VRAMSHIM_MODE=passthrough", "VRAMSHIM_LOG=error", NULL};
    struct vs_run r = vs_run_prog(PROG, 1, env);
    cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.raw_err);
    cr_expect_eq(vs_rc(r.out, "tag_a"), VRAMSHIM_ENOTFOUND);
    cr_expect_eq(vs_rc(r.out, "end_decode"), 0);
    json_t *s = vs_stats_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(s, "mode")), "passthrough");
    cr_expect_str_eq(json_string_value(json_object_get(s, "stage")), "decode");
    cr_expect_eq(json_array_size(json_object_get(s, "devices")), 0);
    json_decref(s);
    struct vs_trace t = vs_trace_load(trace);
    char got[1024];
    vs_alloc_events(&t, got, sizeof got);
    cr_expect_str_eq(got, "4194304/load/ 1048576/decode/");
    vs_trace_free(&t);
    unlink(trace);
    vs_run_free(&r);
}
