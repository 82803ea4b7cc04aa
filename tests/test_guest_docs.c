/* What a new user meets walking README.md and docs/ (issue "a good guest"): the behaviours the
 * docs promise, one test each. The command-by-command walk itself is in docs/docs-walk.md.
 */
#include <strings.h>

#include "interpose_harness.h"
#include "python_fixture.h"

#define CLI VS_BUILD_DIR "/vramshim"
#define DEMOS VS_BUILD_DIR "/demo/"

static struct vs_run run_plain(const char *const *argv, const char *const *env)
{
    return vs_run(argv, 0, env);
}

/* "seed" is an internal word; help texts say "the reported failure" or name the case. */
Test(guest_docs, help_texts_do_not_say_seed)
{
    const char *const commands[][3] = {
        {CLI, "--help", NULL},           {CLI, "demo", "--help"},
        {DEMOS "wan21_t2v", "--help", NULL}, {DEMOS "ovi_fusion", "--help", NULL},
        {DEMOS "comfyui_wan22", "--help", NULL},
    };
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        const char *argv[] = {commands[i][0], commands[i][1], commands[i][2], NULL};
        struct vs_run r = run_plain(argv, NULL);
        cr_expect_eq(r.status, 0, "%s %s: exit %d", argv[0], argv[1], r.status);
        cr_expect(r.out[0], "%s %s printed nothing", argv[0], argv[1]);
        cr_expect(!strcasestr(r.out, "seed"), "%s %s says seed:\n%s", argv[0], argv[1], r.out);
        vs_run_free(&r);
    }
    const char *py[] = {vs_python(), DEMOS "python_wan.py", "--help", NULL};
    struct vs_run r = run_plain(py, NULL);
    cr_expect(r.out[0] && !strcasestr(r.out, "seed"), "python_wan.py --help:\n%s", r.out);
    vs_run_free(&r);
}

/* The native and the Python Wan demo run out of memory in the same place on the same GPU and
 * must say so in the same words. */
Test(guest_docs, wan_demos_word_the_same_failure_alike, .timeout = 120)
{
    const char *env[] = {"SIMCUDA_VRAM=11766MiB", NULL};
    const char *c_argv[] = {DEMOS "wan21_t2v", NULL};
    const char *py_argv[] = {vs_python(), DEMOS "python_wan.py", NULL};
    struct vs_run c = run_plain(c_argv, env), py = run_plain(py_argv, env);
    cr_expect_eq(c.status, 3, "%s", c.raw_err);
    cr_expect_eq(py.status, 3, "%s", py.raw_err);
    const char *tail =
        " failed in stage text_encoder_load (%s) for t5.blocks.10 (385875968 bytes): "
        "CUDA_ERROR_OUT_OF_MEMORY\n";
    char c_line[256], py_line[256];
    snprintf(c_line, sizeof c_line, "wan21-t2v-1.3b: cuMemAlloc_v2");
    snprintf(c_line + strlen(c_line), sizeof c_line - strlen(c_line), tail, "t5_load");
    snprintf(py_line, sizeof py_line, "python-wan21-t2v-1.3b: cuMemAllocAsync");
    snprintf(py_line + strlen(py_line), sizeof py_line - strlen(py_line), tail, "WanT2V.generate");
    cr_expect(strstr(c.raw_err, c_line), "expected:\n%s\ngot:\n%s", c_line, c.raw_err);
    cr_expect(strstr(py.raw_err, py_line), "expected:\n%s\ngot:\n%s", py_line, py.raw_err);
    vs_run_free(&c);
    vs_run_free(&py);
}

/* A process without a socket where ctl looks may have one under another XDG_RUNTIME_DIR: the
 * message names the paths tried and this shell's XDG_RUNTIME_DIR. */
Test(guest_docs, ctl_says_where_it_looked)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *argv[] = {CLI, "ctl", pid, "status", NULL};
    const char *env[] = {"XDG_RUNTIME_DIR=/tmp/vs_guest_xdg", NULL};
    struct vs_run r = run_plain(argv, env);
    cr_expect_eq(r.status, 1);
    char path[128];
    snprintf(path, sizeof path, "(/tmp/vs_guest_xdg/vramshim/%s.sock and ", pid);
    cr_expect(strstr(r.raw_err, path), "%s", r.raw_err);
    cr_expect(strstr(r.raw_err, "XDG_RUNTIME_DIR is '/tmp/vs_guest_xdg' here") &&
                  strstr(r.raw_err, "if it was, it had another XDG_RUNTIME_DIR"),
              "%s", r.raw_err);
    vs_run_free(&r);
}

/* Generated workload traces follow the trace format (docs/tracing.md: "site" is an integer, 0
 * for none), and `policy match --trace` on one says why it has no call sites. */
Test(guest_docs, generated_traces_have_site_0_and_match_says_why_no_sites)
{
    const char *gen[] = {CLI, "workload", "sdxl-vae-decode", "--small", "-o", "-", NULL};
    struct vs_run r = run_plain(gen, NULL);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    size_t events = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        cr_assert(o, "not JSON: %s", line);
        const char *ev = json_string_value(json_object_get(o, "ev"));
        if (ev && (!strcmp(ev, "alloc") || !strcmp(ev, "free"))) {
            json_t *site = json_object_get(o, "site");
            cr_expect(json_is_integer(site) && json_integer_value(site) == 0, "%s", line);
            events++;
        }
        json_decref(o);
    }
    cr_expect_gt(events, 10);
    vs_run_free(&r);

    char path[] = "/tmp/vs_guest_workloadXXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    const char *write[] = {CLI, "workload", "sdxl-vae-decode", "--small", "-o", path, NULL};
    r = run_plain(write, NULL);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    vs_run_free(&r);
    const char *match[] = {CLI, "policy", "match",
                           VS_SOURCE_DIR "/policy/examples/wan21-t2v-1.3b-12gb.ini", "--trace",
                           path, NULL};
    r = run_plain(match, NULL);
    cr_expect_eq(r.status, 0, "%s", r.raw_err);
    cr_expect(strstr(r.out, "it is the generated workload sdxl-vae-decode-small, which has none"),
              "%s", r.out);
    cr_expect(!strstr(r.out, "stacks"), "%s", r.out);
    vs_run_free(&r);
    unlink(path);
}

/* Without the reference packages tools/golden/make_golden.py says what to install instead of a
 * traceback (numpy is hidden here by a module that fails to import, as a missing one does). */
Test(guest_docs, make_golden_without_numpy_says_what_to_install)
{
    char dir[] = "/tmp/vs_guest_nonumpyXXXXXX";
    cr_assert(mkdtemp(dir));
    char mod[64], env_path[96];
    snprintf(mod, sizeof mod, "%s/numpy.py", dir);
    FILE *f = fopen(mod, "w");
    cr_assert(f);
    fputs("raise ModuleNotFoundError(\"No module named 'numpy'\", name='numpy')\n", f);
    fclose(f);
    snprintf(env_path, sizeof env_path, "PYTHONPATH=%s", dir);
    const char *argv[] = {vs_python(), VS_SOURCE_DIR "/tools/golden/make_golden.py", "--help",
                          NULL};
    const char *env[] = {env_path, NULL};
    struct vs_run r = run_plain(argv, env);
    cr_expect_eq(r.status, 1);
    cr_expect(!strstr(r.raw_err, "Traceback"), "%s", r.raw_err);
    cr_expect(strstr(r.raw_err, "make_golden.py: the Python package 'numpy' is missing") &&
                  strstr(r.raw_err, "pip install torch=="),
              "%s", r.raw_err);
    vs_run_free(&r);
    unlink(mod);
    rmdir(dir);
}

/* docs/stages.md "Building against the C API": the example builds with the documented command
 * and runs with the shim (the API answers) and without it (it says so and still works). */
Test(guest_docs, api_example_builds_and_runs_with_and_without_the_shim, .timeout = 120)
{
    char exe[] = "/tmp/vs_guest_api_clientXXXXXX";
    int fd = mkstemp(exe);
    cr_assert(fd >= 0);
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd " VS_SOURCE_DIR " && CUDA=$(tools/find-cuda.sh) && cc -Wall -Wextra -Werror "
             "-Iinclude -I$CUDA/include examples/api_client.c -o %s -L$CUDA/lib64/stubs -lcuda "
             "-ldl",
             exe);
    cr_assert_eq(system(cmd), 0, "the example does not build: %s", cmd);
    const char *argv[] = {exe, NULL};
    struct vs_run with = vs_run(argv, 1, NULL), without = vs_run(argv, 0, NULL);
    cr_expect_eq(with.status, 0, "%s", with.raw_err);
    cr_expect(strstr(with.out, "stage_begin load: 0\ntag weights: 0\nstage_end load: 0\n"
                               "demote load: 0\nstatus: {"),
              "%s", with.out);
    cr_expect(strstr(with.out, "\"demoted_bytes\":67108864"), "%s", with.out);
    cr_expect_eq(without.status, 0, "%s", without.raw_err);
    cr_expect_str_eq(without.out, "vramshim is not loaded: running without it\n");
    vs_run_free(&with);
    vs_run_free(&without);
    unlink(exe);
}

/* Every transcript in README.md and docs/ shows what its command prints (docs/docs-walk.md). */
Test(guest_docs, transcripts_in_the_docs_match_the_commands, .timeout = 300)
{
    const char *argv[] = {vs_python(), VS_SOURCE_DIR "/tools/docs_walk.py", "--build", VS_BUILD_DIR,
                          NULL};
    struct vs_run r = run_plain(argv, NULL);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.raw_err);
    cr_expect(strstr(r.out, ", 0 differ\n"), "%s", r.out);
    vs_run_free(&r);
}
