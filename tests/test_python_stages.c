/* Stages from Python: the auto-hook begins a policy stage on entry to a matching function and
 * ends it on exit (return, exception, generator suspension, recursion), for classes and modules
 * defined after start-up too; vramshim.stage() as context manager and decorator. The stage is
 * read back from the shim (vramshim_stats_json) and from the trace's stage events. */
#include "python_fixture.h"

/* tests/progs/py_stages.expected: what py_stages.py prints, the shim's current stage at each
 * labelled point ("-": none). In order: a plain method; one raising an exception (its stage
 * ends all the same); a generator, whose stage is open only while its frame runs (steps,
 * cleanup at exhaustion and at close()) and closed while it is suspended (consumer lines); a
 * recursive function, still in its stage after an inner call returned; a class defined inside a
 * function and a module imported after start-up; @vramshim.stage; a policy stage inside
 * `with vramshim.stage("block")`. (Also read by tools/gpucheck/checks/60-python.sh.) */
#define EXPECTED VS_PYPROG("py_stages.expected")

static struct vs_run run_stages(const char *trace)
{
    char env_trace[300];
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", trace);
    const char *env[] = {"PYTHONPATH=" VS_SOURCE_DIR "/tests/progs", env_trace, NULL};
    const char *argv[] = {VS_CLI, "run", "--policy", VS_PYPROG("py_stages.ini"), "--",
                          vs_python(), VS_PYPROG("py_stages.py"), NULL};
    return vs_run(argv, 0, env);
}

Test(python_stages, function_entry_and_exit_begin_and_end_stages)
{
    char trace[256], want[4096];
    vs_trace_path(trace, sizeof trace, "py_stages");
    struct vs_run r = run_stages(trace);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.raw_err);
    char *expected = vs_slurp(EXPECTED);
    cr_assert(expected, "cannot read %s", EXPECTED);
    snprintf(want, sizeof want, "%shook %s\n", expected,
             vs_python_has_monitoring() ? "monitoring" : "wrap");
    free(expected);
    cr_expect_str_eq(r.out, want);
    vs_run_free(&r);

    /* The trace has one begin and one end per stage entry the hook or the API made, in
     * pairs: recursion and generator resumption do not add stage events of their own. */
    struct vs_trace t = vs_trace_load(trace);
    const char *want_events[] = {
        "begin encode", "end encode", "begin decode", "end decode",
        "begin denoise", "end denoise", "begin denoise", "end denoise",
        "begin denoise", "end denoise", /* the generator's final step (StopIteration) */
        "begin denoise", "end denoise", "begin denoise", "end denoise", /* break: close() */
        "begin decode", "end decode", "begin decode", "end decode", "begin late", "end late",
        "begin manual", "end manual", "begin block", "begin decode", "end decode", "end block",
    };
    size_t k = 0;
    for (size_t i = 1; i < t.n; i++) {
        if (strcmp(vs_str(t.lines[i], "ev"), "stage") != 0)
            continue;
        char got[128];
        snprintf(got, sizeof got, "%s %s", vs_str(t.lines[i], "action"),
                 vs_str(t.lines[i], "stage"));
        cr_assert_lt(k, sizeof want_events / sizeof *want_events, "extra stage event %s", got);
        cr_expect_str_eq(got, want_events[k], "stage event %zu", k);
        k++;
    }
    cr_expect_eq(k, sizeof want_events / sizeof *want_events);
    vs_trace_free(&t);
    unlink(trace);
}

Test(python_stages, explicit_stage_without_the_shim_warns_once)
{
    const char *env[] = {"PYTHONPATH=" VS_SOURCE_DIR "/python", NULL};
    const char *argv[] = {vs_python(), "-c",
                          "import vramshim\n"
                          "with vramshim.stage('decode'):\n    pass\n"
                          "@vramshim.stage('decode')\ndef f():\n    return 5\n"
                          "print(vramshim.loaded, f())",
                          NULL};
    struct vs_run r = vs_run(argv, 0, env);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    cr_expect_str_eq(r.out, "False 5\n");
    cr_expect_str_eq(r.raw_err, "vramshim: stage() has no effect: libvramshim.so is not loaded "
                                "(start the program with `vramshim run -- ...`)\n");
    vs_run_free(&r);
}

Test(python_stages, bad_stage_name_is_refused)
{
    const char *env[] = {"PYTHONPATH=" VS_SOURCE_DIR "/python", NULL};
    const char *argv[] = {vs_python(), "-c",
                          "import vramshim\ntry:\n    vramshim.stage('no spaces')\n"
                          "except ValueError as e:\n    print(e)",
                          NULL};
    struct vs_run r = vs_run(argv, 0, env);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    cr_expect_str_eq(r.out, "vramshim.stage: bad stage name 'no spaces' (1 to 40 letters, "
                            "digits or _ . - : / @ +)\n");
    vs_run_free(&r);
}

Test(python_stages, hook_says_why_it_is_inactive)
{
    const char *env[] = {"VRAMSHIM_LOG=info", NULL};
    /* no policy */
    const char *argv[] = {VS_CLI, "run", "--", vs_python(), "-c", "print(1)", NULL};
    struct vs_run r = vs_run(argv, 0, env);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    cr_expect(strstr(r.err, "vramshim: Python auto-hook inactive: the policy has no stage match "
                            "patterns\n"),
              "%s", r.raw_err);
    vs_run_free(&r);
    /* no shim: python/ on PYTHONPATH (its sitecustomize) without LD_PRELOAD */
    const char *env_noshim[] = {"VRAMSHIM_LOG=info", "PYTHONPATH=" VS_SOURCE_DIR "/python", NULL};
    const char *plain[] = {vs_python(), "-c", "print(1)", NULL};
    r = vs_run(plain, 0, env_noshim);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    cr_expect_str_eq(r.raw_err, "vramshim: Python auto-hook inactive: libvramshim.so is not "
                                "loaded\n");
    vs_run_free(&r);
    /* a policy: active, and which mechanism */
    const char *with_policy[] = {VS_CLI, "run", "--policy", VS_PYPROG("py_stages.ini"), "--",
                                 vs_python(), "-c", "print(1)", NULL};
    r = vs_run(with_policy, 0, env);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    cr_expect(strstr(r.err, vs_python_has_monitoring()
                                ? "vramshim: Python auto-hook active (sys.monitoring) for 6 "
                                  "patterns\n"
                                : "vramshim: Python auto-hook active (function wrappers) for 6 "
                                  "patterns\n"),
              "%s", r.raw_err);
    vs_run_free(&r);
}
