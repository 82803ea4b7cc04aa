/* The Python auto-hook on real libraries (torch, diffusers, transformers, accelerate from the
 * cached environments of tools/pyenv.sh), on both implementations: Python 3.11 (function
 * wrappers) and 3.12 (sys.monitoring). Each test runs on each version whose environment exists
 * and says in one line when one is missing. Programs: tests/progs/py_autohook*.py (cases),
 * tests/progs/py_sd_pipeline.py (a tiny StableDiffusionPipeline); policies beside them. */
#include "python_fixture.h"
#include "stages_fixture.h"


/* `vramshim run --policy py_autohook_POLICY.ini -- PYTHON py_autohook.py CASE` with
 * VRAMSHIM_LOG=info (and VRAMSHIM_TRACE=trace unless NULL); a program still running after
 * 300 s is killed (exit 124): a hang fails the test instead of stopping the suite. */
static struct vs_run run_case(const char *python, const char *policy, const char *kase,
                              const char *trace)
{
    char ini[512], env_trace[300];
    snprintf(ini, sizeof ini, "%s/tests/progs/py_autohook_%s.ini", VS_SOURCE_DIR, policy);
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", trace ? trace : "");
    const char *env[] = {"PYTHONPATH=" VS_SOURCE_DIR "/tests/progs", "VRAMSHIM_LOG=info",
                         "HF_HUB_OFFLINE=1", trace ? env_trace : NULL, NULL};
    const char *argv[] = {"timeout", "-k", "10", "300", VS_CLI, "run", "--policy", ini, "--",
                          python, VS_PYPROG("py_autohook.py"), kase, NULL};
    return vs_run(argv, 0, env);
}

/* run_case, expecting exit 0 and output `want` (any when NULL); returns the run to free. */
static struct vs_run expect_case(const char *python, const char *version, const char *policy,
                                 const char *kase, const char *want)
{
    struct vs_run r = run_case(python, policy, kase, NULL);
    cr_expect_eq(r.status, 0, "Python %s, %s: exit %d (124: hung)\n%s", version, kase, r.status,
                 r.raw_err);
    if (want)
        cr_expect_str_eq(r.out, want, "Python %s, %s", version, kase);
    return r;
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *at = text; (at = strstr(at, what)); at += strlen(what))
        n++;
    return n;
}

/* The exit line for pattern p (the policy named nothing with it). */
#define UNUSED(p) "vramshim: warning: match pattern '" p "' named no Python function in this run"

static void expect_line(const struct vs_run *r, const char *version, const char *line)
{
    cr_expect(strstr(r->err, line), "Python %s: no '%s' in\n%s", version, line, r->err);
}

static void check_self(const char *python, const char *version)
{
    /* `match = *`: every function, the hook's own too; `match = log`: the hook's logger. */
    struct vs_run r = expect_case(python, version, "star", "self", NULL);
    cr_expect(!strncmp(r.out, "forward all\n", 12), "Python %s: %s", version, r.out);
    vs_run_free(&r);
    r = expect_case(python, version, "log", "self", "forward -\nblock block\nend -\n");
    expect_line(&r, version, UNUSED("log"));
    vs_run_free(&r);
}

Test(python_autohook, no_pattern_wraps_the_hook_or_hangs, .timeout = 900)
{
    vs_each_pyenv(check_self);
}

static void check_names(const char *python, const char *version)
{
    struct vs_run r = expect_case(python, version, "names", "names",
                                  "decode decode\n" /* models.VAE.decode, made by functools.wraps */
                                  "encode -\n"      /* the decorator's module is not the method's */
                                  "run sub\n"       /* Sub.run: Base.run called through Sub */
                                  "run -\n"         /* ... and not through Base */
                                  "sub_go go\n"     /* Base.go: Sub's override */
                                  "base_go go\n"    /* ... and Base.go through Other */
                                  "start alias\n"   /* Base.alias = start */
                                  "end -\n");
    expect_line(&r, version, UNUSED("py_autohook_deco.VAE.encode"));
    cr_expect_eq(count_of(r.err, "named no Python function"), 1, "Python %s: %s", version,
                 r.err);
    vs_run_free(&r);
}

Test(python_autohook, methods_are_named_by_class_inheritance_and_alias, .timeout = 900)
{
    vs_each_pyenv(check_names);
}

static void check_diffusers(const char *python, const char *version)
{
    /* AutoencoderKL.decode is accelerate's apply_forward_hook wrapper: still the class's
     * module; Linear.__call__ is Module's alias of _wrapped_call_impl, inherited. */
    struct vs_run r = expect_case(python, version, "diffusers", "diffusers",
                                  "encoder -\ndecoder decode\nlinear call\nend -\n");
    expect_line(&r, version, UNUSED("utils.accelerate_utils.AutoencoderKL.encode"));
    /* torch.nn is not the file's module path (torch/nn/modules/module.py): said at exit. */
    expect_line(&r, version, UNUSED("torch.nn.Module.__call__"));
    vs_run_free(&r);
}

Test(python_autohook, diffusers_decorated_decode_and_aliased_call, .timeout = 900)
{
    vs_each_pyenv(check_diffusers);
}

static void check_threads(const char *python, const char *version)
{
    struct vs_run r = expect_case(python, version, "threads", "threads",
                                  "second_alone s2\nafter -\nend -\n");
    cr_expect(!strstr(r.err, "still open"), "Python %s: %s", version, r.err);
    vs_run_free(&r);
}

Test(python_autohook, stages_overlapping_in_two_threads_all_end, .timeout = 900)
{
    vs_each_pyenv(check_threads);
}

static void check_jit(const char *python, const char *version)
{
    struct vs_run r = expect_case(python, version, "torch", "jit", "scripted equal True\nend -\n");
    vs_run_free(&r);
}

Test(python_autohook, torchscript_compiles_a_wrapped_forward, .timeout = 900)
{
    vs_each_pyenv(check_jit);
}

static void check_quiet(const char *python, const char *version)
{
    struct vs_run r = expect_case(python, version, "torch", "quiet", NULL);
    cr_expect(!strncmp(r.out, "imported torch", 14), "Python %s: %s", version, r.out);
    /* torch.distributed.reduce_op warns when read: the scan never reads it. */
    cr_expect(!strstr(r.raw_err, "Warning"), "Python %s: %s", version, r.raw_err);
    vs_run_free(&r);
}

Test(python_autohook, scan_runs_no_code_of_the_program, .timeout = 900)
{
    vs_each_pyenv(check_quiet);
}

static void check_comfy(const char *python, const char *version)
{
    struct vs_run r = expect_case(python, version, "comfy", "comfy",
                                  "node_function node\nnode_run node\nend -\n");
    vs_run_free(&r);
}

Test(python_autohook, comfyui_custom_node_module_functions, .timeout = 900)
{
    vs_each_pyenv(check_comfy);
}

/* The site of the trace's first "begin STAGE" event. */
static json_t *begin_site(const struct vs_trace *t, const char *stage)
{
    long long site = -1;
    for (size_t i = 1; i < t->n && site < 0; i++)
        if (!strcmp(vs_str(t->lines[i], "ev"), "stage") &&
            !strcmp(vs_str(t->lines[i], "action"), "begin") &&
            !strcmp(vs_str(t->lines[i], "stage"), stage))
            site = json_integer_value(json_object_get(t->lines[i], "site"));
    for (size_t i = 1; i < t->n; i++)
        if (!strcmp(vs_str(t->lines[i], "ev"), "site") &&
            json_integer_value(json_object_get(t->lines[i], "site")) == site)
            return t->lines[i];
    return NULL;
}

static void check_sites(const char *python, const char *version)
{
    char trace[256];
    vs_trace_path(trace, sizeof trace, "py_autohook_sites");
    struct vs_run r = run_case(python, "names", "names", trace);
    cr_assert_eq(r.status, 0, "Python %s: %s", version, r.raw_err);
    vs_run_free(&r);

    struct vs_trace t = vs_trace_load(trace);
    for (size_t i = 1; i < t.n; i++) {
        json_t *frames = json_object_get(t.lines[i], "frames");
        for (size_t k = 0; k < json_array_size(frames); k++)
            cr_expect(!strstr(json_string_value(json_array_get(frames, k)),
                              VS_SOURCE_DIR "/python/vramshim/"),
                      "Python %s: a frame of the hook: %s", version,
                      json_string_value(json_array_get(frames, k)));
    }
    /* The stage's Python frames begin with the function that began it. */
    json_t *site = begin_site(&t, "decode");
    cr_assert(site, "Python %s: no site for stage decode", version);
    json_t *frames = json_object_get(site, "frames");
    const char *first = NULL;
    for (size_t k = 0; k < json_array_size(frames) && !first; k++) {
        const char *f = json_string_value(json_array_get(frames, k));
        if (f && !strncmp(f, "py:", 3))
            first = f;
    }
    cr_assert(first, "Python %s: the site of stage decode has no Python frame", version);
    cr_expect(strstr(first, "py:" VS_SOURCE_DIR "/tests/progs/py_autohook_models.py:") == first &&
                  strlen(first) > 11 && !strcmp(first + strlen(first) - 11, ":VAE.decode"),
              "Python %s: %s", version, first);
    long long decode_site = json_integer_value(json_object_get(site, "site"));
    vs_trace_free(&t);

    /* `vramshim policy match --trace` finds the stage there, and the pattern that matched
     * nothing. */
    const char *argv[] = {VS_CLI, "policy", "match", VS_PYPROG("py_autohook_names.ini"),
                          "--trace", trace, NULL};
    r = vs_run(argv, 0, NULL);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    char want[128];
    snprintf(want, sizeof want, "site %lld: stage decode, tag -\n", decode_site);
    cr_expect(strstr(r.out, want), "Python %s: no '%s' in\n%s", version, want, r.out);
    cr_expect(strstr(r.out, "warning: [stage wrong] pattern 'py_autohook_deco.VAE.encode' "
                            "matched no frame of "),
              "Python %s: %s", version, r.out);
    vs_run_free(&r);
    unlink(trace);
}

Test(python_autohook, call_sites_leave_the_hook_out, .timeout = 900)
{
    vs_each_pyenv(check_sites);
}

/* py_sd_pipeline.py with PYTHON into DIR/out.f32, under `vramshim run --policy POLICY` with a
 * trace (DIR/trace.jsonl) when policy is set, plainly when NULL. */
static struct vs_run run_pipeline(const char *python, const char *dir, const char *policy)
{
    char model[300], out[300], trace[300];
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(out, sizeof out, "%s/%s.f32", dir, policy ? "hooked" : "plain");
    snprintf(trace, sizeof trace, "VRAMSHIM_TRACE=%s/trace.jsonl", dir);
    const char *env[] = {"HF_HUB_OFFLINE=1", "VRAMSHIM_LOG=info", trace, NULL};
    const char *plain_env[] = {"HF_HUB_OFFLINE=1", NULL};
    const char *plain[] = {"timeout", "-k", "10", "600", python, VS_PYPROG("py_sd_pipeline.py"),
                           model, out, NULL};
    const char *hooked[] = {"timeout", "-k", "10", "600", VS_CLI, "run", "--policy", policy, "--",
                            python, VS_PYPROG("py_sd_pipeline.py"), model, out, NULL};
    return vs_run(policy ? hooked : plain, 0, policy ? env : plain_env);
}

static void check_pipeline(const char *python, const char *version)
{
    static const char *const policies[] = {VS_PYPROG("py_sd_pipeline.ini"),
                                           VS_PYPROG("py_sd_pipeline_classes.ini")};
    char dir[] = "/tmp/vs_sd_pipelineXXXXXX", path[300];
    cr_assert(mkdtemp(dir));
    struct vs_run r = run_pipeline(python, dir, NULL);
    cr_assert_eq(r.status, 0, "Python %s, plain: %s", version, r.raw_err);
    cr_assert_str_eq(r.out, "image 1x16x16x3\n");
    vs_run_free(&r);
    snprintf(path, sizeof path, "%s/plain.f32", dir);
    char *plain = vs_slurp(path);
    cr_assert(plain, "no %s", path);

    for (size_t p = 0; p < 2; p++) {
        r = run_pipeline(python, dir, policies[p]);
        cr_assert_eq(r.status, 0, "Python %s, %s: %s", version, policies[p], r.raw_err);
        cr_expect_str_eq(r.out, "image 1x16x16x3\n");
        for (const char *const *s = (const char *const[]){"load", "text_encode", "denoise",
                                                          "decode", NULL};
             *s; s++) {
            char line[64];
            snprintf(line, sizeof line, " begins stage %s\n", *s);
            cr_expect(strstr(r.err, line), "Python %s, %s: no '%s' in\n%s", version,
                      policies[p], line, r.err);
        }
        cr_expect(!strstr(r.err, "named no Python function"),
                  "Python %s, %s: %s", version, policies[p], r.err);
        vs_run_free(&r);

        snprintf(path, sizeof path, "%s/hooked.f32", dir);
        char *hooked = vs_slurp(path);
        cr_assert(hooked, "no %s", path);
        cr_expect(!memcmp(plain, hooked, 16 * 16 * 3 * 4),
                  "Python %s, %s: the image differs from the plain run's", version, policies[p]);
        free(hooked);

        snprintf(path, sizeof path, "%s/trace.jsonl", dir);
        struct vs_trace t = vs_trace_load(path);
        char events[2048];
        vs_stage_events(&t, events, sizeof events);
        /* from_pretrained, to, encode_prompt, the UNet once per step (2), the VAE decode */
        cr_expect_str_eq(events,
                         "begin:load:vramshim_stage_begin end:load:vramshim_stage_end "
                         "begin:load:vramshim_stage_begin end:load:vramshim_stage_end "
                         "begin:text_encode:vramshim_stage_begin "
                         "end:text_encode:vramshim_stage_end "
                         "begin:denoise:vramshim_stage_begin end:denoise:vramshim_stage_end "
                         "begin:denoise:vramshim_stage_begin end:denoise:vramshim_stage_end "
                         "begin:decode:vramshim_stage_begin end:decode:vramshim_stage_end",
                         "Python %s, %s", version, policies[p]);
        vs_trace_free(&t);
        unlink(path);
    }
    free(plain);
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_expect_eq(system(rm), 0);
}

Test(python_autohook, stable_diffusion_pipeline_under_the_readme_policy, .timeout = 1800)
{
    vs_each_pyenv(check_pipeline);
}
