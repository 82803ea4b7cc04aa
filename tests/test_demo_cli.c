/* `vramshim demo`: every scenario runs out of memory in pass-through where its seed did and
 * completes under vramshim with every checksum intact, the stages coming from the programs' call
 * sites through the example policies; the JSON and table outputs; usage errors. */
#include <glob.h>

#include "tests/demo_fixture.h"

static struct dm_run r;
static char out_dir[] = "/tmp/vs_demo_cli_XXXXXX";

static void dm_setup(void)
{
    cr_assert_not_null(mkdtemp(out_dir));
}

static void dm_teardown(void)
{
    json_decref(r.last);
    r.last = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", out_dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(demo_cli, .init = dm_setup, .fini = dm_teardown);

/* Counts events of a trace with ev and stage (and tag when not NULL). */
static unsigned dm_trace_count(const char *path, const char *ev, const char *stage, const char *tag)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "no trace %s", path);
    char line[8192];
    unsigned n = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert_not_null(j, "%s: not JSON: %s", path, line);
        if (!strcmp(dm_str(j, "ev"), ev) && !strcmp(dm_str(j, "stage"), stage) &&
            (!tag || !strcmp(dm_str(j, "tag"), tag)))
            n++;
        json_decref(j);
    }
    fclose(f);
    return n;
}

/* Whether every block allocated in stage `owner` without a tag was promoted by the prefetch of
 * stage `at`, i.e. while `at` was the current stage; *n gets how many blocks that is. */
static bool dm_all_prefetched_at(const char *path, const char *owner, const char *at, unsigned *n)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "no trace %s", path);
    char line[8192], current[64] = "";
    json_t *owned = json_object(), *back = json_object();
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert_not_null(j, "%s: not JSON: %s", path, line);
        const char *ev = dm_str(j, "ev"), *stage = dm_str(j, "stage"), *ptr = dm_str(j, "ptr");
        if (!strcmp(ev, "stage") && !strcmp(dm_str(j, "action"), "begin"))
            snprintf(current, sizeof current, "%s", stage);
        else if (!strcmp(ev, "alloc") && !strcmp(stage, owner) && !*dm_str(j, "tag"))
            json_object_set_new(owned, ptr, json_true());
        else if (!strcmp(ev, "promote") && !strcmp(stage, owner) && !strcmp(current, at) &&
                 !strcmp(dm_str(j, "api"), "prefetch"))
            json_object_set_new(back, ptr, json_true());
        json_decref(j);
    }
    fclose(f);
    const char *ptr;
    json_t *v;
    bool all = json_object_size(owned) > 0;
    json_object_foreach(owned, ptr, v)
        all = all && json_object_get(back, ptr);
    *n = (unsigned)json_object_size(owned);
    json_decref(owned);
    json_decref(back);
    return all;
}

Test(demo_cli, every_scenario_fails_in_pass_through_and_completes_under_vramshim)
{
    dm_sh(&r, DM_CLI " demo --json --out %s", out_dir);
    cr_expect_eq(r.status, 0, "%s\n%s", r.out, r.err);
    cr_assert_not_null(r.last, "no JSON: %s", r.out);
    cr_expect_str_eq(dm_str(r.last, "device"), "simcuda");
    cr_expect(json_is_true(json_object_get(r.last, "ok")));
    json_t *list = json_object_get(r.last, "scenarios");
    static const struct {
        const char *name, *failed_stage;
    } want[] = {{"wan21-t2v-1.3b", "text_encoder_load"},
                {"ovi-fusion", "decode"},
                {"comfyui-wan22-5b", "decode"},
                {"python-wan21-t2v-1.3b", "text_encoder_load"}};
    cr_assert_eq(json_array_size(list), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *s = json_array_get(list, i);
        cr_expect_str_eq(dm_str(s, "name"), want[i].name);
        cr_expect(json_is_false(dm_get(s, "baseline.completed")), "%s", want[i].name);
        cr_expect_str_eq(dm_str(json_object_get(s, "baseline"), "failed_stage"),
                         want[i].failed_stage);
        cr_expect_str_eq(dm_str(json_object_get(s, "baseline"), "error"),
                         "CUDA_ERROR_OUT_OF_MEMORY");
        cr_expect(json_is_true(dm_get(s, "vramshim.completed")), "%s: %s", want[i].name,
                  dm_str(json_object_get(s, "vramshim"), "problem"));
        cr_expect(json_is_true(dm_get(s, "vramshim.checksums_ok")), "%s", want[i].name);
        /* Completing took moving idle weights out of VRAM (beside an LLM server: the server's,
         * lent), and the device was used fully. */
        json_int_t demoted = json_integer_value(dm_get(s, "vramshim.demoted_bytes"));
        if (json_is_object(dm_get(s, "vramshim.companion"))) {
            cr_expect_gt(json_array_size(dm_get(s, "vramshim.negotiation")), 0, "%s", want[i].name);
            cr_expect_gt(json_integer_value(dm_get(s, "vramshim.companion.requests")), 0);
            cr_expect_eq(json_integer_value(dm_get(s, "vramshim.companion.checksum_failures")), 0);
            cr_expect_eq(json_integer_value(dm_get(s, "baseline.companion.checksum_failures")), 0);
        } else {
            cr_expect_gt(demoted, 0, "%s", want[i].name);
        }
        json_int_t peak = json_integer_value(dm_get(s, "vramshim.peak_device_bytes"));
        json_int_t gpu = json_integer_value(json_object_get(s, "gpu_bytes"));
        json_int_t taken = json_integer_value(json_object_get(s, "taken_bytes"));
        cr_expect_gt(peak, 0, "%s", want[i].name);
        /* Beside the LLM server the generator's own peak is over what the server left it: the
         * device memory the server lent (simcuda counts each process's). */
        if (json_is_object(dm_get(s, "vramshim.companion")))
            cr_expect(peak > gpu - taken && peak <= gpu, "%s: peak %lld", want[i].name,
                      (long long)peak);
        else
            cr_expect_leq(peak, gpu - taken, "%s", want[i].name);
        cr_expect(json_is_true(json_object_get(s, "as_expected")), "%s", want[i].name);
        cr_expect(json_is_null(dm_get(s, "vramshim.problem")));
        cr_expect_eq(json_integer_value(dm_get(s, "baseline.demoted_bytes")), 0);
    }
    /* The Wan program was not told its stages: the policy found them in its call stacks. */
    char trace[256];
    snprintf(trace, sizeof trace, "%s/wan21-t2v-1.3b.vramshim.jsonl", out_dir);
    cr_expect_gt(dm_trace_count(trace, "alloc", "load", ""), 0, "DiT weights in stage load");
    cr_expect_gt(dm_trace_count(trace, "alloc", "load", "vae"), 0, "VAE weights tagged vae");
    cr_expect_gt(dm_trace_count(trace, "alloc", "text_encode", NULL), 0);
    cr_expect_gt(dm_trace_count(trace, "alloc", "denoise", NULL), 0);
    cr_expect_gt(dm_trace_count(trace, "alloc", "decode", NULL), 0);
    cr_expect_gt(dm_trace_count(trace, "demote", "load", NULL), 0, "the DiT made way for the T5");
    cr_expect_eq(dm_trace_count(trace, "demote", "load", "vae") +
                     dm_trace_count(trace, "demote", "decode", NULL), 0,
                 "nothing the decode uses was demoted for it");
    /* The denoise reads the DiT from VRAM: with the T5 filling the device, its prefetch made
     * room by demoting the idle T5 (checksums_ok above: the DiT came back intact). */
    unsigned dit_blocks;
    cr_expect(dm_all_prefetched_at(trace, "load", "denoise", &dit_blocks),
              "not every one of the %u DiT blocks was promoted at denoise", dit_blocks);
    /* The Ovi text encoder is made in stage load (from fusion_load) with its own tag. */
    snprintf(trace, sizeof trace, "%s/ovi-fusion.vramshim.jsonl", out_dir);
    cr_expect_eq(dm_trace_count(trace, "alloc", "load", "text_encoder"), 25);
    glob_t g;
    char pattern[128];
    snprintf(pattern, sizeof pattern, "%s/*.jsonl", out_dir);
    cr_expect_eq(glob(pattern, 0, NULL, &g), 0);
    cr_expect_eq(g.gl_pathc, 2 * (sizeof want / sizeof want[0]) + 1,
                 "one trace per run, and results.jsonl");
    globfree(&g);
}

Test(demo_cli, the_table_says_what_happened)
{
    dm_sh(&r, DM_CLI " demo --scenario comfyui-wan22-5b --out %s", out_dir);
    cr_expect_eq(r.status, 0, "%s\n%s", r.out, r.err);
    static const char *const lines[] = {
        "comfyui-wan22-5b: ComfyUI, Wan 2.2 TI2V-5B",
        "simulated GPU 24.00 GiB, 4.66 GiB held by another process; policy ",
        "pass-through  no        decode (vae.decode_workspace)",
        "vramshim      yes       -",
        "as expected: pass-through runs out of memory at decode, vramshim completes with every "
        "weight intact",
        "demo: every scenario behaved as expected",
        /* The LLM server beside it, and how they negotiated. */
        "pass-through: the other process answered ",
        "vramshim: the other process answered ",
        ", every checksum ok (exit 0)",
        "vramshim: borrow: out of memory for 4.00 GiB on device 0, waited ",
        "(lendable 4.66 GiB) ",
        ": released 4.66 GiB; retrying",
        "vramshim: lend: pid ",
        " asked for 4294967296 bytes: demoted 4999610368, released 4999610368 to the driver",
        "vramshim: lend: in use again, promoted 4999610368 lent bytes back",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_expect(strstr(r.out, lines[i]), "missing \"%s\" in:\n%s", lines[i], r.out);
    cr_expect(strstr(r.out, " ok (59) "), "checksums column: %s", r.out);
    cr_expect_null(strstr(r.out, "wan21"), "only the scenario asked for runs");
}

Test(demo_cli, a_scenario_without_another_process_says_nothing_of_one)
{
    dm_sh(&r, DM_CLI " demo --scenario ovi-fusion --out %s", out_dir);
    cr_expect_eq(r.status, 0, "%s\n%s", r.out, r.err);
    cr_expect(strstr(r.out, "0 B held by another process"), "%s", r.out);
    cr_expect_null(strstr(r.out, "the other process"), "no companion runs here:\n%s", r.out);
}

Test(demo_cli, a_scenario_that_does_not_behave_fails_the_demo)
{
    /* With eviction off by a policy that names no stage, vramshim cannot complete the decode:
     * the demo must say so and exit 1. */
    char policies[300];
    snprintf(policies, sizeof policies, "%s/policies", out_dir);
    dm_sh(&r, "mkdir -p %s && printf '[global]\\neviction = off\\n' > %s/ovi-fusion-32gb.ini",
          policies, policies);
    cr_assert_eq(r.status, 0);
    dm_sh(&r, DM_CLI " demo --json --scenario ovi-fusion --out %s --policy-dir %s", out_dir,
          policies);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_assert_not_null(r.last, "%s", r.out);
    cr_expect(json_is_false(json_object_get(r.last, "ok")));
    json_t *s = json_array_get(json_object_get(r.last, "scenarios"), 0);
    cr_expect(json_is_true(json_object_get(s, "baseline_as_expected")));
    cr_expect(json_is_false(json_object_get(s, "vramshim_as_expected")));
    cr_expect_str_eq(dm_str(json_object_get(s, "vramshim"), "failed_stage"), "decode");
}

Test(demo_cli, usage_errors_are_precise)
{
    static const struct {
        const char *args, *message;
    } cases[] = {
        {"--scenario nope", "vramshim demo: no scenario named 'nope' (known: wan21-t2v-1.3b, "
                            "ovi-fusion, comfyui-wan22-5b, python-wan21-t2v-1.3b)"},
        {"--device gpu", "vramshim demo: --device: expected sim or real, got 'gpu'"},
        {"--timeout 0", "vramshim demo: --timeout: expected seconds (1 to 86400), got '0'"},
        {"--out", "vramshim demo: --out needs a value (see vramshim demo --help)"},
        {"--policy-dir /nonexistent", "vramshim demo: the example policies (--policy-dir DIR) "
                                      "not found at /nonexistent"},
        {"--bogus", "vramshim demo: unknown option '--bogus' (see vramshim demo --help)"},
        {"--policy-dir /tmp", "vramshim demo: wan21-t2v-1.3b: its policy "
                              "/tmp/wan21-t2v-1.3b-12gb.ini cannot be read: No such file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dm_sh(&r, DM_CLI " demo --out %s %s", out_dir, cases[i].args);
        cr_expect_eq(r.status, 2, "%s", cases[i].args);
        cr_expect(strstr(r.err, cases[i].message), "%s: got %s", cases[i].args, r.err);
        json_decref(r.last);
        r.last = NULL;
    }
}

Test(demo_cli, device_real_runs_each_scenario_at_its_gpu_size)
{
    /* simcuda stands in for a real device of exactly the scenario's 11.49 GiB (a larger card
     * gets a vram_holder process holding the rest): the program runs at scale 1, not scaled to
     * the device, and the result line is written as soon as the scenario is done. */
    dm_sh(&r, DM_SIM "SIMCUDA_VRAM=11766MiB " DM_CLI " demo --device real --json --scenario "
                     "wan21-t2v-1.3b --out %s", out_dir);
    cr_expect_eq(r.status, 0, "%s\n%s", r.out, r.err);
    cr_assert_not_null(r.last, "%s", r.out);
    cr_expect_str_eq(dm_str(r.last, "device"), "real");
    json_t *s = json_array_get(json_object_get(r.last, "scenarios"), 0);
    for (int i = 0; i < 2; i++) {
        json_t *run = json_object_get(s, i ? "vramshim" : "baseline");
        cr_expect_eq(json_integer_value(json_object_get(run, "device_total_bytes")), 11766LL << 20);
        cr_expect_float_eq(json_number_value(json_object_get(run, "scale")), 1.0, 1e-9);
    }
    cr_expect(json_is_true(json_object_get(s, "as_expected")));
    cr_expect(json_is_null(json_object_get(s, "skipped")));
    dm_sh(&r,
          "(wc -l < %s/results.jsonl && grep -c '\"name\":\"wan21-t2v-1.3b\"' %s/results.jsonl)",
          out_dir, out_dir);
    cr_expect_str_eq(r.out, "1\n1\n");
}

Test(demo_cli, device_real_skips_a_scenario_larger_than_the_device)
{
    dm_sh(&r, DM_SIM "SIMCUDA_VRAM=8GiB " DM_CLI " demo --device real --json --scenario "
                     "wan21-t2v-1.3b --out %s", out_dir);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_assert_not_null(r.last, "%s", r.out);
    json_t *s = json_array_get(json_object_get(r.last, "scenarios"), 0);
    cr_expect(strstr(dm_str(s, "skipped"), "device 0 has 8589934592 bytes free, less than the "
                                          "12337545216 to leave"), "%s", dm_str(s, "skipped"));
    cr_expect(strstr(r.err, "vramshim demo: no scenario fits this device"), "%s", r.err);
}

Test(demo_cli, device_real_without_a_driver_says_why_once_and_stops)
{
    /* Files of an earlier run must not be pointed at as this one's. */
    dm_sh(&r, "(echo old > %s/wan21-t2v-1.3b.passthrough.jsonl)", out_dir);
    dm_sh(&r, "LD_LIBRARY_PATH=/nonexistent " DM_CLI " demo --device real --out %s", out_dir);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "vramshim demo: wan21-t2v-1.3b: the pass-through run could not be "
                            "judged: the vram_holder process"), "%s", r.err);
    cr_expect(strstr(r.err, "cannot load the CUDA driver"), "the reason: %s", r.err);
    cr_expect(strstr(r.err, "stopping here"), "%s", r.err);
    cr_expect_null(strstr(r.out, "ovi-fusion"), "it went on after the first failure: %s", r.out);
    cr_expect_null(strstr(r.out, "traces:"), "%s", r.out);
    dm_sh(&r, "test -e %s/wan21-t2v-1.3b.passthrough.jsonl", out_dir);
    cr_expect_neq(r.status, 0, "the stale trace is still there");
}

Test(demo_cli, describe_finds_python_on_the_users_path)
{
    /* `#!/usr/bin/env python3` must find the interpreter the user's PATH names (conda-only
     * images have none in /usr/bin): a python3 first on PATH that leaves a mark. */
    dm_sh(
        &r,
        "(mkdir -p %s/bin && printf '#!/bin/sh\\ntouch %s/used\\nexec /usr/bin/python3 \"$@\"\\n' "
        "> %s/bin/python3 && chmod +x %s/bin/python3)",
        out_dir, out_dir, out_dir, out_dir);
    dm_sh(&r, "PATH=%s/bin:/usr/bin:/bin " DM_CLI " demo --scenario nope --out %s", out_dir,
          out_dir);
    cr_expect_eq(r.status, 2, "%s", r.err);
    cr_expect(strstr(r.err, "no scenario named 'nope'"), "%s", r.err);
    dm_sh(&r, "test -e %s/used", out_dir);
    cr_expect_eq(r.status, 0, "python_wan.py --describe did not run the python3 on PATH");
}

Test(demo_cli, vram_holder_holds_its_share_until_stdin_closes)
{
    dm_sh(&r, "echo | " DM_SIM "SIMCUDA_VRAM=8GiB " DM_PROGS "/vram_holder 0.25");
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "holding 2147483648\n");
    dm_sh(&r, DM_SIM DM_PROGS "/vram_holder 1.5 </dev/null");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "usage: vram_holder SHARE | --leave BYTES"), "%s", r.err);
}

Test(demo_cli, vram_holder_leaves_the_bytes_asked)
{
    dm_sh(&r, "echo | " DM_SIM "SIMCUDA_VRAM=8GiB " DM_PROGS "/vram_holder --leave 6442450944");
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "holding 2147483648\n");
    dm_sh(&r, DM_SIM "SIMCUDA_VRAM=8GiB " DM_PROGS "/vram_holder --leave 9663676416 </dev/null");
    cr_expect_eq(r.status, 4);
    cr_expect(strstr(r.err, "has 8589934592 bytes free, less than the 9663676416 to leave"), "%s",
              r.err);
}
