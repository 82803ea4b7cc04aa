/* The Python demo generator (tools/demo/python_wan.py, Wan2.1 T2V-1.3B shaped like the official
 * pipeline): out of memory in pass-through on its 11.49 GiB GPU; completes under `vramshim run`
 * with policy/examples/wan21-t2v-1.3b-12gb.ini, with every weight intact and the same video as
 * a run on a GPU large enough to need no eviction; the stages come from the Python auto-hook. */
#include "python_fixture.h"

#define DEMO VS_SOURCE_DIR "/tools/demo/python_wan.py"
#define POLICY VS_SOURCE_DIR "/policy/examples/wan21-t2v-1.3b-12gb.ini"

/* The result line (the last line of stdout) of a run of the demo. */
static json_t *demo_run(const char *vram, const char *mode, const char *policy, int want_status,
                        const char *const *extra, const char *trace)
{
    char env_vram[64], env_trace[300];
    snprintf(env_vram, sizeof env_vram, "SIMCUDA_VRAM=%s", vram);
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", trace ? trace : "");
    const char *env[] = {env_vram, trace ? env_trace : NULL, NULL};
    const char *argv[16] = {VS_CLI, "run", "--mode", mode};
    size_t n = 4;
    if (policy) {
        argv[n++] = "--policy";
        argv[n++] = policy;
    }
    argv[n++] = "--";
    argv[n++] = vs_python();
    argv[n++] = DEMO;
    for (; extra && *extra; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    struct vs_run r = vs_run(argv, 0, env);
    cr_assert_eq(r.status, want_status, "status %d: %s%s", r.status, r.out, r.raw_err);
    const char *last = r.out;
    for (const char *c = r.out; *c; c++)
        if (*c == '\n' && c[1])
            last = c + 1;
    json_error_t err;
    json_t *j = json_loads(last, 0, &err);
    cr_assert(j, "no result line: %s", r.out);
    vs_run_free(&r);
    return j;
}

static const char *s(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

Test(python_demo, fails_in_passthrough_completes_under_vramshim, .timeout = 120)
{
    json_t *fail = demo_run("11766MiB", "passthrough", NULL, 3, NULL, NULL);
    cr_expect(json_is_false(json_object_get(fail, "completed")));
    cr_expect_str_eq(s(fail, "failed_stage"), "text_encoder_load");
    cr_expect_str_eq(s(fail, "error"), "CUDA_ERROR_OUT_OF_MEMORY");
    cr_expect_str_eq(s(fail, "block"), "t5.blocks.10");
    json_decref(fail);

    /* the reference: a GPU where everything fits, nothing moved */
    json_t *fit = demo_run("24GiB", "passthrough", NULL, 0, NULL, NULL);
    cr_assert(json_is_true(json_object_get(fit, "checksums_ok")));
    cr_assert(s(fit, "video_checksum"));

    char trace[256];
    vs_trace_path(trace, sizeof trace, "py_demo");
    json_t *ok = demo_run("11766MiB", "arena", POLICY, 0, NULL, trace);
    cr_expect(json_is_true(json_object_get(ok, "completed")));
    cr_expect(json_is_true(json_object_get(ok, "checksums_ok")));
    cr_expect_str_eq(s(ok, "video_checksum"), s(fit, "video_checksum"));
    cr_expect_eq(json_integer_value(json_object_get(ok, "weights")),
                 json_integer_value(json_object_get(fit, "weights")));
    json_decref(ok);
    json_decref(fit);

    /* the stages the hook began from the Python functions the policy names, and memory moved */
    struct vs_trace t = vs_trace_load(trace);
    const char *stages[] = {"load", "text_encode", "denoise", "decode"};
    for (size_t k = 0; k < 4; k++) {
        int begun = 0;
        for (size_t i = 1; i < t.n; i++)
            begun += !strcmp(vs_str(t.lines[i], "ev"), "stage") &&
                     !strcmp(vs_str(t.lines[i], "action"), "begin") &&
                     !strcmp(vs_str(t.lines[i], "stage"), stages[k]);
        cr_expect_gt(begun, 0, "stage %s never began", stages[k]);
    }
    cr_expect_gt(vs_trace_count(&t, "demote", NULL), 0);
    vs_trace_free(&t);
    unlink(trace);
}

Test(python_demo, a_damaged_weight_is_reported, .timeout = 60)
{
    const char *corrupt[] = {"--corrupt", "dit.blocks.3", "--scale", "0.25", NULL};
    json_t *j = demo_run("24GiB", "passthrough", NULL, 1, corrupt, NULL);
    cr_expect(json_is_false(json_object_get(j, "checksums_ok")));
    json_t *bad = json_object_get(j, "corrupt_weights");
    cr_expect_eq(json_array_size(bad), 1);
    cr_expect_str_eq(json_string_value(json_array_get(bad, 0)), "dit.blocks.3");
    json_decref(j);
}

Test(python_demo, describes_itself_like_the_native_demos)
{
    const char *argv[] = {vs_python(), DEMO, "--describe", NULL};
    struct vs_run r = vs_run(argv, 0, NULL);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert(j, "%s", r.out);
    cr_expect_str_eq(s(j, "policy"), "wan21-t2v-1.3b-12gb.ini");
    cr_expect_str_eq(s(j, "expected_failure"), "text_encoder_load");
    cr_expect_eq(json_array_size(json_object_get(j, "weight_names")), 59);
    json_decref(j);
    vs_run_free(&r);
    const char *unknown[] = {vs_python(), DEMO, "--corrupt", "no.such", NULL};
    r = vs_run(unknown, 0, NULL);
    cr_expect_eq(r.status, 2);
    cr_expect_str_eq(r.raw_err, "python-wan21-t2v-1.3b: --corrupt: no weight named 'no.such' "
                                "(--describe lists \"weight_names\")\n");
    vs_run_free(&r);
    const char *bad[] = {vs_python(), DEMO, "--steps", "many", NULL};
    r = vs_run(bad, 0, NULL);
    cr_expect_eq(r.status, 2);
    cr_expect_str_eq(r.raw_err, "--steps: expected a whole number above 0, got 'many'\n");
    vs_run_free(&r);
}
